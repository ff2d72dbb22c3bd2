#include "PgCapture.h"

#include "PgConnection.h"
#include "PgEventMapper.h"
#include "PgRows.h"

#include <libpq-fe.h>

#include <algorithm>
#include <limits>

namespace tw {

namespace {

// xid is the writing transaction's (64-bit, so it never wraps): the read position.
// SECURITY DEFINER: whoever writes to a captured table can log its change without a
// grant on the changelog. clock_timestamp, not now(): the change's own time. The
// statement-level TRUNCATE trigger runs it too: TG_OP 'TRUNCATE' logs op 'T' with
// both images NULL (OLD and NEW are NULL in a statement trigger), so a function
// installed by an earlier version needs no change to log truncates.
constexpr char kCreateChangelog[] = R"sql(
CREATE SCHEMA IF NOT EXISTS tidewatch;
CREATE TABLE IF NOT EXISTS tidewatch.changelog (
    id bigserial PRIMARY KEY,
    xid bigint NOT NULL,
    tbl text NOT NULL,
    op text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    old_row jsonb,
    new_row jsonb);
CREATE INDEX IF NOT EXISTS changelog_xid ON tidewatch.changelog (xid);
)sql";

// Who reads which table's rows, and from where: a changelog row of a table goes once
// every reader's bound is past its xid.
constexpr char kCreateReaders[] = R"sql(
CREATE TABLE IF NOT EXISTS tidewatch.readers (
    reader text NOT NULL,
    tbl text NOT NULL,
    bound bigint NOT NULL,
    PRIMARY KEY (reader, tbl));
)sql";

// Unregisters reader %1 from table %2 (every table when NULL). Under a lock that an
// install's registration waits for: a trigger is never dropped under a reader that
// has just registered. A table whose last reader left loses its triggers (found by
// name on the table the changelog names, so a table dropped meanwhile is no error) and
// its rows; otherwise the rows below the other readers' bounds go.
constexpr char kRelease[] = R"sql(
DO $tw$
DECLARE
    t text;
    rel regclass;
BEGIN
    IF to_regclass('tidewatch.readers') IS NULL THEN
        RETURN;
    END IF;
    LOCK TABLE tidewatch.readers IN SHARE ROW EXCLUSIVE MODE;
    FOR t IN DELETE FROM tidewatch.readers WHERE reader = %1 AND (%2::text IS NULL OR tbl = %2)
             RETURNING tbl LOOP
        IF EXISTS (SELECT 1 FROM tidewatch.readers WHERE tbl = t) THEN
            DELETE FROM tidewatch.changelog
            WHERE tbl = t AND xid < (SELECT min(bound) FROM tidewatch.readers WHERE tbl = t);
        ELSE
            FOR rel IN SELECT DISTINCT g.tgrelid::regclass FROM pg_trigger g
                       JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE g.tgname IN ('tidewatch_capture', 'tidewatch_capture_truncate')
                         AND n.nspname || '.' || c.relname = t LOOP
                EXECUTE format('DROP TRIGGER IF EXISTS tidewatch_capture ON %s', rel);
                EXECUTE format('DROP TRIGGER IF EXISTS tidewatch_capture_truncate ON %s', rel);
            END LOOP;
            DELETE FROM tidewatch.changelog WHERE tbl = t;
        END IF;
    END LOOP;
END $tw$;
)sql";

constexpr char kCreateFunction[] = R"sql(
CREATE OR REPLACE FUNCTION tidewatch.capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO tidewatch.changelog (xid, tbl, op, old_row, new_row)
    VALUES (pg_current_xact_id()::text::bigint, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, left(TG_OP, 1),
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    PERFORM pg_notify('tidewatch_changelog', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END $$;
)sql";

constexpr char kTruncateTrigger[] = "tidewatch_capture_truncate";

bool currentBound(PgConnection& conn, qint64* bound, QString* error) {
    QList<QStringList> rows;
    if (!conn.exec(QStringLiteral("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"), &rows, error) ||
        rows.isEmpty())
        return false;
    bool ok = false;
    *bound = rows[0][0].toLongLong(&ok);
    if (!ok && error)
        *error = QStringLiteral("the server gave no transaction bound");
    return ok;
}

} // namespace

PgCapture::PgCapture(const QString& sourceId, const QString& reader)
    : m_sourceId(sourceId)
    , m_reader(reader) {}

bool PgCapture::boundOf(const QByteArray& token, qint64* bound) {
    if (!token.startsWith(kTokenPrefix))
        return false;
    bool ok = false;
    *bound = token.mid(int(sizeof kTokenPrefix) - 1).toLongLong(&ok);
    return ok;
}

void PgCapture::restore(const QByteArray& token) {
    qint64 bound = 0;
    m_bound = boundOf(token, &bound) ? bound : -1;
    m_restoredBound = m_bound;
    m_pruned = std::max<qint64>(0, m_bound);
}

QByteArray PgCapture::token() const {
    return QByteArray(kTokenPrefix) + QByteArray::number(std::max<qint64>(0, m_bound));
}

bool PgCapture::install(PgConnection& conn, const Namespace& ns, const QString& qualified,
                        const QStringList& keyColumns, QString* error) {
    // Taken before the trigger exists: every transaction below it has ended without
    // logging a row of this table, so reading from it misses nothing.
    if (m_bound < 0 && !currentBound(conn, &m_bound, error))
        return false;
    QList<QStringList> rows;
    QString sql;
    // Only what is missing: an existing schema or function must not need CREATE on the
    // database or ownership again.
    if (!conn.exec(QStringLiteral("SELECT to_regclass('tidewatch.changelog') IS NULL, "
                                  "to_regprocedure('tidewatch.capture()') IS NULL, "
                                  "to_regclass('tidewatch.readers') IS NULL"),
                   &rows, error))
        return false;
    if (rows[0][0] == QLatin1String("t"))
        sql += QString::fromLatin1(kCreateChangelog);
    if (rows[0][1] == QLatin1String("t"))
        sql += QString::fromLatin1(kCreateFunction);
    if (rows[0][2] == QLatin1String("t"))
        sql += QString::fromLatin1(kCreateReaders);
    Table table{ns, qualified, keyColumns};
    if (m_restoredBound >= 0 && m_restoredBound < m_bound)
        table.from = m_restoredBound;
    // Registered before the trigger is made, in the same transaction: a release by
    // another reader holds the lock until it has dropped or kept the trigger, and then
    // sees this reader.
    sql += QStringLiteral("INSERT INTO tidewatch.readers (reader, tbl, bound) VALUES (%1, %2, %3) "
                          "ON CONFLICT (reader, tbl) DO UPDATE SET bound = EXCLUDED.bound;")
               // One arg(): a table named "x%3" must not take the number.
               .arg(conn.quoteLiteral(m_reader), conn.quoteLiteral(ns.coll),
                    QString::number(table.from >= 0 ? table.from : m_bound));
    // TRUNCATE fires no row trigger: without its statement trigger a truncate left the
    // captured rows standing in every consumer's view. It logs one changelog row per
    // table, in changelog order with the rows written around it.
    sql +=
        QStringLiteral("CREATE OR REPLACE TRIGGER tidewatch_capture AFTER INSERT OR UPDATE OR DELETE ON %1 "
                       "FOR EACH ROW EXECUTE FUNCTION tidewatch.capture();"
                       "CREATE OR REPLACE TRIGGER %2 AFTER TRUNCATE ON %1 "
                       "FOR EACH STATEMENT EXECUTE FUNCTION tidewatch.capture();")
            .arg(qualified, QLatin1String(kTruncateTrigger));
    if (!conn.exec(sql, nullptr, error)) {
        const QString role = conn.quoteIdentifier(conn.user());
        *error =
            QStringLiteral("Cannot install the capture trigger on %1: %2. Capture mode needs CREATE on the "
                           "database for the tidewatch schema (GRANT CREATE ON DATABASE %3 TO %4) and "
                           "ownership of the table (ALTER TABLE %5 OWNER TO %4), or watch without "
                           "capture to poll the table.")
                .arg(ns.coll, *error, conn.quoteIdentifier(conn.database()), role, qualified);
        return false;
    }
    m_tables.insert(ns.coll, table);
    return true;
}

void PgCapture::remove(PgConnection& conn, const Namespace& ns) {
    const auto found = m_tables.constFind(ns.coll);
    if (found == m_tables.constEnd())
        return;
    // A refusal (the table's owner changed) leaves the registration: the next release
    // of this reader, at the next start from the slot, tries again.
    QString ignored;
    conn.exec(QString::fromLatin1(kRelease).arg(conn.quoteLiteral(m_reader), conn.quoteLiteral(ns.coll)),
              nullptr, &ignored);
    m_tables.remove(ns.coll);
}

bool PgCapture::release(PgConnection& conn, const QString& reader, QStringList* tables, QString* error) {
    QList<QStringList> rows;
    if (!conn.exec(QStringLiteral("SELECT to_regclass('tidewatch.readers') IS NOT NULL"), &rows, error))
        return false;
    if (rows.isEmpty() || rows[0][0] != QLatin1String("t"))
        return true; // capture never ran on this database with readers
    rows.clear();
    if (!conn.exec(QStringLiteral("SELECT tbl FROM tidewatch.readers WHERE reader = %1 ORDER BY tbl")
                       .arg(conn.quoteLiteral(reader)),
                   &rows, error))
        return false;
    if (rows.isEmpty())
        return true;
    if (!conn.exec(QString::fromLatin1(kRelease).arg(conn.quoteLiteral(reader), QStringLiteral("NULL")),
                   nullptr, error))
        return false;
    if (tables)
        for (const QStringList& row : std::as_const(rows))
            tables->append(row.value(0));
    return true;
}

bool PgCapture::readTable(PgConnection& conn, const Table& t, qint64 upTo,
                          QList<QPair<qint64, ChangeEvent>>* out, QString* error) const {
    // Both images through the table's own row type, side by side: columns 3 .. 3+n
    // are the old row, 3+n .. 3+2n the new one.
    const QString sql =
        QStringLiteral("SELECT c.id, c.op, (extract(epoch FROM c.at) * 1000)::bigint, o.*, n.* "
                       "FROM tidewatch.changelog c, LATERAL jsonb_populate_record(NULL::%1, c.old_row) o, "
                       "LATERAL jsonb_populate_record(NULL::%1, c.new_row) n "
                       "WHERE c.tbl = %2 AND c.xid >= %3 AND c.xid < %4 ORDER BY c.id")
            .arg(t.qualified, conn.quoteLiteral(t.ns.coll), QString::number(t.from >= 0 ? t.from : m_bound),
                 QString::number(upTo));
    PGresult* result = PQexec(conn.raw(), sql.toUtf8().constData());
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        *error = QStringLiteral("Cannot read the changelog of %1: %2")
                     .arg(t.ns.coll, QString::fromUtf8(PQresultErrorMessage(result)).trimmed());
        PQclear(result);
        return false;
    }
    const int n = (PQnfields(result) - 3) / 2;
    const int oldAt = 3;
    const int newAt = 3 + n;
    QList<int> oldKey = PgRows::columnIndexes(result, t.keyColumns, oldAt, n);
    QList<int> newKey = PgRows::columnIndexes(result, t.keyColumns, newAt, n);
    if (oldKey.isEmpty() || newKey.isEmpty()) {
        oldKey.clear();
        newKey.clear();
        for (int c = 0; c < n; ++c) {
            oldKey.append(oldAt + c);
            newKey.append(newAt + c);
        }
    }
    for (int r = 0; r < PQntuples(result); ++r) {
        const qint64 id = QByteArray(PQgetvalue(result, r, 0)).toLongLong();
        const char op = *PQgetvalue(result, r, 1);
        ChangeEvent e;
        e.setSourceId(m_sourceId);
        e.setNs(t.ns);
        e.setWallTimeMs(QByteArray(PQgetvalue(result, r, 2)).toLongLong());
        if (op == 'I') {
            e.setOperation(Operation::Insert);
            e.setDocumentKey(PgRows::keyDocument(result, r, newKey));
            e.setFullDocument(PgRows::document(result, r, newAt, n));
        } else if (op == 'U') {
            e.setOperation(Operation::Update);
            e.setDocumentKey(PgRows::keyDocument(result, r, newKey));
            e.setFullDocument(PgRows::document(result, r, newAt, n));
            e.setFullDocumentBeforeChange(PgRows::document(result, r, oldAt, n));
            QList<QByteArray> changed;
            QList<QByteArray> removed;
            PgRows::diff(PgRows::hashTable(result, r, oldAt, n), PgRows::hashTable(result, r, newAt, n),
                         &changed, &removed);
            QStringList names;
            for (const QByteArray& name : std::as_const(changed))
                names.append(QString::fromUtf8(name));
            e.setUpdateDescription(ChangeEvent::makeUpdateDescription(
                PgRows::keyDocument(result, r, PgRows::columnIndexes(result, names, newAt, n)), {}));
        } else if (op == 'D') {
            e.setOperation(Operation::Delete);
            e.setDocumentKey(PgRows::keyDocument(result, r, oldKey));
            e.setFullDocumentBeforeChange(PgRows::document(result, r, oldAt, n));
        } else if (op == 'T') {
            e = PgEventMapper::truncate(m_sourceId, t.ns, e.wallTimeMs());
        } else {
            continue;
        }
        out->append({id, e});
    }
    PQclear(result);
    return true;
}

bool PgCapture::read(PgConnection& conn, ChangeBatch& out, QString* error, bool inSnapshot) {
    if (m_tables.isEmpty())
        return true;
    qint64 upTo = std::numeric_limits<qint64>::max();
    if (!inSnapshot && !currentBound(conn, &upTo, error))
        return false;
    if (m_bound < 0)
        m_bound = upTo;
    bool catchingUp = false;
    for (const Table& t : std::as_const(m_tables))
        catchingUp = catchingUp || t.from >= 0;
    if (upTo <= m_bound && !catchingUp)
        return true;
    QList<QPair<qint64, ChangeEvent>> changes;
    for (const Table& t : std::as_const(m_tables))
        if (!readTable(conn, t, upTo, &changes, error))
            return false;
    // One list in changelog order across the tables (each came ordered on its own).
    std::stable_sort(changes.begin(), changes.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    m_bound = upTo;
    for (Table& t : m_tables)
        t.from = -1;
    if (changes.isEmpty())
        return true; // nothing to commit: the journal's older bound reads the same rows
    for (const auto& change : std::as_const(changes))
        out.events.append(change.second);
    out.checkpoint.token = token();
    return true;
}

bool PgCapture::pruneCommitted(PgConnection& conn, const QByteArray& token, QString* error) {
    qint64 bound = 0;
    if (!boundOf(token, &bound) || m_tables.isEmpty())
        return true;
    // Never rows a table that joined late has still to read.
    for (const Table& t : std::as_const(m_tables))
        if (t.from >= 0)
            bound = std::min(bound, t.from);
    if (bound <= m_pruned)
        return true;
    QStringList tables;
    for (const Table& t : std::as_const(m_tables))
        tables.append(conn.quoteLiteral(t.ns.coll));
    // This reader's bound moves; a row goes only below every reader's bound, so what
    // another journal or source still has to read stays.
    const QString in = tables.join(QLatin1String(", "));
    if (!conn.exec(
            QStringLiteral("UPDATE tidewatch.readers SET bound = GREATEST(bound, %1) WHERE reader = %2 "
                           "AND tbl IN (%3); "
                           "DELETE FROM tidewatch.changelog c WHERE c.tbl IN (%3) AND c.xid < %1 AND "
                           "c.xid < (SELECT min(r.bound) FROM tidewatch.readers r WHERE r.tbl = c.tbl)")
                .arg(bound)
                .arg(conn.quoteLiteral(m_reader), in),
            nullptr, error))
        return false;
    m_pruned = bound;
    return true;
}

} // namespace tw

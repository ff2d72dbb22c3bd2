#include "SqliteCapture.h"

#include "SqlitePending.h"
#include "SqliteValues.h"

#include <QDateTime>
#include <QFile>

#include <cstring>

#include <sqlite3.h>

namespace tw {

namespace {

// True when the element under `ai` and the one under `bi` have the same type and bytes.
bool sameValue(const bson_iter_t* ai, const bson_iter_t* bi) {
    bson_t one, two;
    bson_init(&one);
    bson_init(&two);
    bson_append_iter(&one, "v", 1, ai);
    bson_append_iter(&two, "v", 1, bi);
    const bool same = one.len == two.len && !memcmp(bson_get_data(&one), bson_get_data(&two), one.len);
    bson_destroy(&one);
    bson_destroy(&two);
    return same;
}

} // namespace

SqliteCapture::SqliteCapture(const QString& path)
    : m_path(path) {}

void SqliteCapture::restore(const QByteArray& restored) {
    if (restored.startsWith(kTokenPrefix))
        m_changelogSeen = restored.mid(qsizetype(sizeof kTokenPrefix - 1)).toLongLong();
}

QByteArray SqliteCapture::token() const {
    return kTokenPrefix + QByteArray::number(m_changelogSeen);
}

bool SqliteCapture::install(SqliteTable& table, QString* error) {
    sqlite3* rw = nullptr;
    if (sqlite3_open_v2(QFile::encodeName(m_path).constData(), &rw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
        if (error)
            *error = QStringLiteral("Capture mode needs write access to %1: %2")
                         .arg(m_path, QString::fromUtf8(sqlite3_errmsg(rw)));
        sqlite3_close(rw);
        return false;
    }
    sqlite3_busy_timeout(rw, 5000);
    auto image = [&](const char* which) {
        QStringList parts;
        for (const QString& column : std::as_const(table.columns)) {
            const QString ref = QLatin1String(which) + QLatin1Char('.') + sqlite::quoteIdentifier(column);
            parts.append(sqlite::quoteLiteral(column));
            // JSON cannot hold a BLOB: record it as hex.
            parts.append(QStringLiteral("iif(typeof(%1)='blob', hex(%1), %1)").arg(ref));
        }
        return QStringLiteral("json_object(%1)").arg(parts.join(QLatin1String(", ")));
    };
    const QString t = sqlite::quoteIdentifier(table.name);
    const QString lit = sqlite::quoteLiteral(table.name);
    const QString base = QStringLiteral("_tidewatch_") + table.name;
    const QString ins = sqlite::quoteIdentifier(base + QStringLiteral("_ins"));
    const QString upd = sqlite::quoteIdentifier(base + QStringLiteral("_upd"));
    const QString del = sqlite::quoteIdentifier(base + QStringLiteral("_del"));
    const QString log = QLatin1String(kChangelogTable);
    QString script =
        QStringLiteral("BEGIN IMMEDIATE;"
                       "CREATE TABLE IF NOT EXISTS %1(id INTEGER PRIMARY KEY AUTOINCREMENT, "
                       "tbl TEXT NOT NULL, op TEXT NOT NULL, row_id INTEGER, before TEXT, after TEXT, "
                       "at INTEGER NOT NULL DEFAULT "
                       "(CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)));")
            .arg(log);
    script +=
        QStringLiteral("DROP TRIGGER IF EXISTS %1; DROP TRIGGER IF EXISTS %2; DROP TRIGGER IF EXISTS %3;")
            .arg(ins, upd, del);
    script +=
        QStringLiteral("CREATE TRIGGER %1 AFTER INSERT ON %2 BEGIN INSERT INTO %3(tbl, op, row_id, after) "
                       "VALUES(%4, 'insert', NEW.rowid, %5); END;")
            .arg(ins, t, log, lit, image("NEW"));
    script +=
        QStringLiteral("CREATE TRIGGER %1 AFTER UPDATE ON %2 BEGIN INSERT INTO %3(tbl, op, row_id, before, "
                       "after) VALUES(%4, 'update', NEW.rowid, %5, %6); END;")
            .arg(upd, t, log, lit, image("OLD"), image("NEW"));
    script +=
        QStringLiteral("CREATE TRIGGER %1 AFTER DELETE ON %2 BEGIN INSERT INTO %3(tbl, op, row_id, before) "
                       "VALUES(%4, 'delete', OLD.rowid, %5); END;")
            .arg(del, t, log, lit, image("OLD"));
    script += QStringLiteral("COMMIT;");
    char* message = nullptr;
    const int rc = sqlite3_exec(rw, script.toUtf8().constData(), nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
        if (error)
            *error = QStringLiteral("Cannot install capture triggers on %1: %2")
                         .arg(table.name, QString::fromUtf8(message ? message : sqlite3_errstr(rc)));
        sqlite3_free(message);
        sqlite3_exec(rw, "ROLLBACK", nullptr, nullptr, nullptr);
        sqlite3_close(rw);
        return false;
    }
    if (m_changelogSeen == 0) {
        // First capture: start after whatever the changelog already holds.
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(rw, "SELECT coalesce(max(id), 0) FROM _tidewatch_changelog", -1, &s,
                               nullptr) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
            m_changelogSeen = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    sqlite3_close(rw);
    m_installed = true;
    // The changelog is exact: capture tables need no row snapshot.
    table.snapshotted = true;
    return true;
}

void SqliteCapture::read(sqlite3* db, const QHash<QString, SqliteTable>& tables, SqlitePending& out) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, tbl, op, row_id, before, after, at FROM _tidewatch_changelog "
                           "WHERE id > ?1 ORDER BY id",
                           -1, &s, nullptr) != SQLITE_OK) {
        sqlite3_finalize(s);
        return;
    }
    sqlite3_bind_int64(s, 1, m_changelogSeen);
    auto jsonColumn = [&](int column) -> Bson {
        if (sqlite3_column_type(s, column) == SQLITE_NULL)
            return {};
        return Bson::fromJson(QByteArrayView(reinterpret_cast<const char*>(sqlite3_column_text(s, column)),
                                             sqlite3_column_bytes(s, column)));
    };
    auto withId = [](qint64 rowid, const Bson& doc) {
        BsonBuilder b;
        sqlite::appendRowid(b.get(), rowid);
        bson_t view;
        bson_iter_t it;
        if (doc.view(&view) && bson_iter_init(&it, &view))
            while (bson_iter_next(&it))
                if (strcmp(bson_iter_key(&it), "_id") != 0)
                    bson_append_iter(b.get(), bson_iter_key(&it), -1, &it);
        return b.take();
    };
    while (sqlite3_step(s) == SQLITE_ROW) {
        m_changelogSeen = sqlite3_column_int64(s, 0);
        const QString tbl = sqlite::columnText(s, 1);
        const auto table = tables.constFind(tbl);
        if (table == tables.constEnd() || !table->capture)
            continue;
        const QByteArray op(reinterpret_cast<const char*>(sqlite3_column_text(s, 2)));
        const qint64 rowid = sqlite3_column_int64(s, 3);
        const Bson before = jsonColumn(4);
        const Bson after = jsonColumn(5);
        ChangeEvent e;
        e.setSourceId(out.sourceId());
        e.setNs(Namespace{QStringLiteral("main"), tbl});
        e.setDocumentKey(sqlite::keyDocument(rowid));
        e.setWallTimeMs(sqlite3_column_int64(s, 6));
        if (op == "insert") {
            e.setOperation(Operation::Insert);
            e.setFullDocument(withId(rowid, after));
        } else if (op == "update") {
            e.setOperation(Operation::Update);
            BsonBuilder updated;
            bson_t a, b;
            bson_iter_t ai, bi;
            if (after.view(&a) && before.view(&b) && bson_iter_init(&ai, &a))
                while (bson_iter_next(&ai))
                    if (!bson_iter_init_find(&bi, &b, bson_iter_key(&ai)) || !sameValue(&ai, &bi))
                        bson_append_iter(updated.get(), bson_iter_key(&ai), -1, &ai);
            e.setUpdateDescription(ChangeEvent::makeUpdateDescription(updated.take(), {}));
            e.setFullDocument(withId(rowid, after));
            e.setFullDocumentBeforeChange(withId(rowid, before));
        } else {
            e.setOperation(Operation::Delete);
            e.setFullDocumentBeforeChange(withId(rowid, before));
        }
        out.batch.events.append(e);
        if (out.events() >= SqlitePending::kBatchEvents) {
            out.batch.checkpoint.token = token();
            out.flush(false);
        }
    }
    sqlite3_finalize(s);
    out.batch.checkpoint.token = token();
}

void SqliteCapture::pruneCommitted(const QByteArray& committed) {
    if (!m_installed || !committed.startsWith(kTokenPrefix))
        return;
    // Rows up to the committed id are in the journal; the changelog no longer needs
    // them. At most once a second: each prune is a write transaction on the user's file.
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    if (now - m_lastPruneMs < 1000)
        return;
    m_lastPruneMs = now;
    sqlite3* rw = nullptr;
    if (sqlite3_open_v2(QFile::encodeName(m_path).constData(), &rw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) == SQLITE_OK) {
        sqlite3_busy_timeout(rw, 200);
        const QByteArray sql =
            "DELETE FROM _tidewatch_changelog WHERE id <= " +
            QByteArray::number(committed.mid(qsizetype(sizeof kTokenPrefix - 1)).toLongLong());
        sqlite3_exec(rw, sql.constData(), nullptr, nullptr, nullptr);
    }
    sqlite3_close(rw);
}

} // namespace tw

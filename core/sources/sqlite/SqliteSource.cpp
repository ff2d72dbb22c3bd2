#include "SqliteSource.h"

#include "sources/SourceUri.h"

#include <QDateTime>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QLoggingCategory>
#include <QtEndian>
#include <QTimer>

#include <algorithm>

#include <sqlite3.h>

Q_LOGGING_CATEGORY(lcSqlite, "tidewatch.source.sqlite")

namespace tw {

namespace {

// A changelog lives in the watched file only in capture mode.
const char* const kChangelog = "_tidewatch_changelog";
constexpr int kBatchEvents = 1000;
constexpr int kFlushAfterMs = 3;

// 64-bit hash of one column value, stable across runs and Qt versions because it is
// persisted in the journal. Murmur-style: 8 bytes a step, then a final avalanche.
quint64 hashBytes(const void* data, size_t len, quint64 seed) {
    constexpr quint64 m = 0xc6a4a7935bd1e995ULL;
    quint64 h = seed ^ (len * m);
    const auto* p = static_cast<const unsigned char*>(data);
    while (len >= 8) {
        quint64 k;
        memcpy(&k, p, 8);
        k *= m;
        k ^= k >> 47;
        k *= m;
        h ^= k;
        h *= m;
        p += 8;
        len -= 8;
    }
    if (len) {
        quint64 k = 0;
        memcpy(&k, p, len);
        h ^= k;
        h *= m;
    }
    h ^= h >> 47;
    h *= m;
    h ^= h >> 47;
    return h;
}

quint64 hashColumn(sqlite3_stmt* s, int column) {
    switch (sqlite3_column_type(s, column)) {
    case SQLITE_INTEGER: {
        const qint64 v = sqlite3_column_int64(s, column);
        return hashBytes(&v, sizeof v, 1);
    }
    case SQLITE_FLOAT: {
        const double v = sqlite3_column_double(s, column);
        return hashBytes(&v, sizeof v, 2);
    }
    case SQLITE_TEXT: {
        const unsigned char* t = sqlite3_column_text(s, column);
        return hashBytes(t, size_t(sqlite3_column_bytes(s, column)), 3);
    }
    case SQLITE_BLOB: {
        const void* b = sqlite3_column_blob(s, column);
        return hashBytes(b, size_t(sqlite3_column_bytes(s, column)), 4);
    }
    default:
        return 5;
    }
}

void appendColumn(bson_t* doc, const char* key, sqlite3_stmt* s, int column) {
    switch (sqlite3_column_type(s, column)) {
    case SQLITE_INTEGER: {
        const qint64 v = sqlite3_column_int64(s, column);
        if (v >= INT32_MIN && v <= INT32_MAX)
            bson_append_int32(doc, key, -1, int32_t(v));
        else
            bson_append_int64(doc, key, -1, v);
        break;
    }
    case SQLITE_FLOAT:
        bson_append_double(doc, key, -1, sqlite3_column_double(s, column));
        break;
    case SQLITE_TEXT:
        bson_append_utf8(doc, key, -1, reinterpret_cast<const char*>(sqlite3_column_text(s, column)),
                         sqlite3_column_bytes(s, column));
        break;
    case SQLITE_BLOB:
        bson_append_binary(doc, key, -1, BSON_SUBTYPE_BINARY,
                           static_cast<const uint8_t*>(sqlite3_column_blob(s, column)),
                           uint32_t(sqlite3_column_bytes(s, column)));
        break;
    default:
        bson_append_null(doc, key, -1);
    }
}

void appendRowid(bson_t* doc, qint64 rowid) {
    if (rowid >= INT32_MIN && rowid <= INT32_MAX)
        bson_append_int32(doc, "_id", 3, int32_t(rowid));
    else
        bson_append_int64(doc, "_id", 3, rowid);
}

Bson keyDocument(qint64 rowid) {
    BsonBuilder b;
    appendRowid(b.get(), rowid);
    return b.take();
}

QString quoteIdentifier(const QString& name) {
    QString quoted = name;
    quoted.replace(QLatin1Char('"'), QLatin1String("\"\""));
    return QLatin1Char('"') + quoted + QLatin1Char('"');
}

QString quoteLiteral(const QString& text) {
    QString quoted = text;
    quoted.replace(QLatin1Char('\''), QLatin1String("''"));
    return QLatin1Char('\'') + quoted + QLatin1Char('\'');
}

QString columnText(sqlite3_stmt* s, int column) {
    return QString::fromUtf8(reinterpret_cast<const char*>(sqlite3_column_text(s, column)),
                             sqlite3_column_bytes(s, column));
}

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

struct SqliteSource::Pending {
    ChangeBatch batch;
    QElapsedTimer sinceFlush; // started by scan(), restarted by flush()
    int events() const { return int(batch.events.size()); }
    // A full batch, or events held for kFlushAfterMs: a scan of a large table takes
    // tens of milliseconds, and a change found early in it need not wait for the end.
    // Each partial batch carries the row state of its own events, so a restart after
    // it resumes correctly.
    bool due() const {
        return events() >= kBatchEvents ||
               (!batch.events.isEmpty() && sinceFlush.isValid() && sinceFlush.elapsed() >= kFlushAfterMs);
    }
};

SqliteSource* SqliteSource::create(const QString& id, const QString& uri, QString* error) {
    const QString path = SourceUri(uri).sqlitePath();
    if (path.isEmpty()) {
        if (error)
            *error = QStringLiteral("The SQLite URI \"%1\" names no file: use sqlite:/path/to/file.sqlite.")
                         .arg(uri);
        return nullptr;
    }
    const QFileInfo info(path);
    if (!info.exists()) {
        if (error)
            *error = QStringLiteral("No SQLite file at %1: check the path, or create the database first.")
                         .arg(info.absoluteFilePath());
        return nullptr;
    }
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        if (error)
            *error = QStringLiteral("Cannot read %1: %2.").arg(info.absoluteFilePath(), file.errorString());
        return nullptr;
    }
    const QByteArray header = file.read(16);
    if (!header.isEmpty() && header != QByteArray("SQLite format 3\0", 16)) {
        if (error)
            *error = QStringLiteral("%1 is not an SQLite database (its first bytes say otherwise).")
                         .arg(info.absoluteFilePath());
        return nullptr;
    }
    return new SqliteSource(id, info.absoluteFilePath());
}

SqliteSource::SqliteSource(const QString& id, const QString& path, QObject* parent)
    : Source(id, parent)
    , m_path(path) {}

SqliteSource::~SqliteSource() {
    closeDatabase();
}

void SqliteSource::setPollIntervalMs(int ms) {
    m_pollIntervalMs = std::max(1, ms);
    if (m_timer)
        m_timer->setInterval(m_pollIntervalMs);
}

bool SqliteSource::openDatabase(QString* error) {
    if (m_db)
        return true;
    // Read-only: Tidewatch never writes to a watched file outside capture mode.
    const int rc = sqlite3_open_v2(QFile::encodeName(m_path).constData(), &m_db,
                                   SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        if (error)
            *error =
                QStringLiteral("Cannot open %1: %2").arg(m_path, QString::fromUtf8(sqlite3_errmsg(m_db)));
        sqlite3_close(m_db);
        m_db = nullptr;
        return false;
    }
    sqlite3_busy_timeout(m_db, 1000);
    return true;
}

void SqliteSource::closeDatabase() {
    if (m_db) {
        sqlite3_close(m_db);
        m_db = nullptr;
    }
}

QByteArray SqliteSource::stateKey(const QString& table, qint64 rowid) {
    QByteArray key = table.toUtf8();
    key.append('\x1f');
    char be[8];
    qToBigEndian(quint64(rowid) ^ (quint64(1) << 63), be); // sign flip keeps byte order = numeric order
    key.append(be, 8);
    return key;
}

QByteArray SqliteSource::schemaKey(const QString& table) {
    return table.toUtf8() + '\x1e';
}

void SqliteSource::start(const SourceRestore& restore) {
    m_restore = restore;
    m_started = true;
    if (restore.token.startsWith("capture:"))
        m_changelogSeen = restore.token.mid(8).toLongLong();
    setStatus(SourceStatus::State::Connecting, QStringLiteral("opening %1").arg(m_path));
    QString error;
    if (!openDatabase(&error))
        setStatus(SourceStatus::State::Error, error);
    else
        setStatus(SourceStatus::State::Watching);
    if (!m_timer) {
        m_timer = new QTimer(this);
        m_timer->setTimerType(Qt::PreciseTimer);
        connect(m_timer, &QTimer::timeout, this, &SqliteSource::poll);
    }
    m_timer->start(m_pollIntervalMs);
}

QString SqliteSource::tableSql(const QString& name, bool* isView) {
    sqlite3_stmt* s = nullptr;
    QString sql;
    if (sqlite3_prepare_v2(m_db,
                           "SELECT type, sql FROM sqlite_master WHERE name = ?1 AND type IN ('table','view')",
                           -1, &s, nullptr) == SQLITE_OK) {
        const QByteArray utf8 = name.toUtf8();
        sqlite3_bind_text(s, 1, utf8.constData(), int(utf8.size()), SQLITE_TRANSIENT);
        if (sqlite3_step(s) == SQLITE_ROW) {
            if (isView)
                *isView = !strcmp(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "view");
            sql = columnText(s, 1);
            if (sql.isEmpty())
                sql = QStringLiteral("?");
        }
    }
    sqlite3_finalize(s);
    return sql;
}

QStringList SqliteSource::tableColumns(const QString& name) {
    QStringList columns;
    sqlite3_stmt* s = nullptr;
    const QByteArray sql = QStringLiteral("SELECT * FROM %1 LIMIT 0").arg(quoteIdentifier(name)).toUtf8();
    if (sqlite3_prepare_v2(m_db, sql.constData(), -1, &s, nullptr) == SQLITE_OK)
        for (int i = 0; i < sqlite3_column_count(s); ++i)
            columns.append(QString::fromUtf8(sqlite3_column_name(s, i)));
    sqlite3_finalize(s);
    return columns;
}

void SqliteSource::watch(const Namespace& ns, const WatchOptions& options) {
    const QString name = ns.coll;
    if ((!ns.db.isEmpty() && ns.db != QLatin1String("main")) || name.isEmpty()) {
        Q_EMIT watchFailed(id(), ns,
                           QStringLiteral("\"%1\" is not a table of %2: name a table, e.g. --watch orders.")
                               .arg(ns.toString(), m_path));
        return;
    }
    QString error;
    if (!openDatabase(&error)) {
        Q_EMIT watchFailed(id(), ns, error);
        return;
    }
    bool isView = false;
    const QString sql = tableSql(name, &isView);
    if (sql.isEmpty() || isView) {
        QStringList tables;
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(
                m_db,
                "SELECT name FROM sqlite_master WHERE type='table' AND substr(name, 1, 7) <> 'sqlite_' "
                "AND name <> '_tidewatch_changelog' ORDER BY name",
                -1, &s, nullptr) == SQLITE_OK)
            while (sqlite3_step(s) == SQLITE_ROW)
                tables.append(columnText(s, 0));
        sqlite3_finalize(s);
        Q_EMIT watchFailed(
            id(), ns,
            isView ? QStringLiteral("\"%1\" in %2 is a view; watch the tables behind it.").arg(name, m_path)
                   : QStringLiteral("No table \"%1\" in %2 (tables: %3).")
                         .arg(name, m_path,
                              tables.isEmpty() ? QStringLiteral("none") : tables.join(QLatin1String(", "))));
        return;
    }
    if (m_tables.contains(name))
        return;

    Table table;
    table.name = name;
    table.sql = sql;
    table.columns = tableColumns(name);
    table.hasIdColumn = table.columns.contains(QLatin1String("_id"));
    table.capture = options.captureMode;

    Pending out;
    out.batch.sourceId = id();
    const QByteArray sk = schemaKey(name);
    const auto restoredSchema = m_restore.state.constFind(sk);
    if (restoredSchema != m_restore.state.constEnd() && QString::fromUtf8(*restoredSchema) == sql) {
        // Resume: the baseline is what the journal last committed; the first diff
        // reports what changed while Tidewatch was not watching.
        const QByteArray prefix = name.toUtf8() + '\x1f';
        const int columns = int(table.columns.size());
        std::vector<std::pair<qint64, const QByteArray*>> restored;
        for (auto it = m_restore.state.cbegin(); it != m_restore.state.cend(); ++it) {
            if (!it.key().startsWith(prefix) || it.key().size() != prefix.size() + 8)
                continue;
            const quint64 raw = qFromBigEndian<quint64>(it.key().constData() + prefix.size());
            restored.emplace_back(qint64(raw ^ (quint64(1) << 63)), &it.value());
        }
        std::sort(restored.begin(), restored.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        table.base.columns = columns;
        table.base.rowids.reserve(restored.size());
        table.base.hashes.assign(restored.size() * size_t(columns),
                                 0); // a wrong-sized value reads as changed
        for (size_t i = 0; i < restored.size(); ++i) {
            table.base.rowids.push_back(restored[i].first);
            if (restored[i].second->size() == columns * 8)
                memcpy(&table.base.hashes[i * size_t(columns)], restored[i].second->constData(),
                       size_t(columns) * 8);
        }
        table.snapshotted = true;
    } else if (restoredSchema != m_restore.state.constEnd()) {
        out.batch.events.append(ChangeEvent::makeGap(
            id(), Namespace{QStringLiteral("main"), name},
            QStringLiteral("table %1 changed shape while Tidewatch was not watching; re-read it").arg(name)));
        out.batch.checkpoint.stateRemovedPrefixes.append(name.toUtf8() + '\x1f');
    }
    out.batch.checkpoint.stateUpserts.insert(sk, sql.toUtf8());

    if (table.capture && !installCapture(table, &error)) {
        Q_EMIT watchFailed(id(), ns, error);
        return;
    }
    Table& stored = m_tables[name];
    stored = std::move(table);
    if (stored.capture)
        readChangelog(out);
    else
        diffTable(stored, out);
    flush(out, true);
    if (m_status.state != SourceStatus::State::Watching)
        setStatus(SourceStatus::State::Watching);
    Q_EMIT watchReady(id(), ns);
}

void SqliteSource::unwatch(const Namespace& ns) {
    if (m_tables.remove(ns.coll)) {
        // Forget the baseline: a later watch starts from a fresh snapshot.
        ChangeBatch batch;
        batch.sourceId = id();
        batch.checkpoint.stateRemovedPrefixes = {ns.coll.toUtf8() + '\x1f'};
        batch.checkpoint.stateRemovals = {schemaKey(ns.coll)};
        publishBatch(batch);
    }
}

void SqliteSource::listNamespaces(const QString& db) {
    QList<NamespaceInfo> result;
    QString error;
    if (!openDatabase(&error)) {
        Q_EMIT namespacesListed(id(), db, result, error);
        return;
    }
    if (db.isEmpty()) {
        result.append({Namespace{QStringLiteral("main"), {}}, QStringLiteral("database")});
    } else {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(
                m_db, "SELECT name, type FROM sqlite_master WHERE type IN ('table','view') ORDER BY name", -1,
                &s, nullptr) == SQLITE_OK) {
            while (sqlite3_step(s) == SQLITE_ROW) {
                const QString name = columnText(s, 0);
                QString kind = columnText(s, 1);
                if (name.startsWith(QLatin1String("sqlite_")) || name == QLatin1String(kChangelog))
                    kind = QStringLiteral("system");
                result.append({Namespace{QStringLiteral("main"), name}, kind});
            }
        } else {
            error = QString::fromUtf8(sqlite3_errmsg(m_db));
        }
        sqlite3_finalize(s);
    }
    Q_EMIT namespacesListed(id(), db, result, error);
}

void SqliteSource::stop() {
    if (m_timer)
        m_timer->stop();
    m_tables.clear();
    closeDatabase();
    setStatus(SourceStatus::State::Stopped);
}

void SqliteSource::poll() {
    if (!m_db) {
        // The file could not be opened (moved, permissions): retry once a second.
        const qint64 now = QDateTime::currentMSecsSinceEpoch();
        if (now - m_lastOpenAttemptMs < 1000)
            return;
        m_lastOpenAttemptMs = now;
        QString error;
        if (!openDatabase(&error)) {
            setStatus(SourceStatus::State::Error, error);
            return;
        }
        setStatus(SourceStatus::State::Watching);
    }
    sqlite3_stmt* s = nullptr;
    qint64 version = -1;
    if (sqlite3_prepare_v2(m_db, "PRAGMA data_version", -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (version < 0) {
        setStatus(SourceStatus::State::Error,
                  QStringLiteral("cannot read %1: %2").arg(m_path, QString::fromUtf8(sqlite3_errmsg(m_db))));
        return;
    }
    if (version == m_dataVersion)
        return;
    m_dataVersion = version;
    scan();
}

void SqliteSource::scan() {
    if (m_tables.isEmpty())
        return;
    Pending out;
    out.batch.sourceId = id();
    out.sinceFlush.start();
    // One read transaction: every table is diffed against the same committed state.
    sqlite3_exec(m_db, "BEGIN", nullptr, nullptr, nullptr);
    bool anyCapture = false;
    for (auto it = m_tables.begin(); it != m_tables.end(); ++it) {
        if (it->capture && it->present)
            anyCapture = true;
        else
            diffTable(*it, out);
    }
    if (anyCapture)
        readChangelog(out);
    sqlite3_exec(m_db, "COMMIT", nullptr, nullptr, nullptr);
    flush(out, false);
    if (m_status.state != SourceStatus::State::Watching)
        setStatus(SourceStatus::State::Watching);
}

void SqliteSource::flush(Pending& out, bool force) {
    if (!force && out.batch.events.isEmpty() && out.batch.checkpoint.isEmpty())
        return;
    if (!out.batch.events.isEmpty())
        m_status.lastEventMs = QDateTime::currentMSecsSinceEpoch();
    publishBatch(out.batch);
    out.batch.events.clear();
    out.batch.checkpoint = SourceCheckpoint();
    if (out.sinceFlush.isValid())
        out.sinceFlush.restart();
}

void SqliteSource::diffTable(Table& table, Pending& out) {
    const Namespace ns{QStringLiteral("main"), table.name};
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    const QString sql = tableSql(table.name);
    const QByteArray prefix = table.name.toUtf8() + '\x1f';

    if (sql.isEmpty() || sql != table.sql) {
        if (table.present && table.snapshotted) {
            ChangeEvent drop;
            drop.setSourceId(id());
            drop.setNs(ns);
            drop.setOperation(Operation::Drop);
            drop.setWallTimeMs(now);
            if (!sql.isEmpty())
                drop.setReason(QStringLiteral("table altered; re-snapshotted"));
            out.batch.events.append(drop);
            out.batch.checkpoint.stateRemovedPrefixes.append(prefix);
        }
        const bool wasAltered = !sql.isEmpty() && table.present;
        table.base.clear();
        table.present = !sql.isEmpty();
        table.sql = sql;
        table.columns = table.present ? tableColumns(table.name) : QStringList();
        table.hasIdColumn = table.columns.contains(QLatin1String("_id"));
        out.batch.checkpoint.stateUpserts.insert(schemaKey(table.name), sql.toUtf8());
        // After an alter the existing rows are the new baseline, not inserts. After a
        // drop and re-create, every row of the new table is an insert.
        table.snapshotted = !wasAltered;
        if (!table.present)
            return;
    }

    const bool emitEvents = table.snapshotted;
    // ORDER BY rowid costs nothing on a rowid table (it is the b-tree's own order) and
    // makes the merge against the baseline possible.
    const QString select =
        QStringLiteral("SELECT rowid, * FROM %1 ORDER BY rowid").arg(quoteIdentifier(table.name));
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(m_db, select.toUtf8().constData(), -1, &s, nullptr) != SQLITE_OK) {
        // WITHOUT ROWID tables have no rowid to key rows by: say so rather than guess.
        setStatus(SourceStatus::State::Error, QStringLiteral("cannot read table %1: %2")
                                                  .arg(table.name, QString::fromUtf8(sqlite3_errmsg(m_db))));
        sqlite3_finalize(s);
        return;
    }
    const int columnCount = sqlite3_column_count(s) - 1;
    QList<QByteArray> names;
    for (int c = 0; c < columnCount; ++c)
        names.append(QByteArray(sqlite3_column_name(s, c + 1)));
    const int idColumn = table.hasIdColumn ? int(names.indexOf("_id")) + 1 : -1;

    auto rowDocument = [&](qint64 rowid) {
        BsonBuilder b;
        if (idColumn < 0)
            appendRowid(b.get(), rowid);
        for (int c = 0; c < columnCount; ++c)
            appendColumn(b.get(), names[c].constData(), s, c + 1);
        return b.take();
    };
    auto documentKey = [&](qint64 rowid) {
        if (idColumn < 0)
            return keyDocument(rowid);
        BsonBuilder b;
        appendColumn(b.get(), "_id", s, idColumn);
        return b.take();
    };
    auto event = [&](Operation op, const Bson& key) {
        ChangeEvent e;
        e.setSourceId(id());
        e.setNs(ns);
        e.setOperation(op);
        e.setDocumentKey(key);
        e.setWallTimeMs(now);
        return e;
    };

    const Baseline& old = table.base;
    const bool comparable = old.columns == columnCount;
    Baseline next;
    next.columns = columnCount;
    next.rowids.reserve(old.rowids.size() + 64);
    next.hashes.reserve((old.rowids.size() + 64) * size_t(columnCount));
    std::vector<quint64> hashes(size_t(std::max(columnCount, 1)));
    const size_t rowBytes = size_t(columnCount) * 8;
    auto hashBytes = [&] {
        return QByteArray(reinterpret_cast<const char*>(hashes.data()), qsizetype(rowBytes));
    };
    auto removed = [&](qint64 rowid) {
        out.batch.checkpoint.stateRemovals.append(stateKey(table.name, rowid));
        if (emitEvents) {
            out.batch.events.append(event(Operation::Delete, keyDocument(rowid)));
            if (out.due())
                flush(out, false);
        }
    };

    size_t j = 0;
    quint32 unchangedRows = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const qint64 rowid = sqlite3_column_int64(s, 0);
        for (int c = 0; c < columnCount; ++c)
            hashes[size_t(c)] = hashColumn(s, c + 1);
        while (j < old.rowids.size() && old.rowids[j] < rowid)
            removed(old.rowids[j++]);
        const quint64* before = nullptr;
        if (j < old.rowids.size() && old.rowids[j] == rowid)
            before = old.hashes.data() + j++ * size_t(old.columns);
        next.rowids.push_back(rowid);
        next.hashes.insert(next.hashes.end(), hashes.begin(), hashes.begin() + columnCount);

        if (!before) {
            out.batch.checkpoint.stateUpserts.insert(stateKey(table.name, rowid), hashBytes());
            if (emitEvents) {
                ChangeEvent e = event(Operation::Insert, documentKey(rowid));
                e.setFullDocument(rowDocument(rowid));
                out.batch.events.append(e);
            }
        } else if (!comparable || memcmp(before, hashes.data(), rowBytes) != 0) {
            out.batch.checkpoint.stateUpserts.insert(stateKey(table.name, rowid), hashBytes());
            if (emitEvents) {
                BsonBuilder updated;
                for (int c = 0; c < columnCount; ++c)
                    if (!comparable || before[c] != hashes[size_t(c)])
                        appendColumn(updated.get(), names[c].constData(), s, c + 1);
                ChangeEvent e = event(Operation::Update, documentKey(rowid));
                e.setUpdateDescription(ChangeEvent::makeUpdateDescription(updated.take(), {}));
                e.setFullDocument(rowDocument(rowid));
                out.batch.events.append(e);
            }
        } else {
            // An unchanged row. Now and then, send what an earlier row found.
            if ((++unchangedRows & 1023) == 0 && out.due())
                flush(out, false);
            continue;
        }
        if (out.due())
            flush(out, false);
    }
    sqlite3_finalize(s);
    while (j < old.rowids.size())
        removed(old.rowids[j++]);
    table.base = std::move(next);
    table.snapshotted = true;
}

bool SqliteSource::installCapture(Table& table, QString* error) {
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
            const QString ref = QLatin1String(which) + QLatin1Char('.') + quoteIdentifier(column);
            parts.append(quoteLiteral(column));
            // JSON cannot hold a BLOB: record it as hex.
            parts.append(QStringLiteral("iif(typeof(%1)='blob', hex(%1), %1)").arg(ref));
        }
        return QStringLiteral("json_object(%1)").arg(parts.join(QLatin1String(", ")));
    };
    const QString t = quoteIdentifier(table.name);
    const QString lit = quoteLiteral(table.name);
    const QString base = QStringLiteral("_tidewatch_") + table.name;
    const QString ins = quoteIdentifier(base + QStringLiteral("_ins"));
    const QString upd = quoteIdentifier(base + QStringLiteral("_upd"));
    const QString del = quoteIdentifier(base + QStringLiteral("_del"));
    const QString log = QLatin1String(kChangelog);
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
    m_captureInstalled = true;
    // The changelog is exact: capture tables need no row snapshot.
    table.snapshotted = true;
    return true;
}

void SqliteSource::readChangelog(Pending& out) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(m_db,
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
        appendRowid(b.get(), rowid);
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
        const QString tbl = columnText(s, 1);
        const auto table = m_tables.constFind(tbl);
        if (table == m_tables.constEnd() || !table->capture)
            continue;
        const QByteArray op(reinterpret_cast<const char*>(sqlite3_column_text(s, 2)));
        const qint64 rowid = sqlite3_column_int64(s, 3);
        const Bson before = jsonColumn(4);
        const Bson after = jsonColumn(5);
        ChangeEvent e;
        e.setSourceId(id());
        e.setNs(Namespace{QStringLiteral("main"), tbl});
        e.setDocumentKey(keyDocument(rowid));
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
        if (out.events() >= kBatchEvents) {
            out.batch.checkpoint.token = "capture:" + QByteArray::number(m_changelogSeen);
            flush(out, false);
        }
    }
    sqlite3_finalize(s);
    out.batch.checkpoint.token = "capture:" + QByteArray::number(m_changelogSeen);
}

void SqliteSource::checkpointCommitted(const QByteArray& token) {
    if (!m_captureInstalled || !token.startsWith("capture:"))
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
            "DELETE FROM _tidewatch_changelog WHERE id <= " + QByteArray::number(token.mid(8).toLongLong());
        sqlite3_exec(rw, sql.constData(), nullptr, nullptr, nullptr);
    }
    sqlite3_close(rw);
}

} // namespace tw

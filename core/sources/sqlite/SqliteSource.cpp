#include "SqliteSource.h"

#include "sources/SourceUri.h"
#include "SqliteDiff.h"
#include "SqliteValues.h"

#include <QDateTime>
#include <QFile>
#include <QFileInfo>
#include <QLoggingCategory>
#include <QTimer>

#include <algorithm>

#include <sqlite3.h>
#include <sys/stat.h>

Q_LOGGING_CATEGORY(lcSqlite, "tidewatch.source.sqlite")

namespace tw {

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
    , m_path(path)
    , m_capture(path) {}

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
    // The file's identity before opening: a file replaced in between is then seen as
    // replaced at the next check and opened again, never taken for the one read.
    struct stat info {};
    if (::stat(QFile::encodeName(m_path).constData(), &info) == 0) {
        m_fileDevice = quint64(info.st_dev);
        m_fileInode = quint64(info.st_ino);
        m_fileSize = qint64(info.st_size);
    }
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
    // Whatever was read before came from another file, or from this one before a
    // gap: compare everything again.
    m_dataVersion = -1;
    m_schemaVersion = -1;
    return true;
}

bool SqliteSource::stillTheSameFile() {
    // An open connection keeps reading a deleted or replaced file's old inode, which
    // nobody writes any more: without this the watch would fall silent.
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    if (now - m_lastIdentityCheckMs < 100)
        return true;
    m_lastIdentityCheckMs = now;
    struct stat info {};
    if (::stat(QFile::encodeName(m_path).constData(), &info) != 0) {
        closeDatabase();
        m_lastOpenAttemptMs = now;
        setStatus(SourceStatus::State::Error,
                  QStringLiteral("%1 was deleted or moved away. Tidewatch keeps what it has seen and opens "
                                 "the file again when one is back at that path, then reports what differs.")
                      .arg(m_path));
        return false;
    }
    const bool sameInode = quint64(info.st_dev) == m_fileDevice && quint64(info.st_ino) == m_fileInode;
    // Emptied in place: SQLite's own change counters never see that.
    const bool emptied = sameInode && info.st_size == 0 && m_fileSize > 0;
    m_fileSize = qint64(info.st_size);
    if (sameInode && !emptied)
        return true;
    closeDatabase();
    QString error;
    if (!openDatabase(&error)) {
        m_lastOpenAttemptMs = now;
        setStatus(SourceStatus::State::Error, error);
        return false;
    }
    setStatus(SourceStatus::State::Watching,
              QStringLiteral("%1 was %2 at %3; its differences from what was seen before are reported as "
                             "changes.")
                  .arg(m_path,
                       emptied ? QStringLiteral("emptied (cut to 0 bytes)")
                               : QStringLiteral("replaced by another file"),
                       QDateTime::currentDateTime().toString(QStringLiteral("HH:mm:ss"))));
    return true;
}

void SqliteSource::closeDatabase() {
    if (m_db) {
        sqlite3_close(m_db);
        m_db = nullptr;
    }
}

void SqliteSource::start(const SourceRestore& restore) {
    m_restore = restore;
    m_started = true;
    m_capture.restore(restore.token);
    m_schema = SqliteSchema::deserialize(restore.state.value(SqliteSchema::stateKey()));
    m_schemaVersion = -1;
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

void SqliteSource::watch(const Namespace& ns, const WatchOptions& options) {
    const QString name = ns.coll;
    if ((!ns.db.isEmpty() && ns.db != QLatin1String("main")) || (name.isEmpty() && ns.db.isEmpty())) {
        Q_EMIT watchFailed(id(), ns,
                           QStringLiteral("\"%1\" is not a table of %2: name a table, e.g. --watch orders, "
                                          "or watch them all with --watch '*'.")
                               .arg(ns.toString(), m_path));
        return;
    }
    if (name.isEmpty()) {
        QString error;
        if (options.captureMode) {
            Q_EMIT watchFailed(
                id(), ns,
                QStringLiteral("Capture mode installs triggers per table: name the tables of %1 "
                               "to capture instead of watching them all.")
                    .arg(m_path));
            return;
        }
        SqlitePending out = pending();
        if (!openDatabase(&error) || !watchAll(out, &error)) {
            Q_EMIT watchFailed(id(), ns, error);
            return;
        }
        becomeReady(out, ns);
        return;
    }
    // A watch re-sent for a table already watched (the Engine re-sends whenever the
    // readers change) keeps the table as it is: SQLite reads whole tables and the
    // Engine filters, so no reader option changes what is read, and capture mode is
    // the connection's, fixed when the table was first watched. It must not look at
    // the file again: a table dropped at that moment would fail the watch, and the
    // session would forget it, where the poll reports the drop and picks the table
    // up again once it is recreated.
    if (m_tables.contains(name))
        return;
    QString error;
    if (!openDatabase(&error)) {
        Q_EMIT watchFailed(id(), ns, error);
        return;
    }
    bool isView = false;
    const QString sql = sqlite::tableSql(m_db, name, &isView);
    if (sql.isEmpty() || isView) {
        QStringList tables;
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(
                m_db,
                "SELECT name FROM sqlite_master WHERE type='table' AND substr(name, 1, 7) <> 'sqlite_' "
                "AND name <> '_tidewatch_changelog' ORDER BY name",
                -1, &s, nullptr) == SQLITE_OK)
            while (sqlite3_step(s) == SQLITE_ROW)
                tables.append(sqlite::columnText(s, 0));
        sqlite3_finalize(s);
        Q_EMIT watchFailed(
            id(), ns,
            isView ? QStringLiteral("\"%1\" in %2 is a view; watch the tables behind it.").arg(name, m_path)
                   : QStringLiteral("No table \"%1\" in %2 (tables: %3).")
                         .arg(name, m_path,
                              tables.isEmpty() ? QStringLiteral("none") : tables.join(QLatin1String(", "))));
        return;
    }

    SqlitePending out = pending();
    if (!addTable(name, sql, options.captureMode, out, &error)) {
        Q_EMIT watchFailed(id(), ns, error);
        return;
    }
    becomeReady(out, ns);
}

void SqliteSource::becomeReady(SqlitePending& out, const Namespace& ns) {
    takeSchemaBaseline(out);
    out.flush(true);
    if (m_status.state != SourceStatus::State::Watching)
        setStatus(SourceStatus::State::Watching);
    Q_EMIT watchReady(id(), ns);
}

bool SqliteSource::addTable(const QString& name, const QString& sql, bool capture, SqlitePending& out,
                            QString* error) {
    SqliteTable table;
    table.name = name;
    table.sql = sql;
    table.columns = sqlite::tableColumns(m_db, name);
    table.hasIdColumn = table.columns.contains(QLatin1String("_id"));
    table.capture = capture;

    SqliteDiff::resume(table, m_restore, out);

    if (table.capture && !m_capture.install(table, error))
        return false;
    SqliteTable& stored = m_tables[name];
    stored = std::move(table);
    QString diffError;
    if (stored.capture)
        m_capture.read(m_db, m_tables, out);
    else if (!SqliteDiff::diffTable(m_db, stored, out, &diffError))
        setStatus(SourceStatus::State::Error, diffError);
    return true;
}

void SqliteSource::addCreatedTable(const QString& name) {
    // Not present and without a shape: the first diff finds it "recreated", takes its
    // shape and reports every row as an insert.
    SqliteTable& table = m_tables[name];
    table = SqliteTable();
    table.name = name;
    table.present = false;
}

bool SqliteSource::watchAll(SqlitePending& out, QString* error) {
    m_watchAll = true;
    SqliteSchema now;
    if (!now.read(m_db, m_schema, error))
        return false;
    for (const QString& name : now.tableNames()) {
        if (m_tables.contains(name))
            continue;
        // Created while Tidewatch was closed: the first scan reports its `create`, then
        // its rows.
        if (!m_schema.isNull() && !m_schema.hasTable(name))
            addCreatedTable(name);
        else if (!addTable(name, sqlite::tableSql(m_db, name), false, out, error))
            return false;
    }
    return true;
}

void SqliteSource::takeSchemaBaseline(SqlitePending& out) {
    // watchReady promises that every later change is reported, schema changes
    // included: without a stored copy (a new journal), take it now rather than at the
    // first scan, or a rename or drop made before that scan would pass unseen.
    if (m_schema.isNull())
        checkSchema(out);
}

bool SqliteSource::checkSchema(SqlitePending& out) {
    // schema_version moves with every schema change: one integer read per commit keeps
    // the comparison off the latency path when only rows changed.
    sqlite3_stmt* s = nullptr;
    qint64 version = -1;
    if (sqlite3_prepare_v2(m_db, "PRAGMA schema_version", -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (version >= 0 && version == m_schemaVersion)
        return true;
    SqliteSchema now;
    QString error;
    if (!now.read(m_db, m_schema, &error)) {
        setStatus(SourceStatus::State::Error, error);
        return false;
    }
    m_schemaVersion = version;
    if (!m_schema.isNull()) {
        const auto inScope = [this](const QString& table) { return m_watchAll || m_tables.contains(table); };
        out.batch.events.append(
            SqliteSchema::diff(m_schema, now, id(), QDateTime::currentMSecsSinceEpoch(), inScope));
        // A watched name renamed away and taken by a new table: its rows are new rows,
        // reported as inserts after its `create`, not a baseline.
        const QHash<QString, QString> renamed = SqliteSchema::renames(m_schema, now);
        for (auto it = renamed.constBegin(); it != renamed.constEnd(); ++it)
            if (m_tables.contains(it.key()) && now.hasTable(it.key()) && !m_tables[it.key()].capture)
                addCreatedTable(it.key());
        if (m_watchAll) {
            // A renamed table keeps its rows: they are its baseline, not inserts.
            const QList<QString> renamedTo = SqliteSchema::renames(m_schema, now).values();
            for (const QString& name : now.tableNames()) {
                if (m_tables.contains(name))
                    continue;
                QString addError;
                if (m_schema.hasTable(name) || renamedTo.contains(name))
                    addTable(name, sqlite::tableSql(m_db, name), false, out, &addError);
                else
                    addCreatedTable(name);
            }
        }
    }
    const QByteArray copy = now.serialize();
    if (m_schema.isNull() || copy != m_schema.serialize())
        out.batch.checkpoint.stateUpserts.insert(SqliteSchema::stateKey(), copy);
    m_schema = std::move(now);
    return true;
}

void SqliteSource::unwatch(const Namespace& ns) {
    // Tables already followed stay watched: the Engine routes nothing of them to a
    // reader that left, and a named watch of one of them may remain.
    if (ns.coll.isEmpty())
        m_watchAll = false;
    if (m_tables.remove(ns.coll)) {
        // Forget the baseline: a later watch starts from a fresh snapshot.
        ChangeBatch batch;
        batch.sourceId = id();
        batch.checkpoint.stateRemovedPrefixes = {ns.coll.toUtf8() + '\x1f'};
        batch.checkpoint.stateRemovals = {SqliteDiff::schemaKey(ns.coll)};
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
                const QString name = sqlite::columnText(s, 0);
                QString kind = sqlite::columnText(s, 1);
                if (name.startsWith(QLatin1String("sqlite_")) ||
                    name == QLatin1String(SqliteCapture::kChangelogTable))
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
    m_watchAll = false;
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
        // Gone: the state already says so (read-only opening would only add "unable
        // to open database file").
        if (!QFileInfo::exists(m_path))
            return;
        QString error;
        if (!openDatabase(&error)) {
            setStatus(SourceStatus::State::Error, error);
            return;
        }
        setStatus(SourceStatus::State::Watching);
    } else if (!stillTheSameFile()) {
        return;
    }
    sqlite3_stmt* s = nullptr;
    qint64 version = -1;
    int rc = sqlite3_prepare_v2(m_db, "PRAGMA data_version", -1, &s, nullptr);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
        version = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (version < 0 && (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)) {
        // A writer holds the file longer than the busy timeout: nothing is wrong with
        // the connection; ask again at the next poll.
        return;
    }
    if (version < 0) {
        // A file changed under the connection (cut short, overwritten) can leave it
        // unable to read even after the file is whole again: start afresh, once a
        // second, from what was last seen.
        const QString message = QString::fromUtf8(sqlite3_errmsg(m_db));
        closeDatabase();
        m_lastOpenAttemptMs = QDateTime::currentMSecsSinceEpoch();
        setStatus(SourceStatus::State::Error,
                  QStringLiteral("cannot read %1: %2. Tidewatch opens it again every second.")
                      .arg(m_path, message));
        return;
    }
    if (version == m_dataVersion)
        return;
    m_dataVersion = version;
    scan();
}

void SqliteSource::scan() {
    if (m_tables.isEmpty() && !m_watchAll)
        return;
    // One read transaction: the schema and every table are read in the same committed
    // state, so a table's `create` comes before its rows. Its read lock is taken first,
    // by itself: a writer holding the file past the busy timeout then costs one retry
    // at the next poll, instead of a scan that reads half of what changed and takes the
    // rest for gone.
    sqlite3_exec(m_db, "BEGIN", nullptr, nullptr, nullptr);
    if (!takeReadLock()) {
        const QString message = QString::fromUtf8(sqlite3_errmsg(m_db));
        sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr);
        m_dataVersion = -1;
        qCInfo(lcSqlite) << "scan of" << m_path << "put off:" << message;
        return;
    }
    SqlitePending out = pending();
    out.sinceFlush.start();
    bool complete = checkSchema(out);
    bool anyCapture = false;
    QString error;
    for (auto it = m_tables.begin(); it != m_tables.end(); ++it) {
        if (it->capture && it->present) {
            anyCapture = true;
        } else if (!SqliteDiff::diffTable(m_db, *it, out, &error)) {
            complete = false;
            setStatus(SourceStatus::State::Error, error);
        }
    }
    if (anyCapture)
        m_capture.read(m_db, m_tables, out);
    sqlite3_exec(m_db, "COMMIT", nullptr, nullptr, nullptr);
    out.flush(false);
    if (!complete) {
        // Whatever was not read is read at the next poll, even if nothing else changes.
        m_dataVersion = -1;
        return;
    }
    if (m_status.state != SourceStatus::State::Watching)
        setStatus(SourceStatus::State::Watching);
}

bool SqliteSource::takeReadLock() {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(m_db, "SELECT 1 FROM sqlite_master LIMIT 1", -1, &s, nullptr);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

SqlitePending SqliteSource::pending() {
    return SqlitePending(id(), [this](const ChangeBatch& batch) {
        if (!batch.events.isEmpty())
            m_status.lastEventMs = QDateTime::currentMSecsSinceEpoch();
        publishBatch(batch);
    });
}

void SqliteSource::checkpointCommitted(const QByteArray& token) {
    m_capture.pruneCommitted(token);
}

} // namespace tw

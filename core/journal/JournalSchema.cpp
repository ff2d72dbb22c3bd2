// Journal: opening, checking and upgrading the file, and closing it.
#include "Journal.h"

#include "JournalLog.h"
#include "JournalSqlite.h"
#include "WalFolder.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QUuid>

#include <sqlite3.h>

namespace tw {

using namespace journaldb;

namespace {

// 'TWJL': marks a file as a Tidewatch journal, so a foreign SQLite file is refused
// instead of being written into.
constexpr int kApplicationId = 0x54574A4C;
// 2: events.doc may be a zstd frame (BodyCodec), and the dictionaries table. A version 1
// journal is upgraded in place (its rows stay as they are); a version 1 Tidewatch
// refuses a version 2 journal instead of misreading it. The narrowings table (what a
// narrowing source read from which seq on) came later within version 2: an older
// Tidewatch ignores it, and a journal without it only has no narrowing recorded.
constexpr int kSchemaVersion = 2;

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY,
  committed_ms INTEGER NOT NULL,
  source TEXT NOT NULL,
  doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints(
  source TEXT PRIMARY KEY,
  token BLOB,
  updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS source_state(
  source TEXT NOT NULL,
  key BLOB NOT NULL,
  value BLOB,
  PRIMARY KEY(source, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscriptions(
  id TEXT PRIMARY KEY,
  spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dictionaries(
  id INTEGER PRIMARY KEY,
  data BLOB NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS narrowings(
  after_seq INTEGER NOT NULL,
  source TEXT NOT NULL,
  reading BLOB NOT NULL);
-- Retention looks for a source's later rows (pruneNarrowings).
CREATE INDEX IF NOT EXISTS narrowings_by_source ON narrowings(source);
)sql";

} // namespace

bool Journal::open(const QString& path, QString* error) {
    close();
    m_lastError = Error::None;
    m_path = path;
    const QString shown = QDir::toNativeSeparators(path);
    const QString remedy = QStringLiteral(
        " Move it aside to start a new journal (tidewatch --move-journal-aside, or the offer in "
        "the window); the old file is kept.");
    QDir().mkpath(QFileInfo(path).absolutePath());
    if (openConnection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &m_db) != SQLITE_OK) {
        const QString message = sqliteMessage(m_db);
        sqlite3_close(m_db);
        m_db = nullptr;
        return fail(Error::CannotOpen, QStringLiteral("Cannot open the journal %1: %2.").arg(shown, message),
                    error);
    }

    auto intPragma = [this](const char* sql, int* value) -> int {
        sqlite3_stmt* s = nullptr;
        int rc = sqlite3_prepare_v2(m_db, sql, -1, &s, nullptr);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(s);
            if (rc == SQLITE_ROW) {
                *value = sqlite3_column_int(s, 0);
                rc = SQLITE_OK;
            }
        }
        sqlite3_finalize(s);
        return rc;
    };

    int appId = 0;
    int rc = intPragma("PRAGMA application_id", &appId);
    int tables = 0;
    if (rc == SQLITE_OK)
        rc = intPragma("SELECT count(*) FROM sqlite_master", &tables);
    if (rc != SQLITE_OK) {
        const QString message = sqliteMessage(m_db);
        close();
        m_path = path;
        return fail(isCorruption(rc) ? Error::Corrupt : Error::CannotOpen,
                    QStringLiteral("The journal %1 is damaged or not a database (%2).").arg(shown, message) +
                        remedy,
                    error);
    }
    if (appId != kApplicationId && (appId != 0 || tables > 0)) {
        close();
        m_path = path;
        return fail(
            Error::NotAJournal,
            QStringLiteral("%1 is an SQLite file of another program, not a Tidewatch journal.").arg(shown) +
                remedy,
            error);
    }
    int version = 0;
    intPragma("PRAGMA user_version", &version);
    if (version > kSchemaVersion) {
        close();
        m_path = path;
        return fail(
            Error::NewerVersion,
            QStringLiteral("The journal %1 was written by a newer Tidewatch (schema %2, this one reads %3). "
                           "Update Tidewatch, or use another journal file with --journal.")
                .arg(shown)
                .arg(version)
                .arg(kSchemaVersion),
            error);
    }

    // WAL: readers never block the writer. synchronous=NORMAL: a commit survives a
    // crash of the process (which is what "nothing lost" promises here); only a power
    // cut can drop the last transactions, and never tears one.
    QString sqlError;
    // The WAL is folded back by a background thread once it passes 2 048 pages (8 MiB)
    // (onWalCommit replaces SQLite's automatic checkpoint). The file is cut back only
    // past 40 MiB, above where a flood restarts it (32 MiB and a commit): cutting it to
    // 16 MiB at every restart made the file system allocate the same blocks again each
    // time (about 15 % of a sustained flood). 16 KiB pages were tried: no faster on an
    // idle machine, and each small desktop commit then wrote four times the bytes.
    if (!exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;"
              "PRAGMA cache_size=-32768; PRAGMA journal_size_limit=41943040;",
              &sqlError) ||
        !initSchema(&sqlError) || !loadMeta(&sqlError)) {
        const Error code = m_lastError == Error::Corrupt ? Error::Corrupt : Error::Io;
        close();
        m_path = path;
        return fail(code, QStringLiteral("The journal %1 cannot be used: %2.").arg(shown, sqlError) + remedy,
                    error);
    }

    m_insertEvent = prepare("INSERT INTO events(seq, committed_ms, source, doc) VALUES(?1, ?2, ?3, ?4)");
    m_upsertCheckpoint = prepare("INSERT INTO checkpoints(source, token, updated_ms) VALUES(?1, ?2, ?3) "
                                 "ON CONFLICT(source) DO UPDATE SET token = excluded.token, "
                                 "updated_ms = excluded.updated_ms");
    m_upsertState = prepare("INSERT OR REPLACE INTO source_state(source, key, value) VALUES(?1, ?2, ?3)");
    m_deleteState = prepare("DELETE FROM source_state WHERE source = ?1 AND key = ?2");
    m_deleteStatePrefix = prepare("DELETE FROM source_state WHERE source = ?1 AND key >= ?2 AND key < ?3");
    m_setMeta = prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)");
    m_insertNarrowing = prepare("INSERT INTO narrowings(after_seq, source, reading) VALUES(?1, ?2, ?3)");
    if (!m_insertEvent || !m_upsertCheckpoint || !m_upsertState || !m_deleteState || !m_deleteStatePrefix ||
        !m_setMeta || !m_insertNarrowing) {
        const QString message = sqliteMessage(m_db);
        close();
        m_path = path;
        return fail(Error::Io,
                    QStringLiteral("The journal %1 cannot be used: %2.").arg(shown, message) + remedy, error);
    }
    if (!ensureId(&sqlError) || !loadDictionary(&sqlError) || !loadLastReadings(&sqlError)) {
        close();
        m_path = path;
        return fail(Error::Io,
                    QStringLiteral("The journal %1 cannot be used: %2.").arg(shown, sqlError) + remedy,
                    error);
    }
    m_folder = std::make_unique<WalFolder>(path);
    sqlite3_wal_hook(m_db, &Journal::onWalCommit, this);
    return true;
}

bool Journal::loadLastReadings(QString* error) {
    m_lastReading.clear();
    sqlite3_stmt* s = prepare("SELECT source, reading FROM narrowings ORDER BY rowid");
    if (!s) {
        *error = sqliteMessage(m_db);
        return false;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        m_lastReading.insert(
            QByteArray(reinterpret_cast<const char*>(sqlite3_column_text(s, 0))),
            QByteArray(static_cast<const char*>(sqlite3_column_blob(s, 1)), sqlite3_column_bytes(s, 1)));
    if (rc != SQLITE_DONE)
        *error = sqliteMessage(m_db);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE;
}

bool Journal::loadDictionary(QString* error) {
    m_dictionaryIds.clear();
    QByteArray newest;
    sqlite3_stmt* s = prepare("SELECT id, data FROM dictionaries ORDER BY created_ms, id");
    if (!s) {
        if (error)
            *error = sqliteMessage(m_db);
        return false;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        m_dictionaryIds.insert(uint32_t(sqlite3_column_int64(s, 0)));
        newest = columnBlob(s, 1);
    }
    sqlite3_finalize(s);
    m_codec->reset();
    QString why;
    if (!newest.isEmpty() && !m_codec->use(newest, &why))
        qCWarning(lcJournal).noquote() << "the journal's compression dictionary cannot be used:" << why
                                       << "- new events are stored uncompressed";
    m_trainer.restart(newest.isEmpty());
    return true;
}

bool Journal::initSchema(QString* error) {
    if (!exec(kSchema, error))
        return false;
    const QByteArray pragmas = QByteArray("PRAGMA application_id=") + QByteArray::number(kApplicationId) +
                               "; PRAGMA user_version=" + QByteArray::number(kSchemaVersion) + ";";
    return exec(pragmas.constData(), error);
}

bool Journal::loadMeta(QString* error) {
    m_lastSeq = 0;
    m_prunedThrough = 0;
    m_id.clear();
    sqlite3_stmt* s = prepare("SELECT key, value FROM meta");
    if (!s) {
        if (error)
            *error = sqliteMessage(m_db);
        return false;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const QByteArray key(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
        if (key == "last_seq")
            m_lastSeq = sqlite3_column_int64(s, 1);
        else if (key == "pruned_through")
            m_prunedThrough = sqlite3_column_int64(s, 1);
        else if (key == "journal_id")
            m_id = QString::fromUtf8(reinterpret_cast<const char*>(sqlite3_column_text(s, 1)));
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        if (error)
            *error = sqliteMessage(m_db);
        m_lastError = isCorruption(rc) ? Error::Corrupt : Error::Io;
        return false;
    }
    // The meta row is written in every append transaction, but trust the table too.
    s = prepare("SELECT max(seq) FROM events");
    if (s && sqlite3_step(s) == SQLITE_ROW)
        m_lastSeq = std::max(m_lastSeq, sqlite3_column_int64(s, 0));
    sqlite3_finalize(s);
    return true;
}

bool Journal::ensureId(QString* error) {
    if (!m_id.isEmpty())
        return true;
    const QString id = QUuid::createUuid().toString(QUuid::WithoutBraces);
    const QByteArray utf8 = id.toUtf8();
    Statement st(m_setMeta);
    sqlite3_bind_text(st.s, 1, "journal_id", -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, 2, utf8.constData(), int(utf8.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(st.s) != SQLITE_DONE) {
        if (error)
            *error = sqliteMessage(m_db);
        return false;
    }
    m_id = id;
    return true;
}

void Journal::close() {
    m_trainer.stop();
    m_codec->reset();
    m_folder.reset();
    for (sqlite3_stmt** s : {&m_insertEvent, &m_upsertCheckpoint, &m_upsertState, &m_deleteState,
                             &m_deleteStatePrefix, &m_setMeta, &m_insertNarrowing}) {
        sqlite3_finalize(*s);
        *s = nullptr;
    }
    if (m_db) {
        sqlite3_close(m_db);
        m_db = nullptr;
    }
}

bool Journal::moveAside(const QString& path, QString* movedTo, QString* error) {
    const QString target = path + QStringLiteral(".broken-") +
                           QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-hhmmss"));
    if (QFile::exists(path) && !QFile::rename(path, target)) {
        if (error)
            *error = QStringLiteral("Cannot rename %1 to %2; move it yourself.")
                         .arg(QDir::toNativeSeparators(path), QDir::toNativeSeparators(target));
        return false;
    }
    for (const char* suffix : {"-wal", "-shm"})
        if (QFile::exists(path + QLatin1String(suffix)))
            QFile::rename(path + QLatin1String(suffix), target + QLatin1String(suffix));
    if (movedTo)
        *movedTo = target;
    return true;
}

} // namespace tw

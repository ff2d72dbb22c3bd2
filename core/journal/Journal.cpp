#include "Journal.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <pthread.h>

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLoggingCategory>

#include <sqlite3.h>

Q_LOGGING_CATEGORY(lcJournal, "tidewatch.journal")

namespace tw {

namespace {

// 'TWJL': marks a file as a Tidewatch journal, so a foreign SQLite file is refused
// instead of being written into.
constexpr int kApplicationId = 0x54574A4C;
// 2: events.doc may be a zstd frame (BodyCodec), and the dictionaries table. A version 1
// journal is upgraded in place (its rows stay as they are); a version 1 Tidewatch
// refuses a version 2 journal instead of misreading it.
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
)sql";

// Dictionary training: samples of the first documents stored, up to this many or this
// many bytes (zstd wants about a hundred times the dictionary's size). Documents below
// BodyCodec::kMinSize are neither sampled nor compressed.
constexpr int kSampleCount = 2000;
constexpr qsizetype kSampleBytes = 2 * 1024 * 1024;
constexpr int kTrainingAttempts = 3;

QString sqliteMessage(sqlite3* db) {
    return db ? QString::fromUtf8(sqlite3_errmsg(db)) : QStringLiteral("out of memory");
}

struct Statement {
    sqlite3_stmt* s;
    explicit Statement(sqlite3_stmt* stmt)
        : s(stmt) {}
    ~Statement() {
        if (s) {
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
        }
    }
};

void bindText(sqlite3_stmt* s, int index, const QString& text) {
    const QByteArray utf8 = text.toUtf8();
    sqlite3_bind_text(s, index, utf8.constData(), int(utf8.size()), SQLITE_TRANSIENT);
}

void bindBlob(sqlite3_stmt* s, int index, const QByteArray& bytes) {
    // Static binding: the caller keeps `bytes` alive until the step.
    sqlite3_bind_blob(s, index, bytes.constData(), int(bytes.size()), SQLITE_STATIC);
}

QByteArray columnBlob(sqlite3_stmt* s, int column) {
    const void* data = sqlite3_column_blob(s, column);
    return QByteArray(static_cast<const char*>(data), sqlite3_column_bytes(s, column));
}

bool isCorruption(int rc) {
    rc &= 0xff;
    return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
}

int openConnection(const QString& path, int flags, sqlite3** db) {
    const int rc =
        sqlite3_open_v2(QFile::encodeName(path).constData(), db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc == SQLITE_OK) {
        // A writer holds the lock for one group commit (a few ms); waiting beats failing.
        sqlite3_busy_timeout(*db, 5000);
        sqlite3_extended_result_codes(*db, 1);
    }
    return rc;
}

// WAL sizes in pages (4 KiB). Past kFoldPages the background folder is woken. Only a
// writer can restart the WAL from its beginning, and only when everything has been
// copied back as its transaction begins, which the folder alone rarely achieves while
// commits keep coming. So past kWriterFoldPages the writer folds the rest itself when
// little is left (the folder did the bulk), and past kMaxWalPages in any case, which
// bounds the WAL file.
constexpr int kFoldPages = 2048;
constexpr int kWriterFoldPages = 4 * kFoldPages;
constexpr int kMaxWalPages = 32768;

} // namespace

// Copies the WAL back into the main file on its own thread and connection. Every
// journal byte is written twice, once to the WAL at commit and once to the main file
// here; with the second copy (and its fsyncs) off the writer's thread, group commit
// runs about twice as fast on two cores. PASSIVE checkpoints never block the writer.
class Journal::WalFolder {
public:
    explicit WalFolder(const QString& path)
        : m_path(path) {
        m_thread = std::thread([this] { run(); });
    }
    ~WalFolder() {
        {
            std::lock_guard lock(m_mutex);
            m_stopping = true;
        }
        m_wake.notify_one();
        m_thread.join();
    }
    // Frames of the WAL copied back by the last fold (relative to the WAL as it was then).
    int folded() const { return m_folded.load(std::memory_order_relaxed); }
    void poke() {
        {
            std::lock_guard lock(m_mutex);
            m_pending = true;
        }
        m_wake.notify_one();
    }

private:
    void run() {
        pthread_setname_np(pthread_self(), "tidewatch-wal"); // as seen by top and perf
        sqlite3* db = nullptr;
        if (openConnection(m_path, SQLITE_OPEN_READWRITE, &db) != SQLITE_OK) {
            qCWarning(lcJournal) << "WAL folder cannot open the journal:" << sqliteMessage(db)
                                 << "- the writer folds the WAL itself";
            sqlite3_close(db);
            return;
        }
        // A fresh connection learns that the file is in WAL mode only when it first reads;
        // until then a checkpoint on it does nothing.
        sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
        for (;;) {
            {
                std::unique_lock lock(m_mutex);
                m_wake.wait(lock, [this] { return m_pending || m_stopping; });
                if (m_stopping)
                    break;
                m_pending = false;
            }
            int logFrames = 0, folded = 0;
            const int rc =
                sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &logFrames, &folded);
            if (rc == SQLITE_OK)
                m_folded.store(folded, std::memory_order_relaxed);
            // BUSY: the writer is folding the tail itself. Anything else (a full disk)
            // the writer meets at its next commit, where it is reported.
            if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
                qCWarning(lcJournal) << "folding the WAL failed:" << sqliteMessage(db);
        }
        sqlite3_close(db);
    }

    const QString m_path;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_pending = false;
    bool m_stopping = false;
    std::atomic<int> m_folded{0};
    std::thread m_thread;
};

Journal::Journal() = default;

Journal::~Journal() {
    close();
}

bool Journal::fail(Error code, const QString& message, QString* error) {
    m_lastError = code;
    if (error)
        *error = message;
    qCWarning(lcJournal).noquote() << message;
    return false;
}

bool Journal::exec(const char* sql, QString* error) {
    char* message = nullptr;
    const int rc = sqlite3_exec(m_db, sql, nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
        if (error)
            *error = QString::fromUtf8(message ? message : sqlite3_errstr(rc));
        sqlite3_free(message);
        m_lastError = isCorruption(rc) ? Error::Corrupt : Error::Io;
        return false;
    }
    return true;
}

sqlite3_stmt* Journal::prepare(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(m_db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
        qCWarning(lcJournal) << "cannot prepare" << sql << sqliteMessage(m_db);
        return nullptr;
    }
    return stmt;
}

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
    if (!m_insertEvent || !m_upsertCheckpoint || !m_upsertState || !m_deleteState || !m_deleteStatePrefix ||
        !m_setMeta) {
        const QString message = sqliteMessage(m_db);
        close();
        m_path = path;
        return fail(Error::Io,
                    QStringLiteral("The journal %1 cannot be used: %2.").arg(shown, message) + remedy, error);
    }
    if (!loadDictionary(&sqlError)) {
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

bool Journal::loadDictionary(QString* error) {
    m_dictionaryIds.clear();
    m_pendingDictionary.clear();
    m_samples.clear();
    m_sampleBytes = 0;
    m_trainingAttempts = 0;
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
    m_sampling = newest.isEmpty();
    return true;
}

void Journal::sample(const QByteArray& stored) {
    if (stored.size() < BodyCodec::kMinSize || BodyCodec::isFrame(stored))
        return;
    m_samples.append(stored);
    m_sampleBytes += stored.size();
    if (m_samples.size() < kSampleCount && m_sampleBytes < kSampleBytes)
        return;
    m_sampling = false;
    ++m_trainingAttempts;
    // About a tenth of a second of CPU: off the writer's thread.
    m_training = std::async(std::launch::async, [samples = std::exchange(m_samples, {})] {
        QString error;
        QByteArray dictionary = BodyCodec::train(samples, &error);
        if (dictionary.isEmpty())
            qCInfo(lcJournal).noquote()
                << "no compression dictionary from" << samples.size() << "documents:" << error;
        return dictionary;
    });
    m_sampleBytes = 0;
}

// A finished training's dictionary moves to m_pendingDictionary, which the next append
// commits. A failed one starts sampling again, a few times.
QByteArray Journal::trainedDictionary(bool wait) {
    if (m_training.valid() &&
        (wait || m_training.wait_for(std::chrono::seconds(0)) == std::future_status::ready)) {
        m_pendingDictionary = m_training.get();
        if (m_pendingDictionary.isEmpty() && m_trainingAttempts < kTrainingAttempts)
            m_sampling = true;
    }
    return m_pendingDictionary;
}

bool Journal::finishTraining() {
    if (!m_training.valid())
        return false;
    trainedDictionary(true);
    QList<ChangeBatch> none;
    return append(none) && m_codec->dictionaryId() != 0;
}

int Journal::onWalCommit(void* journal, sqlite3* db, const char* name, int frames) {
    auto* self = static_cast<Journal*>(journal);
    if (frames < kFoldPages)
        return SQLITE_OK;
    const bool littleLeft = self->m_folder && frames - self->m_folder->folded() <= kFoldPages;
    if (!self->m_folder || (frames >= kWriterFoldPages && littleLeft) || frames >= kMaxWalPages)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    else
        self->m_folder->poke();
    return SQLITE_OK;
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

void Journal::close() {
    if (m_training.valid())
        m_training.wait();
    m_training = {};
    m_codec->reset();
    m_folder.reset();
    for (sqlite3_stmt** s : {&m_insertEvent, &m_upsertCheckpoint, &m_upsertState, &m_deleteState,
                             &m_deleteStatePrefix, &m_setMeta}) {
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

bool Journal::append(QList<ChangeBatch>& batches, QString* error) {
    if (!m_db)
        return fail(Error::Io, QStringLiteral("The journal is not open."), error);
    if (!exec("BEGIN IMMEDIATE", error))
        return false;

    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    const QByteArray dictionary = trainedDictionary(false);
    uint32_t dictionaryId = dictionary.isEmpty() ? 0 : BodyCodec::idOf(dictionary);
    qint64 seq = m_lastSeq;
    auto rollback = [&](const QString& message) {
        exec("ROLLBACK");
        for (ChangeBatch& batch : batches)
            for (ChangeEvent& event : batch.events)
                if (event.seq() > m_lastSeq)
                    event.finalize(0);
        return fail(Error::Io, QStringLiteral("Journal write failed: %1").arg(message), error);
    };
    if (dictionaryId != 0) {
        // Commits with this transaction, before any frame made with it can exist. If it
        // cannot be stored, it is not used (and is tried again with the next append).
        sqlite3_stmt* s =
            prepare("INSERT OR REPLACE INTO dictionaries(id, data, created_ms) VALUES(?1, ?2, ?3)");
        bool stored = false;
        if (s) {
            sqlite3_bind_int64(s, 1, dictionaryId);
            bindBlob(s, 2, dictionary);
            sqlite3_bind_int64(s, 3, now);
            stored = sqlite3_step(s) == SQLITE_DONE;
            sqlite3_finalize(s);
        }
        if (!stored) {
            const QString message = sqliteMessage(m_db);
            // Some errors (a full disk) roll the whole transaction back.
            if (sqlite3_get_autocommit(m_db))
                return rollback(message);
            qCWarning(lcJournal).noquote() << "cannot store the compression dictionary:" << message;
            dictionaryId = 0;
        }
    }

    for (ChangeBatch& batch : batches) {
        const QByteArray source = batch.sourceId.toUtf8();
        for (ChangeEvent& event : batch.events) {
            event.finalize(++seq);
            QByteArray doc = event.takeStoredBytes();
            // A frame is stored only when this journal holds its dictionary (an event
            // prepared for another journal, or before a reopen, is stored as it is).
            if (BodyCodec::isFrame(doc) && !m_dictionaryIds.contains(BodyCodec::dictionaryOf(doc)) &&
                BodyCodec::dictionaryOf(doc) != dictionaryId)
                doc = event.document().raw();
            if (m_sampling)
                sample(doc);
            Statement st(m_insertEvent);
            sqlite3_bind_int64(st.s, 1, seq);
            sqlite3_bind_int64(st.s, 2, now);
            sqlite3_bind_text(st.s, 3, source.constData(), int(source.size()), SQLITE_STATIC);
            bindBlob(st.s, 4, doc);
            if (sqlite3_step(st.s) != SQLITE_DONE)
                return rollback(sqliteMessage(m_db));
        }
        const SourceCheckpoint& cp = batch.checkpoint;
        if (!cp.token.isEmpty()) {
            Statement st(m_upsertCheckpoint);
            sqlite3_bind_text(st.s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
            bindBlob(st.s, 2, cp.token);
            sqlite3_bind_int64(st.s, 3, now);
            if (sqlite3_step(st.s) != SQLITE_DONE)
                return rollback(sqliteMessage(m_db));
        }
        for (auto it = cp.stateUpserts.cbegin(); it != cp.stateUpserts.cend(); ++it) {
            Statement st(m_upsertState);
            sqlite3_bind_text(st.s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
            bindBlob(st.s, 2, it.key());
            bindBlob(st.s, 3, it.value());
            if (sqlite3_step(st.s) != SQLITE_DONE)
                return rollback(sqliteMessage(m_db));
        }
        for (const QByteArray& key : cp.stateRemovals) {
            Statement st(m_deleteState);
            sqlite3_bind_text(st.s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
            bindBlob(st.s, 2, key);
            if (sqlite3_step(st.s) != SQLITE_DONE)
                return rollback(sqliteMessage(m_db));
        }
        for (const QByteArray& prefix : cp.stateRemovedPrefixes) {
            // [prefix, prefix + 0xff…): every key that starts with prefix.
            QByteArray upper = prefix;
            upper.append(char(0xff)).append(char(0xff)).append(char(0xff)).append(char(0xff));
            Statement st(m_deleteStatePrefix);
            sqlite3_bind_text(st.s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
            bindBlob(st.s, 2, prefix);
            bindBlob(st.s, 3, upper);
            if (sqlite3_step(st.s) != SQLITE_DONE)
                return rollback(sqliteMessage(m_db));
        }
    }
    if (seq != m_lastSeq) {
        Statement st(m_setMeta);
        sqlite3_bind_text(st.s, 1, "last_seq", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st.s, 2, seq);
        if (sqlite3_step(st.s) != SQLITE_DONE)
            return rollback(sqliteMessage(m_db));
    }
    if (m_beforeCommit)
        m_beforeCommit();
    QString commitError;
    if (!exec("COMMIT", &commitError))
        return rollback(commitError);
    m_lastSeq = seq;
    if (dictionaryId != 0) {
        m_dictionaryIds.insert(dictionaryId);
        m_pendingDictionary.clear();
        QString why;
        if (!m_codec->use(dictionary, &why))
            qCWarning(lcJournal).noquote() << "the new compression dictionary cannot be used:" << why;
        else
            qCInfo(lcJournal) << "compressing stored events with dictionary" << dictionaryId;
    }
    return true;
}

SourceRestore Journal::restore(const QString& sourceId) {
    SourceRestore result;
    if (!m_db)
        return result;
    const QByteArray source = sourceId.toUtf8();
    sqlite3_stmt* s = prepare("SELECT token FROM checkpoints WHERE source = ?1");
    if (s) {
        sqlite3_bind_text(s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW)
            result.token = columnBlob(s, 0);
        sqlite3_finalize(s);
    }
    s = prepare("SELECT key, value FROM source_state WHERE source = ?1");
    if (s) {
        sqlite3_bind_text(s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
        while (sqlite3_step(s) == SQLITE_ROW)
            result.state.insert(columnBlob(s, 0), columnBlob(s, 1));
        sqlite3_finalize(s);
    }
    return result;
}

void Journal::forgetSource(const QString& sourceId) {
    if (!m_db)
        return;
    const QByteArray source = sourceId.toUtf8();
    for (const char* sql :
         {"DELETE FROM checkpoints WHERE source = ?1", "DELETE FROM source_state WHERE source = ?1"}) {
        sqlite3_stmt* s = prepare(sql);
        if (!s)
            continue;
        sqlite3_bind_text(s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
        sqlite3_step(s);
        sqlite3_finalize(s);
    }
}

bool Journal::saveSubscription(const StoredSubscription& subscription, QString* error) {
    if (!m_db)
        return fail(Error::Io, QStringLiteral("The journal is not open."), error);
    sqlite3_stmt* s = prepare("INSERT OR REPLACE INTO subscriptions(id, spec) VALUES(?1, ?2)");
    if (!s)
        return fail(Error::Io, sqliteMessage(m_db), error);
    bindText(s, 1, subscription.id);
    bindBlob(s, 2, subscription.spec);
    const bool ok = sqlite3_step(s) == SQLITE_DONE;
    const QString message = sqliteMessage(m_db);
    sqlite3_finalize(s);
    return ok || fail(Error::Io, message, error);
}

bool Journal::removeSubscription(const QString& id) {
    if (!m_db)
        return false;
    sqlite3_stmt* s = prepare("DELETE FROM subscriptions WHERE id = ?1");
    if (!s)
        return false;
    bindText(s, 1, id);
    const bool ok = sqlite3_step(s) == SQLITE_DONE && sqlite3_changes(m_db) > 0;
    sqlite3_finalize(s);
    return ok;
}

QList<StoredSubscription> Journal::subscriptions() {
    QList<StoredSubscription> result;
    sqlite3_stmt* s = m_db ? prepare("SELECT id, spec FROM subscriptions ORDER BY rowid") : nullptr;
    if (!s)
        return result;
    while (sqlite3_step(s) == SQLITE_ROW)
        result.append(
            {QString::fromUtf8(reinterpret_cast<const char*>(sqlite3_column_text(s, 0))), columnBlob(s, 1)});
    sqlite3_finalize(s);
    return result;
}

qint64 Journal::firstSeq() {
    sqlite3_stmt* s = prepare("SELECT min(seq) FROM events");
    qint64 seq = 0;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        seq = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return seq;
}

qint64 Journal::firstSeqAtOrAfterTime(qint64 cutoffMs) {
    // committed_ms never decreases with seq (one writer, stamped at commit), so a
    // binary search over seq finds the cut without an index on time.
    sqlite3_stmt* s = prepare("SELECT seq, committed_ms FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1");
    if (!s)
        return 0;
    qint64 lo = firstSeq(), hi = m_lastSeq + 1;
    while (lo < hi) {
        const qint64 mid = lo + (hi - lo) / 2;
        sqlite3_bind_int64(s, 1, mid);
        qint64 foundSeq = hi, foundMs = 0;
        if (sqlite3_step(s) == SQLITE_ROW) {
            foundSeq = sqlite3_column_int64(s, 0);
            foundMs = sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (foundSeq >= hi)
            hi = mid;
        else if (foundMs < cutoffMs)
            lo = foundSeq + 1;
        else
            hi = mid;
    }
    sqlite3_finalize(s);
    return lo;
}

qint64 Journal::deleteThrough(qint64 seq) {
    if (seq <= m_prunedThrough)
        return 0;
    qint64 removed = 0;
    // Chunks of 50 000 rows keep each write transaction short, so appends queued
    // behind a large prune wait milliseconds, not seconds.
    sqlite3_stmt* del = prepare("DELETE FROM events WHERE seq <= ?1");
    qint64 start = std::max(m_prunedThrough, firstSeq() - 1);
    while (del && start < seq) {
        const qint64 upto = std::min(seq, start + 50000);
        exec("BEGIN IMMEDIATE");
        sqlite3_bind_int64(del, 1, upto);
        sqlite3_step(del);
        removed += sqlite3_changes(m_db);
        sqlite3_reset(del);
        Statement st(m_setMeta);
        sqlite3_bind_text(st.s, 1, "pruned_through", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st.s, 2, upto);
        sqlite3_step(st.s);
        if (!exec("COMMIT")) {
            exec("ROLLBACK");
            break;
        }
        m_prunedThrough = upto;
        start = upto;
    }
    sqlite3_finalize(del);
    return removed;
}

qint64 Journal::prune(const RetentionPolicy& policy, qint64 nowMs) {
    if (!m_db || m_lastSeq == 0)
        return 0;
    qint64 cut = 0; // delete every seq <= cut
    if (policy.maxAgeSeconds > 0)
        cut = std::max(cut, firstSeqAtOrAfterTime(nowMs - policy.maxAgeSeconds * 1000) - 1);
    if (policy.maxBytes > 0) {
        const qint64 used = sizeBytes();
        if (used > policy.maxBytes) {
            // Drop the oldest share of events that brings the file to 90% of the cap;
            // freed pages are reused by later appends.
            const qint64 first = firstSeq();
            const qint64 count = m_lastSeq - first + 1;
            const double share = double(used - policy.maxBytes * 9 / 10) / double(used);
            cut = std::max(cut, first - 1 + qint64(double(count) * share) + 1);
        }
    }
    cut = std::min(cut, m_lastSeq);
    return cut > 0 ? deleteThrough(cut) : 0;
}

qint64 Journal::eventCount() {
    sqlite3_stmt* s = m_db ? prepare("SELECT count(*) FROM events") : nullptr;
    qint64 n = 0;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

qint64 Journal::sizeBytes() {
    if (!m_db)
        return 0;
    auto pragma = [this](const char* sql) {
        sqlite3_stmt* s = prepare(sql);
        qint64 v = 0;
        if (s && sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return v;
    };
    return (pragma("PRAGMA page_count") - pragma("PRAGMA freelist_count")) * pragma("PRAGMA page_size");
}

void Journal::checkpoint() {
    if (!m_db)
        return;
    // A checkpoint already running on the folder's connection would make this one BUSY.
    m_folder.reset();
    exec("PRAGMA wal_checkpoint(TRUNCATE)");
    m_folder = std::make_unique<WalFolder>(m_path);
}

// ---------------------------------------------------------------------------

JournalReader::JournalReader() = default;

JournalReader::~JournalReader() {
    sqlite3_finalize(m_select);
    sqlite3_finalize(m_meta);
    sqlite3_finalize(m_dictionary);
    if (m_db)
        sqlite3_close(m_db);
}

bool JournalReader::open(const QString& path, QString* error) {
    if (openConnection(path, SQLITE_OPEN_READONLY, &m_db) != SQLITE_OK) {
        if (error)
            *error = QStringLiteral("Cannot read the journal %1: %2").arg(path, sqliteMessage(m_db));
        sqlite3_close(m_db);
        m_db = nullptr;
        return false;
    }
    sqlite3_prepare_v3(m_db, "SELECT seq, doc, source FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2", -1,
                       SQLITE_PREPARE_PERSISTENT, &m_select, nullptr);
    // Absent from a journal written by an older Tidewatch (which has no frames either).
    sqlite3_prepare_v3(m_db, "SELECT data FROM dictionaries WHERE id = ?1", -1, SQLITE_PREPARE_PERSISTENT,
                       &m_dictionary, nullptr);
    m_decoder = std::make_unique<BodyDecoder>([this](uint32_t id) {
        QByteArray data;
        if (!m_dictionary)
            return data;
        sqlite3_bind_int64(m_dictionary, 1, id);
        if (sqlite3_step(m_dictionary) == SQLITE_ROW)
            data = columnBlob(m_dictionary, 0);
        sqlite3_reset(m_dictionary);
        return data;
    });
    sqlite3_prepare_v3(m_db,
                       "SELECT (SELECT value FROM meta WHERE key='last_seq'), "
                       "(SELECT value FROM meta WHERE key='pruned_through'), (SELECT min(seq) FROM events)",
                       -1, SQLITE_PREPARE_PERSISTENT, &m_meta, nullptr);
    if (!m_select || !m_meta) {
        if (error)
            *error = QStringLiteral("Cannot read the journal %1: %2").arg(path, sqliteMessage(m_db));
        return false;
    }
    return true;
}

qint64 JournalReader::lastSeq() {
    if (!m_meta)
        return 0;
    qint64 last = 0;
    if (sqlite3_step(m_meta) == SQLITE_ROW)
        last = sqlite3_column_int64(m_meta, 0);
    sqlite3_reset(m_meta);
    return last;
}

JournalReader::Result JournalReader::readAfter(qint64 after, int limit,
                                               const std::function<bool(const ChangeEvent&)>& match,
                                               int scanLimit) {
    Result r;
    r.scannedThrough = after;
    if (!m_db || !m_select) {
        r.error = QStringLiteral("journal not open");
        return r;
    }
    // One read transaction so head, prune mark and rows are a consistent snapshot.
    sqlite3_exec(m_db, "BEGIN", nullptr, nullptr, nullptr);
    qint64 prunedThrough = 0, firstStored = 0;
    if (sqlite3_step(m_meta) == SQLITE_ROW) {
        r.lastSeq = sqlite3_column_int64(m_meta, 0);
        prunedThrough = sqlite3_column_int64(m_meta, 1);
        firstStored = sqlite3_column_int64(m_meta, 2);
    }
    sqlite3_reset(m_meta);
    if (after < prunedThrough) {
        r.gap = true;
        r.firstAvailable = firstStored ? firstStored : prunedThrough + 1;
        after = prunedThrough;
        r.scannedThrough = after;
    }
    sqlite3_bind_int64(m_select, 1, after);
    sqlite3_bind_int64(m_select, 2, scanLimit);
    int scanned = 0;
    int rc;
    while ((rc = sqlite3_step(m_select)) == SQLITE_ROW) {
        ++scanned;
        const qint64 seq = sqlite3_column_int64(m_select, 0);
        QString damage;
        const QByteArray bson = m_decoder->decode(columnBlob(m_select, 1), &damage);
        r.scannedThrough = seq;
        if (bson.isEmpty()) {
            // Said, not skipped: whoever reads this range learns that an event is lost.
            const QString source =
                QString::fromUtf8(reinterpret_cast<const char*>(sqlite3_column_text(m_select, 2)));
            ChangeEvent gap = ChangeEvent::makeGap(
                source, {},
                QStringLiteral("event %1 in the journal cannot be read: %2").arg(seq).arg(damage));
            gap.finalize(seq);
            qCWarning(lcJournal).noquote() << gap.reason();
            r.events.append(gap);
            if (r.events.size() >= limit)
                break;
            continue;
        }
        ChangeEvent event = ChangeEvent::fromDocument(Bson::fromRaw(bson), seq);
        if (!match || match(event)) {
            r.events.append(event);
            if (r.events.size() >= limit)
                break;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r.error = sqliteMessage(m_db);
    sqlite3_reset(m_select);
    sqlite3_exec(m_db, "COMMIT", nullptr, nullptr, nullptr);
    r.hasMore = r.scannedThrough < r.lastSeq && (r.events.size() >= limit || scanned >= scanLimit);
    return r;
}

} // namespace tw

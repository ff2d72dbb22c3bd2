#pragma once

#include "journal/DictionaryTrainer.h"
#include "journal/JournalReader.h"
#include "model/BodyCodec.h"
#include "model/ChangeBatch.h"

#include <functional>
#include <memory>
#include <QByteArray>
#include <QHash>
#include <QList>
#include <QSet>
#include <QString>

struct sqlite3;
struct sqlite3_stmt;

namespace tw {

class WalFolder;

struct RetentionPolicy {
    qint64 maxAgeSeconds = 7 * 24 * 3600; // 0: no age limit
    qint64 maxBytes = qint64(2) << 30;    // 0: no size limit
};

// A subscription as the journal keeps it: its id and the spec the engine wrote
// (Subscription::toJson). The journal stores the spec and hands it back byte for byte;
// it never reads it, so it needs nothing from the engine.
struct StoredSubscription {
    QString id;
    QByteArray spec;
};

// The durable record of every committed event, per-source checkpoints and the
// subscriptions. SQLite in WAL mode. append() writes events and their sources'
// checkpoints in ONE transaction and only then are the events' sequence ids final;
// ids are strictly increasing and never reused, across restarts and pruning.
//
// Not thread-safe: owned and used by the Engine thread. Readers use JournalReader on
// their own connection.
class Journal {
public:
    // DiskFull: a write found no room (SQLITE_FULL: the disk, or the page cap below);
    // nothing of it was committed, and the same write succeeds once there is room.
    // SeqNotIncreasing: a batch that keeps its seqs (ChangeBatch::keepSeqs) did not
    // continue past the last one.
    enum class Error { None, CannotOpen, NotAJournal, Corrupt, NewerVersion, Io, SeqNotIncreasing, DiskFull };

    Journal();
    ~Journal();
    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;

    bool open(const QString& path, QString* error = nullptr);
    void close();
    bool isOpen() const { return m_db != nullptr; }
    QString path() const { return m_path; }
    Error lastError() const { return m_lastError; }

    // Renames a journal that cannot be opened (and its -wal/-shm) to
    // "<path>.broken-<timestamp>" so a fresh one can be created. Nothing is deleted.
    static bool moveAside(const QString& path, QString* movedTo = nullptr, QString* error = nullptr);

    // Assigns seqs, finalizes the events (in place) and commits them together with
    // each batch's checkpoint in one transaction. On failure nothing is committed,
    // the events keep seq 0, and the next seq is unchanged. A batch with keepSeqs keeps
    // the seqs its events carry (see ChangeBatch::keepSeqs); on failure they keep them.
    bool append(QList<ChangeBatch>& batches, QString* error = nullptr);

    // A source's last committed token and state. On a failed read `error` says what
    // failed and the result is empty: not the same as a source with no checkpoint.
    SourceRestore restore(const QString& sourceId, QString* error = nullptr);
    void forgetSource(const QString& sourceId);

    qint64 lastSeq() const { return m_lastSeq; }
    // A UUID made when the journal file was created and kept for its life: it names
    // what belongs to this journal outside it (a PostgreSQL slot, NATS message ids).
    QString id() const { return m_id; }
    // Every seq <= prunedThrough() was removed by retention (0: nothing ever pruned).
    qint64 prunedThrough() const { return m_prunedThrough; }
    // Whether `sourceId` ever said what it reads (ChangeBatch::narrowings).
    bool hasNarrowings(const QString& sourceId) const { return m_lastReading.contains(sourceId.toUtf8()); }

    // Inserts or replaces the subscription with this id.
    bool saveSubscription(const StoredSubscription& subscription, QString* error = nullptr);
    bool removeSubscription(const QString& id);
    // Oldest save first (replacing one saves it again).
    QList<StoredSubscription> subscriptions();

    // Applies retention; returns how many events were removed.
    qint64 prune(const RetentionPolicy& policy, qint64 nowMs);
    qint64 eventCount();
    qint64 sizeBytes();
    // Folds the whole WAL into the main file and truncates it (on shutdown). While
    // open, a background thread folds it as it grows; see WalFolder.h.
    void checkpoint();

    // Compresses documents for this journal; pass it to ChangeEvent::prepare on the
    // thread that renders an event. It has no dictionary until the journal has trained
    // one on its first documents (or loaded it on open), and until then compresses
    // nothing. Shared: it outlives the journal in whoever holds it.
    std::shared_ptr<const BodyCodec> codec() const { return m_codec; }
    // Waits for a dictionary being trained in the background and commits it with an
    // empty transaction (tests, benchmarks). False when none was being trained.
    bool finishTraining();

    // Test hook: runs inside append() after every row is written and before COMMIT.
    void setBeforeCommitHook(std::function<void()> hook) { m_beforeCommit = std::move(hook); }
    // Test hook: caps the journal file at its current size plus `extraPages` pages
    // (SQLite's max_page_count), so that a test fills it the way a full disk does
    // (SQLITE_FULL, Error::DiskFull); a negative value lifts the cap. A tmpfs would need
    // mount rights that CI's machine may not grant.
    void setPageLimit(qint64 extraPages);

private:
    // Journal.cpp: the writer.
    bool exec(const char* sql, QString* error = nullptr);
    bool ensureId(QString* error);
    sqlite3_stmt* prepare(const char* sql);
    bool fail(Error code, const QString& message, QString* error);
    static int onWalCommit(void* journal, sqlite3* db, const char* name, int frames);
    // JournalSchema.cpp: open, upgrade, close.
    bool initSchema(QString* error);
    bool loadMeta(QString* error);
    bool loadDictionary(QString* error);
    bool loadLastReadings(QString* error);
    // JournalRetention.cpp.
    qint64 firstSeq();
    qint64 firstSeqAtOrAfterTime(qint64 cutoffMs);
    qint64 deleteThrough(qint64 seq);
    // Drops what the narrowings table says of the history before the prune mark.
    void pruneNarrowings();

    sqlite3* m_db = nullptr;
    std::unique_ptr<WalFolder> m_folder; // owned; runs while the journal is open
    QString m_path;
    Error m_lastError = Error::None;
    qint64 m_lastSeq = 0;
    qint64 m_prunedThrough = 0;
    QString m_id;
    sqlite3_stmt* m_insertEvent = nullptr;
    sqlite3_stmt* m_upsertCheckpoint = nullptr;
    sqlite3_stmt* m_upsertState = nullptr;
    sqlite3_stmt* m_deleteState = nullptr;
    sqlite3_stmt* m_deleteStatePrefix = nullptr;
    sqlite3_stmt* m_setMeta = nullptr;
    sqlite3_stmt* m_insertNarrowing = nullptr;
    // Each source's last committed narrowings row: a row equal to it is not written, as
    // a source declares again on every watch change and the table is read whole per replay.
    QHash<QByteArray, QByteArray> m_lastReading;
    std::function<void()> m_beforeCommit;

    // Compression: samples of the first documents, a dictionary trained from them on a
    // background thread, committed with the next append and only then used.
    std::shared_ptr<BodyCodec> m_codec = std::make_shared<BodyCodec>();
    DictionaryTrainer m_trainer;
    QSet<uint32_t> m_dictionaryIds; // committed
};

} // namespace tw

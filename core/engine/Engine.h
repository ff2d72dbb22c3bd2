#pragma once

#include "engine/Subscription.h"
#include "engine/SubscriptionIndex.h"
#include "journal/Journal.h"
#include "sources/Source.h"

#include <atomic>
#include <memory>
#include <optional>
#include <QHash>
#include <QMutex>
#include <QObject>
#include <QPointer>
#include <QSet>
#include <QThread>

class QLockFile;
class QTimer;

namespace tw {

// Whether the journal takes writes, for health reports (/v1/health, the window's
// Health dock). While it does not, every batch the sources hand over is kept in memory
// and retried, and no source is told its checkpoint was stored, so none acknowledges
// upstream past what the journal holds.
struct JournalStatus {
    enum class State {
        Ok,
        DiskFull, // Journal::Error::DiskFull: resumes once there is room
        Failing,  // any other write error (I/O, the write lock held elsewhere)
    };
    State state = State::Ok;
    QString reason;           // what failed and what to do; empty when Ok
    qint64 pendingEvents = 0; // accepted from the sources, waiting for the journal
    qint64 sinceMs = 0;       // when writing first failed (ms since the epoch); 0 when Ok

    bool isOk() const { return state == State::Ok; }
    // "ok", "full" or "failing", as /v1/health spells it.
    QString stateName() const;
};

// Owns the sources, the journal and the subscription index. It lives on its own
// thread; each source lives on another. A source's batch reaches the engine by a
// queued signal, is appended to the journal together with the source's checkpoint in
// one transaction (group commit: every batch that arrived meanwhile goes into the same
// transaction), and only then is published with final sequence ids and routed to the
// matching subscriptions.
//
// The public functions may be called from any thread: the ones that change state
// queue the work to the engine thread; the read-only ones return snapshots.
class Engine : public QObject {
    Q_OBJECT
public:
    struct Options {
        QString journalPath;
        RetentionPolicy retention;
        int pruneIntervalMs = 60 * 1000;
        // While the journal cannot be written, the events accepted and waiting in memory
        // at most (about: a batch in flight is taken whole). Past it, the sources that
        // have batches waiting are stopped; once the journal has committed what waited,
        // they start again from the checkpoint it holds, as after a restart, so memory
        // stays bounded through a long outage. Nothing is lost while the upstream holds
        // what the checkpoint points at (past MongoDB's oplog window or a NATS stream's
        // limits, the source reports a gap).
        qint64 maxPendingEvents = 100000;
    };

    // Why start() failed, for the caller to decide on (offer to move the journal
    // aside, or not) without reading the message.
    enum class StartError {
        None,
        JournalInUse,      // another Tidewatch holds the journal's lock: moving aside would not help
        LockUnavailable,   // the lock file cannot be created (folder missing or read-only)
        JournalUnreadable, // Journal::Error::CannotOpen or Io
        NotAJournal,
        Corrupt,
        NewerVersion,
    };

    explicit Engine(const Options& options);
    ~Engine() override; // stops if still running

    // Opens the journal (on the calling thread, so errors come back at once), loads
    // the stored subscriptions and starts the engine thread.
    bool start(QString* error = nullptr, StartError* code = nullptr);
    // Stops every source (each returns within a second), commits what they handed
    // over, checkpoints the journal and joins the thread. Blocks the caller.
    void stop();
    bool isRunning() const { return m_thread.isRunning(); }

    QString journalPath() const { return m_options.journalPath; }
    qint64 lastCommittedSeq() const { return m_lastSeq.load(std::memory_order_acquire); }
    // The journal's document compressor (set by start()); its dictionaryId() tells
    // whether stored documents are compressed yet.
    std::shared_ptr<const BodyCodec> codec() const { return m_codec; }
    // The journal's id (Journal::id()); set by start(), fixed after it.
    QString journalId() const { return m_journalId; }

    // --- sources -------------------------------------------------------------
    // Creates the source from its URI (errors at once: bad URI, missing file), moves
    // it to its own thread and starts it from the journal's checkpoint.
    bool addSource(const QString& id, const QString& uri, QString* error = nullptr);
    // With `releaseServerState`, the source first removes what it keeps on the server
    // (Source::releaseServerState(): a replication slot).
    void removeSource(const QString& id, bool releaseServerState = false);
    void watch(const QString& sourceId, const Namespace& ns, const WatchOptions& options = {});
    void unwatch(const QString& sourceId, const Namespace& ns);
    void listNamespaces(const QString& sourceId, const QString& db);
    QStringList sourceIds() const;
    QHash<QString, SourceStatus> sourceStatuses() const;
    QString sourceUri(const QString& id) const; // password redacted
    // What is watched (asked for and not failed), one entry per watch with its scope as
    // given: a database or deployment scope (Namespace::isDatabase(), isDeployment())
    // covers collections that do not exist yet, so test an event's namespace with
    // Namespace::contains(). A snapshot under the mutex; any thread.
    QList<SourceNamespace> watchedScopes() const;

    // --- subscriptions ---------------------------------------------------------
    // Assigns an id when empty. A persistent subscription is stored in the journal.
    Subscription addSubscription(Subscription subscription);
    bool removeSubscription(const QString& id);
    SubscriptionList subscriptions() const;
    std::optional<Subscription> subscription(const QString& id) const;

    // --- counters (any thread) -----------------------------------------------------
    qint64 eventsCommitted() const { return m_eventsCommitted.load(std::memory_order_relaxed); }
    qint64 commits() const { return m_commits.load(std::memory_order_relaxed); }
    // A snapshot under the mutex; any thread.
    JournalStatus journalStatus() const;

    // Test hook (Journal::setPageLimit, queued to the engine thread): the journal fills
    // `extraPages` pages from now, as on a full disk; negative: room again.
    void setJournalPageLimit(qint64 extraPages);

    // Commits this batch as if a source had produced it: tests and benchmarks, and a
    // consumer that keeps its position in the journal as a pseudo source's checkpoint
    // (a batch without events; the NATS publisher).
    void submit(const tw::ChangeBatch& batch);

Q_SIGNALS:
    // Emitted on the engine thread after each group commit.
    void committed(const tw::CommittedBatch& batch);
    // A commit carried what narrowing sources read (ChangeBatch::narrowings), so the part
    // of the journal that covers a subscription may have changed (CoverageLog). Emitted
    // right after the commit, before its committed().
    void coverageChanged();
    void sourceStatusChanged(const QString& sourceId, const tw::SourceStatus& status);
    // removeSource(id) has taken effect: the source's thread has finished (or there was
    // no such source) and addSource() may use the id again.
    void sourceRemoved(const QString& sourceId);
    void namespacesListed(const QString& sourceId, const QString& db,
                          const QList<tw::NamespaceInfo>& namespaces, const QString& error);
    void watchFailed(const QString& sourceId, const tw::Namespace& ns, const QString& error);
    void watchReady(const QString& sourceId, const tw::Namespace& ns);
    // The journal refused a write (disk full, I/O error). Pending batches are kept and
    // retried every second and with each new batch; nothing accepted is dropped.
    // Emitted when writing starts failing or the reason changes, not on every retry.
    void journalFailed(const QString& error);
    // The journal takes writes again after journalFailed: what waited is committed.
    void journalRecovered();
    void subscriptionsChanged();

private:
    struct SourceEntry {
        QString uri;                           // password redacted, for showing
        QString fullUri;                       // as given, to start the source again; never shown
        Source* source = nullptr;              // owned; deleted on its thread when that thread finishes;
                                               // null while paused for the journal's backlog
        QThread* thread = nullptr;             // owned; null with source
        bool started = false;                  // start() sent: watches go to it only then
        QList<Namespace> unwatchedBeforeStart; // sent right after start()
        SourceStatus status;
        bool relaysSourceIds = false; // Source::relaysSourceIds(), kept while paused
    };

    struct WatchRecord {
        Namespace ns;
        WatchOptions options;                    // as the caller gave them
        QList<WatchOptions::Reader> sentReaders; // the readers last sent to the source
    };

    // Creates the source, moves it to a new thread and connects it; fills `entry`. The
    // caller starts it (Source::start) and stores the entry.
    bool launchSource(const QString& id, const QString& uri, SourceEntry* entry, QString* error);
    void removeSourceNow(const QString& id, bool releaseServerState);
    void onBatchReady(const tw::ChangeBatch& batch);
    // The journal's backlog (EngineJournal.cpp): past Options::maxPendingEvents while the
    // journal fails, stops the sources with batches waiting (m_paused); after a commit
    // that leaves less than half of it, starts them again from the journal's checkpoint.
    void pauseSourcesForBacklog();
    // Reads the source's checkpoint and starts it from there, then sends it its
    // watches; while the journal cannot be read, keeps it waiting (state Backoff, the
    // reason) and tries again.
    void startFromCheckpoint(const QString& id, Source* source);
    void resumePausedSources();
    QString pausedReason(const QString& sourceId) const;
    void onWatchFailed(const QString& sourceId, const tw::Namespace& ns, const QString& error);
    // Copies m_watches into m_watchedScopes; after every change to m_watches.
    void publishWatchedScopes();
    // The readers of one watch: every subscription that can see events of that scope,
    // through which part of it and with which filter, each once (empty: nobody). A
    // source that filters on the server narrows its reads to their union.
    QList<WatchOptions::Reader> pushDownFor(const QString& sourceId, const Namespace& scope) const;
    void sendWatch(const QString& sourceId, WatchRecord& record, bool force);
    void refreshPushDown();
    void flush();
    // The journal status after a failed append (m_pending holds what waits) and after
    // one that worked; each emits its signal when the status changes.
    void noteJournalFailed(const QString& error);
    // Drops from batches that keep their seqs the events whose seq is not past the
    // journal's (a gateway repeating itself), so the rest can commit.
    void dropSeqsAlreadyTaken(QList<ChangeBatch>& batches);
    void noteJournalWorks();
    void prune();
    void shutdownOnThread();
    // Stops each source on its thread, commits what they handed over, frees them.
    void stopSources(const QList<SourceEntry>& entries);

    Options m_options;
    QThread m_thread;
    Journal m_journal; // engine thread only
    // The journal's compressor, used on the sources' threads (set before they start).
    std::shared_ptr<const BodyCodec> m_codec;
    QString m_journalId; // written by start() before any thread reads it
    std::unique_ptr<QLockFile> m_lock;
    SubscriptionIndex m_index;                    // engine thread only
    QHash<QString, QList<WatchRecord>> m_watches; // engine thread only
    QList<ChangeBatch> m_pending;                 // engine thread only
    QSet<QString> m_paused;                       // engine thread only: sources stopped for the backlog
    qint64 m_pendingEvents = 0;                   // engine thread only: the events in m_pending
    bool m_pausing = false;                       // engine thread only
    // engine thread only: removeSource() calls delivered while pausing, done after it
    QList<QPair<QString, bool>> m_deferredRemovals;
    static constexpr qsizetype kMaxEventsPerCommit = 4096;
    bool m_flushScheduled = false;
    QTimer* m_pruneTimer = nullptr;
    QTimer* m_retryTimer = nullptr;

    mutable QMutex m_mutex; // guards the snapshots below
    QHash<QString, SourceEntry> m_sources;
    QHash<QString, Subscription> m_subscriptions;
    QStringList m_subscriptionOrder;
    QList<SourceNamespace> m_watchedScopes; // m_watches' scopes, for watchedScopes()
    JournalStatus m_journalStatus;          // written by the engine thread

    std::atomic<qint64> m_lastSeq{0};
    std::atomic<qint64> m_eventsCommitted{0};
    std::atomic<qint64> m_commits{0};
};

void registerMetaTypes();

} // namespace tw

#pragma once

#include "model/ChangeBatch.h"
#include "sources/Source.h"

#include <atomic>
#include <map>
#include <memory>

struct _mongoc_client_t;

namespace tw {

class ChangeEventMapper;
class MongoChangeCursor;
class MongoConnection;
class MongoPoller;
class MongoResumeTokens;

// What a MongoWatch tells the source that owns it. Called on the source's thread.
class MongoWatchHost {
public:
    // Events and checkpoint changes not handed over yet; a watch appends to them.
    virtual ChangeBatch& pendingBatch() = 0;
    // Hands the pending batch over now (it is full).
    virtual void flushPendingBatch() = 0;
    // The watch is live for the first time: every change from now on is reported.
    virtual void watchOpened(const Namespace& ns) = 0;
    // The watch itself is wrong (bad option, bad pipeline) and has stopped.
    virtual void watchInvalid(const Namespace& ns, const QString& message) = 0;
    // A stream opened again after failures (counted in the status).
    virtual void streamReconnected() = 0;

protected:
    ~MongoWatchHost() = default;
};

// One watched scope of a MongoSource — a collection, a database or the whole
// deployment — with its one upstream change stream and its own client from the pool,
// however many subscriptions read it.
//
// The stream opens startAfter the scope's resume token and is drained in bounded
// slices through our own cursor (MongoChangeCursor), which asks for the expanded
// (DDL) events where the server has them (6.0 and later) and resumes once by
// itself; when that fails too, the scope reopens
// from its token after an exponential backoff with jitter (MongoConnection's
// schedule, shown as state Backoff with the next retry). History lost (286, invalid
// token) emits a `gap` and restarts from now. An invalidate reopens startAfter it, so
// a collection created again is picked up. No change streams (40573, standalone,
// missing privilege) switches the scope to polling, one MongoPoller per collection.
class MongoWatch {
public:
    enum class Mode { Opening, Streaming, Backoff, Polling, Failed };

    // What every watch of a source shares with it. The pointers are the source's
    // (not owned) and outlive its watches.
    struct Context {
        QString sourceId;
        MongoConnection* connection = nullptr;
        MongoResumeTokens* tokens = nullptr;
        const ChangeEventMapper* mapper = nullptr;
        const SourceRestore* restore = nullptr; // the pollers' baselines
        const std::atomic<bool>* stopRequested = nullptr;
        MongoWatchHost* host = nullptr;
    };

    MongoWatch(const Context& context, const Namespace& ns, const WatchOptions& options);
    ~MongoWatch(); // closes the stream and returns the client
    MongoWatch(const MongoWatch&) = delete;
    MongoWatch& operator=(const MongoWatch&) = delete;

    // The scope's key in the checkpoint: "db.coll", "db", or "" for the deployment.
    static QString keyOf(const Namespace& ns) { return ns.toString(); }
    static QString describe(const Namespace& ns);
    static qint64 nowMs();

    Namespace ns() const { return m_ns; }
    QString key() const { return m_key; }
    const WatchOptions& options() const { return m_options; }
    Mode mode() const { return m_mode; }
    qint64 dueMs() const { return m_dueMs; } // Opening/Backoff: next attempt; Polling: next poll
    bool isFatal() const { return m_fatal; }
    bool hasOpened() const { return m_opened; } // has streamed or polled at least once
    QString reason() const { return m_reason; } // shown in the status when not simply watching
    // Non-empty when the options ask for DDL events and the server cannot send them
    // (older than 6.0): the status says so, and the stream carries on without them.
    QString expandedEventsNote() const { return m_expandedEventsNote; }
    // The last time the stream broke (network, a damaged reply, a server error),
    // and with what: a resume that worked at once still shows.
    qint64 lastInterruptionMs() const { return m_lastInterruptionMs; }
    QString lastInterruption() const { return m_lastInterruption; }

    // Replaces the options; false when they change nothing (the same $match too).
    // A stream then reopens startAfter the last event handed over (see
    // MongoSource::watch); a poll with another pollField starts a new baseline.
    bool setOptions(const WatchOptions& options);
    // One bounded slice of work: opens when due, drains the stream or polls.
    void step(qint64 deadlineMs);
    // Unwatched: closes the stream, returns the client and forgets the pollers'
    // baselines (their removal goes into the pending batch).
    void release();
    // Closes the stream and returns the client (the source stops).
    void close();

    // A batch holds at most 1 000 events (the journal's group commit is sized for it) and
    // a slice of work ends after 20 ms, the batching period of the design.
    static constexpr int kBatchEvents = 1000;
    static constexpr qint64 kSliceMs = 20;
    // stop() must return within a second and can only run between slices; a slice blocks
    // at most one getMore, so the await is clamped below that.
    static constexpr int kMaxAwaitMs = 800;

private:
    void openStream();
    void closeStream();
    void drain(qint64 deadlineMs);
    void poll();
    void handleError(const QString& during, const bson_error_t& error, const bson_t* reply);
    void enterBackoff(const QString& reason, bool fatal = false);
    void enterPolling(const QString& why);
    void releaseClient();
    bool isStopRequested() const { return m_context.stopRequested->load(std::memory_order_relaxed); }

    Context m_context;
    Namespace m_ns;
    QString m_key;
    WatchOptions m_options;
    Bson m_match; // the $match the stream opens with (MongoPushDown::matchOf)
    Mode m_mode = Mode::Opening;
    qint64 m_dueMs = 0;
    int m_attempts = 0; // consecutive failures, for the backoff
    bool m_fatal = false;
    bool m_invalidated = false; // saw invalidate: reopen after it with startAfter
    bool m_opened = false;
    Bson m_lastEventToken; // `_id` of the last event handed over (not a postBatchResumeToken)
    QString m_reason;
    qint64 m_lastInterruptionMs = 0;
    QString m_lastInterruption;
    QString m_expandedEventsNote;
    bool m_expandedRefused = false; // the server refused showExpandedEvents: never sent again

    _mongoc_client_t* m_client = nullptr;                      // popped from the pool; pushed back on release
    std::unique_ptr<MongoChangeCursor> m_cursor;               // on m_client
    std::map<QString, std::unique_ptr<MongoPoller>> m_pollers; // by "db.coll"
};

} // namespace tw

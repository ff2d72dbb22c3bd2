#pragma once

#include "MongoResumeTokens.h"
#include "MongoWatch.h"
#include "sources/Source.h"
#include "sources/SourceReading.h"

#include <QMap>

#include <atomic>
#include <memory>

class QTimer;

namespace tw {

class ChangeEventMapper;
class MongoConnection;

// Watches a MongoDB deployment through change streams (libmongoc, one pooled client
// per source). Each watched scope — a collection, a database or the whole
// deployment — has exactly one upstream change stream, with its own client from the
// pool, however many subscriptions read it (MongoWatch).
//
// Everything runs on the source's thread. The blocking driver calls are made from a
// zero-interval timer, one bounded slice per tick (a getMore waits at most
// maxAwaitTimeMS, clamped to 800 ms), so the thread's event loop still delivers
// watch/unwatch/stop between slices and stop() returns within a second.
//
// Resume: the checkpoint token is a BSON document {scopeKey: resumeToken} holding
// the position after the last event handed over for every scope (scopeKey is
// Namespace::toString(): "db.coll", "db", or "" for the deployment). It is committed
// with the events, and at start each stream opens with startAfter that token, which
// also survives an invalidate (MongoResumeTokens).
//
// DDL events: WatchOptions::showExpandedEvents (on by default) goes into the
// $changeStream stage of our own cursor (MongoChangeCursor), which libmongoc 1.23's
// change stream API cannot do. A server older than 6.0 has no such events: the status
// says so and the stream carries on with drop, rename and dropDatabase.
//
// Errors (see MongoErrors.h): the cursor resumes once by itself; when that fails
// too, the scope reopens from its token after an exponential backoff with jitter
// (0.5 s doubling to 30 s, shown as state Backoff with the next retry). History lost
// (286, invalid token) emits a `gap` and restarts from now. No change streams
// (40573, standalone, missing privilege) switches the scope to polling (MongoPoller).
//
// Push-down: the stream's $match is the explicit WatchOptions::match, or the union
// of the filters of the watch's readers (MongoPushDown).
class MongoSource : public Source, private MongoWatchHost {
    Q_OBJECT
public:
    // uri: mongodb:// or mongodb+srv://, anything libmongoc accepts. Parses only; the
    // connection is made on the source's thread at start(). On error returns nullptr
    // with a message that shows the URI with its password redacted.
    static MongoSource* create(const QString& id, const QString& uri, QString* error);
    ~MongoSource() override;

    // See MongoPushDown::unionMatch.
    static Bson unionMatch(const QList<Bson>& filters);
    static QString scopeKey(const Namespace& ns) { return MongoWatch::keyOf(ns); }
    static QByteArray encodeTokens(const QMap<QString, Bson>& tokens);
    static QMap<QString, Bson> decodeTokens(const QByteArray& token);

    // Backoff schedule: first delay, cap, and the jitter fraction (0.2 = +/-20 %).
    void setBackoff(int initialMs, int maxMs, double jitter = 0.2);
    // Asks a running slice to end early; callable from any thread. stop() still has
    // to be called on the source's thread.
    void requestStop() { m_stopRequested.store(true, std::memory_order_relaxed); }

public Q_SLOTS:
    void start(const tw::SourceRestore& restore) override;
    // Watching a scope again replaces its options; when they differ (e.g. the
    // $match push-down changed) the stream reopens startAfter the last event handed
    // over: nothing the old filter matched is lost or repeated, and the new filter
    // applies from that event on (not from the later position the old stream
    // reported), so changes only the new filter matches are not skipped either.
    void watch(const tw::Namespace& ns, const tw::WatchOptions& options) override;
    void unwatch(const tw::Namespace& ns) override;
    void listNamespaces(const QString& db) override;
    void stop() override;

private:
    MongoSource(const QString& id, std::unique_ptr<MongoConnection> connection);

    void tick();
    void schedule();
    void flush(bool checkpointOnly = false);
    void updateStatus();
    // Tells the journal, with the next batch, what the watches read now that their
    // options changed (SourceReading), so a replay knows what the $match left out.
    void declareReading();

    // MongoWatchHost
    ChangeBatch& pendingBatch() override { return m_pending; }
    void flushPendingBatch() override { flush(); }
    void watchOpened(const Namespace& ns) override;
    void watchInvalid(const Namespace& ns, const QString& message) override;
    void streamReconnected() override { ++m_status.reconnects; }

    // Declared before the watches, which point at them and are destroyed first.
    std::unique_ptr<MongoConnection> m_connection; // owned
    std::unique_ptr<ChangeEventMapper> m_mapper;   // owned
    MongoResumeTokens m_tokens;                    // the checkpoint
    SourceRestore m_restore;
    ChangeBatch m_pending;
    QList<ScopeReading> m_declared; // what declareReading() last said
    bool m_hasDeclared = false;     // since start(): the journal's last word may be another run's
    std::atomic<bool> m_stopRequested{false};
    QTimer* m_timer = nullptr;                           // owned (child)
    QMap<QString, std::shared_ptr<MongoWatch>> m_scopes; // by scopeKey
    int m_roundRobin = 0;
    bool m_started = false;
};

} // namespace tw

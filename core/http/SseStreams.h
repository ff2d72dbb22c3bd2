#pragma once

#include "engine/Replay.h"
#include "engine/Subscription.h"
#include "http/EventRenderer.h"
#include "http/HttpAdapter.h"
#include "http/ReplayCache.h"
#include "http/SseServer.h"
#include "http/SseShared.h"
#include "journal/JournalReader.h"
#include "model/ChangeBatch.h"

#include <memory>
#include <optional>
#include <QElapsedTimer>
#include <QHash>
#include <QList>
#include <QObject>

class QTimer;

namespace tw {

class EngineCalls;
class JournalReader;

// The SSE clients of the HTTP thread: each stream replays from the journal, then goes
// live, and committed batches fan out to the live ones. One State per client says where
// it is; everything here runs on the HTTP thread. Replaying clients read their frames
// through one ReplayCache, so clients replaying the same range share one journal read
// and one rendering, as live clients share the frames of a batch.
class SseStreams : public QObject {
    Q_OBJECT
public:
    // Where a client stands, for the metrics.
    struct Position {
        quint64 clientId = 0;
        QString subscriptionId;
        qint64 position = 0; // every seq <= position was handed to its socket or does not match
        qint64 pendingBytes = 0;
    };

    // None of the pointers is owned: they belong to the HttpApi, the parent, and
    // outlive this.
    SseStreams(const SseServer::Options& options, EngineCalls* engineCalls, JournalReader* reader,
               std::shared_ptr<SseShared> shared, QObject* parent);

    // On the HTTP thread once it runs; `head` is the engine's last committed seq.
    void start(qint64 head);
    // Answers `out` with an event stream: from `lastEventId` through the journal, then
    // live; from now when there is none. `adhoc`: the subscription is removed with the
    // client. `cors` are the headers the request earned.
    void open(const HttpRequest& request, HttpResponder&& out, const HttpHeaders& cors,
              const Subscription& subscription, bool adhoc, std::optional<qint64> lastEventId,
              const EventShape& shape);
    void onCommitted(const tw::CommittedBatch& batch);
    // A commit changed what narrowing sources read (Engine::coverageChanged): live
    // clients whose subscription is read again learn what may be missing.
    void onCoverageChanged();

    QStringList subscriptionIds() const { return m_clientsBySubscription.keys(); }
    // Subscriptions as they are now: the clients of each one changed match with its new
    // snapshot from now on, and those that took its shape take the new one. Clients of
    // an unchanged one are left as they are.
    void refreshSubscriptions(const QList<Subscription>& subscriptions);
    // The subscription is gone: its clients get a `deleted` event and are closed.
    void closeSubscription(const QString& subscriptionId);
    // Shutdown: closes every client (ad hoc subscriptions are removed) and the timer.
    void closeAll();

    int clientCount() const { return int(m_clients.size()); }
    int liveCount() const;
    QList<Position> positions() const;

Q_SIGNALS:
    void clientsChanged();

private:
    enum class State {
        // Reading history. Exactly one replay step is queued or running, so a second one
        // is never queued; live events are buffered meanwhile.
        Replaying,
        // The replay paused with more than the high-water mark unsent; the socket's
        // bytes-written handler resumes it. Live events are still buffered.
        WaitingForDrain,
        // Every committed event goes out as its batch arrives.
        Live,
        // Nothing more is written; the connection's closed handler removes the client.
        Closed,
    };

    struct Client {
        quint64 id = 0;
        Subscription subscription; // snapshot, for replay matching
        bool adhoc = false;        // an engine subscription we created for /v1/streams
        EventShape shape;          // what the client receives; clients of one shape share the frames
        // No ?projection= or ?event= of its own: a changed subscription changes its shape.
        bool shapeFollowsSubscription = true;
        HttpResponder out;
        State state = State::Replaying;
        std::optional<Replay> replay; // while replaying; its matcher reads `subscription`
        QByteArray cacheKey;          // the ReplayCache key of `subscription` and `shape`
        qint64 cursor = 0;            // every seq <= cursor was sent to this client or does not match
        qint64 lastSent = 0;          // seq of the last event written
        // Every event the subscription could match from where the client joined through
        // this seq is in the journal, or the client was told it may be missing
        // (settleCoverage).
        qint64 coverageTold = 0;
        // Live, and a narrowing source does not read its subscription yet (or coverage
        // could not be read): its notice is owed from coverageTold on.
        bool coverageWaiting = true;
        ChangeEventList buffer; // live events that arrived during the replay
        std::shared_ptr<SseShared::ClientStats> stats;
    };

    void replayStep(quint64 clientId);
    // One replay step through the cache; false when the journal's own way must take it
    // (the client's cursor is before the prune mark: its gap comes from Replay).
    bool replayFromCache(Client* client);
    void failReplay(Client* client, const QString& error);
    // The journal's head and prune mark, read again at most once a millisecond.
    JournalReader::Bounds journalBounds();
    void publishCacheStats();
    static QByteArray cacheKeyOf(const Subscription& subscription, const EventShape& shape);
    // The live fan-out of every batch received since the last one.
    void flushCommitted();
    void deliver(const QHash<QString, ChangeEventList>& bySubscription, qint64 through);
    void scheduleReplay(Client* client);
    // A paused replay resumes once at most this many bytes wait in user space: through the
    // cache, none (it writes only what the kernel takes); the journal's way writes a
    // high-water mark's worth per step.
    qint64 drainMark() const { return m_cache.isEnabled() ? 0 : m_replayHighWater; }
    void goLive(Client* client);
    // A live client whose subscription a narrowing source does not read yet (one just
    // made, or changed) is checked again on each change of coverage; once the source
    // reads it, the client gets the notice a replay would give, at its cursor, for what
    // committed since it was last known covered (Client::coverageTold).
    void settleCoverage(const QList<Client*>& clients);
    void writeFrame(Client* client, const QByteArray& frame, int events);
    void disconnectSlow(Client* client);
    void removeClient(quint64 clientId);
    void sendKeepAlive();

    SseServer::Options m_options;
    EngineCalls* m_engineCalls; // not owned
    JournalReader* m_reader;    // not owned; the HTTP thread's replay connection
    std::shared_ptr<SseShared> m_shared;
    QTimer* m_keepAlive = nullptr; // owned (child)

    QHash<quint64, std::shared_ptr<Client>> m_clients;
    QHash<QString, QList<quint64>> m_clientsBySubscription;
    quint64 m_nextId = 1;
    qint64 m_head = 0; // highest seq delivered to this thread by committed()
    qint64 m_replayHighWater = 256 * 1024;
    ReplayCache m_cache;
    JournalReader::Bounds m_bounds;         // journalBounds()'s last snapshot
    QElapsedTimer m_boundsAge;              // since m_bounds was read; invalid: never
    QList<CommittedBatch> m_pendingBatches; // received, not yet fanned out (coalesceLive)
    bool m_flushQueued = false;
};

} // namespace tw

#pragma once

#include "engine/Subscription.h"
#include "http/HttpAdapter.h"
#include "http/SseServer.h"
#include "journal/Journal.h"
#include "model/ChangeBatch.h"

#include <atomic>
#include <memory>
#include <optional>
#include <QDateTime>
#include <QHash>
#include <QMutex>
#include <QObject>

class QTimer;

namespace tw {

class Engine;
class SseWorker;

// What the HTTP thread shares with SseServer's thread: counters and client statistics
// read by clients() and the metrics, written with relaxed atomics on the hot path; the
// mutex only guards adding and removing entries.
struct SseShared {
    struct ClientStats {
        quint64 id = 0;
        QString peer;
        QString subscriptionId;
        QDateTime connectedAt;
        std::atomic<qint64> lastSent{0};
        std::atomic<qint64> pending{0};
    };
    mutable QMutex mutex;
    QHash<quint64, std::shared_ptr<ClientStats>> clients;
    // The worker while it may receive posted calls; cleared under `mutex` before it is
    // deleted, so the engine thread never posts to a dead object.
    SseWorker* worker = nullptr;
    std::atomic<qint64> eventsSent{0};
    std::atomic<qint64> slowDisconnects{0};
};

// The HTTP-thread half of SseServer: routes requests, holds the SSE clients and the
// parked long polls, replays from the journal and fans committed batches out.
// Everything here runs on the HTTP thread.
class SseWorker : public QObject {
    Q_OBJECT
public:
    SseWorker(Engine* engine, const SseServer::Options& options, std::shared_ptr<SseShared> shared);
    ~SseWorker() override;

    // Before the move to the HTTP thread, so errors come back to start() at once.
    bool listen(QString* error);
    quint16 port() const;
    // On the HTTP thread once it runs.
    void initOnThread();
    // On the HTTP thread: closes every client and the listening socket.
    void shutdown();

Q_SIGNALS:
    void clientsChanged();

private:
    // An event rendered one way. Bit 0: canonical Extended JSON; bit 1: keys only.
    enum Format { Relaxed = 0, Canonical = 1, KeysOnly = 2, FormatCount = 4 };

    struct Client {
        quint64 id = 0;
        Subscription subscription; // snapshot, for replay matching
        bool adhoc = false;        // an engine subscription we created for /v1/streams
        int format = Relaxed;
        HttpResponder out;
        bool live = false;
        bool closed = false;
        bool replayScheduled = false;
        bool waitingForDrain = false;
        qint64 cursor = 0;      // every seq <= cursor was sent to this client or does not match
        qint64 lastSent = 0;    // seq of the last event written
        ChangeEventList buffer; // live events that arrived during the replay
        std::shared_ptr<SseShared::ClientStats> stats;
    };

    struct Waiter {
        quint64 id = 0;
        QString subscriptionId;
        int format = Relaxed;
        int limit = 100;
        qint64 cursor = 0;
        HttpResponder out;
        QTimer* timer = nullptr; // owned
        QByteArray origin;
    };

    void handle(const HttpRequest& request, HttpResponder&& out);
    void route(const HttpRequest& request, HttpResponder&& out, const QStringList& parts);

    // Endpoints.
    void health(const HttpRequest& request, HttpResponder&& out);
    void metrics(const HttpRequest& request, HttpResponder&& out);
    void listSubscriptions(const HttpRequest& request, HttpResponder&& out);
    void createSubscription(const HttpRequest& request, HttpResponder&& out);
    void getSubscription(const HttpRequest& request, HttpResponder&& out, const QString& id);
    void deleteSubscription(const HttpRequest& request, HttpResponder&& out, const QString& id);
    void subscriptionEvents(const HttpRequest& request, HttpResponder&& out, const QString& id);
    void adhocStream(const HttpRequest& request, HttpResponder&& out);
    void longPoll(const HttpRequest& request, HttpResponder&& out, const QString& id);

    // Responses.
    HttpHeaders corsHeaders(const HttpRequest& request) const;
    bool isOriginAllowed(const QByteArray& origin) const;
    void sendJson(const HttpRequest& request, HttpResponder& out, int status, const QByteArray& json);
    void sendError(const HttpRequest& request, HttpResponder& out, int status, const QString& message);
    bool isAuthorized(const HttpRequest& request) const;
    void preflight(const HttpRequest& request, HttpResponder&& out);

    // SSE clients.
    void openStream(const HttpRequest& request, HttpResponder&& out, const Subscription& subscription,
                    bool adhoc, std::optional<qint64> lastEventId, int format);
    void replayStep(quint64 clientId);
    void scheduleReplay(Client* client);
    void goLive(Client* client);
    void writeFrame(Client* client, const QByteArray& frame, int events);
    void disconnectSlow(Client* client);
    void removeClient(quint64 clientId);
    void closeClientsOf(const QString& subscriptionId);
    void sendKeepAlive();
    void onSubscriptionsChanged();

    // Long polls.
    void answerWaiter(quint64 waiterId, const ChangeEventList& events, qint64 next, bool hasMore);
    QByteArray changesJson(const ChangeEventList& events, int format, qint64 next, bool hasMore,
                           const QByteArray& gapJson = {}) const;

    void onCommitted(const tw::CommittedBatch& batch);
    // Runs `done` on this thread after the engine thread has processed everything
    // queued to it so far (e.g. a new subscription is in its index).
    void afterEngine(std::function<void()> done);

    static QByteArray renderJson(const ChangeEvent& event, int format);
    static QByteArray renderFrame(const ChangeEvent& event, int format);
    std::function<bool(const ChangeEvent&)> matcher(const Subscription& subscription) const;
    static int formatFor(const HttpRequest& request, const Subscription& subscription, QString* error);

    Engine* m_engine; // not owned
    SseServer::Options m_options;
    std::shared_ptr<SseShared> m_shared;
    HttpAdapter* m_http = nullptr; // owned (child)
    JournalReader m_reader;        // this thread's replay connection
    QTimer* m_keepAlive = nullptr; // owned (child)

    QHash<quint64, std::shared_ptr<Client>> m_clients;
    QHash<QString, QList<quint64>> m_clientsBySubscription;
    QHash<quint64, std::shared_ptr<Waiter>> m_waiters;
    quint64 m_nextId = 1;
    qint64 m_head = 0; // highest seq delivered to this thread by committed()
    qint64 m_replayHighWater = 256 * 1024;
};

} // namespace tw

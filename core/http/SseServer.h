#pragma once

#include "http/ReplayCache.h"

#include <atomic>
#include <functional>
#include <memory>
#include <QByteArray>
#include <QDateTime>
#include <QHostAddress>
#include <QJsonObject>
#include <QList>
#include <QMutex>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QThread>
#include <QUrl>

namespace tw {

class Engine;
class HttpApi;
class SourceControl;
struct SseShared;

// The embedded Server-Sent Events server and the subscription HTTP API (see
// DESIGN.md, "Interfaces to the outside"). The object lives on the thread that
// creates it; the sockets and every client live on its own HTTP thread, fed by the
// Engine's committed() signal. An event's frame is built once per format and the same
// bytes go to every client.
class SseServer : public QObject {
    Q_OBJECT
public:
    struct Options {
        QHostAddress address = QHostAddress::LocalHost;
        quint16 port = 0;
        QString token;                    // empty: no authentication (refused on a non-loopback address)
        QStringList corsOrigins;          // exact origins, or "*"
        qint64 maxPendingBytes = 4 << 20; // per client; past it the client is disconnected
        int keepAliveMs = 15000;
        int retryMs = 2000;
        // Hostile-peer limits.
        qint64 maxHeaderBytes = 16 * 1024;
        qint64 maxBodyBytes = 1024 * 1024;
        int requestTimeoutMs = 10000;
        int maxConnections = 10000;
        // The run-time control of sources and watches behind /v1/sources (not owned; it
        // outlives the server). None: those endpoints answer 501.
        SourceControl* control = nullptr;
        // Refuse (404) a stream, subscription or long poll naming a namespace nothing
        // watches. The application sets it; a server fed by Engine::submit() does not.
        bool refuseUnwatched = false;
        // What a front end adds to /v1/health (under "publisher") and to /metrics, such as
        // the NATS publisher's lag. Called on the HTTP thread: must be thread-safe, and
        // what they read must outlive the server.
        std::function<QJsonObject()> publisherHealth;
        std::function<QByteArray()> publisherMetrics;
        // The rendered frames replaying clients share (ReplayCache), in bytes; 0 turns it
        // off. 64 MiB holds about 200 000 frames of 330 bytes: a herd reconnecting from
        // anywhere in the last 100 000 events of a subscription reads each once.
        qint64 replayCacheBytes = qint64(64) << 20;
        // Live batches that queued up on the HTTP thread while it was busy go out in one
        // write per client instead of one per batch; an idle stream still gets each batch
        // as it commits. Off only to measure what it saves (bench_sse coalesce).
        bool coalesceLive = true;
    };

    explicit SseServer(Engine* engine, QObject* parent = nullptr); // engine not owned; must outlive us
    ~SseServer() override;                                         // stops

    // Refuses a non-loopback address without a token; a clear message when the port is
    // in use.
    bool start(const Options& options, QString* error = nullptr);
    // Closes every client; they reconnect with Last-Event-ID and lose nothing.
    void stop();
    bool isRunning() const { return m_running; }
    quint16 port() const { return m_port; }
    QUrl baseUrl() const;
    QString token() const { return m_options.token; }
    Options options() const { return m_options; }

    struct ClientInfo {
        quint64 id = 0;
        QString peer;
        QString subscriptionId;
        qint64 lastSentSeq = 0;
        qint64 pendingBytes = 0;
        QDateTime connectedAt;
    };
    QList<ClientInfo> clients() const; // thread-safe snapshot

    // curl -N -H 'Authorization: Bearer …' http://127.0.0.1:PORT/v1/subscriptions/ID/events
    QString curlCommand(const QString& subscriptionId) const;

    // Counters (any thread).
    qint64 eventsSent() const;
    qint64 slowDisconnects() const;
    // The replay cache's size and use (any thread; updated after each replay step).
    ReplayCache::Stats replayCacheStats() const;

Q_SIGNALS:
    void clientsChanged();
    void started(const QUrl& url);
    void stopped();

private:
    Engine* m_engine; // not owned
    Options m_options;
    bool m_running = false;
    quint16 m_port = 0;
    QThread m_thread;
    HttpApi* m_worker = nullptr; // owned; lives on m_thread, deleted there
    std::shared_ptr<SseShared> m_shared;
};

} // namespace tw

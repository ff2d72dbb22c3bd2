#include "SseServer.h"

#include "engine/Engine.h"
#include "http/HttpApi.h"
#include "http/SseShared.h"
#include "threads/Threads.h"

#include <QUrl>

namespace tw {

SseServer::SseServer(Engine* engine, QObject* parent)
    : QObject(parent)
    , m_engine(engine) {
    m_thread.setObjectName(QStringLiteral("tidewatch-http"));
}

SseServer::~SseServer() {
    stop();
}

bool SseServer::start(const Options& options, QString* error) {
    if (m_running) {
        if (error)
            *error = QStringLiteral("The SSE server is already running on port %1.").arg(m_port);
        return false;
    }
    if (!m_engine) {
        if (error)
            *error = QStringLiteral("The SSE server needs an engine.");
        return false;
    }
    if (!options.address.isLoopback() && options.token.isEmpty()) {
        if (error)
            *error =
                QStringLiteral("Refusing to serve %1 without a token: anyone on the network could read the "
                               "feeds. Set a token (TIDEWATCH_TOKEN) or bind 127.0.0.1.")
                    .arg(options.address.toString());
        return false;
    }
    if (options.maxPendingBytes < 1024 || options.keepAliveMs < 100 || options.retryMs < 0) {
        if (error)
            *error = QStringLiteral(
                "The SSE limits are out of range: maxPendingBytes needs at least 1024 bytes and "
                "keepAliveMs at least 100 ms.");
        return false;
    }
    if (!m_shared)
        m_shared = std::make_shared<SseShared>(); // kept across restarts: the counters keep counting
    auto* worker = new HttpApi(m_engine, options, m_shared);
    // Listening here, on the caller's thread, gives start() its error at once; the
    // listening socket then moves to the HTTP thread with the worker.
    if (!worker->listen(error)) {
        delete worker;
        return false;
    }
    m_port = worker->port();
    m_options = options;
    worker->moveToThread(&m_thread);
    {
        QMutexLocker lock(&m_shared->mutex);
        m_shared->worker = worker;
    }
    m_worker = worker;
    connect(worker, &HttpApi::clientsChanged, this, &SseServer::clientsChanged, Qt::QueuedConnection);
    // Queued before the thread starts, so the start orders it (see Engine::start).
    QMetaObject::invokeMethod(worker, &HttpApi::initOnThread, Qt::QueuedConnection);
    startThread(&m_thread, EventLoop::Poll); // see EventLoop::Poll for why
    m_running = true;
    Q_EMIT started(baseUrl());
    return true;
}

void SseServer::stop() {
    if (!m_running)
        return;
    HttpApi* worker = m_worker;
    // The worker, its sockets and timers are deleted on their own thread, then the
    // thread ends; wait() joins it.
    QMetaObject::invokeMethod(
        worker,
        [worker] {
            worker->shutdown();
            delete worker;
            QThread::currentThread()->quit();
        },
        Qt::QueuedConnection);
    m_thread.wait();
    m_worker = nullptr;
    m_running = false;
    m_port = 0;
    Q_EMIT clientsChanged();
    Q_EMIT stopped();
}

QUrl SseServer::baseUrl() const {
    if (!m_running)
        return {};
    QUrl url;
    url.setScheme(QStringLiteral("http"));
    const QHostAddress& a = m_options.address;
    // A wildcard bind is reachable on loopback; that is the address to show locally.
    if (a == QHostAddress::Any || a == QHostAddress::AnyIPv4)
        url.setHost(QStringLiteral("127.0.0.1"));
    else if (a == QHostAddress::AnyIPv6)
        url.setHost(QStringLiteral("::1"));
    else
        url.setHost(a.toString());
    url.setPort(m_port);
    return url;
}

QList<SseServer::ClientInfo> SseServer::clients() const {
    QList<ClientInfo> list;
    if (!m_shared)
        return list;
    QMutexLocker lock(&m_shared->mutex);
    list.reserve(m_shared->clients.size());
    for (const auto& stats : std::as_const(m_shared->clients))
        list.append(ClientInfo{stats->id, stats->peer, stats->subscriptionId,
                               stats->lastSent.load(std::memory_order_relaxed),
                               stats->pending.load(std::memory_order_relaxed), stats->connectedAt});
    std::sort(list.begin(), list.end(), [](const ClientInfo& a, const ClientInfo& b) { return a.id < b.id; });
    return list;
}

QString SseServer::curlCommand(const QString& subscriptionId) const {
    QUrl url = baseUrl();
    if (url.isEmpty()) {
        url = QUrl(QStringLiteral("http://127.0.0.1"));
        url.setPort(m_options.port ? m_options.port : 8787);
    }
    const QString path = QStringLiteral("/v1/subscriptions/%1/events")
                             .arg(QString::fromUtf8(QUrl::toPercentEncoding(subscriptionId)));
    const QString target = url.toString(QUrl::RemovePath) + path;
    if (m_options.token.isEmpty())
        return QStringLiteral("curl -N %1").arg(target);
    return QStringLiteral("curl -N -H 'Authorization: Bearer %1' %2").arg(m_options.token, target);
}

qint64 SseServer::eventsSent() const {
    return m_shared ? m_shared->eventsSent.load(std::memory_order_relaxed) : 0;
}

qint64 SseServer::slowDisconnects() const {
    return m_shared ? m_shared->slowDisconnects.load(std::memory_order_relaxed) : 0;
}

ReplayCache::Stats SseServer::replayCacheStats() const {
    if (!m_shared)
        return {};
    QMutexLocker lock(&m_shared->mutex);
    return m_shared->replayCache;
}

} // namespace tw

#include "SseWorker.h"

#include "engine/Engine.h"

#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLoggingCategory>
#include <QRandomGenerator>
#include <QTimer>

Q_LOGGING_CATEGORY(lcSse, "tidewatch.sse")

namespace tw {

namespace {

// Replay reads this many matching events per step, then yields to the event loop so
// other clients and the live fan-out keep moving while a long history is sent.
constexpr int kReplayChunk = 500;
// While replaying, live events are kept in memory only up to this many; past it they
// are dropped and the replay reads them from the journal instead.
constexpr qsizetype kReplayBufferCap = 50000;
constexpr int kMaxLongPollLimit = 10000;
constexpr int kMaxLongPollTimeoutS = 300;

QByteArray jsonString(const QString& text) {
    // QJsonDocument escapes exactly as JSON requires; strip the array brackets.
    const QByteArray array = QJsonDocument(QJsonArray{text}).toJson(QJsonDocument::Compact);
    return array.mid(1, array.size() - 2);
}

bool constantTimeEquals(const QByteArray& a, const QByteArray& b) {
    // Compares every byte whatever the first mismatch, so response time says nothing
    // about how much of a guessed token was right.
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    const qsizetype n = std::max(a.size(), b.size());
    for (qsizetype i = 0; i < n; ++i) {
        const unsigned char x = i < a.size() ? uchar(a[i]) : 0;
        const unsigned char y = i < b.size() ? uchar(b[i]) : 0;
        diff |= x ^ y;
    }
    return diff == 0;
}

QByteArray promLabel(const QString& value) {
    QByteArray out = value.toUtf8();
    out.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    return out;
}

bool parseSeq(const QString& text, qint64* seq) {
    bool ok = false;
    const qint64 value = text.trimmed().toLongLong(&ok);
    if (!ok || value < 0)
        return false;
    *seq = value;
    return true;
}

// The resume point of a stream: the Last-Event-ID header, or lastEventId in the query
// (EventSource cannot set headers on its first request). False with a message when it
// is not an event id.
bool lastEventIdOf(const HttpRequest& request, std::optional<qint64>* lastEventId, QString* error) {
    QString text = QString::fromUtf8(request.header("last-event-id"));
    if (text.isEmpty())
        text = request.queryValue(QStringLiteral("lastEventId"));
    if (text.isEmpty())
        return true;
    qint64 seq = 0;
    if (!parseSeq(text, &seq)) {
        *error = QStringLiteral("Last-Event-ID must be an event id (a non-negative integer), not \"%1\"")
                     .arg(text.left(40));
        return false;
    }
    *lastEventId = seq;
    return true;
}

const HttpHeaders& jsonType() {
    static const HttpHeaders headers = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
    return headers;
}

} // namespace

SseWorker::SseWorker(Engine* engine, const SseServer::Options& options, std::shared_ptr<SseShared> shared)
    : m_engine(engine)
    , m_options(options)
    , m_shared(std::move(shared)) {
    m_http = new HttpAdapter(
        [this](const HttpRequest& request, HttpResponder&& out) { handle(request, std::move(out)); }, this);
    HttpAdapter::Limits limits;
    limits.maxHeaderBytes = options.maxHeaderBytes;
    limits.maxBodyBytes = options.maxBodyBytes;
    limits.requestTimeoutMs = options.requestTimeoutMs;
    limits.maxConnections = options.maxConnections;
    m_http->setLimits(limits);
    // A replay pauses above this many unsent bytes, well before the slow-client cap.
    m_replayHighWater =
        std::max<qint64>(16 * 1024, std::min<qint64>(256 * 1024, options.maxPendingBytes / 4));
}

SseWorker::~SseWorker() {
    for (const auto& waiter : std::as_const(m_waiters))
        delete waiter->timer;
}

bool SseWorker::listen(QString* error) {
    return m_http->listen(m_options.address, m_options.port, error);
}

quint16 SseWorker::port() const {
    return m_http->port();
}

void SseWorker::initOnThread() {
    QString error;
    if (!m_reader.open(m_engine->journalPath(), &error))
        qCWarning(lcSse).noquote() << "cannot open the journal for replay:" << error;
    m_head = m_engine->lastCommittedSeq();
    connect(m_engine, &Engine::committed, this, &SseWorker::onCommitted, Qt::QueuedConnection);
    connect(m_engine, &Engine::subscriptionsChanged, this, &SseWorker::onSubscriptionsChanged,
            Qt::QueuedConnection);
    m_keepAlive = new QTimer(this);
    m_keepAlive->setInterval(std::max(100, m_options.keepAliveMs));
    connect(m_keepAlive, &QTimer::timeout, this, &SseWorker::sendKeepAlive);
    m_keepAlive->start();
}

void SseWorker::shutdown() {
    {
        QMutexLocker lock(&m_shared->mutex);
        m_shared->worker = nullptr;
        m_shared->clients.clear();
    }
    disconnect(m_engine, nullptr, this, nullptr);
    const QList<quint64> ids = m_clients.keys();
    for (quint64 id : ids) {
        const auto client = m_clients.value(id);
        if (client->adhoc)
            m_engine->removeSubscription(client->subscription.id);
        client->out.close();
    }
    m_clients.clear();
    m_clientsBySubscription.clear();
    for (const auto& waiter : std::as_const(m_waiters)) {
        waiter->out.close();
        delete waiter->timer;
        waiter->timer = nullptr;
    }
    m_waiters.clear();
    delete m_keepAlive;
    m_keepAlive = nullptr;
    m_http->closeAll();
}

// --- requests --------------------------------------------------------------------------

void SseWorker::handle(const HttpRequest& request, HttpResponder&& out) {
    if (request.method == HttpRequest::Method::Options)
        return preflight(request, std::move(out));
    // Authentication before routing: without the token nothing, not even whether a
    // path or a subscription exists, is revealed.
    if (!isAuthorized(request)) {
        HttpHeaders headers = corsHeaders(request);
        headers.emplaceBack("WWW-Authenticate", "Bearer realm=\"tidewatch\"");
        headers.emplaceBack("Content-Type", "application/json");
        out.send(401, headers, QByteArrayLiteral("{\"error\":\"unauthorized\"}"));
        return;
    }
    QStringList parts = request.path.split(QLatin1Char('/'), Qt::SkipEmptyParts);
    route(request, std::move(out), parts);
}

void SseWorker::route(const HttpRequest& request, HttpResponder&& out, const QStringList& parts) {
    using M = HttpRequest::Method;
    const M method = request.method;
    auto methodNotAllowed = [&](const QByteArray& allow) {
        HttpHeaders headers = corsHeaders(request);
        headers.emplaceBack("Allow", allow);
        headers.emplaceBack("Content-Type", "application/json");
        out.send(405, headers, "{\"error\":\"method not allowed; use " + allow + "\"}");
    };

    if (parts == QStringList{QStringLiteral("metrics")})
        return method == M::Get ? metrics(request, std::move(out)) : methodNotAllowed("GET");
    if (parts.size() < 2 || parts[0] != QLatin1String("v1"))
        return sendError(request, out, 404, QStringLiteral("no such endpoint: %1").arg(request.path));
    const QString& area = parts[1];
    if (area == QLatin1String("health") && parts.size() == 2)
        return method == M::Get ? health(request, std::move(out)) : methodNotAllowed("GET");
    if (area == QLatin1String("streams") && parts.size() == 2)
        return method == M::Get ? adhocStream(request, std::move(out)) : methodNotAllowed("GET");
    if (area == QLatin1String("subscriptions")) {
        if (parts.size() == 2) {
            if (method == M::Get)
                return listSubscriptions(request, std::move(out));
            if (method == M::Post)
                return createSubscription(request, std::move(out));
            return methodNotAllowed("GET, POST");
        }
        const QString& id = parts[2];
        if (parts.size() == 3) {
            if (method == M::Get)
                return getSubscription(request, std::move(out), id);
            if (method == M::Delete)
                return deleteSubscription(request, std::move(out), id);
            return methodNotAllowed("GET, DELETE");
        }
        if (parts.size() == 4 && parts[3] == QLatin1String("events"))
            return method == M::Get ? subscriptionEvents(request, std::move(out), id)
                                    : methodNotAllowed("GET");
        if (parts.size() == 4 && parts[3] == QLatin1String("changes"))
            return method == M::Get ? longPoll(request, std::move(out), id) : methodNotAllowed("GET");
    }
    sendError(request, out, 404, QStringLiteral("no such endpoint: %1").arg(request.path));
}

bool SseWorker::isAuthorized(const HttpRequest& request) const {
    if (m_options.token.isEmpty())
        return true;
    const QByteArray expected = m_options.token.toUtf8();
    const QByteArray authorization = request.header("authorization").trimmed();
    if (authorization.size() > 7 && authorization.left(7).compare("bearer ", Qt::CaseInsensitive) == 0)
        return constantTimeEquals(authorization.mid(7).trimmed(), expected);
    // EventSource cannot set headers, so the token may come in the query.
    const QString query = request.queryValue(QStringLiteral("access_token"));
    if (!query.isEmpty())
        return constantTimeEquals(query.toUtf8(), expected);
    return false;
}

bool SseWorker::isOriginAllowed(const QByteArray& origin) const {
    if (origin.isEmpty())
        return false;
    for (const QString& allowed : m_options.corsOrigins)
        if (allowed == QLatin1String("*") || allowed.toUtf8() == origin)
            return true;
    return false;
}

HttpHeaders SseWorker::corsHeaders(const HttpRequest& request) const {
    const QByteArray origin = request.header("origin");
    if (!isOriginAllowed(origin))
        return {};
    return {{"Access-Control-Allow-Origin", origin}, {"Vary", "Origin"}};
}

void SseWorker::preflight(const HttpRequest& request, HttpResponder&& out) {
    const QByteArray origin = request.header("origin");
    if (origin.isEmpty()) {
        out.send(204, {{"Allow", "GET, POST, DELETE, OPTIONS"}}, {});
        return;
    }
    if (!isOriginAllowed(origin)) {
        // No CORS headers: the browser refuses the real request.
        out.send(403, {{"Content-Type", "application/json"}, {"Vary", "Origin"}},
                 QByteArrayLiteral("{\"error\":\"origin not allowed\"}"));
        return;
    }
    out.send(204,
             {{"Access-Control-Allow-Origin", origin},
              {"Vary", "Origin"},
              {"Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"},
              {"Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID, Cache-Control"},
              {"Access-Control-Max-Age", "600"}},
             {});
}

void SseWorker::sendJson(const HttpRequest& request, HttpResponder& out, int status, const QByteArray& json) {
    HttpHeaders headers = corsHeaders(request);
    headers.append(jsonType());
    out.send(status, headers, json);
}

void SseWorker::sendError(const HttpRequest& request, HttpResponder& out, int status,
                          const QString& message) {
    sendJson(request, out, status, "{\"error\":" + jsonString(message) + "}");
}

// --- health, metrics -----------------------------------------------------------------------

void SseWorker::health(const HttpRequest& request, HttpResponder&& out) {
    const QHash<QString, SourceStatus> statuses = m_engine->sourceStatuses();
    QStringList ids = statuses.keys();
    ids.sort();
    QJsonArray sources;
    bool degraded = false;
    for (const QString& id : std::as_const(ids)) {
        const SourceStatus& s = statuses[id];
        QJsonObject o{{QStringLiteral("id"), id},
                      {QStringLiteral("uri"), m_engine->sourceUri(id)},
                      {QStringLiteral("state"), s.stateName().toLower()},
                      {QStringLiteral("reconnects"), s.reconnects}};
        if (!s.reason.isEmpty())
            o.insert(QStringLiteral("reason"), s.reason);
        if (s.nextRetry.isValid())
            o.insert(QStringLiteral("nextRetry"), s.nextRetry.toUTC().toString(Qt::ISODateWithMs));
        if (s.lastEventMs > 0)
            o.insert(QStringLiteral("lastEventMs"), s.lastEventMs);
        degraded =
            degraded || s.state == SourceStatus::State::Error || s.state == SourceStatus::State::Backoff;
        sources.append(o);
    }
    int live = 0;
    for (const auto& c : std::as_const(m_clients))
        live += c->live ? 1 : 0;
    const QJsonObject body{
        {QStringLiteral("status"), degraded ? QStringLiteral("degraded") : QStringLiteral("ok")},
        {QStringLiteral("version"), QStringLiteral(TIDEWATCH_VERSION)},
        {QStringLiteral("engine"),
         m_engine->isRunning() ? QStringLiteral("running") : QStringLiteral("stopped")},
        {QStringLiteral("lastSeq"), m_engine->lastCommittedSeq()},
        {QStringLiteral("eventsCommitted"), m_engine->eventsCommitted()},
        {QStringLiteral("sources"), sources},
        {QStringLiteral("sse"), QJsonObject{{QStringLiteral("clients"), int(m_clients.size())},
                                            {QStringLiteral("live"), live},
                                            {QStringLiteral("longPolls"), int(m_waiters.size())}}},
    };
    sendJson(request, out, 200, QJsonDocument(body).toJson(QJsonDocument::Compact));
}

void SseWorker::metrics(const HttpRequest& request, HttpResponder&& out) {
    const qint64 committedHead = m_engine->lastCommittedSeq();
    qint64 journalBytes = 0;
    for (const char* suffix : {"", "-wal"}) {
        const QFileInfo info(m_engine->journalPath() + QLatin1String(suffix));
        if (info.exists())
            journalBytes += info.size();
    }
    QByteArray text;
    text.reserve(4096 + m_clients.size() * 160);
    auto metric = [&text](const char* name, const char* type, const char* help, qint64 value) {
        text += QByteArray("# HELP ") + name + ' ' + help + "\n# TYPE " + name + ' ' + type + '\n' + name +
                ' ' + QByteArray::number(value) + '\n';
    };
    metric("tidewatch_events_committed_total", "counter", "Events committed to the journal by this process.",
           m_engine->eventsCommitted());
    metric("tidewatch_journal_last_seq", "gauge", "Sequence id of the newest committed event.",
           committedHead);
    metric("tidewatch_journal_bytes", "gauge", "Size of the journal on disk (main file and WAL).",
           journalBytes);
    metric("tidewatch_events_sent_total", "counter", "Events written to SSE clients (one per client).",
           m_shared->eventsSent.load(std::memory_order_relaxed));
    metric("tidewatch_sse_clients", "gauge", "Connected SSE clients.", m_clients.size());
    metric("tidewatch_sse_slow_disconnects_total", "counter",
           "SSE clients disconnected because they fell further behind than the pending-bytes cap.",
           m_shared->slowDisconnects.load(std::memory_order_relaxed));
    metric("tidewatch_longpoll_waiting", "gauge", "Long polls waiting for a change.", m_waiters.size());
    metric("tidewatch_http_rejected_total", "counter",
           "Requests refused for oversized headers or bodies, or past the connection limit.",
           m_http->rejectedRequests());
    metric("tidewatch_http_timeouts_total", "counter",
           "Connections closed for not completing a request in time.", m_http->timedOutConnections());
    text += "# HELP tidewatch_sse_client_lag Committed events not yet handed to the client's socket.\n"
            "# TYPE tidewatch_sse_client_lag gauge\n";
    QByteArray pending =
        "# HELP tidewatch_sse_client_pending_bytes Bytes written for the client that the kernel has "
        "not taken yet.\n# TYPE tidewatch_sse_client_pending_bytes gauge\n";
    for (const auto& c : std::as_const(m_clients)) {
        const QByteArray labels = "{client=\"" + QByteArray::number(c->id) + "\",subscription=\"" +
                                  promLabel(c->subscription.id) + "\"}";
        const qint64 bytes = c->out.pendingBytes();
        // A live client with nothing pending has everything this thread has seen.
        const qint64 position = c->live && bytes == 0 ? std::max(m_head, c->cursor) : c->cursor;
        text += "tidewatch_sse_client_lag" + labels + ' ' +
                QByteArray::number(std::max<qint64>(0, committedHead - position)) + '\n';
        pending += "tidewatch_sse_client_pending_bytes" + labels + ' ' + QByteArray::number(bytes) + '\n';
    }
    text += pending;
    HttpHeaders headers = corsHeaders(request);
    headers.emplaceBack("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    out.send(200, headers, text);
}

// --- subscriptions -------------------------------------------------------------------------

void SseWorker::listSubscriptions(const HttpRequest& request, HttpResponder&& out) {
    const SubscriptionList list = m_engine->subscriptions();
    QByteArray json = "{\"subscriptions\":[";
    for (qsizetype i = 0; i < list.size(); ++i) {
        if (i)
            json += ',';
        json += list[i].toJson();
    }
    json += "],\"next\":\"" + QByteArray::number(m_engine->lastCommittedSeq()) + "\"}";
    sendJson(request, out, 200, json);
}

void SseWorker::getSubscription(const HttpRequest& request, HttpResponder&& out, const QString& id) {
    const std::optional<Subscription> sub = m_engine->subscription(id);
    if (!sub)
        return sendError(request, out, 404, QStringLiteral("no subscription with id \"%1\"").arg(id));
    sendJson(request, out, 200, sub->toJson());
}

void SseWorker::createSubscription(const HttpRequest& request, HttpResponder&& out) {
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(request.body, &parseError);
    if (parseError.error != QJsonParseError::NoError)
        return sendError(request, out, 400,
                         QStringLiteral("malformed JSON at offset %1: %2")
                             .arg(parseError.offset)
                             .arg(parseError.errorString()));
    if (!doc.isObject())
        return sendError(
            request, out, 400,
            QStringLiteral("the body must be a JSON object: {\"namespaces\":[…], \"filter\":{…}}"));
    QString error;
    Subscription sub = Subscription::fromJson(request.body, &error);
    if (!error.isEmpty())
        return sendError(request, out, 400, error);
    if (!sub.id.isEmpty() && m_engine->subscription(sub.id))
        return sendError(request, out, 409,
                         QStringLiteral("a subscription with id \"%1\" exists already").arg(sub.id));
    // Every event after `next` reaches the subscription: the ones committed before the
    // engine indexed it are read from the journal by replay and long poll.
    const qint64 next = m_engine->lastCommittedSeq();
    sub = m_engine->addSubscription(sub);
    // Answer once the engine routes to it, so a client that connects with
    // Last-Event-ID = next straight away cannot miss a live event.
    auto responder = std::make_shared<HttpResponder>(std::move(out));
    const HttpHeaders cors = corsHeaders(request);
    afterEngine([responder, cors, sub, next] {
        HttpHeaders headers = cors;
        headers.append(jsonType());
        headers.emplaceBack("Location", "/v1/subscriptions/" + QUrl::toPercentEncoding(sub.id));
        responder->send(201, headers,
                        "{\"id\":" + jsonString(sub.id) + ",\"next\":\"" + QByteArray::number(next) +
                            "\",\"subscription\":" + sub.toJson() + "}");
    });
}

void SseWorker::deleteSubscription(const HttpRequest& request, HttpResponder&& out, const QString& id) {
    if (!m_engine->removeSubscription(id))
        return sendError(request, out, 404, QStringLiteral("no subscription with id \"%1\"").arg(id));
    closeClientsOf(id);
    HttpHeaders headers = corsHeaders(request);
    out.send(204, headers, {});
}

void SseWorker::onSubscriptionsChanged() {
    // A subscription removed elsewhere (the UI) ends its streams; a changed one
    // refreshes the snapshot replay matches with.
    const QStringList ids = m_clientsBySubscription.keys();
    for (const QString& id : ids) {
        const std::optional<Subscription> sub = m_engine->subscription(id);
        if (!sub) {
            closeClientsOf(id);
            continue;
        }
        for (quint64 clientId : m_clientsBySubscription.value(id))
            if (const auto client = m_clients.value(clientId))
                client->subscription = *sub;
    }
}

int SseWorker::formatFor(const HttpRequest& request, const Subscription& subscription, QString* error) {
    int format = subscription.projection == Subscription::Projection::KeysOnly ? KeysOnly : Relaxed;
    const QString json = request.queryValue(QStringLiteral("format"));
    if (json == QLatin1String("canonical"))
        format |= Canonical;
    else if (!json.isEmpty() && json != QLatin1String("relaxed"))
        *error = QStringLiteral("format must be \"relaxed\" or \"canonical\", not \"%1\"").arg(json);
    const QString projection = request.queryValue(QStringLiteral("projection"));
    if (projection == QLatin1String("keys"))
        format |= KeysOnly;
    else if (projection == QLatin1String("full"))
        format &= ~KeysOnly;
    else if (!projection.isEmpty())
        *error = QStringLiteral("projection must be \"full\" or \"keys\", not \"%1\"").arg(projection);
    return format;
}

std::function<bool(const ChangeEvent&)> SseWorker::matcher(const Subscription& subscription) const {
    return [subscription](const ChangeEvent& event) { return subscription.matches(event); };
}

// --- SSE -------------------------------------------------------------------------------------

void SseWorker::subscriptionEvents(const HttpRequest& request, HttpResponder&& out, const QString& id) {
    const std::optional<Subscription> sub = m_engine->subscription(id);
    if (!sub)
        return sendError(request, out, 404, QStringLiteral("no subscription with id \"%1\"").arg(id));
    QString error;
    const int format = formatFor(request, *sub, &error);
    if (!error.isEmpty())
        return sendError(request, out, 400, error);
    std::optional<qint64> lastEventId;
    if (!lastEventIdOf(request, &lastEventId, &error))
        return sendError(request, out, 400, error);
    openStream(request, std::move(out), *sub, false, lastEventId, format);
}

void SseWorker::adhocStream(const HttpRequest& request, HttpResponder&& out) {
    Subscription sub;
    const QString source = request.queryValue(QStringLiteral("source"));
    const QStringList namespaces = request.queryValues(QStringLiteral("ns"));
    for (const QString& text : namespaces) {
        if (text.trimmed().isEmpty())
            return sendError(request, out, 400, QStringLiteral("ns must be db.coll or db, not empty"));
        sub.namespaces.append(SourceNamespace{source, Namespace::fromString(text.trimmed())});
    }
    if (namespaces.isEmpty() && !source.isEmpty())
        sub.namespaces.append(SourceNamespace{source, Namespace()});
    const QString filterText = request.queryValue(QStringLiteral("filter"));
    if (!filterText.isEmpty()) {
        QString error;
        sub.filter = Filter::compile(filterText.toUtf8(), &error);
        if (!sub.filter.isValid())
            return sendError(request, out, 400, QStringLiteral("filter: %1").arg(error));
    }
    QString error;
    const QString projection = request.queryValue(QStringLiteral("projection"));
    if (projection == QLatin1String("keys"))
        sub.projection = Subscription::Projection::KeysOnly;
    const int format = formatFor(request, sub, &error);
    if (!error.isEmpty())
        return sendError(request, out, 400, error);
    std::optional<qint64> lastEventId;
    if (!lastEventIdOf(request, &lastEventId, &error))
        return sendError(request, out, 400, error);
    sub.id = QStringLiteral("stream-") + QString::number(QRandomGenerator::global()->generate64(), 36);
    sub.name = QStringLiteral("ad hoc stream for %1").arg(request.peer);
    sub.persistent = false;
    sub = m_engine->addSubscription(sub);
    // The stream opens once the engine routes to the new subscription, so `ready`
    // keeps its promise.
    auto responder = std::make_shared<HttpResponder>(std::move(out));
    auto kept = std::make_shared<HttpRequest>(request);
    afterEngine([this, responder, kept, sub, lastEventId, format] {
        if (!responder->isOpen()) {
            m_engine->removeSubscription(sub.id);
            return;
        }
        openStream(*kept, std::move(*responder), sub, true, lastEventId, format);
    });
}

void SseWorker::openStream(const HttpRequest& request, HttpResponder&& out, const Subscription& subscription,
                           bool adhoc, std::optional<qint64> lastEventId, int format) {
    HttpHeaders headers = corsHeaders(request);
    headers.emplaceBack("Content-Type", "text/event-stream; charset=utf-8");
    headers.emplaceBack("Cache-Control", "no-cache");
    // Reverse proxies (nginx) otherwise buffer the stream.
    headers.emplaceBack("X-Accel-Buffering", "no");
    headers.emplaceBack("Connection", "close");
    out.beginStream(200, headers);
    HttpAdapter::setLongLived(out, true);

    auto client = std::make_shared<Client>();
    client->id = m_nextId++;
    client->subscription = subscription;
    client->adhoc = adhoc;
    client->format = format;
    client->out = std::move(out);
    client->stats = std::make_shared<SseShared::ClientStats>();
    client->stats->id = client->id;
    client->stats->peer = request.peer;
    client->stats->subscriptionId = subscription.id;
    client->stats->connectedAt = QDateTime::currentDateTimeUtc();
    const quint64 id = client->id;
    // Registered for live events before anything is read from the journal: whatever
    // commits from now on is either read by the replay or buffered, never missed.
    m_clients.insert(id, client);
    m_clientsBySubscription[subscription.id].append(id);
    {
        QMutexLocker lock(&m_shared->mutex);
        m_shared->clients.insert(id, client->stats);
    }
    client->out.setClosedHandler(this, [this, id] { removeClient(id); });
    client->out.setBytesWrittenHandler(this, [this, id] {
        const auto c = m_clients.value(id);
        if (!c)
            return;
        c->stats->pending.store(c->out.pendingBytes(), std::memory_order_relaxed);
        if (c->waitingForDrain && c->out.pendingBytes() <= m_replayHighWater) {
            c->waitingForDrain = false;
            scheduleReplay(c.get());
        }
    });
    Q_EMIT clientsChanged();

    client->out.write("retry: " + QByteArray::number(m_options.retryMs) + "\n\n");
    if (!lastEventId) {
        client->cursor = m_engine->lastCommittedSeq();
        goLive(client.get());
        return;
    }
    const qint64 head = m_reader.lastSeq();
    if (*lastEventId > head) {
        // An id this journal never issued (a journal that was reset, a client of
        // another instance): say so, and carry on from now.
        const JournalReader::Result first = m_reader.readAfter(0, 1);
        const qint64 firstAvailable = first.events.isEmpty() ? head + 1 : first.events.first().seq();
        const QByteArray data =
            "{\"operationType\":\"gap\",\"reason\":" +
            jsonString(
                QStringLiteral("event id %1 is unknown: the newest is %2").arg(*lastEventId).arg(head)) +
            ",\"requested\":" + QByteArray::number(*lastEventId) +
            ",\"firstAvailable\":" + QByteArray::number(firstAvailable) +
            ",\"resumeAfter\":" + QByteArray::number(head) + "}";
        writeFrame(client.get(), "id: " + QByteArray::number(head) + "\nevent: gap\ndata: " + data + "\n\n",
                   0);
        client->cursor = head;
        goLive(client.get());
        return;
    }
    client->cursor = *lastEventId;
    replayStep(id);
}

void SseWorker::scheduleReplay(Client* client) {
    if (client->replayScheduled || client->live || client->closed)
        return;
    client->replayScheduled = true;
    const quint64 id = client->id;
    QMetaObject::invokeMethod(
        this, [this, id] { replayStep(id); }, Qt::QueuedConnection);
}

void SseWorker::replayStep(quint64 clientId) {
    const auto client = m_clients.value(clientId);
    if (!client || client->closed || client->live)
        return;
    client->replayScheduled = false;
    if (client->out.pendingBytes() > m_replayHighWater) {
        // Resumed from the bytesWritten handler: a replay never trips the slow-client
        // cap by itself.
        client->waitingForDrain = true;
        return;
    }
    const JournalReader::Result r =
        m_reader.readAfter(client->cursor, kReplayChunk, matcher(client->subscription));
    if (!r.error.isEmpty()) {
        qCWarning(lcSse).noquote() << "replay for client" << clientId << "failed:" << r.error;
        client->out.write(": replay failed: " + r.error.toUtf8().replace('\n', ' ') + "\n\n");
        client->closed = true;
        client->out.close();
        return;
    }
    if (r.gap) {
        const QByteArray data =
            "{\"operationType\":\"gap\",\"reason\":" +
            jsonString(
                QStringLiteral("events after %1 were removed by retention; the first still stored is %2")
                    .arg(client->cursor)
                    .arg(r.firstAvailable)) +
            ",\"requested\":" + QByteArray::number(client->cursor) +
            ",\"firstAvailable\":" + QByteArray::number(r.firstAvailable) + "}";
        writeFrame(client.get(),
                   "id: " + QByteArray::number(r.firstAvailable - 1) + "\nevent: gap\ndata: " + data + "\n\n",
                   0);
    }
    // Without more to read, every row up to the head of this snapshot was looked at.
    qint64 cursor = r.hasMore ? r.scannedThrough : std::max(r.scannedThrough, r.lastSeq);
    bool more = r.hasMore;
    if (!r.events.isEmpty()) {
        QByteArray bytes;
        int count = 0;
        for (const ChangeEvent& e : r.events) {
            bytes += renderFrame(e, client->format);
            ++count;
            client->lastSent = e.seq();
            // One step writes about a high-water mark's worth, so a history of large
            // events never piles up past the slow-client cap; the rest is read again.
            if (bytes.size() >= m_replayHighWater && count < r.events.size()) {
                cursor = e.seq();
                more = true;
                break;
            }
        }
        writeFrame(client.get(), bytes, count);
    }
    client->cursor = cursor;
    if (client->closed)
        return;
    if (more)
        scheduleReplay(client.get());
    else
        goLive(client.get());
}

void SseWorker::goLive(Client* client) {
    // Live events that arrived during the replay: the ones the journal read already
    // covered (seq <= cursor) are skipped, the rest go out in order.
    QByteArray bytes;
    int count = 0;
    for (const ChangeEvent& e : std::as_const(client->buffer)) {
        if (e.seq() <= client->cursor)
            continue;
        bytes += renderFrame(e, client->format);
        client->cursor = e.seq();
        client->lastSent = e.seq();
        ++count;
    }
    client->buffer.clear();
    client->buffer.squeeze();
    if (count)
        writeFrame(client, bytes, count);
    client->live = true;
    writeFrame(client,
               "id: " + QByteArray::number(client->cursor) +
                   "\nevent: ready\ndata: {\"lastEventId\":" + QByteArray::number(client->cursor) +
                   ",\"subscription\":" + jsonString(client->subscription.id) + "}\n\n",
               0);
}

void SseWorker::writeFrame(Client* client, const QByteArray& frame, int events) {
    if (client->closed)
        return;
    // Slow means the bytes of earlier writes are still waiting: one large batch to a
    // client that keeps up is not a reason to drop it.
    if (client->out.pendingBytes() > m_options.maxPendingBytes)
        return disconnectSlow(client);
    client->out.write(frame);
    if (events) {
        m_shared->eventsSent.fetch_add(events, std::memory_order_relaxed);
        client->stats->lastSent.store(client->lastSent, std::memory_order_relaxed);
    }
    client->stats->pending.store(client->out.pendingBytes(), std::memory_order_relaxed);
}

void SseWorker::disconnectSlow(Client* client) {
    qCInfo(lcSse).noquote() << "client" << client->id << "of" << client->subscription.id << "fell"
                            << client->out.pendingBytes()
                            << "bytes behind; disconnected (it resumes from its "
                            << "Last-Event-ID)";
    m_shared->slowDisconnects.fetch_add(1, std::memory_order_relaxed);
    client->closed = true;
    // Unsent bytes are dropped with the connection; the client's Last-Event-ID is the
    // last event it fully received, so its reconnect replays from there.
    client->out.close();
}

void SseWorker::removeClient(quint64 clientId) {
    const auto client = m_clients.take(clientId);
    if (!client)
        return;
    client->closed = true;
    auto it = m_clientsBySubscription.find(client->subscription.id);
    if (it != m_clientsBySubscription.end()) {
        it->removeOne(clientId);
        if (it->isEmpty())
            m_clientsBySubscription.erase(it);
    }
    {
        QMutexLocker lock(&m_shared->mutex);
        m_shared->clients.remove(clientId);
    }
    if (client->adhoc)
        m_engine->removeSubscription(client->subscription.id);
    Q_EMIT clientsChanged();
}

void SseWorker::closeClientsOf(const QString& subscriptionId) {
    for (quint64 id : m_clientsBySubscription.value(subscriptionId)) {
        if (const auto client = m_clients.value(id)) {
            client->out.write(QByteArrayLiteral("event: deleted\ndata: {\"subscription\":") +
                              jsonString(subscriptionId) + "}\n\n");
            client->closed = true;
            client->out.close();
        }
    }
    for (const auto& waiter : std::as_const(m_waiters))
        if (waiter->subscriptionId == subscriptionId)
            waiter->out.close();
}

void SseWorker::sendKeepAlive() {
    // Only idle connections need one; a client with bytes still queued is not idle, and
    // a comment must not be what pushes it over the slow-client cap.
    static const QByteArray comment = QByteArrayLiteral(": keep-alive\n\n");
    for (const auto& client : std::as_const(m_clients))
        if (client->out.pendingBytes() == 0)
            writeFrame(client.get(), comment, 0);
}

// --- rendering ---------------------------------------------------------------------------

QByteArray SseWorker::renderJson(const ChangeEvent& event, int format) {
    if (format == Relaxed)
        return event.toJson(); // rendered once at commit
    Bson doc = event.document();
    if (format & KeysOnly) {
        bson_t source;
        if (doc.view(&source)) {
            bson_t stripped;
            bson_init(&stripped);
            bson_copy_to_excluding_noinit(&source, &stripped, "fullDocument", "fullDocumentBeforeChange",
                                          static_cast<const char*>(nullptr));
            doc = Bson::fromBsonT(&stripped);
            bson_destroy(&stripped);
        }
    }
    return doc.toJson(format & Canonical ? Bson::JsonMode::Canonical : Bson::JsonMode::Relaxed);
}

QByteArray SseWorker::renderFrame(const ChangeEvent& event, int format) {
    const QByteArray json = renderJson(event, format);
    const QByteArray op = event.operationType();
    QByteArray frame;
    frame.reserve(json.size() + op.size() + 40);
    frame += "id: ";
    frame += QByteArray::number(event.seq());
    frame += "\nevent: ";
    frame += op;
    frame += "\ndata: ";
    frame += json;
    frame += "\n\n";
    return frame;
}

// --- fan-out -------------------------------------------------------------------------------

void SseWorker::onCommitted(const CommittedBatch& batch) {
    m_head = std::max(m_head, batch.lastSeq);
    // Frames are built at most once per event and format for the whole batch, and a
    // subscription's run of frames is concatenated once: every client of it gets the
    // same bytes in one write.
    QHash<qint64, QByteArray> frames[FormatCount];
    auto frameOf = [&frames](const ChangeEvent& e, int format) -> const QByteArray& {
        QByteArray& slot = frames[format][e.seq()];
        if (slot.isEmpty())
            slot = renderFrame(e, format);
        return slot;
    };

    for (auto it = batch.bySubscription.cbegin(); it != batch.bySubscription.cend(); ++it) {
        const auto clientsIt = m_clientsBySubscription.constFind(it.key());
        if (clientsIt == m_clientsBySubscription.constEnd())
            continue;
        const ChangeEventList& events = it.value();
        if (events.isEmpty())
            continue;
        const qint64 firstSeq = events.first().seq();
        const qint64 lastSeq = events.last().seq();
        QByteArray runs[FormatCount];
        const QList<quint64> ids = *clientsIt; // writeFrame may close clients
        for (quint64 id : ids) {
            Client* c = m_clients.value(id).get();
            if (!c || c->closed)
                continue;
            if (!c->live) {
                if (c->buffer.size() + events.size() > kReplayBufferCap) {
                    // The replay will read these from the journal.
                    c->buffer.clear();
                    continue;
                }
                for (const ChangeEvent& e : events)
                    if (e.seq() > c->cursor)
                        c->buffer.append(e);
                continue;
            }
            if (lastSeq <= c->cursor)
                continue;
            if (firstSeq > c->cursor) {
                QByteArray& run = runs[c->format];
                if (run.isEmpty()) {
                    for (const ChangeEvent& e : events)
                        run += frameOf(e, c->format);
                }
                c->cursor = c->lastSent = lastSeq;
                writeFrame(c, run, int(events.size()));
                continue;
            }
            QByteArray bytes;
            int count = 0;
            for (const ChangeEvent& e : events) {
                if (e.seq() <= c->cursor)
                    continue;
                bytes += frameOf(e, c->format);
                ++count;
            }
            c->cursor = c->lastSent = lastSeq;
            writeFrame(c, bytes, count);
        }
    }

    // Long polls: answer the ones that have something, move the others' cursors past
    // this batch (every seq up to batch.lastSeq has now been routed).
    if (m_waiters.isEmpty())
        return;
    const QList<quint64> waiterIds = m_waiters.keys();
    for (quint64 id : waiterIds) {
        const auto waiter = m_waiters.value(id);
        if (!waiter)
            continue;
        const ChangeEventList events = batch.bySubscription.value(waiter->subscriptionId);
        ChangeEventList fresh;
        qint64 next = std::max(waiter->cursor, batch.lastSeq);
        bool hasMore = false;
        for (const ChangeEvent& e : events) {
            if (e.seq() <= waiter->cursor)
                continue;
            if (fresh.size() >= waiter->limit) {
                hasMore = true;
                next = fresh.last().seq();
                break;
            }
            fresh.append(e);
        }
        if (fresh.isEmpty()) {
            waiter->cursor = next;
            continue;
        }
        answerWaiter(id, fresh, next, hasMore);
    }
}

// --- long poll -------------------------------------------------------------------------------

QByteArray SseWorker::changesJson(const ChangeEventList& events, int format, qint64 next, bool hasMore,
                                  const QByteArray& gapJson) const {
    QByteArray json = "{\"changes\":[";
    bool first = true;
    if (!gapJson.isEmpty()) {
        json += gapJson;
        first = false;
    }
    for (const ChangeEvent& e : events) {
        if (!first)
            json += ',';
        first = false;
        json += renderJson(e, format);
    }
    json +=
        "],\"next\":\"" + QByteArray::number(next) + "\",\"hasMore\":" + (hasMore ? "true" : "false") + "}";
    return json;
}

void SseWorker::longPoll(const HttpRequest& request, HttpResponder&& out, const QString& id) {
    const std::optional<Subscription> sub = m_engine->subscription(id);
    if (!sub)
        return sendError(request, out, 404, QStringLiteral("no subscription with id \"%1\"").arg(id));
    QString error;
    const int format = formatFor(request, *sub, &error);
    if (!error.isEmpty())
        return sendError(request, out, 400, error);
    qint64 after = 0;
    const QString afterText = request.queryValue(QStringLiteral("after"));
    if (!afterText.isEmpty() && !parseSeq(afterText, &after))
        return sendError(
            request, out, 400,
            QStringLiteral("after must be a token returned as \"next\", not \"%1\"").arg(afterText.left(40)));
    qint64 limit = 100;
    const QString limitText = request.queryValue(QStringLiteral("limit"));
    if (!limitText.isEmpty() && (!parseSeq(limitText, &limit) || limit < 1 || limit > kMaxLongPollLimit))
        return sendError(request, out, 400, QStringLiteral("limit must be 1 … %1").arg(kMaxLongPollLimit));
    qint64 timeoutS = 30;
    const QString timeoutText = request.queryValue(QStringLiteral("timeout"));
    if (!timeoutText.isEmpty() && (!parseSeq(timeoutText, &timeoutS) || timeoutS > kMaxLongPollTimeoutS))
        return sendError(request, out, 400,
                         QStringLiteral("timeout must be 0 … %1 seconds").arg(kMaxLongPollTimeoutS));

    const JournalReader::Result r = m_reader.readAfter(after, int(limit), matcher(*sub));
    if (!r.error.isEmpty())
        return sendError(request, out, 503, QStringLiteral("the journal cannot be read: %1").arg(r.error));
    QByteArray gapJson;
    if (r.gap)
        gapJson = "{\"operationType\":\"gap\",\"reason\":" +
                  jsonString(QStringLiteral(
                                 "events after %1 were removed by retention; the first still stored is %2")
                                 .arg(after)
                                 .arg(r.firstAvailable)) +
                  ",\"firstAvailable\":" + QByteArray::number(r.firstAvailable) + "}";
    const qint64 cursor = r.hasMore ? r.scannedThrough : std::max(r.scannedThrough, r.lastSeq);
    if (!r.events.isEmpty() || r.gap || r.hasMore || timeoutS == 0)
        return sendJson(request, out, 200, changesJson(r.events, format, cursor, r.hasMore, gapJson));

    // Nothing yet: park until a matching commit or the timeout. Commits after this read
    // reach onCommitted() after we return, so none is missed.
    auto waiter = std::make_shared<Waiter>();
    waiter->id = m_nextId++;
    waiter->subscriptionId = id;
    waiter->format = format;
    waiter->limit = int(limit);
    waiter->cursor = cursor;
    waiter->origin = request.header("origin");
    waiter->out = std::move(out);
    HttpAdapter::setLongLived(waiter->out, true);
    const quint64 waiterId = waiter->id;
    waiter->timer = new QTimer;
    waiter->timer->setSingleShot(true);
    connect(waiter->timer, &QTimer::timeout, this, [this, waiterId] {
        const auto w = m_waiters.value(waiterId);
        if (w)
            answerWaiter(waiterId, {}, w->cursor, false);
    });
    waiter->timer->start(int(timeoutS * 1000));
    waiter->out.setClosedHandler(this, [this, waiterId] {
        const auto w = m_waiters.take(waiterId);
        if (w)
            w->timer->deleteLater();
    });
    m_waiters.insert(waiterId, waiter);
}

void SseWorker::answerWaiter(quint64 waiterId, const ChangeEventList& events, qint64 next, bool hasMore) {
    const auto waiter = m_waiters.take(waiterId);
    if (!waiter)
        return;
    waiter->timer->stop();
    waiter->timer->deleteLater();
    waiter->timer = nullptr;
    HttpHeaders headers;
    if (isOriginAllowed(waiter->origin))
        headers = {{"Access-Control-Allow-Origin", waiter->origin}, {"Vary", "Origin"}};
    headers.append(jsonType());
    waiter->out.send(200, headers, changesJson(events, waiter->format, next, hasMore));
}

// --- engine barrier ----------------------------------------------------------------------------

void SseWorker::afterEngine(std::function<void()> done) {
    std::shared_ptr<SseShared> shared = m_shared;
    QMetaObject::invokeMethod(
        m_engine,
        [shared, done = std::move(done)] {
            QMutexLocker lock(&shared->mutex);
            if (shared->worker)
                QMetaObject::invokeMethod(shared->worker, done, Qt::QueuedConnection);
        },
        Qt::QueuedConnection);
}

} // namespace tw

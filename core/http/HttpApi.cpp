#include "HttpApi.h"

#include "engine/Engine.h"
#include "http/EventRenderer.h"
#include "http/LongPolls.h"
#include "http/RequestValues.h"
#include "http/SourcesApi.h"
#include "http/SseShared.h"
#include "http/SseStreams.h"
#include "model/JsonWriter.h"

#include <QDateTime>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLoggingCategory>
#include <QRandomGenerator>

Q_LOGGING_CATEGORY(lcSse, "tidewatch.sse")

namespace tw {

namespace {

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

QString noSuchSubscription(const QString& id) {
    return QStringLiteral("no subscription with id \"%1\"").arg(id);
}

} // namespace

HttpApi::HttpApi(Engine* engine, const SseServer::Options& options, std::shared_ptr<SseShared> shared)
    : m_options(options)
    , m_shared(std::move(shared))
    , m_engineCalls(engine, m_shared)
    , m_reply(options.corsOrigins) {
    m_http = new HttpAdapter(
        [this](const HttpRequest& request, HttpResponder&& out) { handle(request, std::move(out)); }, this);
    HttpAdapter::Limits limits;
    limits.maxHeaderBytes = options.maxHeaderBytes;
    limits.maxBodyBytes = options.maxBodyBytes;
    limits.requestTimeoutMs = options.requestTimeoutMs;
    limits.maxConnections = options.maxConnections;
    m_http->setLimits(limits);
    m_streams = new SseStreams(options, &m_engineCalls, &m_reader, m_shared, this);
    connect(m_streams, &SseStreams::clientsChanged, this, &HttpApi::clientsChanged);
    m_polls = new LongPolls(&m_engineCalls, &m_reader, &m_reply, this);
    m_sources = std::make_unique<SourcesApi>(options, &m_engineCalls, &m_reply, this);
}

HttpApi::~HttpApi() {
    delete m_polls;
    delete m_streams;
}

bool HttpApi::listen(QString* error) {
    return m_http->listen(m_options.address, m_options.port, error);
}

quint16 HttpApi::port() const {
    return m_http->port();
}

void HttpApi::initOnThread() {
    QString error;
    if (!m_reader.open(m_engineCalls.journalPath(), &error))
        qCWarning(lcSse).noquote() << "cannot open the journal for replay:" << error;
    m_streams->start(m_engineCalls.lastCommittedSeq());
    // The engine emits on its own thread: queued, so the slots run here.
    connect(m_engineCalls.engine(), &Engine::committed, this, &HttpApi::onCommitted, Qt::QueuedConnection);
    connect(
        m_engineCalls.engine(), &Engine::coverageChanged, this, [this] { m_streams->onCoverageChanged(); },
        Qt::QueuedConnection);
    connect(m_engineCalls.engine(), &Engine::subscriptionsChanged, this, &HttpApi::onSubscriptionsChanged,
            Qt::QueuedConnection);
}

void HttpApi::shutdown() {
    {
        QMutexLocker lock(&m_shared->mutex);
        m_shared->worker = nullptr;
        m_shared->clients.clear();
    }
    disconnect(m_engineCalls.engine(), nullptr, this, nullptr);
    m_streams->closeAll();
    m_polls->closeAll();
    m_http->closeAll();
}

void HttpApi::onCommitted(const CommittedBatch& batch) {
    m_streams->onCommitted(batch);
    m_polls->onCommitted(batch);
}

// --- requests --------------------------------------------------------------------------

void HttpApi::handle(const HttpRequest& request, HttpResponder&& out) {
    if (request.method == HttpRequest::Method::Options)
        return preflight(request, std::move(out));
    // Authentication before routing: without the token nothing, not even whether a
    // path or a subscription exists, is revealed.
    if (!isAuthorized(request)) {
        HttpHeaders headers = m_reply.corsHeaders(request);
        headers.emplaceBack("WWW-Authenticate", "Bearer realm=\"tidewatch\"");
        headers.emplaceBack("Content-Type", "application/json");
        out.send(401, headers, ApiReply::errorJson(QStringLiteral("unauthorized")));
        return;
    }
    QStringList parts = request.path.split(QLatin1Char('/'), Qt::SkipEmptyParts);
    route(request, std::move(out), parts);
}

void HttpApi::route(const HttpRequest& request, HttpResponder&& out, const QStringList& parts) {
    using M = HttpRequest::Method;
    const M method = request.method;
    auto methodNotAllowed = [&](const QByteArray& allow) {
        HttpHeaders headers = m_reply.corsHeaders(request);
        headers.emplaceBack("Allow", allow);
        headers.emplaceBack("Content-Type", "application/json");
        out.send(
            405, headers,
            ApiReply::errorJson(QStringLiteral("method not allowed; use %1").arg(QString::fromUtf8(allow))));
    };
    auto notFound = [&] {
        m_reply.sendError(request, out, 404, QStringLiteral("no such endpoint: %1").arg(request.path));
    };

    if (parts == QStringList{QStringLiteral("metrics")})
        return method == M::Get ? metrics(request, std::move(out)) : methodNotAllowed("GET");
    if (parts.size() < 2 || parts[0] != QLatin1String("v1"))
        return notFound();
    const QString& area = parts[1];
    if (area == QLatin1String("health") && parts.size() == 2)
        return method == M::Get ? health(request, std::move(out)) : methodNotAllowed("GET");
    if (area == QLatin1String("streams") && parts.size() == 2)
        return method == M::Get ? adhocStream(request, std::move(out)) : methodNotAllowed("GET");
    if (area == QLatin1String("sources"))
        return m_sources->handle(request, std::move(out), parts);
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
        if (parts.size() == 4 && parts[3] == QLatin1String("changes") && method == M::Get &&
            m_sources->refuseUnwatched(request, out, m_engineCalls.subscription(id)))
            return;
        if (parts.size() == 4 && parts[3] == QLatin1String("changes"))
            return method == M::Get ? m_polls->handle(request, std::move(out), id) : methodNotAllowed("GET");
    }
    notFound();
}

bool HttpApi::isAuthorized(const HttpRequest& request) const {
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

void HttpApi::preflight(const HttpRequest& request, HttpResponder&& out) {
    const QByteArray origin = request.header("origin");
    if (origin.isEmpty()) {
        out.send(204, {{"Allow", "GET, POST, PUT, DELETE, OPTIONS"}}, {});
        return;
    }
    if (!m_reply.isOriginAllowed(origin)) {
        // No CORS headers: the browser refuses the real request.
        out.send(403, {{"Content-Type", "application/json"}, {"Vary", "Origin"}},
                 ApiReply::errorJson(QStringLiteral("origin not allowed")));
        return;
    }
    out.send(204,
             {{"Access-Control-Allow-Origin", origin},
              {"Vary", "Origin"},
              {"Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"},
              {"Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID, Cache-Control"},
              {"Access-Control-Max-Age", "600"}},
             {});
}

// --- health, metrics -----------------------------------------------------------------------

void HttpApi::health(const HttpRequest& request, HttpResponder&& out) {
    const QHash<QString, SourceStatus> statuses = m_engineCalls.sourceStatuses();
    QStringList ids = statuses.keys();
    ids.sort();
    QJsonArray sources;
    bool degraded = false;
    for (const QString& id : std::as_const(ids)) {
        const SourceStatus& s = statuses[id];
        QJsonObject o{{QStringLiteral("id"), id},
                      {QStringLiteral("uri"), m_engineCalls.sourceUri(id)},
                      {QStringLiteral("state"), s.stateName().toLower()},
                      {QStringLiteral("reconnects"), s.reconnects}};
        if (!s.reason.isEmpty())
            o.insert(QStringLiteral("reason"), s.reason);
        if (s.nextRetry.isValid())
            o.insert(QStringLiteral("nextRetry"), s.nextRetry.toUTC().toString(Qt::ISODateWithMs));
        if (s.lastEventMs > 0)
            o.insert(QStringLiteral("lastEventMs"), s.lastEventMs);
        if (!s.slotName.isEmpty())
            o.insert(QStringLiteral("slot"), s.slotName);
        if (s.lagBytes >= 0)
            o.insert(QStringLiteral("lagBytes"), s.lagBytes);
        degraded =
            degraded || s.state == SourceStatus::State::Error || s.state == SourceStatus::State::Backoff;
        if (!s.upstream.isEmpty()) {
            // A gateway: its ingest's sources are this node's sources too.
            o.insert(QStringLiteral("ingest"), s.upstream);
            for (const QJsonValue& source : s.upstream.value(QLatin1String("sources")).toArray()) {
                const QString state = source[QLatin1String("state")].toString();
                degraded = degraded || state == QLatin1String("error") || state == QLatin1String("backoff");
            }
        }
        sources.append(o);
    }
    // A journal that takes no writes holds every source back: degraded, with the reason
    // (a full disk names the journal's path and what to do).
    const JournalStatus journalStatus = m_engineCalls.journalStatus();
    QJsonObject journal{{QStringLiteral("state"), journalStatus.stateName()},
                        {QStringLiteral("path"), m_engineCalls.journalPath()}};
    if (!journalStatus.isOk()) {
        journal.insert(QStringLiteral("reason"), QStringLiteral("journal: %1").arg(journalStatus.reason));
        journal.insert(QStringLiteral("pendingEvents"), journalStatus.pendingEvents);
        journal.insert(
            QStringLiteral("since"),
            QDateTime::fromMSecsSinceEpoch(journalStatus.sinceMs, Qt::UTC).toString(Qt::ISODateWithMs));
        degraded = true;
    }
    QJsonObject body{
        {QStringLiteral("status"), degraded ? QStringLiteral("degraded") : QStringLiteral("ok")},
        {QStringLiteral("version"), QStringLiteral(TIDEWATCH_VERSION)},
        {QStringLiteral("engine"),
         m_engineCalls.isRunning() ? QStringLiteral("running") : QStringLiteral("stopped")},
        {QStringLiteral("lastSeq"), m_engineCalls.lastCommittedSeq()},
        {QStringLiteral("eventsCommitted"), m_engineCalls.eventsCommitted()},
        {QStringLiteral("journal"), journal},
        {QStringLiteral("sources"), sources},
        {QStringLiteral("sse"), QJsonObject{{QStringLiteral("clients"), m_streams->clientCount()},
                                            {QStringLiteral("live"), m_streams->liveCount()},
                                            {QStringLiteral("longPolls"), m_polls->waitingCount()}}},
    };
    if (m_options.publisherHealth) {
        const QJsonObject publisher = m_options.publisherHealth();
        if (!publisher.isEmpty()) // empty: not publishing at the moment
            body.insert(QStringLiteral("publisher"), publisher);
    }
    m_reply.sendJson(request, out, 200, QJsonDocument(body).toJson(QJsonDocument::Compact));
}

void HttpApi::metrics(const HttpRequest& request, HttpResponder&& out) {
    const qint64 committedHead = m_engineCalls.lastCommittedSeq();
    qint64 journalBytes = 0;
    for (const char* suffix : {"", "-wal"}) {
        const QFileInfo info(m_engineCalls.journalPath() + QLatin1String(suffix));
        if (info.exists())
            journalBytes += info.size();
    }
    const QList<SseStreams::Position> positions = m_streams->positions();
    QByteArray text;
    text.reserve(4096 + positions.size() * 160);
    auto metric = [&text](const char* name, const char* type, const char* help, qint64 value) {
        text += QByteArray("# HELP ") + name + ' ' + help + "\n# TYPE " + name + ' ' + type + '\n' + name +
                ' ' + QByteArray::number(value) + '\n';
    };
    metric("tidewatch_events_committed_total", "counter", "Events committed to the journal by this process.",
           m_engineCalls.eventsCommitted());
    metric("tidewatch_journal_last_seq", "gauge", "Sequence id of the newest committed event.",
           committedHead);
    metric("tidewatch_journal_bytes", "gauge", "Size of the journal on disk (main file and WAL).",
           journalBytes);
    metric("tidewatch_events_sent_total", "counter", "Events written to SSE clients (one per client).",
           m_shared->eventsSent.load(std::memory_order_relaxed));
    metric("tidewatch_sse_clients", "gauge", "Connected SSE clients.", m_streams->clientCount());
    metric("tidewatch_sse_slow_disconnects_total", "counter",
           "SSE clients disconnected because they fell further behind than the pending-bytes cap.",
           m_shared->slowDisconnects.load(std::memory_order_relaxed));
    metric("tidewatch_longpoll_waiting", "gauge", "Long polls waiting for a change.",
           m_polls->waitingCount());
    metric("tidewatch_http_rejected_total", "counter",
           "Requests refused for oversized headers or bodies, or past the connection limit.",
           m_http->rejectedRequests());
    metric("tidewatch_http_timeouts_total", "counter",
           "Connections closed for not completing a request in time.", m_http->timedOutConnections());
    // Only sources that know their lag (a PostgreSQL slot) have a line.
    const QHash<QString, SourceStatus> statuses = m_engineCalls.sourceStatuses();
    QStringList ids = statuses.keys();
    ids.sort();
    text += "# HELP tidewatch_source_lag_bytes WAL the source's replication slot holds that Tidewatch has "
            "not confirmed yet.\n# TYPE tidewatch_source_lag_bytes gauge\n";
    for (const QString& id : std::as_const(ids))
        if (statuses[id].lagBytes >= 0)
            text += "tidewatch_source_lag_bytes{source=\"" + promLabel(id) + "\"} " +
                    QByteArray::number(statuses[id].lagBytes) + '\n';
    text += "# HELP tidewatch_sse_client_lag Committed events not yet handed to the client's socket.\n"
            "# TYPE tidewatch_sse_client_lag gauge\n";
    QByteArray pending =
        "# HELP tidewatch_sse_client_pending_bytes Bytes written for the client that the kernel has "
        "not taken yet.\n# TYPE tidewatch_sse_client_pending_bytes gauge\n";
    for (const SseStreams::Position& p : positions) {
        const QByteArray labels = "{client=\"" + QByteArray::number(p.clientId) + "\",subscription=\"" +
                                  promLabel(p.subscriptionId) + "\"}";
        text += "tidewatch_sse_client_lag" + labels + ' ' +
                QByteArray::number(std::max<qint64>(0, committedHead - p.position)) + '\n';
        pending +=
            "tidewatch_sse_client_pending_bytes" + labels + ' ' + QByteArray::number(p.pendingBytes) + '\n';
    }
    text += pending;
    if (m_options.publisherMetrics)
        text += m_options.publisherMetrics();
    HttpHeaders headers = m_reply.corsHeaders(request);
    headers.emplaceBack("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    out.send(200, headers, text);
}

// --- subscriptions -------------------------------------------------------------------------

void HttpApi::listSubscriptions(const HttpRequest& request, HttpResponder&& out) {
    const SubscriptionList list = m_engineCalls.subscriptions();
    JsonWriter json;
    json.beginObject().key("subscriptions").beginArray();
    for (const Subscription& sub : list)
        json.raw(sub.toJson());
    json.endArray().key("next").string(QByteArray::number(m_engineCalls.lastCommittedSeq())).endObject();
    m_reply.sendJson(request, out, 200, json.take());
}

void HttpApi::getSubscription(const HttpRequest& request, HttpResponder&& out, const QString& id) {
    const std::optional<Subscription> sub = m_engineCalls.subscription(id);
    if (!sub)
        return m_reply.sendError(request, out, 404, noSuchSubscription(id));
    m_reply.sendJson(request, out, 200, sub->toJson());
}

void HttpApi::createSubscription(const HttpRequest& request, HttpResponder&& out) {
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(request.body, &parseError);
    if (parseError.error != QJsonParseError::NoError)
        return m_reply.sendError(request, out, 400,
                                 QStringLiteral("malformed JSON at offset %1: %2")
                                     .arg(parseError.offset)
                                     .arg(parseError.errorString()));
    if (!doc.isObject())
        return m_reply.sendError(
            request, out, 400,
            QStringLiteral("the body must be a JSON object: {\"namespaces\":[…], \"filter\":{…}}"));
    QString error;
    Subscription sub = Subscription::fromJson(request.body, &error);
    if (!error.isEmpty())
        return m_reply.sendError(request, out, 400, error);
    if (m_sources->refuseUnwatched(request, out, sub.namespaces))
        return;
    if (!sub.id.isEmpty() && m_engineCalls.subscription(sub.id))
        return m_reply.sendError(request, out, 409,
                                 QStringLiteral("a subscription with id \"%1\" exists already").arg(sub.id));
    // Every event after `next` reaches the subscription: the ones committed before the
    // engine indexed it are read from the journal by replay and long poll.
    const qint64 next = m_engineCalls.lastCommittedSeq();
    sub = m_engineCalls.addSubscription(sub);
    // Answer once the engine routes to it, so a client that connects with
    // Last-Event-ID = next straight away cannot miss a live event.
    auto responder = std::make_shared<HttpResponder>(std::move(out));
    const HttpHeaders cors = m_reply.corsHeaders(request);
    m_engineCalls.afterEngine([responder, cors, sub, next] {
        HttpHeaders headers = cors;
        headers.append(ApiReply::jsonHeaders());
        headers.emplaceBack("Location", "/v1/subscriptions/" + QUrl::toPercentEncoding(sub.id));
        JsonWriter json;
        json.beginObject()
            .key("id")
            .string(sub.id)
            .key("next")
            .string(QByteArray::number(next))
            .key("subscription")
            .raw(sub.toJson())
            .endObject();
        responder->send(201, headers, json.take());
    });
}

void HttpApi::deleteSubscription(const HttpRequest& request, HttpResponder&& out, const QString& id) {
    if (!m_engineCalls.removeSubscription(id))
        return m_reply.sendError(request, out, 404, noSuchSubscription(id));
    closeClientsOf(id);
    out.send(204, m_reply.corsHeaders(request), {});
}

void HttpApi::closeClientsOf(const QString& subscriptionId) {
    m_streams->closeSubscription(subscriptionId);
    m_polls->closeSubscription(subscriptionId);
}

void HttpApi::onSubscriptionsChanged() {
    // A subscription removed elsewhere (the UI) ends its streams; a changed one
    // refreshes the snapshot replay matches with.
    const QStringList ids = m_streams->subscriptionIds();
    QList<Subscription> current;
    for (const QString& id : ids) {
        std::optional<Subscription> sub = m_engineCalls.subscription(id);
        if (!sub)
            closeClientsOf(id);
        else
            current.append(std::move(*sub));
    }
    m_streams->refreshSubscriptions(current);
}

// --- event streams -----------------------------------------------------------------------------

void HttpApi::subscriptionEvents(const HttpRequest& request, HttpResponder&& out, const QString& id) {
    const std::optional<Subscription> sub = m_engineCalls.subscription(id);
    if (!sub)
        return m_reply.sendError(request, out, 404, noSuchSubscription(id));
    if (m_sources->refuseUnwatched(request, out, sub))
        return;
    QString error;
    const EventShape shape = EventRenderer::shapeFor(request, *sub, &error);
    if (!error.isEmpty())
        return m_reply.sendError(request, out, 400, error);
    std::optional<qint64> lastEventId;
    if (!RequestValues::lastEventId(request, &lastEventId, &error))
        return m_reply.sendError(request, out, 400, error);
    m_streams->open(request, std::move(out), m_reply.corsHeaders(request), *sub, false, lastEventId, shape);
}

void HttpApi::adhocStream(const HttpRequest& request, HttpResponder&& out) {
    Subscription sub;
    const QString source = request.queryValue(QStringLiteral("source"));
    const QStringList namespaces = request.queryValues(QStringLiteral("ns"));
    for (const QString& text : namespaces) {
        if (text.trimmed().isEmpty())
            return m_reply.sendError(request, out, 400,
                                     QStringLiteral("ns must be db.coll or db, not empty"));
        sub.namespaces.append(SourceNamespace{source, Namespace::fromString(text.trimmed())});
    }
    if (namespaces.isEmpty() && !source.isEmpty())
        sub.namespaces.append(SourceNamespace{source, Namespace()});
    if (m_sources->refuseUnwatched(request, out, sub.namespaces))
        return;
    const QString filterText = request.queryValue(QStringLiteral("filter"));
    if (!filterText.isEmpty()) {
        QString error;
        sub.filter = Filter::compile(filterText.toUtf8(), &error);
        if (!sub.filter.isValid())
            return m_reply.sendError(request, out, 400, QStringLiteral("filter: %1").arg(error));
    }
    QString error;
    // The ad hoc subscription carries the shape, so the subscription list shows it.
    const EventShape shape = EventRenderer::shapeFor(request, sub, &error);
    if (!error.isEmpty())
        return m_reply.sendError(request, out, 400, error);
    sub.setProjection(request.queryValue(QStringLiteral("projection")).toUtf8(), nullptr);
    sub.event = shape.event();
    std::optional<qint64> lastEventId;
    if (!RequestValues::lastEventId(request, &lastEventId, &error))
        return m_reply.sendError(request, out, 400, error);
    sub.id = QStringLiteral("stream-") + QString::number(QRandomGenerator::global()->generate64(), 36);
    sub.name = QStringLiteral("ad hoc stream for %1").arg(request.peer);
    sub.persistent = false;
    sub = m_engineCalls.addSubscription(sub);
    // The stream opens once the engine routes to the new subscription, so `ready`
    // keeps its promise.
    auto responder = std::make_shared<HttpResponder>(std::move(out));
    auto kept = std::make_shared<HttpRequest>(request);
    m_engineCalls.afterEngine([this, responder, kept, sub, lastEventId, shape] {
        if (!responder->isOpen()) {
            m_engineCalls.removeSubscription(sub.id);
            return;
        }
        m_streams->open(*kept, std::move(*responder), m_reply.corsHeaders(*kept), sub, true, lastEventId,
                        shape);
    });
}

} // namespace tw

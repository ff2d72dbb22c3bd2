#include "SourcesApi.h"

#include "http/ApiReply.h"
#include "http/EngineCalls.h"
#include "http/SourceControl.h"

#include <memory>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

namespace tw {

namespace {

QJsonObject scopeJson(const SourceNamespace& scope) {
    return QJsonObject{{QStringLiteral("source"), scope.sourceId},
                       {QStringLiteral("ns"), scope.ns.toString()}};
}

// Whether a watch of `watched` can produce an event that `wanted` sees: one scope
// inside the other (a MongoDB database watch covers its collections, made later too).
bool overlaps(const SourceNamespace& wanted, const SourceNamespace& watched) {
    if (!wanted.sourceId.isEmpty() && wanted.sourceId != watched.sourceId)
        return false;
    return watched.ns.contains(wanted.ns) || wanted.ns.contains(watched.ns);
}

// What the ingests behind a gateway watch (SourceStatus::upstream, NatsWatchList's
// JSON): a gateway's own watch covers the whole stream, whose events keep the ingest's
// source ids.
QList<SourceNamespace> upstreamScopes(const QHash<QString, SourceStatus>& statuses) {
    QList<SourceNamespace> scopes;
    for (const SourceStatus& status : statuses) {
        const QJsonArray sources = status.upstream.value(QLatin1String("sources")).toArray();
        for (const QJsonValue& source : sources) {
            const QString id = source[QLatin1String("id")].toString();
            for (const QJsonValue& watch : source[QLatin1String("watches")].toArray())
                scopes.append(SourceNamespace{id, Namespace{watch[QLatin1String("db")].toString(),
                                                            watch[QLatin1String("coll")].toString()}});
        }
    }
    return scopes;
}

} // namespace

SourcesApi::SourcesApi(const SseServer::Options& options, const EngineCalls* engineCalls,
                       const ApiReply* reply, QObject* context)
    : m_control(options.control)
    , m_refuseUnwatched(options.refuseUnwatched)
    , m_engineCalls(engineCalls)
    , m_reply(reply)
    , m_context(context) {}

void SourcesApi::methodNotAllowed(const HttpRequest& request, HttpResponder& out,
                                  const QByteArray& allow) const {
    HttpHeaders headers = m_reply->corsHeaders(request);
    headers.emplaceBack("Allow", allow);
    headers.append(ApiReply::jsonHeaders());
    out.send(405, headers,
             ApiReply::errorJson(QStringLiteral("method not allowed; use %1").arg(QString::fromUtf8(allow))));
}

bool SourcesApi::readBody(const HttpRequest& request, HttpResponder& out, bool emptyIsObject,
                          QJsonObject* body) const {
    if (emptyIsObject && request.body.trimmed().isEmpty()) {
        *body = {};
        return true;
    }
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(request.body, &parseError);
    if (parseError.error != QJsonParseError::NoError) {
        m_reply->sendError(request, out, 400,
                           QStringLiteral("malformed JSON at offset %1: %2")
                               .arg(parseError.offset)
                               .arg(parseError.errorString()));
        return false;
    }
    if (!doc.isObject()) {
        m_reply->sendError(request, out, 400, QStringLiteral("the body must be a JSON object"));
        return false;
    }
    *body = doc.object();
    return true;
}

std::function<void(const ControlReply&)> SourcesApi::sender(const HttpRequest& request,
                                                            HttpResponder&& out) const {
    auto responder = std::make_shared<HttpResponder>(std::move(out));
    const QByteArray origin = request.header("origin");
    const ApiReply* reply = m_reply; // outlives every reply: both belong to the HttpApi, the context
    return [responder, origin, reply](const ControlReply& answer) {
        if (answer.status == 204)
            return responder->send(204, reply->corsHeaders(origin), {});
        reply->sendJson(origin, *responder, answer.status,
                        QJsonDocument(answer.body).toJson(QJsonDocument::Compact));
    };
}

void SourcesApi::handle(const HttpRequest& request, HttpResponder&& out, const QStringList& parts) {
    using M = HttpRequest::Method;
    const M method = request.method;
    const qsizetype n = parts.size();
    const bool known = n == 2 || n == 3 || (n == 4 && parts[3] == QLatin1String("namespaces")) ||
                       (n == 5 && parts[3] == QLatin1String("watches"));
    if (!known)
        return m_reply->sendError(request, out, 404,
                                  QStringLiteral("no such endpoint: %1").arg(request.path));
    if (!m_control)
        return m_reply->sendError(request, out, 501,
                                  QStringLiteral("this server has no control of sources: run it from the "
                                                 "application (tidewatch --headless or the window)"));
    if (n == 2) {
        if (method == M::Get)
            return m_control->listSources(m_context, sender(request, std::move(out)));
        if (method != M::Post)
            return methodNotAllowed(request, out, "GET, POST");
        QJsonObject body;
        if (!readBody(request, out, false, &body))
            return;
        return m_control->addSource(body, m_context, sender(request, std::move(out)));
    }
    const QString& id = parts[2];
    if (n == 3) {
        if (method != M::Delete)
            return methodNotAllowed(request, out, "DELETE");
        // ?dropSlot=true: a PostgreSQL source's slot keeps WAL on the server until dropped.
        const QString dropSlot = request.queryValue(QStringLiteral("dropSlot"));
        if (!dropSlot.isEmpty() && dropSlot != QLatin1String("true") && dropSlot != QLatin1String("false"))
            return m_reply->sendError(request, out, 400,
                                      QStringLiteral("dropSlot must be true or false, not \"%1\"; "
                                                     "DELETE /v1/sources/%2?dropSlot=true also drops the "
                                                     "source's replication slot and publication")
                                          .arg(dropSlot, id));
        return m_control->removeSource(id, dropSlot == QLatin1String("true"), m_context,
                                       sender(request, std::move(out)));
    }
    if (n == 4)
        return method == M::Get ? m_control->listNamespaces(id, m_context, sender(request, std::move(out)))
                                : methodNotAllowed(request, out, "GET");
    const QString& ns = parts[4];
    if (method == M::Delete)
        return m_control->unwatch(id, ns, m_context, sender(request, std::move(out)));
    if (method != M::Put)
        return methodNotAllowed(request, out, "PUT, DELETE");
    QJsonObject options;
    if (!readBody(request, out, true, &options))
        return;
    m_control->watch(id, ns, options, m_context, sender(request, std::move(out)));
}

bool SourcesApi::refuseUnwatched(const HttpRequest& request, HttpResponder& out,
                                 const QList<SourceNamespace>& namespaces) const {
    if (!m_refuseUnwatched || namespaces.isEmpty())
        return false;
    const QList<SourceNamespace> watched =
        m_engineCalls->watchedScopes() + upstreamScopes(m_engineCalls->sourceStatuses());
    QJsonArray unwatched;
    QStringList names;
    for (const SourceNamespace& wanted : namespaces) {
        if (std::any_of(watched.begin(), watched.end(),
                        [&](const SourceNamespace& scope) { return overlaps(wanted, scope); }))
            continue;
        unwatched.append(scopeJson(wanted));
        names.append(wanted.sourceId.isEmpty() ? wanted.ns.toString()
                                               : wanted.sourceId + QLatin1Char('/') + wanted.ns.toString());
    }
    if (unwatched.isEmpty())
        return false;
    QJsonArray watchedJson;
    for (const SourceNamespace& scope : watched)
        watchedJson.append(scopeJson(scope));
    const QJsonObject body{
        {QStringLiteral("error"),
         QStringLiteral("nothing watches %1, so no event would ever arrive: watch it first (PUT "
                        "/v1/sources/{id}/watches/{ns}) or pick one of \"watched\"")
             .arg(names.join(QLatin1String(", ")))},
        {QStringLiteral("unwatched"), unwatched},
        {QStringLiteral("watched"), watchedJson}};
    m_reply->sendJson(request, out, 404, QJsonDocument(body).toJson(QJsonDocument::Compact));
    return true;
}

bool SourcesApi::refuseUnwatched(const HttpRequest& request, HttpResponder& out,
                                 const std::optional<Subscription>& subscription) const {
    return subscription && refuseUnwatched(request, out, subscription->namespaces);
}

} // namespace tw

#include "McpServer.h"

#include "McpResources.h"
#include "McpTools.h"

#include "AppSession.h"

#include <QCoreApplication>
#include <QJsonArray>
#include <QTimer>

#include <cstdio>

namespace tw::mcp {

namespace {

// A waiting call reports progress this often, so a client that resets its request
// timeout on progress can wait longer than that timeout (60 s in the TypeScript SDK).
constexpr int kProgressIntervalMs = 5000;

void logLine(const QString& line) {
    std::fprintf(stderr, "tidewatch: mcp: %s\n", qPrintable(line));
    std::fflush(stderr);
}

} // namespace

McpServer::McpServer(AppSession* session, QObject* parent)
    : QObject(parent)
    , m_session(session)
    , m_tools(new McpTools(session, this))
    , m_resources(new McpResources(session, this)) {
    // The session emits on this thread, so polls and resources see commits in order.
    connect(session, &AppSession::committed, m_tools->polls(), &McpPolls::onCommitted);
    connect(session, &AppSession::committed, m_resources, &McpResources::onCommitted);
    // What is watched changed, by any front end: clients re-read resources/list.
    // Not before initialize: the lifecycle lets a server speak first only with pings
    // and logs.
    const auto listChanged = [this] {
        if (m_version.isEmpty())
            return;
        Q_EMIT messageReady(
            JsonRpc::notification(QStringLiteral("notifications/resources/list_changed"), {}));
    };
    connect(session, &AppSession::watchReady, this, listChanged);
    connect(session, &AppSession::connectionRemoved, this, listChanged);
    connect(m_tools, &McpTools::watchesChanged, this, listChanged);
    connect(m_resources, &McpResources::updated, this, [this](const QString& uri) {
        Q_EMIT messageReady(JsonRpc::notification(QStringLiteral("notifications/resources/updated"),
                                                  QJsonObject{{QStringLiteral("uri"), uri}}));
    });
}

McpServer::~McpServer() {
    for (const Pending& pending : std::as_const(m_pending))
        delete pending.progress;
}

bool McpServer::open(QString* error) {
    return m_tools->open(error) && m_resources->open(error);
}

QStringList McpServer::supportedVersions() {
    return {QStringLiteral("2025-11-25"), QStringLiteral("2025-06-18"), QStringLiteral("2025-03-26"),
            QStringLiteral("2024-11-05"), QStringLiteral("2024-10-07")};
}

QString McpServer::keyOf(const QJsonValue& id) {
    // 1 and "1" are different ids.
    return id.isString() ? QLatin1Char('s') + id.toString()
                         : QLatin1Char('n') + QString::number(id.toInteger());
}

void McpServer::reply(const QJsonValue& id, const JsonRpc::Error* error, const QJsonObject& result) {
    Q_EMIT messageReady(error ? JsonRpc::error(id, *error) : JsonRpc::result(id, result));
}

void McpServer::handleTooLong(qint64 bytes) {
    const JsonRpc::Error error{
        JsonRpc::InvalidRequest,
        QStringLiteral("message of %1 bytes is over the 4 MiB limit and was skipped").arg(bytes)};
    reply(QJsonValue::Null, &error, {});
}

void McpServer::handleLine(const QByteArray& line) {
    JsonRpc::Message message;
    JsonRpc::Error error;
    QJsonValue id;
    if (!JsonRpc::parse(line, &message, &error, &id)) {
        // A notification with bad params gets no answer (JSON-RPC never answers one).
        if (error.code == JsonRpc::InvalidParams && !message.raw.contains(QLatin1String("id"))) {
            logLine(error.message);
            return;
        }
        reply(id, &error, {});
        return;
    }
    switch (message.kind) {
    case JsonRpc::Message::Kind::Request:
        handleRequest(message);
        break;
    case JsonRpc::Message::Kind::Notification:
        handleNotification(message);
        break;
    case JsonRpc::Message::Kind::Response:
        break; // Tidewatch sends no requests, so there is nothing to match it to
    }
}

QJsonObject McpServer::initialize(const QJsonObject& params, JsonRpc::Error* error) {
    const QJsonValue asked = params.value(QLatin1String("protocolVersion"));
    if (!asked.isString()) {
        *error = {JsonRpc::InvalidParams,
                  QStringLiteral("initialize needs params.protocolVersion (a string such as \"%1\")")
                      .arg(supportedVersions().constFirst())};
        return {};
    }
    // The client's version when we know it; otherwise our newest, and the client decides
    // whether it can go on (the MCP lifecycle's rule).
    m_version =
        supportedVersions().contains(asked.toString()) ? asked.toString() : supportedVersions().constFirst();
    return QJsonObject{
        {QStringLiteral("protocolVersion"), m_version},
        {QStringLiteral("capabilities"),
         QJsonObject{{QStringLiteral("tools"), QJsonObject{{QStringLiteral("listChanged"), false}}},
                     {QStringLiteral("resources"), QJsonObject{{QStringLiteral("subscribe"), true},
                                                               {QStringLiteral("listChanged"), true}}}}},
        {QStringLiteral("serverInfo"),
         QJsonObject{{QStringLiteral("name"), QStringLiteral("tidewatch")},
                     {QStringLiteral("title"), QStringLiteral("Tidewatch")},
                     {QStringLiteral("version"), QCoreApplication::applicationVersion()}}},
        {QStringLiteral("instructions"),
         QStringLiteral("Tidewatch journals every change of the watched databases. subscribe_changes, then "
                        "loop on poll_changes with the poll_token each answer gives: every change arrives "
                        "once, across restarts of Tidewatch.")}};
}

void McpServer::handleRequest(const JsonRpc::Message& message) {
    const QString key = keyOf(message.id);
    if (m_pending.contains(key)) {
        const JsonRpc::Error error{
            JsonRpc::InvalidRequest,
            QStringLiteral("request id %1 is still being answered; use a new id per request")
                .arg(key.mid(1))};
        return reply(message.id, &error, {});
    }
    const QString& method = message.method;
    JsonRpc::Error error;
    if (method == QLatin1String("initialize")) {
        const QJsonObject result = initialize(message.params, &error);
        return reply(message.id, result.isEmpty() ? &error : nullptr, result);
    }
    if (method == QLatin1String("ping"))
        return reply(message.id, nullptr, {});
    if (method == QLatin1String("tools/list"))
        return reply(message.id, nullptr, QJsonObject{{QStringLiteral("tools"), m_tools->list()}});
    if (method == QLatin1String("tools/call"))
        return callTool(message);
    if (method.startsWith(QLatin1String("resources/"))) {
        QJsonObject result;
        if (m_resources->handle(method, message.params, &result, &error))
            return reply(message.id, nullptr, result);
        if (error.code != JsonRpc::MethodNotFound)
            return reply(message.id, &error, {});
    }
    error = {
        JsonRpc::MethodNotFound,
        QStringLiteral("unknown method \"%1\" (Tidewatch serves initialize, ping, tools/list, tools/call, "
                       "resources/list, resources/read, resources/subscribe, resources/unsubscribe)")
            .arg(method)};
    reply(message.id, &error, {});
}

void McpServer::handleNotification(const JsonRpc::Message& message) {
    if (message.method == QLatin1String("notifications/initialized")) {
        m_initialized = true;
    } else if (message.method == QLatin1String("notifications/cancelled")) {
        // The spec: the request may already be answered or unknown; both are ignored.
        const QString key = keyOf(message.params.value(QLatin1String("requestId")));
        const auto it = m_pending.find(key);
        if (it == m_pending.end())
            return;
        delete it->progress;
        m_pending.erase(it);
        m_tools->cancel(key);
    }
}

void McpServer::callTool(const JsonRpc::Message& message) {
    const QJsonValue name = message.params.value(QLatin1String("name"));
    const QJsonValue arguments = message.params.value(QLatin1String("arguments"));
    if (!name.isString() || (!arguments.isUndefined() && !arguments.isObject())) {
        const JsonRpc::Error error{
            JsonRpc::InvalidParams,
            QStringLiteral("tools/call needs params.name (a string) and params.arguments "
                           "(an object, when given)")};
        return reply(message.id, &error, {});
    }
    const QString key = keyOf(message.id);
    Pending pending;
    pending.id = message.id;
    pending.progressToken =
        message.params.value(QLatin1String("_meta")).toObject().value(QLatin1String("progressToken"));
    m_pending.insert(key, pending);
    m_tools->call(
        name.toString(), arguments.toObject(), key,
        [this, key](const JsonRpc::Error* error, const QJsonObject& result) { finish(key, error, result); });
    // Still pending: the call waits (a long poll), so progress tells the client it lives.
    if (m_pending.contains(key))
        startProgress(key);
}

void McpServer::startProgress(const QString& key) {
    Pending& pending = m_pending[key];
    if (!pending.progressToken.isString() && !pending.progressToken.isDouble())
        return;
    pending.progress = new QTimer;
    connect(pending.progress, &QTimer::timeout, this, [this, key] {
        const auto it = m_pending.find(key);
        if (it == m_pending.end())
            return;
        ++it->ticks;
        Q_EMIT messageReady(JsonRpc::notification(
            QStringLiteral("notifications/progress"),
            QJsonObject{{QStringLiteral("progressToken"), it->progressToken},
                        {QStringLiteral("progress"), it->ticks},
                        {QStringLiteral("message"), QStringLiteral("waiting for changes")}}));
    });
    pending.progress->start(kProgressIntervalMs);
}

void McpServer::finish(const QString& key, const JsonRpc::Error* error, const QJsonObject& result) {
    const auto it = m_pending.find(key);
    if (it == m_pending.end())
        return; // cancelled: the spec says no answer then
    const Pending pending = *it;
    m_pending.erase(it);
    if (pending.progress)
        pending.progress->deleteLater();
    reply(pending.id, error, result);
}

} // namespace tw::mcp

#include "McpTools.h"

#include "McpToolSchemas.h"

#include "AppSession.h"
#include "http/SourceControl.h"
#include "sources/SourceUri.h"

#include <QJsonDocument>

namespace tw::mcp {

namespace {

JsonRpc::Error invalid(const QString& message) {
    return {JsonRpc::InvalidParams, message};
}

// MCP's resource_type and the subscription's Changes are the same three choices.
Subscription::Changes changesFor(const QString& resourceType) {
    if (resourceType == QLatin1String("documents"))
        return Subscription::Changes::Data;
    if (resourceType == QLatin1String("collections"))
        return Subscription::Changes::Schema;
    return Subscription::Changes::All;
}

QString resourceTypeOf(Subscription::Changes changes) {
    switch (changes) {
    case Subscription::Changes::Data:
        return QStringLiteral("documents");
    case Subscription::Changes::Schema:
        return QStringLiteral("collections");
    case Subscription::Changes::All:
        break;
    }
    return QStringLiteral("all");
}

} // namespace

McpTools::McpTools(AppSession* session, QObject* parent)
    : QObject(parent)
    , m_session(session)
    , m_tools(McpToolSchemas::tools()) {}

McpTools::~McpTools() = default;

bool McpTools::open(QString* error) {
    return m_polls.open(m_session->journalPath(), error);
}

QJsonArray McpTools::list() const {
    return m_tools;
}

QJsonObject McpTools::toolResult(const QJsonObject& structured) {
    const QString text = QString::fromUtf8(QJsonDocument(structured).toJson(QJsonDocument::Compact));
    return QJsonObject{
        {QStringLiteral("content"), QJsonArray{QJsonObject{{QStringLiteral("type"), QStringLiteral("text")},
                                                           {QStringLiteral("text"), text}}}},
        {QStringLiteral("structuredContent"), structured}};
}

void McpTools::call(const QString& name, const QJsonObject& arguments, const QString& key, Done done) {
    const QJsonObject definition = McpToolSchemas::tool(name);
    if (definition.isEmpty()) {
        QStringList names;
        for (const QJsonValue& tool : std::as_const(m_tools))
            names.append(tool.toObject().value(QLatin1String("name")).toString());
        const JsonRpc::Error error = invalid(QStringLiteral("unknown tool \"%1\" (tools/list has: %2)")
                                                 .arg(name, names.join(QLatin1String(", "))));
        done(&error, {});
        return;
    }
    QString message;
    if (!McpToolSchemas::check(definition.value(QLatin1String("inputSchema")).toObject(), arguments,
                               QString(), &message)) {
        const JsonRpc::Error error = invalid(QStringLiteral("%1: %2").arg(name, message));
        done(&error, {});
        return;
    }
    // Every result is wrapped once here, so each tool only builds its structured value.
    Done wrap = [done](const JsonRpc::Error* error, const QJsonObject& result) {
        done(error, error ? QJsonObject() : toolResult(result));
    };
    if (name == QLatin1String("subscribe_changes"))
        subscribeChanges(arguments, wrap);
    else if (name == QLatin1String("poll_changes"))
        pollChanges(arguments, key, wrap);
    else if (name == QLatin1String("unsubscribe"))
        unsubscribe(arguments, wrap);
    else if (name == QLatin1String("get_subscriptions"))
        getSubscriptions(arguments, wrap);
    else
        control(name, arguments, done);
}

void McpTools::cancel(const QString& key) {
    m_polls.cancel(key);
}

Namespace McpTools::namespaceIn(const QString& uri, const QString& text) {
    if (SourceUri(uri).isSqlite())
        return Namespace{QStringLiteral("main"),
                         text.startsWith(QLatin1String("main.")) ? text.mid(5) : text};
    return Namespace::fromString(text);
}

bool McpTools::resolveScope(const QString& collectionId, QString* sourceId, Namespace* ns,
                            QString* error) const {
    // "source/namespace" names the source; a bare namespace is looked up among the
    // watched ones, so "orders" finds SQLite's main.orders.
    QString source;
    QString text = collectionId;
    const qsizetype slash = collectionId.indexOf(QLatin1Char('/'));
    if (slash >= 0) {
        source = collectionId.left(slash);
        text = collectionId.mid(slash + 1);
    }
    if (text.isEmpty()) {
        *error = QStringLiteral("filters.collection_id must name a namespace, e.g. \"orders\" or "
                                "\"demo/orders\"");
        return false;
    }
    const QList<ConnectionSpec> connections = m_session->connections();
    for (const ConnectionSpec& spec : connections) {
        if (!source.isEmpty() && spec.id != source)
            continue;
        for (const Namespace& watched : spec.watches) {
            if (watched.toString() == text || (watched.db == QLatin1String("main") && watched.coll == text)) {
                *sourceId = spec.id;
                *ns = watched;
                return true;
            }
        }
        if (!source.isEmpty()) {
            *sourceId = spec.id;
            *ns = namespaceIn(spec.uri, text);
            return true;
        }
    }
    if (!source.isEmpty()) {
        *error = QStringLiteral("filters.collection_id: there is no source \"%1\" (list_sources lists them)")
                     .arg(source);
        return false;
    }
    sourceId->clear();
    *ns = Namespace::fromString(text);
    return true;
}

void McpTools::subscribeChanges(const QJsonObject& arguments, const Done& done) {
    const QString resourceType =
        arguments.value(QLatin1String("resource_type")).toString(QStringLiteral("all"));
    QJsonObject filters = arguments.value(QLatin1String("filters")).toObject();
    const QJsonObject options = arguments.value(QLatin1String("options")).toObject();

    Subscription subscription;
    QString error;
    if (filters.contains(QLatin1String("collection_id"))) {
        const QJsonValue collection = filters.take(QLatin1String("collection_id"));
        if (!collection.isString()) {
            const JsonRpc::Error e = invalid(QStringLiteral("filters.collection_id must be a string"));
            return done(&e, {});
        }
        SourceNamespace scope;
        if (!resolveScope(collection.toString(), &scope.sourceId, &scope.ns, &error)) {
            const JsonRpc::Error e = invalid(error);
            return done(&e, {});
        }
        subscription.namespaces.append(scope);
    }
    if (!filters.isEmpty()) {
        subscription.filter = Filter::compile(QJsonDocument(filters).toJson(QJsonDocument::Compact), &error);
        if (!subscription.filter.isValid()) {
            const JsonRpc::Error e = invalid(QStringLiteral("filters: %1").arg(error));
            return done(&e, {});
        }
    }
    const double interval = options.value(QLatin1String("polling_interval")).toDouble(5);
    const QJsonValue projection = options.value(QLatin1String("projection"));
    if (projection.isString() && projection.toString() != QLatin1String("full") &&
        projection.toString() != QLatin1String("keys")) {
        const JsonRpc::Error e =
            invalid(QStringLiteral("options.projection must be \"full\", \"keys\" or a projection object"));
        return done(&e, {});
    }
    if (projection.isString() || projection.isObject()) {
        const QByteArray text = projection.isObject()
                                    ? QJsonDocument(projection.toObject()).toJson(QJsonDocument::Compact)
                                    : projection.toString().toUtf8();
        QString projectionError;
        if (!subscription.setProjection(text, &projectionError)) {
            // The message names the path from "projection" on.
            const JsonRpc::Error e =
                invalid(projectionError.startsWith(QLatin1String("projection"))
                            ? QStringLiteral("options.%1").arg(projectionError)
                            : QStringLiteral("options.projection: %1").arg(projectionError));
            return done(&e, {});
        }
    }

    const qint64 head = m_session->engine()->lastCommittedSeq();
    subscription.name = QStringLiteral("MCP %1 changes").arg(resourceType);
    subscription.persistent = true;
    subscription.changes = changesFor(resourceType);
    // What poll_changes and get_subscriptions read back, after a restart too; start_seq
    // is where a first poll without a token begins.
    QJsonObject stored{
        {QStringLiteral("front_end"), QStringLiteral("mcp")},
        {QStringLiteral("resource_type"), resourceType},
        {QStringLiteral("filters"), arguments.value(QLatin1String("filters")).toObject()},
        {QStringLiteral("polling_interval"), interval},
        {QStringLiteral("include_data"), options.value(QLatin1String("include_data")).toBool(true)},
        {QStringLiteral("batch_size"), options.value(QLatin1String("batch_size")).toInt(100)},
        {QStringLiteral("start_seq"), QString::number(head)}};
    if (!projection.isUndefined())
        stored.insert(QStringLiteral("projection"), projection);
    subscription.options = stored;
    subscription = m_session->addSubscription(subscription);
    done(nullptr, QJsonObject{{QStringLiteral("subscription_id"), subscription.id},
                              {QStringLiteral("poll_token"), McpPolls::token(subscription.id, head)},
                              {QStringLiteral("polling_interval"), interval}});
}

void McpTools::pollChanges(const QJsonObject& arguments, const QString& key, const Done& done) {
    const QString id = arguments.value(QLatin1String("subscription_id")).toString();
    const std::optional<Subscription> subscription = m_session->subscription(id);
    if (!subscription) {
        const JsonRpc::Error e = invalid(
            QStringLiteral("no subscription \"%1\" (get_subscriptions lists them; subscribe_changes makes "
                           "one)")
                .arg(id));
        return done(&e, {});
    }
    qint64 after = subscription->options.value(QLatin1String("start_seq")).toString().toLongLong();
    const QJsonValue token = arguments.value(QLatin1String("poll_token"));
    QString error;
    if (token.isString() && !McpPolls::parseToken(token.toString(), id, &after, &error)) {
        const JsonRpc::Error e = invalid(error);
        return done(&e, {});
    }
    const int timeoutMs = int(arguments.value(QLatin1String("timeout")).toDouble(0) * 1000);
    m_polls.poll(*subscription, after, timeoutMs, key, done);
}

void McpTools::unsubscribe(const QJsonObject& arguments, const Done& done) {
    const QString id = arguments.value(QLatin1String("subscription_id")).toString();
    if (!m_session->removeSubscription(id)) {
        const JsonRpc::Error e =
            invalid(QStringLiteral("no subscription \"%1\" (get_subscriptions lists them)").arg(id));
        return done(&e, {});
    }
    m_polls.closeSubscription(id);
    done(nullptr, QJsonObject{{QStringLiteral("cancelled"), true},
                              {QStringLiteral("final_poll_token"),
                               McpPolls::token(id, m_session->engine()->lastCommittedSeq())}});
}

QJsonObject McpTools::describe(const Subscription& subscription) const {
    QJsonArray namespaces;
    for (const SourceNamespace& scope : subscription.namespaces)
        namespaces.append(QJsonObject{{QStringLiteral("source"), scope.sourceId},
                                      {QStringLiteral("namespace"), scope.ns.toString()}});
    QJsonObject options = subscription.options;
    options.remove(QStringLiteral("front_end"));
    options.remove(QStringLiteral("start_seq"));
    return QJsonObject{{QStringLiteral("subscription_id"), subscription.id},
                       {QStringLiteral("name"), subscription.name},
                       {QStringLiteral("resource_type"), resourceTypeOf(subscription.changes)},
                       {QStringLiteral("namespaces"), namespaces},
                       {QStringLiteral("options"), options},
                       {QStringLiteral("created"), subscription.created.toUTC().toString(Qt::ISODateWithMs)}};
}

void McpTools::getSubscriptions(const QJsonObject& arguments, const Done& done) {
    const QString wanted = arguments.value(QLatin1String("resource_type")).toString();
    QJsonArray list;
    const SubscriptionList subscriptions = m_session->subscriptions();
    for (const Subscription& subscription : subscriptions)
        if (wanted.isEmpty() || resourceTypeOf(subscription.changes) == wanted)
            list.append(describe(subscription));
    done(nullptr,
         QJsonObject{{QStringLiteral("subscriptions"), list}, {QStringLiteral("total_count"), list.size()}});
}

void McpTools::control(const QString& name, const QJsonObject& arguments, const Done& done) {
    const QString source = arguments.value(QLatin1String("source")).toString();
    const QString ns = arguments.value(QLatin1String("namespace")).toString();
    // The control answers in HTTP terms: a client mistake (400, 404, 409) is bad input;
    // anything else that failed is the tool's own error, which the client can show.
    const auto reply = [this, name, source, ns, done](const ControlReply& answer) {
        const QString message = answer.body.value(QLatin1String("error")).toString();
        if (answer.status == 400 || answer.status == 404 || answer.status == 409) {
            const JsonRpc::Error e = invalid(QStringLiteral("%1: %2").arg(name, message));
            return done(&e, {});
        }
        if (answer.status >= 300) {
            QJsonObject failed = toolResult(answer.body);
            failed.insert(QStringLiteral("isError"), true);
            failed.insert(QStringLiteral("content"),
                          QJsonArray{QJsonObject{
                              {QStringLiteral("type"), QStringLiteral("text")},
                              {QStringLiteral("text"),
                               QStringLiteral("%1: %2 (status %3)").arg(name, message).arg(answer.status)}}});
            return done(nullptr, failed);
        }
        QJsonObject body = answer.body;
        if (name == QLatin1String("unwatch"))
            body = QJsonObject{{QStringLiteral("source"), source},
                               {QStringLiteral("namespace"), ns},
                               {QStringLiteral("unwatched"), true}};
        if (name == QLatin1String("watch") || name == QLatin1String("unwatch"))
            Q_EMIT watchesChanged();
        done(nullptr, toolResult(body));
    };
    SourceControl* control = m_session->control();
    if (name == QLatin1String("list_sources"))
        control->listSources(this, reply);
    else if (name == QLatin1String("list_namespaces"))
        control->listNamespaces(source, this, reply);
    else if (name == QLatin1String("watch"))
        control->watch(source, ns, arguments.value(QLatin1String("options")).toObject(), this, reply);
    else if (name == QLatin1String("unwatch"))
        control->unwatch(source, ns, this, reply);
}

} // namespace tw::mcp

#include "McpResources.h"

#include "AppSession.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QUrl>

namespace tw::mcp {

namespace {

// At most one notifications/resources/updated per resource in this many ms (4 a
// second): a client re-reads on each, and a busy table changes thousands of times a
// second.
constexpr int kCoalesceMs = 250;
// resources/read looks this far back from the journal's head for a namespace's latest
// events; the journal reads forward only, and 5 000 rows read in about a millisecond.
constexpr qint64 kReadWindow = 5000;

// "Resource not found", the code the MCP spec gives for it.
constexpr int kResourceNotFound = -32002;

} // namespace

McpResources::McpResources(AppSession* session, QObject* parent)
    : QObject(parent)
    , m_session(session) {
    m_coalesce.setSingleShot(true);
    m_coalesce.setInterval(kCoalesceMs);
    connect(&m_coalesce, &QTimer::timeout, this, &McpResources::flush);
}

McpResources::~McpResources() = default;

bool McpResources::open(QString* error) {
    return m_reader.open(m_session->journalPath(), error);
}

QString McpResources::uriFor(const QString& sourceId, const Namespace& ns) {
    return QStringLiteral("tidewatch://%1/%2")
        .arg(QString::fromLatin1(QUrl::toPercentEncoding(sourceId)),
             QString::fromLatin1(QUrl::toPercentEncoding(ns.toString())));
}

QList<McpResources::Scope> McpResources::watched() const {
    QList<Scope> scopes;
    const QList<SourceNamespace> watched = m_session->engine()->watchedScopes();
    for (const SourceNamespace& scope : watched)
        scopes.append(Scope{scope.sourceId, scope.ns});
    return scopes;
}

bool McpResources::find(const QJsonObject& params, Scope* scope, QString* uri, JsonRpc::Error* error) const {
    const QJsonValue value = params.value(QLatin1String("uri"));
    if (!value.isString()) {
        *error = {JsonRpc::InvalidParams,
                  QStringLiteral("params.uri must be a string (resources/list has them)")};
        return false;
    }
    *uri = value.toString();
    const QList<Scope> scopes = watched();
    for (const Scope& s : scopes)
        if (uriFor(s.sourceId, s.ns) == *uri) {
            *scope = s;
            return true;
        }
    *error = {
        kResourceNotFound,
        QStringLiteral("no resource %1: it is not a watched namespace (resources/list has them)").arg(*uri)};
    return false;
}

bool McpResources::handle(const QString& method, const QJsonObject& params, QJsonObject* result,
                          JsonRpc::Error* error) {
    Scope scope;
    QString uri;
    if (method == QLatin1String("resources/list")) {
        QJsonArray resources;
        const QList<Scope> scopes = watched();
        for (const Scope& s : scopes)
            resources.append(QJsonObject{
                {QStringLiteral("uri"), uriFor(s.sourceId, s.ns)},
                {QStringLiteral("name"), QStringLiteral("%1/%2").arg(s.sourceId, s.ns.toString())},
                {QStringLiteral("title"),
                 QStringLiteral("Changes of %1 in %2").arg(s.ns.toString(), s.sourceId)},
                {QStringLiteral("description"),
                 QStringLiteral("The latest %1 change events of this namespace").arg(kLatestEvents)},
                {QStringLiteral("mimeType"), QStringLiteral("application/json")}});
        *result = QJsonObject{{QStringLiteral("resources"), resources}};
        return true;
    }
    if (method == QLatin1String("resources/templates/list")) {
        *result = QJsonObject{{QStringLiteral("resourceTemplates"), QJsonArray()}};
        return true;
    }
    if (method == QLatin1String("resources/read")) {
        if (!find(params, &scope, &uri, error))
            return false;
        *result = read(scope, uri, error);
        return !result->isEmpty();
    }
    if (method == QLatin1String("resources/subscribe") || method == QLatin1String("resources/unsubscribe")) {
        if (!find(params, &scope, &uri, error))
            return false;
        if (method == QLatin1String("resources/subscribe"))
            m_subscribed.insert(uri);
        else
            m_subscribed.remove(uri);
        *result = QJsonObject();
        return true;
    }
    *error = {JsonRpc::MethodNotFound, QString()};
    return false;
}

QJsonObject McpResources::read(const Scope& scope, const QString& uri, JsonRpc::Error* error) {
    const qint64 head = m_reader.lastSeq();
    const auto matches = [&scope](const ChangeEvent& event) {
        return event.sourceId() == scope.sourceId && scope.ns.contains(event.ns());
    };
    ChangeEventList latest;
    qint64 after = std::max<qint64>(0, head - kReadWindow);
    while (after < head) {
        const JournalReader::Result r = m_reader.readAfter(after, 1000, matches);
        if (!r.error.isEmpty()) {
            *error = {JsonRpc::InternalError, QStringLiteral("the journal cannot be read: %1").arg(r.error)};
            return {};
        }
        latest += r.events;
        if (latest.size() > kLatestEvents)
            latest.remove(0, latest.size() - kLatestEvents);
        if (!r.hasMore)
            break;
        after = r.scannedThrough;
    }
    QJsonArray events;
    for (const ChangeEvent& event : std::as_const(latest))
        events.append(QJsonDocument::fromJson(event.toJson()).object());
    const QJsonObject body{{QStringLiteral("source"), scope.sourceId},
                           {QStringLiteral("namespace"), scope.ns.toString()},
                           {QStringLiteral("last_seq"), head},
                           {QStringLiteral("events"), events}};
    return QJsonObject{
        {QStringLiteral("contents"),
         QJsonArray{QJsonObject{{QStringLiteral("uri"), uri},
                                {QStringLiteral("mimeType"), QStringLiteral("application/json")},
                                {QStringLiteral("text"),
                                 QString::fromUtf8(QJsonDocument(body).toJson(QJsonDocument::Compact))}}}}};
}

void McpResources::onCommitted(const CommittedBatch& batch) {
    if (m_subscribed.isEmpty())
        return;
    const QList<Scope> scopes = watched();
    for (const Scope& s : scopes) {
        const QString uri = uriFor(s.sourceId, s.ns);
        if (!m_subscribed.contains(uri) || m_dirty.contains(uri))
            continue;
        for (const ChangeEvent& event : batch.events)
            if (event.sourceId() == s.sourceId && s.ns.contains(event.ns())) {
                m_dirty.insert(uri);
                break;
            }
    }
    if (!m_dirty.isEmpty() && !m_coalesce.isActive())
        m_coalesce.start();
}

void McpResources::flush() {
    const QSet<QString> dirty = std::exchange(m_dirty, {});
    for (const QString& uri : dirty)
        Q_EMIT updated(uri);
}

} // namespace tw::mcp

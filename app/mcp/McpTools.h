#pragma once

#include "JsonRpc.h"
#include "McpPolls.h"

#include <functional>
#include <QJsonArray>
#include <QJsonObject>
#include <QObject>

namespace tw {
class AppSession;
struct Subscription;
} // namespace tw

namespace tw::mcp {

// The MCP tools over the application session: their JSON Schemas (input and output) for
// tools/list, and tools/call. A result carries structuredContent and the same as text.
// Bad arguments are JSON-RPC errors (InvalidParams) that name the argument and say what
// it takes.
class McpTools : public QObject {
    Q_OBJECT
public:
    using Done = McpPolls::Done;

    // `session` is not owned and outlives this; it must be started before call().
    explicit McpTools(AppSession* session, QObject* parent = nullptr);
    ~McpTools() override;

    bool open(QString* error);
    QJsonArray list() const;
    // `key` names the request, for cancel(). `done` runs now or later, once.
    void call(const QString& name, const QJsonObject& arguments, const QString& key, Done done);
    void cancel(const QString& key);
    McpPolls* polls() { return &m_polls; }

    // A namespace as typed for a source at `uri`: SQLite's tables live in "main", so
    // "orders" and "main.orders" are the same; elsewhere "db.coll" or "db".
    static Namespace namespaceIn(const QString& uri, const QString& text);
    // The tool result for a structured value: {content:[{type:text}], structuredContent}.
    static QJsonObject toolResult(const QJsonObject& structured);

Q_SIGNALS:
    void watchesChanged(); // a watch or unwatch through the tools succeeded

private:
    void subscribeChanges(const QJsonObject& arguments, const Done& done);
    void pollChanges(const QJsonObject& arguments, const QString& key, const Done& done);
    void unsubscribe(const QJsonObject& arguments, const Done& done);
    void getSubscriptions(const QJsonObject& arguments, const Done& done);
    // list_sources, list_namespaces, watch, unwatch: through the session's SourceControl.
    void control(const QString& name, const QJsonObject& arguments, const Done& done);
    QJsonObject describe(const Subscription& subscription) const;
    bool resolveScope(const QString& collectionId, QString* sourceId, Namespace* ns, QString* error) const;

    AppSession* m_session; // not owned
    McpPolls m_polls;
    QJsonArray m_tools;
};

} // namespace tw::mcp

#pragma once

#include "JsonRpc.h"

#include "journal/JournalReader.h"
#include "model/ChangeBatch.h"
#include "model/Namespace.h"

#include <QJsonObject>
#include <QObject>
#include <QSet>
#include <QTimer>

namespace tw {
class AppSession;
}

namespace tw::mcp {

// Each watched namespace as an MCP resource, tidewatch://SOURCE/NAMESPACE: resources/list,
// resources/read (its latest events from the journal) and resources/subscribe, after
// which a change of the namespace sends updated(uri), coalesced.
class McpResources : public QObject {
    Q_OBJECT
public:
    // `session` is not owned and outlives this.
    explicit McpResources(AppSession* session, QObject* parent = nullptr);
    ~McpResources() override;

    bool open(QString* error);
    // Handles a resources/* request. False with MethodNotFound for a method it does not
    // serve, with another error when the request is wrong.
    bool handle(const QString& method, const QJsonObject& params, QJsonObject* result, JsonRpc::Error* error);
    void onCommitted(const tw::CommittedBatch& batch);

    static QString uriFor(const QString& sourceId, const Namespace& ns);
    // The latest events resources/read gives, and how far back it looks for them.
    static constexpr int kLatestEvents = 20;

Q_SIGNALS:
    void updated(const QString& uri);

private:
    struct Scope {
        QString sourceId;
        Namespace ns;
    };
    QList<Scope> watched() const;
    bool find(const QJsonObject& params, Scope* scope, QString* uri, JsonRpc::Error* error) const;
    QJsonObject read(const Scope& scope, const QString& uri, JsonRpc::Error* error);
    void flush();

    AppSession* m_session; // not owned
    JournalReader m_reader;
    QSet<QString> m_subscribed;
    QSet<QString> m_dirty;
    QTimer m_coalesce;
};

} // namespace tw::mcp

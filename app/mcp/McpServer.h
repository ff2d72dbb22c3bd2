#pragma once

#include "JsonRpc.h"

#include <QHash>
#include <QJsonObject>
#include <QObject>
#include <QStringList>

class QTimer;

namespace tw {
class AppSession;
}

namespace tw::mcp {

class McpResources;
class McpTools;

// The MCP server's protocol side: the lifecycle (initialize with version negotiation,
// ping), dispatch of tools/* and resources/* requests, cancellation
// (notifications/cancelled) and progress for calls that wait (_meta.progressToken).
// Transport-free: lines come in through handleLine(), messages leave by messageReady().
class McpServer : public QObject {
    Q_OBJECT
public:
    // `session` is not owned, outlives this and is started before open().
    explicit McpServer(AppSession* session, QObject* parent = nullptr);
    ~McpServer() override;

    bool open(QString* error);
    void handleLine(const QByteArray& line);
    void handleTooLong(qint64 bytes);

    // Newest first: what the official SDKs send (TypeScript SDK 1.x
    // SUPPORTED_PROTOCOL_VERSIONS), each of whose messages we read and write.
    static QStringList supportedVersions();
    QString protocolVersion() const { return m_version; } // empty before initialize
    McpTools* tools() const { return m_tools; }

Q_SIGNALS:
    void messageReady(const QByteArray& line); // one JSON-RPC message and its newline

private:
    struct Pending {
        QJsonValue id;
        QJsonValue progressToken;
        QTimer* progress = nullptr; // owned
        int ticks = 0;
    };

    void handleRequest(const JsonRpc::Message& message);
    void handleNotification(const JsonRpc::Message& message);
    QJsonObject initialize(const QJsonObject& params, JsonRpc::Error* error);
    void callTool(const JsonRpc::Message& message);
    void finish(const QString& key, const JsonRpc::Error* error, const QJsonObject& result);
    void startProgress(const QString& key);
    void reply(const QJsonValue& id, const JsonRpc::Error* error, const QJsonObject& result);
    static QString keyOf(const QJsonValue& id);

    AppSession* m_session;               // not owned
    McpTools* m_tools = nullptr;         // child
    McpResources* m_resources = nullptr; // child
    QString m_version;
    bool m_initialized = false;
    QHash<QString, Pending> m_pending; // requests still being answered, by keyOf(id)
};

} // namespace tw::mcp

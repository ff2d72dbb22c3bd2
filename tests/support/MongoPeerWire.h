#pragma once

#include "model/Bson.h"

#include <QByteArray>
#include <QByteArrayView>
#include <QObject>
#include <QString>

#include <functional>
#include <map>
#include <memory>
#include <vector>

class QTcpServer;
class QTcpSocket;

namespace tw::test {

// The MongoDB test peer's wire: the listening socket, its connections, and the
// framing of OP_MSG and the legacy OP_QUERY/OP_REPLY pair (MongoDB's "OP_MSG" and
// "Legacy Opcodes" pages). It cuts the byte stream into messages, turns each into a
// Request for the command layer (MongoPeerCommands) and frames the replies. It knows
// no command names.
//
// Not implemented: compression (OP_COMPRESSED), exhaust replies (the exhaustAllowed
// bit is accepted and ignored: the peer never streams replies), authentication.
class MongoPeerWire : public QObject {
    Q_OBJECT

public:
    static constexpr qint32 OpReply = 1;
    static constexpr qint32 OpQuery = 2004;
    static constexpr qint32 OpMsg = 2013;
    // The server's limits, also what hello advertises.
    static constexpr qint32 MaxBsonObjectSize = 16 * 1024 * 1024;
    static constexpr qint32 MaxMessageSizeBytes = 48000000;

    struct Connection {
        QTcpSocket* socket = nullptr; // owned; deleteLater() on destruction
        QByteArray buffer;
        int id = 0;
        bool waiting = false; // a getMore is parked; the driver sends nothing until it is answered
        bool closing = false;
        ~Connection();
    };

    struct Request {
        qint32 requestId = 0;
        qint32 opCode = OpMsg;
        bool moreToCome = false;
        Bson body; // OP_MSG document sequences merged in as arrays
        QString name;
        QString db;
    };

    // Called for every request read, in order; the connection stays valid for the call.
    using RequestHandler = std::function<void(Connection*, const Request&)>;
    // Called when a client's socket closes, before the connection is released (on the
    // next event-loop pass), so that whatever refers to it can let go.
    using ClosedHandler = std::function<void(Connection*)>;

    explicit MongoPeerWire(QObject* parent = nullptr);
    ~MongoPeerWire() override;

    void setRequestHandler(RequestHandler handler) { m_onRequest = std::move(handler); }
    void setClosedHandler(ClosedHandler handler) { m_onClosed = std::move(handler); }

    // Binds 127.0.0.1; port 0 picks a free one.
    bool listen(quint16 port);
    quint16 port() const;
    QString hostAndPort() const; // "127.0.0.1:PORT"

    // Frames `reply` for `request` (OP_REPLY for OP_QUERY, else OP_MSG); nothing is
    // sent when the request asked for no reply or the connection is closing.
    void sendReply(Connection* connection, const Request& request, const Bson& reply);
    // Closes the client's socket without a reply (the failpoint's closeConnection).
    void closeConnection(Connection* connection);
    // What a damaged server or a broken middlebox might send instead of `reply`:
    // "malformed" (an OP_MSG whose body is not BSON), "oversized" (a header that
    // announces 64 MiB, above maxMessageSizeBytes, and nothing after it) or
    // "truncated" (the first half of the reply, then silence on an open socket).
    // False for any other kind.
    bool sendBrokenReply(Connection* connection, const Request& request, const Bson& reply,
                         const QString& kind);
    // Reads on from the connection's buffer on the next event-loop pass (after a
    // parked request was answered, or a stall ended); does nothing if it closed meanwhile.
    void resumeLater(Connection* connection);
    void resumeAllLater();
    void dropConnections();

    // While stalled nothing is read from the buffers; bytes keep arriving.
    void setStalled(bool stalled) { m_stalled = stalled; }
    bool isStalled() const { return m_stalled; }

    int connectionCount() const { return int(m_connections.size()); }
    int totalConnections() const { return m_totalConnections; }

    // CRC-32C as OP_MSG's optional checksum uses it.
    static quint32 crc32c(QByteArrayView data);

Q_SIGNALS:
    void clientConnected();
    void clientDisconnected();

private:
    void onNewConnection();
    void onReadyRead(Connection* connection);
    void onDisconnected(Connection* connection);
    void processInput(Connection* connection);
    bool processMessage(Connection* connection, const QByteArray& message);

    QTcpServer* m_server = nullptr; // owned (child)
    std::map<QTcpSocket*, std::unique_ptr<Connection>> m_connections;
    std::vector<std::unique_ptr<Connection>> m_closed; // disconnected, deleted on the next loop pass
    RequestHandler m_onRequest;
    ClosedHandler m_onClosed;
    bool m_stalled = false;
    int m_totalConnections = 0;
    int m_nextConnectionId = 1;
    qint32 m_nextRequestId = 1;
};

} // namespace tw::test

#include "MongoPeerWire.h"

#include "MongoPeerBson.h"

#include <QHostAddress>
#include <QList>
#include <QPair>
#include <QTcpServer>
#include <QTcpSocket>

#include <array>

namespace tw::test {

using namespace peerbson;

namespace {

// OP_MSG flag bits and OP_REPLY response flags.
constexpr quint32 MsgChecksumPresent = 1u << 0;
constexpr quint32 MsgMoreToCome = 1u << 1;
constexpr quint32 MsgExhaustAllowed = 1u << 16;
constexpr qint32 ReplyQueryFailure = 1 << 1;
constexpr qint32 ReplyAwaitCapable = 1 << 3;

qint32 readInt32(const char* p) {
    quint32 v = 0;
    for (int i = 3; i >= 0; --i)
        v = (v << 8) | quint8(p[i]);
    return qint32(v);
}

void appendInt32(QByteArray& out, quint32 v) {
    for (int i = 0; i < 4; ++i)
        out.append(char((v >> (8 * i)) & 0xff));
}

void appendInt64(QByteArray& out, quint64 v) {
    for (int i = 0; i < 8; ++i)
        out.append(char((v >> (8 * i)) & 0xff));
}

} // namespace

MongoPeerWire::Connection::~Connection() {
    if (socket) {
        socket->disconnect();
        socket->deleteLater();
    }
}

MongoPeerWire::MongoPeerWire(QObject* parent)
    : QObject(parent)
    , m_server(new QTcpServer(this)) {
    connect(m_server, &QTcpServer::newConnection, this, &MongoPeerWire::onNewConnection);
}

MongoPeerWire::~MongoPeerWire() = default;

bool MongoPeerWire::listen(quint16 port) {
    return m_server->listen(QHostAddress::LocalHost, port);
}

quint16 MongoPeerWire::port() const {
    return m_server->serverPort();
}

QString MongoPeerWire::hostAndPort() const {
    return QStringLiteral("127.0.0.1:%1").arg(port());
}

quint32 MongoPeerWire::crc32c(QByteArrayView data) {
    // CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, as OP_MSG's checksum.
    static const std::array<quint32, 256> table = [] {
        std::array<quint32, 256> t{};
        for (quint32 n = 0; n < 256; ++n) {
            quint32 c = n;
            for (int k = 0; k < 8; ++k)
                c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            t[n] = c;
        }
        return t;
    }();
    quint32 crc = 0xFFFFFFFFu;
    for (char ch : data)
        crc = table[(crc ^ quint8(ch)) & 0xff] ^ (crc >> 8);
    return ~crc;
}

void MongoPeerWire::dropConnections() {
    std::vector<QTcpSocket*> sockets;
    for (const auto& entry : m_connections)
        sockets.push_back(entry.first);
    for (QTcpSocket* socket : sockets)
        socket->abort(); // emits disconnected, which cleans up the connection
}

void MongoPeerWire::closeConnection(Connection* connection) {
    connection->closing = true;
    connection->socket->abort();
}

void MongoPeerWire::resumeLater(Connection* connection) {
    QMetaObject::invokeMethod(
        this,
        [this, socket = connection->socket] {
            auto found = m_connections.find(socket);
            if (found != m_connections.end())
                processInput(found->second.get());
        },
        Qt::QueuedConnection);
}

void MongoPeerWire::resumeAllLater() {
    for (const auto& entry : m_connections)
        resumeLater(entry.second.get());
}

void MongoPeerWire::onNewConnection() {
    while (QTcpSocket* socket = m_server->nextPendingConnection()) {
        // As mongod does: no Nagle delay on replies (otherwise each getMore round trip
        // waited for the driver's delayed ACK, 25 ms a batch).
        socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
        auto connection = std::make_unique<Connection>();
        connection->socket = socket;
        connection->id = m_nextConnectionId++;
        Connection* raw = connection.get();
        m_connections.emplace(socket, std::move(connection));
        ++m_totalConnections;
        connect(socket, &QTcpSocket::readyRead, this, [this, raw] { onReadyRead(raw); });
        connect(socket, &QTcpSocket::disconnected, this, [this, raw] { onDisconnected(raw); });
        Q_EMIT clientConnected();
    }
}

void MongoPeerWire::onReadyRead(Connection* connection) {
    connection->buffer.append(connection->socket->readAll());
    processInput(connection);
}

void MongoPeerWire::onDisconnected(Connection* connection) {
    auto found = m_connections.find(connection->socket);
    if (found == m_connections.end())
        return;
    connection->closing = true;
    if (m_onClosed)
        m_onClosed(connection);
    // Deleted on the next event-loop pass: this may run inside processInput()
    // (a failpoint closing the socket) which still holds the pointer.
    m_closed.push_back(std::move(found->second));
    m_connections.erase(found);
    QMetaObject::invokeMethod(
        this, [this] { m_closed.clear(); }, Qt::QueuedConnection);
    Q_EMIT clientDisconnected();
}

void MongoPeerWire::processInput(Connection* connection) {
    while (!m_stalled && !connection->closing && !connection->waiting && connection->buffer.size() >= 4) {
        const qint32 length = readInt32(connection->buffer.constData());
        if (length < 16 || length > MaxMessageSizeBytes) {
            qCWarning(lcMongoPeer) << "invalid messageLength" << length << "- closing the connection";
            connection->closing = true;
            connection->socket->abort();
            return;
        }
        if (connection->buffer.size() < length)
            return;
        const QByteArray message = connection->buffer.left(length);
        connection->buffer.remove(0, length);
        if (!processMessage(connection, message)) {
            if (!connection->closing) {
                connection->closing = true;
                connection->socket->abort();
            }
            return;
        }
    }
}

bool MongoPeerWire::processMessage(Connection* connection, const QByteArray& message) {
    const char* p = message.constData();
    const qint32 length = qint32(message.size());
    Request request;
    request.requestId = readInt32(p + 4);
    request.opCode = readInt32(p + 12);

    if (request.opCode == OpQuery) {
        // flags, fullCollectionName, numberToSkip, numberToReturn, query
        qint32 pos = 20;
        const qint32 nameEnd = qint32(message.indexOf('\0', pos));
        if (nameEnd < 0 || nameEnd + 1 + 8 + 5 > length)
            return false;
        const QString fullName = QString::fromUtf8(p + pos, nameEnd - pos);
        pos = nameEnd + 1 + 8;
        const qint32 docLength = readInt32(p + pos);
        if (docLength < 5 || pos + docLength > length)
            return false;
        Bson query = Bson::fromRaw(QByteArray(p + pos, docLength));
        // Drivers wrap the command as {$query: cmd, $readPreference: …} when they
        // pass a read preference.
        for (const char* wrapper : {"$query", "query"}) {
            if (firstKey(query) == QLatin1String(wrapper)) {
                const Bson inner = documentField(query, wrapper);
                if (!inner.isAbsent())
                    query = inner;
                break;
            }
        }
        if (!fullName.endsWith(QLatin1String(".$cmd"))) {
            // Real servers dropped OP_QUERY reads long ago; answer as they do.
            BsonBuilder b;
            appendUtf8(b.get(), "$err", QStringLiteral("OP_QUERY is not supported for %1").arg(fullName));
            bson_append_int32(b.get(), "code", 4, 5739101);
            QByteArray out;
            const Bson doc = b.take();
            const qint32 total = 16 + 20 + qint32(doc.size());
            appendInt32(out, quint32(total));
            appendInt32(out, 0);
            appendInt32(out, quint32(request.requestId));
            appendInt32(out, OpReply);
            appendInt32(out, ReplyQueryFailure);
            appendInt64(out, 0);
            appendInt32(out, 0);
            appendInt32(out, 1);
            out.append(doc.raw());
            connection->socket->write(out);
            return true;
        }
        request.db = fullName.left(fullName.size() - 5);
        request.body = query;
        request.name = firstKey(query);
        m_onRequest(connection, request);
        return true;
    }

    if (request.opCode != OpMsg) {
        qCWarning(lcMongoPeer) << "unsupported opCode" << request.opCode << "- closing the connection";
        return false;
    }
    if (length < 21)
        return false;
    const quint32 flags = quint32(readInt32(p + 16));
    // Bits 0-15 are "required": a receiver must reject unknown ones.
    if (flags & 0xffffu & ~(MsgChecksumPresent | MsgMoreToCome)) {
        qCWarning(lcMongoPeer) << "unknown required OP_MSG flag bits" << Qt::hex << flags;
        return false;
    }
    Q_UNUSED(MsgExhaustAllowed) // accepted and ignored: the peer never streams replies
    request.moreToCome = flags & MsgMoreToCome;
    qint32 end = length;
    if (flags & MsgChecksumPresent) {
        end -= 4;
        const quint32 expected = quint32(readInt32(p + end));
        if (crc32c(QByteArrayView(p, end)) != expected) {
            qCWarning(lcMongoPeer) << "OP_MSG checksum mismatch - closing the connection";
            return false;
        }
    }
    Bson body;
    QList<QPair<QByteArray, QList<Bson>>> sequences;
    qint32 pos = 20;
    while (pos < end) {
        const quint8 kind = quint8(p[pos++]);
        if (pos + 4 > end)
            return false;
        const qint32 size = readInt32(p + pos);
        if (kind == 0) {
            if (!body.isAbsent() || size < 5 || pos + size > end)
                return false; // exactly one body section
            body = Bson::fromRaw(QByteArray(p + pos, size));
            pos += size;
        } else if (kind == 1) {
            const qint32 sectionEnd = pos + size;
            if (size < 5 || sectionEnd > end)
                return false;
            qint32 cur = pos + 4;
            const qint32 idEnd = qint32(message.indexOf('\0', cur));
            if (idEnd < 0 || idEnd >= sectionEnd)
                return false;
            QByteArray identifier(p + cur, idEnd - cur);
            cur = idEnd + 1;
            QList<Bson> docs;
            while (cur < sectionEnd) {
                if (cur + 4 > sectionEnd)
                    return false;
                const qint32 docLength = readInt32(p + cur);
                if (docLength < 5 || cur + docLength > sectionEnd)
                    return false;
                docs.append(Bson::fromRaw(QByteArray(p + cur, docLength)));
                cur += docLength;
            }
            sequences.append({identifier, docs});
            pos = sectionEnd;
        } else {
            qCWarning(lcMongoPeer) << "unknown OP_MSG section kind" << kind;
            return false;
        }
    }
    if (body.isAbsent())
        return false;
    if (!sequences.isEmpty()) {
        BsonBuilder merged;
        View view(body);
        if (!view.isValid())
            return false;
        bson_concat(merged.get(), view.get());
        for (const auto& [identifier, docs] : std::as_const(sequences))
            appendArray(merged.get(), identifier.constData(), docs);
        body = merged.take();
    }
    {
        View check(body);
        if (!check.isValid() || !bson_validate(check.get(), BSON_VALIDATE_NONE, nullptr))
            return false;
    }
    request.body = body;
    request.name = firstKey(body);
    request.db = stringField(body, "$db");
    m_onRequest(connection, request);
    return true;
}

bool MongoPeerWire::sendBrokenReply(Connection* connection, const Request& request, const Bson& reply,
                                    const QString& kind) {
    if (connection->closing)
        return true;
    QByteArray out;
    if (kind == QLatin1String("malformed")) {
        // A document of the right length whose one element has a type BSON does
        // not have (0xEE). (Not a document whose length runs past the message:
        // Debian's libmongoc 1.23 reads past its buffer on that one and crashes in
        // _mongoc_rpc_scatter, before any code of a client can look at it.)
        const QByteArray body = QByteArray::fromHex("0c000000"
                                                    "ee"
                                                    "6100"
                                                    "01020304"
                                                    "00");
        appendInt32(out, quint32(16 + 4 + 1 + body.size()));
        appendInt32(out, quint32(m_nextRequestId++));
        appendInt32(out, quint32(request.requestId));
        appendInt32(out, OpMsg);
        appendInt32(out, 0);
        out.append(char(0));
        out.append(body);
    } else if (kind == QLatin1String("oversized")) {
        appendInt32(out, quint32(64 * 1024 * 1024));
        appendInt32(out, quint32(m_nextRequestId++));
        appendInt32(out, quint32(request.requestId));
        appendInt32(out, OpMsg);
    } else if (kind == QLatin1String("truncated")) {
        const qint32 total = 16 + 4 + 1 + qint32(reply.size());
        appendInt32(out, quint32(total));
        appendInt32(out, quint32(m_nextRequestId++));
        appendInt32(out, quint32(request.requestId));
        appendInt32(out, OpMsg);
        appendInt32(out, 0);
        out.append(char(0));
        out.append(reply.raw());
        out.truncate(total / 2);
    } else {
        return false;
    }
    connection->socket->write(out);
    return true;
}

void MongoPeerWire::sendReply(Connection* connection, const Request& request, const Bson& reply) {
    if (request.moreToCome || connection->closing)
        return; // the client asked for no reply (unacknowledged write)
    QByteArray out;
    if (request.opCode == OpQuery) {
        const qint32 total = 16 + 20 + qint32(reply.size());
        out.reserve(total);
        appendInt32(out, quint32(total));
        appendInt32(out, quint32(m_nextRequestId++));
        appendInt32(out, quint32(request.requestId));
        appendInt32(out, OpReply);
        appendInt32(out, ReplyAwaitCapable);
        appendInt64(out, 0); // cursorID: commands return their cursors in the document
        appendInt32(out, 0); // startingFrom
        appendInt32(out, 1); // numberReturned
        out.append(reply.raw());
    } else {
        const qint32 total = 16 + 4 + 1 + qint32(reply.size());
        out.reserve(total);
        appendInt32(out, quint32(total));
        appendInt32(out, quint32(m_nextRequestId++));
        appendInt32(out, quint32(request.requestId));
        appendInt32(out, OpMsg);
        appendInt32(out, 0); // flagBits: no checksum, no moreToCome (no exhaust)
        out.append(char(0));
        out.append(reply.raw());
    }
    connection->socket->write(out);
}

} // namespace tw::test

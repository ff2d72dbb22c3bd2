#include "HttpAdapter.h"

// The one file that knows QtHttpServer. Written against Qt 6.4, where
// QAbstractHttpServer hands the complete request and its QTcpSocket to
// handleRequest(), and QHttpServerResponder writes the status line, headers and body
// pieces separately (both changed in 6.5–6.8: QHttpHeaders, responder-only handlers).

#include <QAbstractHttpServer>
#include <QDateTime>
#include <QHttpServerRequest>
#include <QHttpServerResponder>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTimer>

#include <sys/socket.h>

namespace tw {

namespace {

qint64 nowMs() {
    return QDateTime::currentMSecsSinceEpoch();
}

HttpRequest::Method methodOf(QHttpServerRequest::Method method) {
    switch (method) {
    case QHttpServerRequest::Method::Get:
        return HttpRequest::Method::Get;
    case QHttpServerRequest::Method::Head:
        return HttpRequest::Method::Head;
    case QHttpServerRequest::Method::Post:
        return HttpRequest::Method::Post;
    case QHttpServerRequest::Method::Put:
        return HttpRequest::Method::Put;
    case QHttpServerRequest::Method::Delete:
        return HttpRequest::Method::Delete;
    case QHttpServerRequest::Method::Options:
        return HttpRequest::Method::Options;
    case QHttpServerRequest::Method::Patch:
        return HttpRequest::Method::Patch;
    default:
        return HttpRequest::Method::Other;
    }
}

QByteArray statusText(int status) {
    switch (status) {
    case 413:
        return QByteArrayLiteral("Payload Too Large");
    case 431:
        return QByteArrayLiteral("Request Header Fields Too Large");
    case 503:
        return QByteArrayLiteral("Service Unavailable");
    default:
        return QByteArrayLiteral("Error");
    }
}

} // namespace

// --- HttpRequest ---------------------------------------------------------------------

QByteArray HttpRequest::header(QByteArrayView name) const {
    for (const auto& h : headers)
        if (QByteArrayView(h.first).compare(name, Qt::CaseInsensitive) == 0)
            return h.second;
    return {};
}

QString HttpRequest::queryValue(const QString& key) const {
    return query.queryItemValue(key, QUrl::FullyDecoded);
}

QStringList HttpRequest::queryValues(const QString& key) const {
    return query.allQueryItemValues(key, QUrl::FullyDecoded);
}

// --- HttpResponder -------------------------------------------------------------------

struct HttpResponder::Private {
    // QHttpServerResponder keeps a raw pointer to the socket and a reference to the
    // request the socket owns, so it is only touched while `socket` is alive.
    std::unique_ptr<QHttpServerResponder> responder;
    QPointer<QTcpSocket> socket;
    QPointer<HttpAdapter> adapter;
    QMetaObject::Connection closed;
    QMetaObject::Connection destroyed;
    QMetaObject::Connection written; // calls into this object: disconnected with it
    // Bytes the kernel refused, shared with whoever wrote them (a replay block, a live
    // batch's run), oldest first, after whatever the socket itself holds. Copying them into
    // the socket's buffer cost a copy per client: 470 MiB for a herd of 2 000 replaying
    // clients. The socket holds a small slice ahead of them, so that its bytesWritten
    // says when the kernel takes more.
    QList<QByteArray> queued;
    qsizetype queuedOffset = 0; // of queued.first(), already sent
    qint64 queuedBytes = 0;     // not yet sent, over all of queued
    std::function<void()> onWritten;
    QPointer<QObject> onWrittenContext;
    // Set by beginStream(). A stream's writes (one per client per live batch) read these
    // instead of asking the socket: its state and buffer live in objects of their own,
    // and with 2 000 streams reading them cost a tenth of the server's CPU in cache
    // misses. `connected` follows the socket's stateChanged and destroyed; bytes can be
    // in the socket's own buffer only after something was written through it (the
    // header block, a slice in drain()), until it is seen empty.
    bool streaming = false;
    bool connected = false;
    bool socketMayHold = false;
    int descriptor = -1;
    QMetaObject::Connection stateChanged;
    QMetaObject::Connection gone;

    bool isOpen() const {
        if (streaming)
            return connected;
        return socket && socket->state() == QAbstractSocket::ConnectedState;
    }
    // Bytes in the socket's own buffer.
    qint64 socketHolds() {
        if (streaming && !socketMayHold)
            return 0;
        const qint64 n = socket ? socket->bytesToWrite() : 0;
        if (n == 0)
            socketMayHold = false;
        return n;
    }
    void startStreaming();

    // Hands the kernel what it takes of `queued`; the rest waits behind a slice copied
    // into the socket. Only while the socket holds nothing.
    void drain();
    void enqueue(const QByteArray& bytes, qsizetype offset);
    void connectWritten();
    ~Private() {
        QObject::disconnect(written);
        QObject::disconnect(stateChanged);
        QObject::disconnect(gone);
    }
};

void HttpResponder::Private::startStreaming() {
    QTcpSocket* s = socket;
    if (streaming || !s)
        return;
    streaming = true;
    connected = s->state() == QAbstractSocket::ConnectedState;
    socketMayHold = true; // the header block
    descriptor = int(s->socketDescriptor());
    // Direct: the socket lives on this thread, and a write right after a state change
    // must already see it.
    stateChanged =
        QObject::connect(s, &QAbstractSocket::stateChanged, s, [this](QAbstractSocket::SocketState state) {
            connected = state == QAbstractSocket::ConnectedState;
        });
    gone = QObject::connect(s, &QObject::destroyed, [this] { connected = false; });
}

namespace {
// What the socket is handed ahead of the queue when the kernel refuses: small, since it is
// copied per client, and enough to be told when the kernel takes bytes again.
constexpr qsizetype kSocketSlice = 4096;
} // namespace

void HttpResponder::Private::enqueue(const QByteArray& bytes, qsizetype offset) {
    // Only the first piece can be part sent: later ones queue whole behind it.
    if (queued.isEmpty())
        queuedOffset = offset;
    queued.append(bytes);
    queuedBytes += bytes.size() - offset;
}

void HttpResponder::Private::drain() {
    QTcpSocket* s = socket;
    while (!queued.isEmpty() && s && s->state() == QAbstractSocket::ConnectedState && socketHolds() == 0) {
        const QByteArray& head = queued.first();
        const qsizetype left = head.size() - queuedOffset;
        const ssize_t n = ::send(int(s->socketDescriptor()), head.constData() + queuedOffset, size_t(left),
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        const qsizetype sent = n > 0 ? qsizetype(n) : 0;
        queuedBytes -= sent;
        if (sent == left) {
            queued.removeFirst();
            queuedOffset = 0;
            continue;
        }
        queuedOffset += sent;
        // The kernel is full (or the connection failed): a slice goes through the socket,
        // which waits for the peer and reports an error the usual way.
        const qsizetype slice = std::min(kSocketSlice, left - sent);
        s->write(head.constData() + queuedOffset, slice);
        socketMayHold = true;
        queuedOffset += slice;
        queuedBytes -= slice;
        if (queuedOffset == head.size()) {
            queued.removeFirst();
            queuedOffset = 0;
        }
        return;
    }
}

void HttpResponder::Private::connectWritten() {
    if (written || !socket)
        return;
    // One connection for the queue and the owner's handler, in that order: the handler
    // sees what the queue left pending.
    written = QObject::connect(socket, &QTcpSocket::bytesWritten, socket, [this] {
        if (socket && socketHolds() == 0)
            drain();
        if (onWritten && onWrittenContext)
            onWritten();
    });
}

HttpResponder::HttpResponder() = default;
HttpResponder::HttpResponder(HttpResponder&&) noexcept = default;
HttpResponder& HttpResponder::operator=(HttpResponder&&) noexcept = default;

HttpResponder::~HttpResponder() {
    if (!d)
        return;
    QObject::disconnect(d->closed);
    QObject::disconnect(d->destroyed);
    QObject::disconnect(d->written);
}

bool HttpResponder::isOpen() const {
    return d && d->isOpen();
}

void HttpResponder::send(int status, const HttpHeaders& headers, const QByteArray& body) {
    if (!isOpen())
        return;
    d->responder->writeStatusLine(QHttpServerResponder::StatusCode(status));
    for (const auto& h : headers)
        d->responder->writeHeader(h.first, h.second);
    d->responder->writeHeader(QByteArrayLiteral("Content-Length"), QByteArray::number(body.size()));
    d->responder->writeBody(body);
    if (d->adapter)
        d->adapter->requestCompleted(d->socket);
}

void HttpResponder::beginStream(int status, const HttpHeaders& headers) {
    if (!isOpen())
        return;
    d->responder->writeStatusLine(QHttpServerResponder::StatusCode(status));
    for (const auto& h : headers)
        d->responder->writeHeader(h.first, h.second);
    // Ends the header block; the body follows piece by piece.
    d->responder->writeBody(QByteArray());
    // Each later piece is a whole batch of events already. With Nagle's algorithm on, a
    // piece written while the previous one is unacknowledged waited for the peer's
    // delayed ACK: 40 to 250 ms on loopback, the whole p99 of 2 000 streams.
    d->socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
    d->startStreaming();
}

void HttpResponder::write(const QByteArray& bytes) {
    if (!isOpen() || bytes.isEmpty())
        return;
    // (The sockets come from our own plain-TCP Listener: nothing here encrypts.)
    if (!d->queued.isEmpty() || d->socketHolds() > 0) {
        // Behind bytes still waiting: shared, not copied, until the kernel takes them.
        d->connectWritten();
        d->enqueue(bytes, 0);
        return;
    }
    // Nothing queued ahead of these bytes: hand them to the kernel directly. Going
    // through QAbstractSocket (ring buffer, flush, the write notifier switched on and
    // off, bytesWritten) cost a fifth of the server's CPU with 2 000 streams.
    const int descriptor = d->streaming ? d->descriptor : int(d->socket->socketDescriptor());
    const ssize_t n =
        ::send(descriptor, bytes.constData(), size_t(bytes.size()), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == bytes.size())
        return;
    // What the kernel did not take (its buffer is full, or an error) waits for it.
    d->connectWritten();
    d->enqueue(bytes, n > 0 ? qsizetype(n) : 0);
    d->drain();
}

qint64 HttpResponder::pendingBytes() const {
    return isOpen() ? d->socketHolds() + d->queuedBytes : 0;
}

void HttpResponder::close() {
    if (!d || !d->socket)
        return;
    QTcpSocket* socket = d->socket;
    d->queued.clear();
    d->queuedBytes = 0;
    if (socket->state() == QAbstractSocket::ConnectedState)
        socket->flush();
    socket->abort();
}

void HttpResponder::setClosedHandler(QObject* context, std::function<void()> handler) {
    if (!d || !d->socket) {
        QMetaObject::invokeMethod(context, std::move(handler), Qt::QueuedConnection);
        return;
    }
    QObject::disconnect(d->closed);
    QObject::disconnect(d->destroyed);
    // Either signal may come first (QtHttpServer deletes a socket on disconnect); the
    // shared flag makes the handler run once.
    auto fired = std::make_shared<bool>(false);
    auto once = [fired, handler = std::move(handler)] {
        if (*fired)
            return;
        *fired = true;
        handler();
    };
    d->closed = QObject::connect(d->socket, &QTcpSocket::disconnected, context, once, Qt::QueuedConnection);
    d->destroyed = QObject::connect(d->socket, &QObject::destroyed, context, once, Qt::QueuedConnection);
    if (d->socket->state() != QAbstractSocket::ConnectedState)
        QMetaObject::invokeMethod(context, once, Qt::QueuedConnection);
}

void HttpResponder::setBytesWrittenHandler(QObject* context, std::function<void()> handler) {
    if (!d || !d->socket)
        return;
    d->onWritten = std::move(handler);
    d->onWrittenContext = context;
    d->connectWritten();
}

// --- HttpAdapter ---------------------------------------------------------------------

class HttpAdapter::Listener : public QTcpServer {
public:
    Listener(HttpAdapter* adapter, QObject* parent)
        : QTcpServer(parent)
        , m_adapter(adapter) {}

protected:
    // We create the socket so that our guard is connected to readyRead before
    // QtHttpServer's parser: the guard sees every byte first and can refuse the peer.
    void incomingConnection(qintptr descriptor) override {
        auto* socket = new QTcpSocket(this);
        if (!socket->setSocketDescriptor(descriptor)) {
            delete socket;
            return;
        }
        if (m_adapter->connectionCount() >= m_adapter->m_limits.maxConnections) {
            ++m_adapter->m_rejected;
            socket->write(QByteArrayLiteral(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
            socket->flush();
            socket->abort();
            socket->deleteLater();
            return;
        }
        m_adapter->attach(socket);
        addPendingConnection(socket);
    }

private:
    HttpAdapter* m_adapter; // owns us through m_server
};

class HttpAdapter::Server : public QAbstractHttpServer {
public:
    explicit Server(HttpAdapter* adapter)
        : QAbstractHttpServer(adapter)
        , m_adapter(adapter) {}

protected:
    bool handleRequest(const QHttpServerRequest& request, QTcpSocket* socket) override {
        HttpRequest r;
        r.method = methodOf(request.method());
        const QUrl url = request.url();
        r.path = url.path(QUrl::FullyDecoded);
        r.query = QUrlQuery(url);
        r.headers = request.headers();
        r.body = request.body();
        r.peer = QStringLiteral("%1:%2").arg(socket->peerAddress().toString()).arg(socket->peerPort());

        HttpResponder responder;
        responder.d = std::make_unique<HttpResponder::Private>();
        responder.d->responder = std::make_unique<QHttpServerResponder>(makeResponder(request, socket));
        responder.d->socket = socket;
        responder.d->adapter = m_adapter;
        // Until the handler answers, the connection is busy with this request: it
        // may not start another one's timeout.
        auto guard = m_adapter->m_guards.find(socket);
        if (guard != m_adapter->m_guards.end()) {
            guard->received = 0;
            guard->headerEnd = -1;
            guard->tailSize = 0;
            guard->longLived = true;
        }
        m_adapter->dispatch(r, std::move(responder));
        return true;
    }

    void missingHandler(const QHttpServerRequest&, QTcpSocket*) override {}

private:
    HttpAdapter* m_adapter; // our parent
};

HttpAdapter::HttpAdapter(Handler handler, QObject* parent)
    : QObject(parent)
    , m_handler(std::move(handler)) {
    m_server = new Server(this);
    m_sweepTimer = new QTimer(this);
    m_sweepTimer->setInterval(250);
    connect(m_sweepTimer, &QTimer::timeout, this, &HttpAdapter::sweep);
}

HttpAdapter::~HttpAdapter() {
    closeAll();
}

bool HttpAdapter::listen(const QHostAddress& address, quint16 port, QString* error) {
    if (m_listener) {
        if (error)
            *error =
                QStringLiteral("The server is already listening on port %1.").arg(m_listener->serverPort());
        return false;
    }
    auto* listener = new Listener(this, nullptr);
    // 2 000 clients connecting at once overflowed the default backlog of 50: SYNs were
    // dropped and clients waited a second for their retransmit.
    listener->setListenBacklogSize(4096);
    if (!listener->listen(address, port)) {
        if (error) {
            const QString where = QStringLiteral("%1 port %2").arg(address.toString()).arg(port);
            switch (listener->serverError()) {
            case QAbstractSocket::AddressInUseError:
                *error = QStringLiteral(
                             "Port %1 on %2 is already in use by another program. Pick another port, or "
                             "0 for a free one.")
                             .arg(port)
                             .arg(address.toString());
                break;
            case QAbstractSocket::SocketAddressNotAvailableError:
                *error = QStringLiteral("Cannot listen on %1: that address does not belong to this machine.")
                             .arg(where);
                break;
            case QAbstractSocket::SocketAccessError:
                *error = QStringLiteral("Cannot listen on %1: permission denied (ports below 1024 need "
                                        "privileges).")
                             .arg(where);
                break;
            default:
                *error = QStringLiteral("Cannot listen on %1: %2").arg(where, listener->errorString());
            }
        }
        delete listener;
        return false;
    }
    m_listener = listener;
    m_server->bind(listener); // reparents the listener to m_server
    m_sweepTimer->start();
    return true;
}

quint16 HttpAdapter::port() const {
    return m_listener ? m_listener->serverPort() : 0;
}

void HttpAdapter::closeAll() {
    m_sweepTimer->stop();
    if (m_listener) {
        m_listener->close();
        const QList<QTcpSocket*> sockets = m_guards.keys();
        for (QTcpSocket* socket : sockets)
            socket->abort();
        delete m_listener; // deletes the sockets, its children
        m_listener = nullptr;
    }
    m_guards.clear();
}

void HttpAdapter::setLongLived(HttpResponder& responder, bool longLived) {
    if (!responder.d || !responder.d->socket || !responder.d->adapter)
        return;
    HttpAdapter* adapter = responder.d->adapter;
    auto it = adapter->m_guards.find(responder.d->socket);
    if (it == adapter->m_guards.end())
        return;
    it->longLived = longLived;
    if (!longLived)
        it->deadlineMs = nowMs() + adapter->m_limits.idleTimeoutMs;
}

void HttpAdapter::attach(QTcpSocket* socket) {
    Guard guard;
    guard.deadlineMs = nowMs() + m_limits.requestTimeoutMs;
    m_guards.insert(socket, guard);
    connect(socket, &QTcpSocket::readyRead, this, [this, socket] { onReadyRead(socket); });
    connect(socket, &QObject::destroyed, this, [this, socket] { m_guards.remove(socket); });
}

void HttpAdapter::onReadyRead(QTcpSocket* socket) {
    auto it = m_guards.find(socket);
    if (it == m_guards.end())
        return;
    Guard& g = *it;
    if (g.rejected)
        return;
    // Unread bytes only: QtHttpServer's parser consumes everything it is given, so
    // what is available now arrived since its last pass.
    const qint64 fresh = socket->bytesAvailable();
    if (fresh <= 0)
        return;
    if (g.received == 0 && !g.longLived)
        g.deadlineMs = nowMs() + m_limits.requestTimeoutMs;
    if (g.headerEnd < 0) {
        // Looking for the blank line that ends the header block; not parsing it.
        const QByteArray chunk = socket->peek(std::min<qint64>(fresh, m_limits.maxHeaderBytes + 4));
        QByteArray window = QByteArray(g.tail, g.tailSize) + chunk;
        qsizetype end = window.indexOf("\r\n\r\n");
        qsizetype endLength = 4;
        const qsizetype lf = window.indexOf("\n\n");
        if (lf >= 0 && (end < 0 || lf < end)) {
            end = lf;
            endLength = 2;
        }
        if (end >= 0) {
            g.headerEnd = g.received - g.tailSize + end + endLength;
        } else {
            g.tailSize = int(std::min<qsizetype>(3, window.size()));
            memcpy(g.tail, window.constData() + window.size() - g.tailSize, size_t(g.tailSize));
        }
    }
    g.received += fresh;
    if (g.headerEnd < 0 && g.received > m_limits.maxHeaderBytes)
        return reject(socket, 431, "header block too large");
    if (g.headerEnd >= 0 && g.headerEnd > m_limits.maxHeaderBytes)
        return reject(socket, 431, "header block too large");
    if (g.headerEnd >= 0 && g.received - g.headerEnd > m_limits.maxBodyBytes)
        return reject(socket, 413, "body too large");
}

void HttpAdapter::reject(QTcpSocket* socket, int status, QByteArrayView reason) {
    auto it = m_guards.find(socket);
    if (it != m_guards.end())
        it->rejected = true;
    ++m_rejected;
    // Keep QtHttpServer's parser from buffering any more of this peer's bytes.
    disconnect(socket, &QTcpSocket::readyRead, m_server, nullptr);
    socket->setReadBufferSize(1);
    const QByteArray body = reason.toByteArray() + '\n';
    socket->write("HTTP/1.1 " + QByteArray::number(status) + ' ' + statusText(status) +
                  "\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " +
                  QByteArray::number(body.size()) + "\r\n\r\n" + body);
    socket->disconnectFromHost();
    // A peer that does not read our answer does not get to hold the socket.
    QPointer<QTcpSocket> guarded(socket);
    QTimer::singleShot(2000, this, [guarded] {
        if (guarded)
            guarded->abort();
    });
}

void HttpAdapter::requestCompleted(QTcpSocket* socket) {
    auto it = m_guards.find(socket);
    if (it == m_guards.end())
        return;
    it->longLived = false;
    it->deadlineMs = nowMs() + m_limits.idleTimeoutMs;
}

void HttpAdapter::sweep() {
    const qint64 now = nowMs();
    QList<QTcpSocket*> expired;
    for (auto it = m_guards.cbegin(); it != m_guards.cend(); ++it)
        if (!it->longLived && !it->rejected && it->deadlineMs <= now)
            expired.append(it.key());
    for (QTcpSocket* socket : std::as_const(expired)) {
        ++m_timedOut;
        socket->abort();
    }
}

void HttpAdapter::dispatch(const HttpRequest& request, HttpResponder&& responder) {
    m_handler(request, std::move(responder));
}

} // namespace tw

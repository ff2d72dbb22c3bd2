#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <QByteArray>
#include <QHash>
#include <QHostAddress>
#include <QList>
#include <QObject>
#include <QPair>
#include <QPointer>
#include <QString>
#include <QUrlQuery>

class QHttpServerResponder;
class QTcpSocket;
class QTimer;

namespace tw {

// Everything the HTTP layer needs from one request, in our own types so the rest of
// core/http never sees a QtHttpServer class (its API changed between 6.4 and 6.8; only
// HttpAdapter.cpp has to follow).
struct HttpRequest {
    enum class Method { Get, Head, Post, Put, Delete, Options, Patch, Other };
    Method method = Method::Other;
    QString path; // decoded, without the query
    QUrlQuery query;
    QList<QPair<QByteArray, QByteArray>> headers;
    QByteArray body;
    QString peer; // "127.0.0.1:54321"

    // First value of a header, matched case-insensitively; empty when absent.
    QByteArray header(QByteArrayView name) const;
    // Decoded query parameter; empty when absent.
    QString queryValue(const QString& key) const;
    QStringList queryValues(const QString& key) const;
};

using HttpHeaders = QList<QPair<QByteArray, QByteArray>>;

// The answer side of one request. Move-only. Either send() one complete response, or
// beginStream() and then write() body pieces for as long as the connection lives (an
// SSE stream). Every call is safe after the peer has gone: it becomes a no-op.
// Lives on the HTTP thread, like the connection it writes to.
class HttpResponder {
public:
    HttpResponder();
    HttpResponder(HttpResponder&&) noexcept;
    HttpResponder& operator=(HttpResponder&&) noexcept;
    ~HttpResponder();

    bool isOpen() const;
    // A complete response with Content-Length; the connection stays open for the next
    // request (keep-alive).
    void send(int status, const HttpHeaders& headers, const QByteArray& body);
    // Status and headers, no length: the body ends when the connection closes.
    void beginStream(int status, const HttpHeaders& headers);
    void write(const QByteArray& bytes);
    // Bytes accepted by write() that the kernel has not taken yet.
    qint64 pendingBytes() const;
    // Writes what the kernel takes now, then closes. Unsent bytes are dropped: an SSE
    // client that loses them resumes from its Last-Event-ID.
    void close();

    // Called once when the connection is gone (peer closed, error, close()). `context`
    // bounds the callback's life.
    void setClosedHandler(QObject* context, std::function<void()> handler);
    // Called whenever the kernel took more bytes (to resume a paused replay).
    void setBytesWrittenHandler(QObject* context, std::function<void()> handler);

private:
    friend class HttpAdapter;
    struct Private;
    std::unique_ptr<Private> d;
};

// One listening HTTP/1.1 server on top of QtHttpServer. Owns the listening socket and
// every connection; lives on (and must be used from) one thread. Protects the
// process from hostile peers before QtHttpServer's parser buffers their bytes:
// header blocks above maxHeaderBytes get 431, bodies above maxBodyBytes get 413, a
// request that is not complete within requestTimeoutMs (including a connection that
// never sends anything) is closed, and past maxConnections new peers are closed at once.
class HttpAdapter : public QObject {
    Q_OBJECT
public:
    struct Limits {
        qint64 maxHeaderBytes = 16 * 1024;
        qint64 maxBodyBytes = 1024 * 1024;
        int requestTimeoutMs = 10000; // from a request's first byte (or the connect) to its end
        int idleTimeoutMs = 30000;    // a kept-alive connection between requests
        int maxConnections = 10000;
    };
    // The handler answers every complete request, at once or later through the
    // responder it keeps.
    using Handler = std::function<void(const HttpRequest&, HttpResponder&&)>;

    explicit HttpAdapter(Handler handler, QObject* parent = nullptr);
    ~HttpAdapter() override;

    void setLimits(const Limits& limits) { m_limits = limits; }
    // False with a message a person can act on (port in use, address not local, …).
    bool listen(const QHostAddress& address, quint16 port, QString* error = nullptr);
    quint16 port() const;
    // Stops accepting and drops every connection.
    void closeAll();

    // A long-lived response (SSE stream, parked long poll) is exempt from the request
    // timeout until it completes.
    static void setLongLived(HttpResponder& responder, bool longLived);

    int connectionCount() const { return int(m_guards.size()); }
    qint64 rejectedRequests() const { return m_rejected; }
    qint64 timedOutConnections() const { return m_timedOut; }

private:
    friend class HttpResponder;
    class Server;
    class Listener;
    struct Guard {
        qint64 received = 0;   // bytes of the request being read
        qint64 headerEnd = -1; // offset of the body once the blank line was seen
        char tail[3] = {0, 0, 0};
        int tailSize = 0;
        qint64 deadlineMs = 0;
        bool longLived = false;
        bool rejected = false;
    };

    void attach(QTcpSocket* socket);
    void onReadyRead(QTcpSocket* socket);
    void reject(QTcpSocket* socket, int status, QByteArrayView reason);
    void requestCompleted(QTcpSocket* socket);
    void sweep();
    void dispatch(const HttpRequest& request, HttpResponder&& responder);

    Handler m_handler;
    Limits m_limits;
    Server* m_server = nullptr;     // owned (child)
    Listener* m_listener = nullptr; // owned by m_server
    QTimer* m_sweepTimer = nullptr; // owned (child)
    QHash<QTcpSocket*, Guard> m_guards;
    qint64 m_rejected = 0;
    qint64 m_timedOut = 0;
};

} // namespace tw

#pragma once

#include <memory>
#include <QByteArray>
#include <QList>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QObject>
#include <QPointer>
#include <QTcpSocket>
#include <QUrl>

namespace tw::test {

// One parsed Server-Sent Events message.
struct SseMessage {
    QByteArray id;    // empty when the message had no id field
    QByteArray event; // "message" when absent
    QByteArray data;
    qint64 seq() const { return id.isEmpty() ? -1 : id.toLongLong(); }
};

// Incremental text/event-stream parser (the client side, as EventSource does it).
class SseParser {
public:
    // Returns the messages completed by `bytes`.
    QList<SseMessage> feed(const QByteArray& bytes);
    QList<QByteArray> comments; // ": keep-alive" lines, without the colon
    QByteArray retry;

private:
    QByteArray m_buffer;
    SseMessage m_current;
    bool m_hasField = false;
};

// An SSE client on QNetworkAccessManager (its own, so the per-host connection limit
// of a shared manager never queues a test's streams). Keeps EventSource's lastEventId.
class SseTestClient : public QObject {
    Q_OBJECT
public:
    explicit SseTestClient(QObject* parent = nullptr);
    ~SseTestClient() override;

    // Opens url with an optional bearer token and Last-Event-ID (empty: none).
    void open(const QUrl& url, const QByteArray& token, const QByteArray& lastEventId = {},
              const QList<QPair<QByteArray, QByteArray>>& extraHeaders = {});
    // Reopens the last url from lastEventId, as EventSource does after a drop.
    void reconnect();
    void close();

    bool isOpen() const { return m_reply && m_reply->isRunning(); }
    int status() const { return m_status; }
    QByteArray header(const QByteArray& name) const {
        return m_reply ? m_reply->rawHeader(name) : QByteArray();
    }
    QByteArray lastEventId() const { return m_lastEventId; }
    int readyCount() const { return m_readyCount; }
    int gapCount() const;

    // Every message received, across reconnects.
    QList<SseMessage> messages;
    // Seqs of change events (not ready/gap), in arrival order.
    QList<qint64> seqs() const;
    QByteArray body; // the raw bytes of an error response
    int finishedCount = 0;

Q_SIGNALS:
    void messageReceived(const tw::test::SseMessage& message);
    void finished();

private:
    void onReadyRead();
    QNetworkAccessManager m_manager;
    QPointer<QNetworkReply> m_reply;
    SseParser m_parser;
    QUrl m_url;
    QByteArray m_token;
    QList<QPair<QByteArray, QByteArray>> m_extra;
    QByteArray m_lastEventId;
    int m_status = 0;
    int m_readyCount = 0;
};

// A bare TCP client for what QNetworkAccessManager will not do: stop reading, send
// malformed or oversized requests, hold a connection half-written.
class RawHttpClient : public QObject {
    Q_OBJECT
public:
    explicit RawHttpClient(quint16 port, QObject* parent = nullptr);
    bool connectToServer(int timeoutMs = 5000);
    void send(const QByteArray& bytes);
    // A GET with optional token and Last-Event-ID.
    void get(const QByteArray& path, const QByteArray& token = {}, const QByteArray& lastEventId = {});
    // Stops reading: what the server sends piles up in the kernel buffers, then in its
    // own socket buffer.
    void stopReading();
    void resumeReading();
    bool isConnected() const { return m_socket.state() == QAbstractSocket::ConnectedState; }
    QByteArray received; // everything read so far
    // Status code of the response (0 until the status line arrived).
    int status() const;
    // Messages of the SSE body received so far (complete ones only).
    QList<SseMessage> messages() const;
    QTcpSocket& socket() { return m_socket; }

private:
    quint16 m_port;
    QTcpSocket m_socket;
    bool m_reading = true;
};

} // namespace tw::test

Q_DECLARE_METATYPE(tw::test::SseMessage)

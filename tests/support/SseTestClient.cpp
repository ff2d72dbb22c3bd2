#include "SseTestClient.h"

#include <QNetworkRequest>

namespace tw::test {

QList<SseMessage> SseParser::feed(const QByteArray& bytes) {
    QList<SseMessage> done;
    m_buffer += bytes;
    qsizetype start = 0;
    for (;;) {
        const qsizetype nl = m_buffer.indexOf('\n', start);
        if (nl < 0)
            break;
        QByteArray line = m_buffer.mid(start, nl - start);
        start = nl + 1;
        if (line.endsWith('\r'))
            line.chop(1);
        if (line.isEmpty()) {
            // Blank line: dispatch.
            if (m_hasField) {
                if (m_current.event.isEmpty())
                    m_current.event = "message";
                done.append(m_current);
            }
            m_current = SseMessage();
            m_hasField = false;
            continue;
        }
        if (line.startsWith(':')) {
            comments.append(line.mid(1).trimmed());
            continue;
        }
        const qsizetype colon = line.indexOf(':');
        QByteArray field = colon < 0 ? line : line.left(colon);
        QByteArray value = colon < 0 ? QByteArray() : line.mid(colon + 1);
        if (value.startsWith(' '))
            value.remove(0, 1);
        if (field == "id") {
            m_current.id = value;
            m_hasField = true;
        } else if (field == "event") {
            m_current.event = value;
            m_hasField = true;
        } else if (field == "data") {
            if (!m_current.data.isEmpty())
                m_current.data += '\n';
            m_current.data += value;
            m_hasField = true;
        } else if (field == "retry") {
            retry = value;
        }
    }
    m_buffer.remove(0, start);
    return done;
}

SseTestClient::SseTestClient(QObject* parent)
    : QObject(parent) {
    qRegisterMetaType<tw::test::SseMessage>();
}

SseTestClient::~SseTestClient() {
    close();
}

void SseTestClient::open(const QUrl& url, const QByteArray& token, const QByteArray& lastEventId,
                         const QList<QPair<QByteArray, QByteArray>>& extraHeaders) {
    close();
    m_url = url;
    m_token = token;
    m_extra = extraHeaders;
    if (!lastEventId.isEmpty())
        m_lastEventId = lastEventId;
    m_parser = SseParser();
    m_status = 0;
    QNetworkRequest request(url);
    request.setRawHeader("Accept", "text/event-stream");
    if (!token.isEmpty())
        request.setRawHeader("Authorization", "Bearer " + token);
    if (!m_lastEventId.isEmpty())
        request.setRawHeader("Last-Event-ID", m_lastEventId);
    for (const auto& h : extraHeaders)
        request.setRawHeader(h.first, h.second);
    request.setAttribute(QNetworkRequest::CacheLoadControlAttribute, QNetworkRequest::AlwaysNetwork);
    QNetworkReply* reply = m_manager.get(request);
    m_reply = reply;
    connect(reply, &QNetworkReply::metaDataChanged, this,
            [this, reply] { m_status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt(); });
    connect(reply, &QNetworkReply::readyRead, this, &SseTestClient::onReadyRead);
    connect(reply, &QNetworkReply::finished, this, [this, reply] {
        if (m_status == 0)
            m_status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        if (reply == m_reply)
            onReadyRead();
        ++finishedCount;
        reply->deleteLater();
        Q_EMIT finished();
    });
}

void SseTestClient::reconnect() {
    open(m_url, m_token, m_lastEventId, m_extra);
}

void SseTestClient::close() {
    if (m_reply) {
        QNetworkReply* reply = m_reply;
        m_reply = nullptr;
        reply->disconnect(this);
        reply->abort();
        reply->deleteLater();
    }
}

void SseTestClient::onReadyRead() {
    if (!m_reply)
        return;
    const QByteArray bytes = m_reply->readAll();
    if (m_status != 200) {
        body += bytes;
        return;
    }
    const QList<SseMessage> parsed = m_parser.feed(bytes);
    for (const SseMessage& m : parsed) {
        if (!m.id.isEmpty())
            m_lastEventId = m.id;
        if (m.event == "ready")
            ++m_readyCount;
        messages.append(m);
        Q_EMIT messageReceived(m);
    }
}

int SseTestClient::gapCount() const {
    int n = 0;
    for (const SseMessage& m : messages)
        n += m.event == "gap" ? 1 : 0;
    return n;
}

QList<qint64> SseTestClient::seqs() const {
    QList<qint64> out;
    for (const SseMessage& m : messages)
        if (m.event != "ready" && m.event != "gap" && !m.id.isEmpty())
            out.append(m.seq());
    return out;
}

RawHttpClient::RawHttpClient(quint16 port, QObject* parent)
    : QObject(parent)
    , m_port(port) {
    connect(&m_socket, &QTcpSocket::readyRead, this, [this] {
        if (m_reading)
            received += m_socket.readAll();
    });
}

bool RawHttpClient::connectToServer(int timeoutMs) {
    m_socket.connectToHost(QHostAddress::LocalHost, m_port);
    return m_socket.waitForConnected(timeoutMs);
}

void RawHttpClient::send(const QByteArray& bytes) {
    m_socket.write(bytes);
    m_socket.flush();
}

void RawHttpClient::get(const QByteArray& path, const QByteArray& token, const QByteArray& lastEventId) {
    QByteArray request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!token.isEmpty())
        request += "Authorization: Bearer " + token + "\r\n";
    if (!lastEventId.isEmpty())
        request += "Last-Event-ID: " + lastEventId + "\r\n";
    request += "\r\n";
    send(request);
}

void RawHttpClient::stopReading() {
    m_reading = false;
    // A tiny read buffer: Qt stops taking bytes from the kernel once it is full.
    m_socket.setReadBufferSize(1);
}

void RawHttpClient::resumeReading() {
    m_reading = true;
    m_socket.setReadBufferSize(0);
    received += m_socket.readAll();
}

int RawHttpClient::status() const {
    if (!received.startsWith("HTTP/1.1 ") || received.size() < 12)
        return 0;
    return received.mid(9, 3).toInt();
}

QList<SseMessage> RawHttpClient::messages() const {
    const qsizetype end = received.indexOf("\r\n\r\n");
    if (end < 0)
        return {};
    SseParser parser;
    return parser.feed(received.mid(end + 4));
}

} // namespace tw::test

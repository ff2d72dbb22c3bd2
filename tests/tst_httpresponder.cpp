// HttpResponder's stream writes: straight to the kernel while nothing waits, in order
// behind whatever does (the socket's own buffer, the responder's queue), and nothing
// once the peer has gone. The peer is a plain blocking socket, read only when the test
// says, so that the kernel's buffers fill exactly when the test wants them full.
#include "http/HttpAdapter.h"

#include <memory>
#include <QtTest>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace tw;

namespace {

// A numbered piece of `size` bytes: "00000042 xxxx…\n".
QByteArray piece(int n, int size = 1000) {
    QByteArray p = QByteArray::number(n).rightJustified(8, '0') + ' ';
    p += QByteArray(size - p.size() - 1, 'x');
    p += '\n';
    return p;
}

class Peer {
public:
    ~Peer() { close(); }
    bool connectTo(quint16 port, int receiveBuffer) {
        m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (m_fd < 0)
            return false;
        // Small, but above loopback's 64 KiB segments (a window below one segment makes
        // the sender wait for window probes).
        ::setsockopt(m_fd, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, sizeof receiveBuffer);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return ::connect(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    void send(const QByteArray& bytes) {
        QCOMPARE(::send(m_fd, bytes.constData(), size_t(bytes.size()), 0), bytes.size());
    }
    // Whatever the kernel holds for us now, without waiting.
    qsizetype readAvailable() {
        qsizetype total = 0;
        char buffer[65536];
        for (;;) {
            const ssize_t n = ::recv(m_fd, buffer, sizeof buffer, MSG_DONTWAIT);
            if (n <= 0)
                return total;
            received.append(buffer, qsizetype(n));
            total += n;
        }
    }
    void close() {
        if (m_fd >= 0)
            ::close(m_fd);
        m_fd = -1;
    }
    QByteArray received;

private:
    int m_fd = -1;
};

} // namespace

class TestHttpResponder : public QObject {
    Q_OBJECT
private slots:
    void init();
    void cleanup();
    void bytesHeldInTheSocketAreNotOvertakenWhenTheKernelHasRoomAgain();
    void writesAfterThePeerLeftAreDropped();

private:
    // Connects a peer, lets the adapter answer with a stream, and waits until the header
    // block has left the socket.
    void openStream();

    std::unique_ptr<HttpAdapter> m_adapter;
    std::unique_ptr<HttpResponder> m_responder;
    std::unique_ptr<Peer> m_peer;
};

void TestHttpResponder::init() {
    m_adapter = std::make_unique<HttpAdapter>([this](const HttpRequest&, HttpResponder&& responder) {
        m_responder = std::make_unique<HttpResponder>(std::move(responder));
        HttpAdapter::setLongLived(*m_responder, true);
        m_responder->beginStream(200, {{"Content-Type", "text/event-stream"}});
    });
    QString error;
    QVERIFY2(m_adapter->listen(QHostAddress::LocalHost, 0, &error), qPrintable(error));
}

void TestHttpResponder::cleanup() {
    m_peer.reset();
    m_responder.reset();
    m_adapter.reset();
}

void TestHttpResponder::openStream() {
    m_peer = std::make_unique<Peer>();
    QVERIFY(m_peer->connectTo(m_adapter->port(), 128 * 1024));
    m_peer->send("GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    QTRY_VERIFY_WITH_TIMEOUT(m_responder && m_responder->isOpen(), 10000);
    QTRY_COMPARE_WITH_TIMEOUT(m_responder->pendingBytes(), 0, 10000);
    QTRY_VERIFY_WITH_TIMEOUT(m_peer->readAvailable() > 0 || m_peer->received.contains("\r\n\r\n"), 10000);
    QVERIFY(m_peer->received.startsWith("HTTP/1.1 200"));
    m_peer->received.clear();
}

void TestHttpResponder::bytesHeldInTheSocketAreNotOvertakenWhenTheKernelHasRoomAgain() {
    openStream();
    // Pieces go straight to the kernel until it refuses one: its rest is handed to the
    // socket's own buffer (it is small), and the responder's queue is empty again. No
    // event loop runs meanwhile, so the socket cannot pass those bytes on by itself.
    int n = 0;
    QByteArray expected;
    while (m_responder->pendingBytes() == 0 && n < 100000) {
        const QByteArray p = piece(n++);
        expected += p;
        m_responder->write(p);
    }
    QVERIFY2(m_responder->pendingBytes() > 0, "the kernel never refused a write");
    QVERIFY(m_responder->pendingBytes() <= 1000); // only the refused piece's rest waits
    // The peer reads everything the kernel took, which gives the kernel room again
    // while the socket still holds the refused piece's rest.
    QElapsedTimer waited;
    waited.start();
    while (m_peer->received.size() < expected.size() - m_responder->pendingBytes() &&
           waited.elapsed() < 10000) {
        if (m_peer->readAvailable() == 0)
            QThread::usleep(200);
    }
    QCOMPARE(m_peer->received.size(), expected.size() - m_responder->pendingBytes());
    // Now the next piece: the kernel would take it, but it must wait behind the socket's
    // bytes, not go ahead of them.
    const QByteArray next = piece(n++);
    expected += next;
    m_responder->write(next);
    QTRY_COMPARE_WITH_TIMEOUT(m_responder->pendingBytes(), 0, 10000);
    waited.restart();
    while (m_peer->received.size() < expected.size() && waited.elapsed() < 10000) {
        if (m_peer->readAvailable() == 0)
            QThread::usleep(200);
    }
    QCOMPARE(m_peer->received.size(), expected.size());
    // Where it went wrong, if it did: the first piece that is not the one expected.
    for (qsizetype at = 0; at < expected.size(); at += 1000)
        QVERIFY2(m_peer->received.mid(at, 1000) == expected.mid(at, 1000),
                 qPrintable(QStringLiteral("piece %1 received as \"%2…\"")
                                .arg(at / 1000)
                                .arg(QString::fromLatin1(m_peer->received.mid(at, 8)))));
}

void TestHttpResponder::writesAfterThePeerLeftAreDropped() {
    openStream();
    m_responder->write(piece(0));
    QTRY_VERIFY_WITH_TIMEOUT(m_peer->readAvailable() > 0 || m_peer->received.size() == 1000, 10000);
    m_peer->close();
    // The adapter notices on its next read, and the socket goes away: the responder
    // follows, without asking a socket that no longer exists.
    QTRY_VERIFY_WITH_TIMEOUT(!m_responder->isOpen(), 10000);
    for (int i = 1; i < 100; ++i)
        m_responder->write(piece(i));
    QCOMPARE(m_responder->pendingBytes(), 0);
}

QTEST_GUILESS_MAIN(TestHttpResponder)
#include "tst_httpresponder.moc"

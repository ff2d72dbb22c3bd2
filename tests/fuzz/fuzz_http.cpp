// HTTP requests as raw bytes, through the whole server: QtHttpServer's parser, our
// HttpAdapter (its header and body limits, its translation into HttpRequest) and
// HttpApi's authentication and routing, with query strings, headers, Last-Event-ID and
// bodies. Input: the bytes a client sends on one connection (several requests when it
// pipelines them).
//
// The server runs as the application runs it, on its own HTTP thread, over an Engine
// with a journal of a few events, so streams replay and subscriptions are created.
// The input goes to it over a real loopback socket; the write side is then closed,
// so the server reads an end of stream after the bytes and answers or drops what it
// has. No socket-free seam exists below QtHttpServer's parser (its request type has no
// public constructor), and the parser is where hostile bytes arrive first. A crash, a
// sanitizer report or a hang (libFuzzer's -timeout) on the server's thread is a
// finding; the answer itself is not checked here (tst_sseserver checks answers).
#include "FuzzInput.h"

#include "engine/Engine.h"
#include "http/SseServer.h"
#include "model/Bson.h"
#include "model/ChangeBatch.h"
#include "model/ChangeEvent.h"

#include <QCoreApplication>
#include <QEventLoop>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTimer>

#include <sys/socket.h>

using namespace tw;

namespace {

struct Server {
    int argc = 1;
    char name[16] = "fuzz_http";
    char* argv[2] = {name, nullptr};
    QCoreApplication app{argc, argv};
    QTemporaryDir dir;
    std::unique_ptr<Engine> engine;
    std::unique_ptr<SseServer> sse;

    Server() {
        fuzz::check(dir.isValid(), "no temporary folder for the journal");
        Engine::Options options;
        options.journalPath = dir.filePath(QStringLiteral("journal.db"));
        engine = std::make_unique<Engine>(options);
        QString error;
        fuzz::check(engine->start(&error), "the engine does not start");

        // Twenty events, committed before the first request, for streams to replay.
        QEventLoop loop;
        int committed = 0;
        QObject::connect(
            engine.get(), &Engine::committed, &loop,
            [&](const CommittedBatch& batch) {
                committed += int(batch.events.size());
                if (committed >= 20)
                    loop.quit();
            },
            Qt::QueuedConnection);
        ChangeBatch batch;
        batch.sourceId = QStringLiteral("shop-db");
        for (int i = 0; i < 20; ++i) {
            ChangeEvent e;
            e.setSourceId(batch.sourceId);
            e.setNs({QStringLiteral("shop"), i % 2 ? QStringLiteral("orders") : QStringLiteral("users")});
            e.setOperation(i % 3 ? Operation::Update : Operation::Insert);
            e.setDocumentKey(Bson::fromJson(QStringLiteral(R"({"_id": %1})").arg(i).toUtf8()));
            e.setFullDocument(Bson::fromJson(QStringLiteral(R"({"_id": %1, "status": "paid", "total": %2})")
                                                 .arg(i)
                                                 .arg(i * 2.5)
                                                 .toUtf8()));
            e.setWallTimeMs(1700000000000 + i);
            batch.events.append(e);
        }
        engine->submit(batch);
        QTimer::singleShot(30000, &loop, &QEventLoop::quit);
        loop.exec();
        fuzz::check(committed >= 20, "the journal did not commit the fuzz target's events");

        SseServer::Options sseOptions;
        sseOptions.token = QStringLiteral("fuzz-token");
        sseOptions.corsOrigins = {QStringLiteral("https://app.example")};
        // A request cut short waits for the end of stream, not for this; it only bounds
        // what a hang could cost.
        sseOptions.requestTimeoutMs = 2000;
        sseOptions.keepAliveMs = 500;
        sse = std::make_unique<SseServer>(engine.get());
        fuzz::check(sse->start(sseOptions, &error), "the SSE server does not start");
    }
};

Server& server() {
    static Server s;
    return s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Server& s = server();
    QTcpSocket socket;
    socket.connectToHost(QHostAddress::LocalHost, s.sse->port());
    fuzz::check(socket.waitForConnected(5000), "cannot connect to the SSE server");
    socket.write(reinterpret_cast<const char*>(data), qint64(size));
    while (socket.bytesToWrite() > 0 && socket.waitForBytesWritten(5000)) {
    }
    // The end of the input: the server answers what it has, then sees the peer leave.
    ::shutdown(int(socket.socketDescriptor()), SHUT_WR);
    // Reads until the server closes (after its answers, or a stream's first frames once
    // it notices the peer gone); a stream that stays open is left after 3 s of silence.
    while (socket.state() == QAbstractSocket::ConnectedState && socket.waitForReadyRead(3000))
        socket.readAll();
    socket.abort();
    // Queued signals from the server's and the engine's threads to this one.
    QCoreApplication::processEvents();
    return 0;
}

// poll_changes round trip with a change waiting: a JSON-RPC request written to the MCP
// server's input pipe → the answer with the change read back from its output pipe. The
// server is the one tidewatch --mcp runs (McpStdio + McpServer on an AppSession with a
// real journal); each change is a realistic 1 KiB order committed through the engine
// before the poll, so every poll reads it from the journal.
//   bench_mcp [polls=2000]
#include "TestUtil.h"

#include "AppSession.h"
#include "mcp/McpServer.h"
#include "mcp/McpStdio.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSocketNotifier>
#include <QTemporaryDir>
#include <QTimer>

#include <algorithm>
#include <cstdio>
#include <unistd.h>

using namespace tw;

namespace {

// The client's end of the two pipes.
class Client {
public:
    Client(int out, int in)
        : m_out(out)
        , m_in(in)
        , m_notifier(in, QSocketNotifier::Read) {
        QObject::connect(&m_notifier, &QSocketNotifier::activated, [this] {
            char chunk[65536];
            const ssize_t n = ::read(m_in, chunk, sizeof chunk);
            if (n > 0)
                m_buffer.append(chunk, n);
            if (m_buffer.contains('\n'))
                m_loop.quit();
        });
    }
    QJsonObject call(const QJsonObject& message) {
        const QByteArray line = QJsonDocument(message).toJson(QJsonDocument::Compact) + '\n';
        if (::write(m_out, line.constData(), size_t(line.size())) != line.size())
            return {};
        if (!m_buffer.contains('\n'))
            m_loop.exec();
        const qsizetype newline = m_buffer.indexOf('\n');
        const QByteArray answer = m_buffer.left(newline);
        m_buffer.remove(0, newline + 1);
        return QJsonDocument::fromJson(answer).object();
    }

private:
    int m_out;
    int m_in;
    QSocketNotifier m_notifier;
    QByteArray m_buffer;
    QEventLoop m_loop;
};

QJsonObject request(int id, const QString& method, const QJsonObject& params) {
    return QJsonObject{{QStringLiteral("jsonrpc"), QStringLiteral("2.0")},
                       {QStringLiteral("id"), id},
                       {QStringLiteral("method"), method},
                       {QStringLiteral("params"), params}};
}

QJsonObject toolCall(int id, const QString& name, const QJsonObject& arguments) {
    return request(id, QStringLiteral("tools/call"),
                   QJsonObject{{QStringLiteral("name"), name}, {QStringLiteral("arguments"), arguments}});
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

} // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    const int polls = argc > 1 ? std::max(10, atoi(argv[1])) : 2000;
    QTemporaryDir dir;
    qputenv("TIDEWATCH_DATA_DIR", dir.filePath(QStringLiteral("data")).toLocal8Bit());
    AppSession::Options options;
    options.journalPath = dir.filePath(QStringLiteral("journal.sqlite"));
    AppSession session(options);
    QString error;
    if (!session.start(&error)) {
        std::fprintf(stderr, "bench_mcp: %s\n", qPrintable(error));
        return 1;
    }
    int toServer[2], fromServer[2];
    if (::pipe(toServer) != 0 || ::pipe(fromServer) != 0)
        return 1;
    mcp::McpServer server(&session);
    if (!server.open(&error)) {
        std::fprintf(stderr, "bench_mcp: %s\n", qPrintable(error));
        return 1;
    }
    mcp::McpStdio stdio(toServer[0], fromServer[1]);
    QObject::connect(&stdio, &mcp::McpStdio::lineReceived, &server, &mcp::McpServer::handleLine);
    QObject::connect(&server, &mcp::McpServer::messageReady, &stdio, &mcp::McpStdio::write);
    stdio.start();
    Client client(toServer[1], fromServer[0]);

    client.call(request(1, QStringLiteral("initialize"),
                        QJsonObject{{QStringLiteral("protocolVersion"), QStringLiteral("2025-11-25")}}));
    const QJsonObject subscribed = client.call(toolCall(2, QStringLiteral("subscribe_changes"), {}))
                                       .value(QLatin1String("result"))
                                       .toObject()
                                       .value(QLatin1String("structuredContent"))
                                       .toObject();
    const QString subscription = subscribed.value(QLatin1String("subscription_id")).toString();
    QString token = subscribed.value(QLatin1String("poll_token")).toString();

    qint64 committed = 0;
    QEventLoop waitCommit;
    QObject::connect(&session, &AppSession::committed, [&](const CommittedBatch& batch) {
        committed = batch.lastSeq;
        waitCommit.quit();
    });
    std::vector<double> ms;
    ms.reserve(size_t(polls));
    int id = 10;
    for (int i = 0; i < polls; ++i) {
        ChangeBatch batch;
        batch.sourceId = QStringLiteral("bench");
        ChangeEvent event = test::makeOrderEvent(i);
        event.setSourceId(batch.sourceId);
        batch.events.append(event);
        const qint64 before = committed;
        session.engine()->submit(batch);
        while (committed == before)
            waitCommit.exec();
        QElapsedTimer timer;
        timer.start();
        const QJsonObject answer =
            client.call(toolCall(++id, QStringLiteral("poll_changes"),
                                 QJsonObject{{QStringLiteral("subscription_id"), subscription},
                                             {QStringLiteral("poll_token"), token}}));
        ms.push_back(double(timer.nsecsElapsed()) / 1e6);
        const QJsonObject out = answer.value(QLatin1String("result"))
                                    .toObject()
                                    .value(QLatin1String("structuredContent"))
                                    .toObject();
        if (out.value(QLatin1String("changes")).toArray().size() != 1) {
            std::fprintf(stderr, "bench_mcp: poll %d did not get its change: %s\n", i,
                         QJsonDocument(answer).toJson(QJsonDocument::Compact).constData());
            return 1;
        }
        token = out.value(QLatin1String("poll_token")).toString();
    }
    std::printf("bench_mcp: %d poll_changes round trips, one 1 KiB change waiting each\n", polls);
    std::printf("  p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", percentile(ms, 0.5), percentile(ms, 0.99),
                *std::max_element(ms.begin(), ms.end()));
    session.stop();
    return 0;
}

// Ingest → JetStream, acknowledged, with 1 KiB order events.
//   bench_nats [events=100000]
// Starts a throwaway nats-server -js, then measures in the same run:
//   floor:     a plain libnats asynchronous publisher sending the same JSON bytes, with the
//              same window of unacknowledged messages, to a stream of its own;
//   publisher: Engine::submit → journal commit → NatsPublisher → acknowledged by JetStream.
// Prints events/s for both and the ratio. Never pass/fail; see bench/README.md.
#include "NatsServer.h"
#include "TestUtil.h"

#include "engine/Engine.h"
#include "nats/NatsPublisher.h"

#include <cstdio>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QThread>

#include <nats/nats.h>

using namespace tw;

namespace {

constexpr int kWindow = 1024; // NatsPublisher::Options::window's default
constexpr int kBatch = 1000;  // events per Engine::submit, as a busy source hands them over

// The same window discipline as the publisher: up to kWindow in flight, then wait for
// their acknowledgements.
double plainPublisher(const QString& url, const QList<QByteArray>& bodies) {
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = kWindow;
    if (natsConnection_ConnectTo(&nc, url.toUtf8().constData()) != NATS_OK ||
        natsConnection_JetStream(&js, nc, &jo) != NATS_OK) {
        std::fprintf(stderr, "cannot connect to %s\n", qPrintable(url));
        return 0;
    }
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    const char* subjects[] = {"floor.>"};
    config.Name = "FLOOR";
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    jsErrCode code = jsErrCode(0);
    js_AddStream(nullptr, js, &config, nullptr, &code);
    QElapsedTimer timer;
    timer.start();
    for (qsizetype i = 0; i < bodies.size(); ++i) {
        const QByteArray id = "floor:" + QByteArray::number(i + 1);
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id.constData();
        js_PublishAsync(js, "floor.shop.main.orders", bodies[i].constData(), int(bodies[i].size()), &po);
        if ((i + 1) % kWindow == 0)
            js_PublishAsyncComplete(js, nullptr);
    }
    js_PublishAsyncComplete(js, nullptr);
    const double seconds = timer.nsecsElapsed() / 1e9;
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return bodies.size() / seconds;
}

} // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    registerMetaTypes();
    const int total = argc > 1 ? atoi(argv[1]) : 100000;
    testsupport::NatsServer server;
    if (const QString error = server.start(); !error.isEmpty()) {
        std::fprintf(stderr, "%s\n", qPrintable(error));
        return 1;
    }
    QList<ChangeEvent> events;
    QList<QByteArray> bodies;
    for (int i = 0; i < total; ++i) {
        ChangeEvent e = test::makeOrderEvent(i);
        events.append(e);
        ChangeEvent rendered = e;
        rendered.finalize(i + 1);
        bodies.append(rendered.toJson());
    }
    std::printf("%d order events, %lld bytes of JSON each on average, window %d\n", total,
                bodies.isEmpty() ? 0LL : (long long)(bodies.constFirst().size()), kWindow);

    const double floor = plainPublisher(server.url(), bodies);
    std::printf("floor (plain libnats async publisher):   %9.0f events/s\n", floor);

    QTemporaryDir dir;
    Engine::Options options;
    options.journalPath = dir.filePath(QStringLiteral("journal.sqlite"));
    Engine engine(options);
    QString error;
    if (!engine.start(&error)) {
        std::fprintf(stderr, "%s\n", qPrintable(error));
        return 1;
    }
    NatsPublisher::Options po;
    po.url = server.url();
    NatsPublisher publisher(&engine, po);
    if (!publisher.start(&error)) {
        std::fprintf(stderr, "%s\n", qPrintable(error));
        return 1;
    }
    while (publisher.status().state != NatsPublisher::State::Publishing)
        QThread::msleep(10);
    QElapsedTimer timer;
    timer.start();
    for (qsizetype i = 0; i < events.size(); i += kBatch) {
        ChangeBatch batch;
        batch.sourceId = QStringLiteral("shop");
        batch.events = events.mid(i, kBatch);
        engine.submit(batch);
    }
    // Polled: the figure is the time until the last event is acknowledged, and a poll
    // every millisecond adds at most that much to seconds of publishing.
    while (publisher.status().ackedSeq < total)
        QThread::msleep(1);
    const double seconds = timer.nsecsElapsed() / 1e9;
    const double rate = total / seconds;
    std::printf("ingest → JetStream (commit, publish, ack): %9.0f events/s  (%.0f %% of the floor)\n", rate,
                floor > 0 ? 100.0 * rate / floor : 0.0);
    publisher.stop();
    engine.stop();
    return 0;
}

// MongoDB source throughput, socket to journal: the wire peer streams prepared change
// events to a MongoSource (real libmongoc sending the aggregate and getMores of our own
// change stream cursor, MongoChangeCursor, over TCP), which maps them and hands batches
// to the Engine, which commits them to the journal.
//   bench_mongo [events=200000] [batchSize=1000]
// Run it on one core to get the figure the design asks for:
//   taskset -c 0 build/bench/bench_mongo
// Prints events/s and the process CPU time per event (peer included: it shares the
// process and, under taskset, the core).
#include "engine/Engine.h"
#include "MongoPeer.h"
#include "sources/mongo/MongoSource.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QTemporaryDir>
#include <QTimer>

#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <thread>

using namespace tw;
using tw::test::MongoPeer;

namespace {

double cpuSeconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// A typical small insert: ~250 bytes on the wire with _id, ns, times and token.
Bson insertEvent(int i) {
    BsonBuilder b;
    bson_append_utf8(b.get(), "operationType", -1, "insert", -1);
    bson_t key, doc;
    bson_append_document_begin(b.get(), "documentKey", -1, &key);
    bson_append_int32(&key, "_id", 3, i);
    bson_append_document_end(b.get(), &key);
    bson_append_document_begin(b.get(), "fullDocument", -1, &doc);
    bson_append_int32(&doc, "_id", 3, i);
    bson_append_utf8(&doc, "status", -1, "paid", 4);
    bson_append_double(&doc, "total", -1, 42.5 + i);
    bson_append_utf8(&doc, "customer", -1, "c-000123", -1);
    bson_append_document_end(b.get(), &doc);
    return b.take();
}

// Runs this thread's event loop until `done` holds or `timeoutMs` passes, checking
// every millisecond. A real event loop, not QTest::qWaitFor: that one sleeps 10 ms
// between passes, and the peer answers getMores on this thread (it cost 25 ms a
// batch, 39 000 events/s).
bool runUntil(const std::function<bool()>& done, qint64 timeoutMs) {
    QElapsedTimer waited;
    waited.start();
    QEventLoop loop;
    QTimer check;
    check.setInterval(1);
    QObject::connect(&check, &QTimer::timeout, &loop, [&] {
        if (done() || waited.elapsed() > timeoutMs)
            loop.quit();
    });
    check.start();
    if (!done())
        loop.exec();
    return done();
}

} // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    registerMetaTypes();
    const int total = argc > 1 ? atoi(argv[1]) : 200000;
    const int batchSize = argc > 2 ? atoi(argv[2]) : 1000;
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};

    MongoPeer peer;
    if (!peer.listen())
        return 1;
    // Prepared before the clock starts: the change log the stream will read.
    for (int i = 0; i < total; ++i)
        peer.pushChange(ns.db, ns.coll, insertEvent(i));

    QTemporaryDir dir;
    Engine::Options options;
    options.journalPath = dir.filePath(QStringLiteral("journal.sqlite"));
    Engine engine(options);
    QString error;
    if (!engine.start(&error)) {
        std::fprintf(stderr, "%s\n", qPrintable(error));
        return 1;
    }
    // A stored checkpoint at the start of the log, as after a restart: the stream
    // opens with startAfter and reads every prepared event.
    ChangeBatch seed;
    seed.sourceId = QStringLiteral("bench");
    seed.checkpoint.token = MongoSource::encodeTokens({{ns.toString(), MongoPeer::resumeTokenFor(0)}});
    engine.submit(seed);
    if (!runUntil([&] { return engine.commits() >= 1; }, 10000))
        return 1;

    QElapsedTimer clock;
    const double cpuBefore = cpuSeconds();
    clock.start();
    if (!engine.addSource(QStringLiteral("bench"), peer.uri(), &error)) {
        std::fprintf(stderr, "%s\n", qPrintable(error));
        return 1;
    }
    WatchOptions watch;
    watch.batchSize = batchSize;
    engine.watch(QStringLiteral("bench"), ns, watch);
    qint64 firstMs = -1;
    runUntil(
        [&] {
            if (firstMs < 0 && engine.eventsCommitted() > 0)
                firstMs = clock.elapsed();
            return engine.eventsCommitted() >= total;
        },
        600000);
    const bool done = engine.eventsCommitted() >= total;
    const qint64 ms = clock.elapsed();
    const double cpu = cpuSeconds() - cpuBefore;
    const qint64 committed = engine.eventsCommitted();

    std::printf("mongo source -> journal: %lld of %d events (batchSize %d) in %lld ms%s\n",
                static_cast<long long>(committed), total, batchSize, static_cast<long long>(ms),
                done ? "" : " (TIMED OUT)");
    std::printf("  throughput      %10.0f events/s (connect and first event after %lld ms)\n",
                committed * 1000.0 / std::max<qint64>(1, ms), static_cast<long long>(firstMs));
    std::printf("  process CPU     %10.2f s, %.1f us/event (peer, driver, source, engine, journal)\n", cpu,
                cpu * 1e6 / std::max<qint64>(1, committed));
    std::printf("  journal commits %10lld\n", static_cast<long long>(engine.commits()));

    // Engine::stop blocks; the peer on this thread must keep answering killCursors.
    std::atomic<bool> stopped{false};
    std::thread stopper([&] {
        engine.stop();
        stopped = true;
    });
    runUntil([&] { return stopped.load(); }, 600000);
    stopper.join();
    return done ? 0 : 2;
}

// NATS JetStream: the ingest's publisher, and gateways serving SSE from the stream.
// Prints figures; never pass/fail. See bench/README.md.
//
//   bench_nats [ingest] [events=100000] [rounds=1]
//       Ingest → JetStream, acknowledged, 1 KiB orders. In the same run: the floor, a
//       plain libnats asynchronous publisher sending the same JSON bytes and headers with
//       the same window of unacknowledged messages to a stream of its own; then Engine::submit →
//       journal commit → NatsPublisher → acknowledged by JetStream. Prints events/s for
//       both and the ratio; rounds alternate the two.
//   bench_nats latency [--rate 10000] [--seconds 10] [--clients 1] [--storage file|memory]
//                                                   (TIDEWATCH_BENCH_DUMP=FILE: per event)
//       Commit on the ingest → receipt by an SSE client of a gateway. The ingest (Engine +
//       NatsPublisher) runs here, the gateway is the built program (`tidewatch --headless
//       --gateway nats://… --sse 0`), the clients run here on an epoll thread. Each event
//       (a 1 KiB order) is stamped when the ingest's journal commits it (a direct
//       connection to Engine::committed) and again when its SSE frame arrives; both are
//       CLOCK_MONOTONIC in this process. Prints p50/p99/max and the rate achieved. Then,
//       on the same server, the floor: a plain libnats publisher and ordered push
//       consumer with the same bytes at the same rate (latencyFloor).
//   bench_nats floor [--rate 10000] [--seconds 5] [--rounds 3] [--storage file|memory]
//       The floor alone, each run on a new nats-server: publish → a core subscriber with
//       no consumer on the stream, then with an ordered push consumer reading it (and
//       publish → that consumer).
//   bench_nats gateways [--clients 2000] [--rate 1000] [--seconds 5]
//       One gateway with --clients SSE clients, then two gateways with --clients each,
//       in the same run (each run its own nats-server and ingest), ~300-byte events.
//       Prints total deliveries/s, every gateway's peak RSS and CPU, and how the total
//       scales from one gateway to two.
//   bench_nats read [events=20000]
//       A gateway's reading of one message body back into the event it commits, in
//       thread CPU time per event, three ways in the same run: libbson's parser and the
//       event rendered again (the first gateway), libbson's parser with the body kept as
//       the event's JSON (the second), and NatsEventReader (simdjson through
//       model/JsonToBson, the body kept). The bodies are the ingest's JSON of 1 KiB orders.
//   bench_nats codec [events=20000]
//       What the compression of each event for a gateway's journal costs (ChangeEvent::
//       prepare → BodyCodec, level 3, with a dictionary trained on the first 2 000
//       documents), in thread CPU time and bytes per event, next to zstd's levels 1, -1
//       and -5 with the same dictionary; 1 KiB orders, best of 3 rounds.
#include "NatsServer.h"
#include "SseClientGroup.h"
#include "TestUtil.h"

#include "engine/Engine.h"
#include "model/BodyCodec.h"
#include "nats/NatsPublisher.h"
#include "sources/nats/NatsEventReader.h"
#include "sources/nats/NatsHeaders.h"

#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QThread>
#include <QTimer>
#include <QUuid>

#include <nats/nats.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using namespace tw;

namespace {

constexpr int kWindow = 1024; // NatsPublisher::Options::window's default
constexpr int kBatch = 1000;  // events per Engine::submit, as a busy source hands them over
constexpr char kToken[] = "bench-token";

QString arg(const QStringList& args, const QString& name, const QString& fallback) {
    const qsizetype i = args.indexOf(name);
    return i >= 0 && i + 1 < args.size() ? args[i + 1] : fallback;
}

// --storage file|memory: true for memory; anything else ends the benchmark.
bool storageArg(const QStringList& args) {
    const QString storage = arg(args, QStringLiteral("--storage"), QStringLiteral("file"));
    if (storage != QLatin1String("file") && storage != QLatin1String("memory")) {
        std::fprintf(stderr, "--storage needs file or memory, not \"%s\"\n", qPrintable(storage));
        std::exit(2);
    }
    return storage == QLatin1String("memory");
}

// A field of /proc/PID/status in KiB (VmRSS now, VmHWM the peak).
qint64 statusKiB(qint64 pid, const char* field) {
    QFile f(QStringLiteral("/proc/%1/status").arg(pid));
    if (!f.open(QIODevice::ReadOnly))
        return 0;
    for (const QByteArray& line : f.readAll().split('\n'))
        if (line.startsWith(field))
            return line.mid(qsizetype(strlen(field))).trimmed().split(' ').first().toLongLong();
    return 0;
}

// User + system CPU of a process, from /proc/PID/stat (fields 14 and 15).
double cpuSeconds(qint64 pid) {
    QFile f(QStringLiteral("/proc/%1/stat").arg(pid));
    if (!f.open(QIODevice::ReadOnly))
        return 0;
    const QByteArray stat = f.readAll();
    // The command name may hold spaces; the fields after it start past its ')'.
    const QList<QByteArray> fields = stat.mid(stat.lastIndexOf(')') + 2).split(' ');
    if (fields.size() < 13)
        return 0;
    return double(fields[11].toLongLong() + fields[12].toLongLong()) / double(sysconf(_SC_CLK_TCK));
}

// --- ingest: the publisher next to a plain libnats publisher -------------------------------

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
    // As long as the ingest's journal id (a UUID), in the header and the message id.
    const QByteArray journal = QUuid::createUuid().toString(QUuid::WithoutBraces).toUtf8();
    QElapsedTimer timer;
    timer.start();
    for (qsizetype i = 0; i < bodies.size(); ++i) {
        // The same bytes on the wire as the ingest's: the body, its three headers and
        // a message id.
        const QByteArray seq = QByteArray::number(i + 1);
        const QByteArray id = journal + ':' + seq;
        natsMsg* msg = nullptr;
        natsMsg_Create(&msg, "floor.shop.main.orders", nullptr, bodies[i].constData(), int(bodies[i].size()));
        natsMsgHeader_Set(msg, "Tidewatch-Journal", journal.constData());
        natsMsgHeader_Set(msg, "Tidewatch-Seq", seq.constData());
        natsMsgHeader_Set(msg, "Tidewatch-Operation", "insert");
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id.constData();
        if (js_PublishMsgAsync(js, &msg, &po) != NATS_OK)
            natsMsg_Destroy(msg);
        if ((i + 1) % kWindow == 0)
            js_PublishAsyncComplete(js, nullptr);
    }
    js_PublishAsyncComplete(js, nullptr);
    const double seconds = timer.nsecsElapsed() / 1e9;
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return bodies.size() / seconds;
}

// --- latency: a plain libnats publisher and consumer, the floor -----------------------

// What nats-server and libnats alone give at the same rate, with the same bytes, on the
// same server: a plain asynchronous publisher sending each 10 ms tick's messages and
// waiting for their acknowledgements (the ingest's discipline), and a plain ordered
// push consumer (the gateway's kind) on a stream of its own. Publish → receipt by the
// consumer, both stamped in this process. Every event counts, the first second too, as
// in the ingest's figure.
// A plain core subscriber beside it times publish → routed by the server; `consumer`
// false leaves the stream without a consumer (`bench_nats floor` compares the two).
struct FloorFigures {
    qint64 received = 0; // by the consumer
    double p50 = -1, p99 = -1, maxMs = -1;
    double coreP50 = -1, coreP99 = -1; // publish → the core subscriber
};

void onFloorCoreMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);

// Send times by seq: written by the publishing loop, read by libnats' threads.
using SendTimes = std::vector<std::atomic<qint64>>;

struct FloorTap {
    const SendTimes* sentNs = nullptr;
    std::mutex mutex;
    bench::Histogram histogram;
};

void onFloorCoreMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* tap = static_cast<FloorTap*>(closure);
    const qint64 now = bench::monoNs();
    const char* value = nullptr;
    if (natsMsgHeader_Get(msg, natsheaders::kSeq, &value) == NATS_OK && value) {
        const long long seq = std::atoll(value);
        const qint64 sent = seq > 0 && size_t(seq) < tap->sentNs->size()
                                ? (*tap->sentNs)[size_t(seq)].load(std::memory_order_relaxed)
                                : 0;
        if (sent > 0) {
            std::lock_guard lock(tap->mutex);
            tap->histogram.add(now - sent);
        }
    }
    natsMsg_Destroy(msg);
}

FloorFigures latencyFloor(const QString& url, const QList<QByteArray>& bodies, int rate, bool consumer = true,
                          bool memory = false) {
    FloorFigures f;
    const QByteArray address = url.toUtf8();
    natsConnection* pc = nullptr;
    natsConnection* cc = nullptr;
    jsCtx* pjs = nullptr;
    jsCtx* cjs = nullptr;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = kWindow;
    natsSubscription* core = nullptr;
    natsSubscription* sub = nullptr;
    auto close = [&] {
        if (sub)
            natsSubscription_Destroy(sub);
        if (core)
            natsSubscription_Destroy(core);
        jsCtx_Destroy(cjs);
        jsCtx_Destroy(pjs);
        natsConnection_Destroy(cc);
        natsConnection_Destroy(pc);
    };
    if (natsConnection_ConnectTo(&pc, address.constData()) != NATS_OK ||
        natsConnection_ConnectTo(&cc, address.constData()) != NATS_OK ||
        natsConnection_JetStream(&pjs, pc, &jo) != NATS_OK ||
        natsConnection_JetStream(&cjs, cc, &jo) != NATS_OK) {
        std::fprintf(stderr, "floor: cannot connect to %s\n", address.constData());
        close();
        return f;
    }
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    const char* subjects[] = {"floorlat.>"};
    config.Name = "FLOORLAT";
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = memory ? js_MemoryStorage : js_FileStorage;
    jsErrCode code = jsErrCode(0);
    const qsizetype total = bodies.size();
    SendTimes sentNs(size_t(total + 1));
    FloorTap tap;
    tap.sentNs = &sentNs;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "FLOORLAT";
    so.Ordered = true;
    if (js_AddStream(nullptr, pjs, &config, nullptr, &code) != NATS_OK ||
        natsConnection_Subscribe(&core, cc, "floorlat.>", &onFloorCoreMessage, &tap) != NATS_OK ||
        natsSubscription_SetPendingLimits(core, -1, -1) != NATS_OK ||
        (consumer && js_SubscribeSync(&sub, cjs, "floorlat.>", nullptr, &so, &code) != NATS_OK)) {
        std::fprintf(stderr, "floor: cannot make stream FLOORLAT or subscribe to it (JetStream error %d)\n",
                     int(code));
        close();
        return f;
    }
    bench::Histogram histogram;
    std::atomic<qint64> received{0};
    std::thread reader([&] {
        QElapsedTimer idle;
        idle.start();
        while (sub && received.load() < total && !idle.hasExpired(10000)) {
            natsMsg* msg = nullptr;
            if (natsSubscription_NextMsg(&msg, sub, 100) != NATS_OK)
                continue;
            idle.start();
            const qint64 now = bench::monoNs();
            const char* value = nullptr;
            if (natsMsgHeader_Get(msg, natsheaders::kSeq, &value) == NATS_OK && value) {
                const long long seq = std::atoll(value);
                const qint64 sent =
                    seq > 0 && seq <= total ? sentNs[size_t(seq)].load(std::memory_order_relaxed) : 0;
                if (sent > 0)
                    histogram.add(now - sent);
            }
            natsMsg_Destroy(msg);
            received.fetch_add(1);
        }
    });
    const QByteArray journal = QUuid::createUuid().toString(QUuid::WithoutBraces).toUtf8();
    QElapsedTimer clock;
    clock.start();
    qsizetype sent = 0;
    for (qint64 tick = 0; sent < total; ++tick) {
        while (clock.elapsed() < tick * 10)
            QThread::usleep(200);
        const qsizetype due = std::min<qsizetype>(total, qsizetype(clock.elapsed() * rate / 1000));
        while (sent < due) {
            const QByteArray seq = QByteArray::number(sent + 1);
            const QByteArray id = journal + ':' + seq;
            natsMsg* msg = nullptr;
            natsMsg_Create(&msg, "floorlat.shop.main.orders", nullptr, bodies[sent].constData(),
                           int(bodies[sent].size()));
            natsMsgHeader_Set(msg, "Tidewatch-Journal", journal.constData());
            natsMsgHeader_Set(msg, natsheaders::kSeq, seq.constData());
            natsMsgHeader_Set(msg, "Tidewatch-Operation", "update");
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MsgId = id.constData();
            sentNs[size_t(sent + 1)].store(bench::monoNs(), std::memory_order_relaxed);
            if (js_PublishMsgAsync(pjs, &msg, &po) != NATS_OK)
                natsMsg_Destroy(msg);
            ++sent;
        }
        js_PublishAsyncComplete(pjs, nullptr);
    }
    reader.join();
    // Every message through the core subscriber's callback before `tap` goes: drained,
    // and the drain waited for.
    natsSubscription_Drain(core);
    natsSubscription_WaitForDrainCompletion(core, 10000);
    f.received = received.load();
    if (histogram.count > 0) {
        f.p50 = histogram.percentileMs(0.5);
        f.p99 = histogram.percentileMs(0.99);
        f.maxMs = double(histogram.maxNs) / 1e6;
    }
    {
        std::lock_guard lock(tap.mutex);
        if (tap.histogram.count > 0) {
            f.coreP50 = tap.histogram.percentileMs(0.5);
            f.coreP99 = tap.histogram.percentileMs(0.99);
        }
    }
    close();
    return f;
}

struct IngestFigures {
    double committedAfter = 0; // s from the first submit to the last commit
    double ackedAfter = 0;     // s from the first submit (or the publisher's start) to the last ack
};

// Engine::submit → journal commit → NatsPublisher → acknowledged, from a journal of its
// own, timed from the first submit until the last seq is acknowledged. With `catchUp`,
// everything is committed first and the publisher starts afterwards: it then reads the
// journal, and its time is the publisher's alone, with the engine idle.
IngestFigures ingestPublisher(const QString& url, const QList<ChangeEvent>& events, bool catchUp) {
    IngestFigures f;
    QTemporaryDir dir;
    Engine::Options options;
    options.journalPath = dir.filePath(QStringLiteral("journal.sqlite"));
    Engine engine(options);
    QString error;
    if (!engine.start(&error)) {
        std::fprintf(stderr, "%s\n", qPrintable(error));
        return f;
    }
    NatsPublisher::Options po;
    po.url = url;
    NatsPublisher publisher(&engine, po);
    auto startPublisher = [&] {
        if (!publisher.start(&error)) {
            std::fprintf(stderr, "%s\n", qPrintable(error));
            return false;
        }
        while (publisher.status().state != NatsPublisher::State::Publishing)
            QThread::msleep(1);
        return true;
    };
    if (!catchUp && !startPublisher())
        return f;
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
    while (engine.lastCommittedSeq() < events.size())
        QThread::msleep(1);
    f.committedAfter = timer.nsecsElapsed() / 1e9;
    if (catchUp) {
        timer.restart();
        if (!startPublisher())
            return f;
    }
    while (publisher.status().ackedSeq < events.size())
        QThread::msleep(1);
    f.ackedAfter = timer.nsecsElapsed() / 1e9;
    publisher.stop();
    engine.stop();
    return f;
}

// Rounds alternate the runs, so that a machine whose load moves (other builds on the same
// two cores) moves them alike.
int runIngest(int total, int rounds) {
    QList<ChangeEvent> events;
    QList<QByteArray> bodies;
    for (int i = 0; i < total; ++i) {
        ChangeEvent e = test::makeOrderEvent(i);
        events.append(e);
        ChangeEvent rendered = e;
        rendered.finalize(i + 1);
        bodies.append(rendered.toJson());
    }
    std::printf("%d order events, %lld bytes of JSON each on average, window %d, %d round(s)\n", total,
                bodies.isEmpty() ? 0LL : (long long)(bodies.constFirst().size()), kWindow, rounds);
    double floorSum = 0, ingestSum = 0, commitSum = 0, aloneSum = 0;
    for (int round = 1; round <= rounds; ++round) {
        // A server of its own for each run: the publisher's stream takes all of
        // tidewatch.>, and a new one fills as the first did.
        auto server = std::make_unique<testsupport::NatsServer>();
        if (const QString error = server->start(); !error.isEmpty()) {
            std::fprintf(stderr, "%s\n", qPrintable(error));
            return 1;
        }
        const double floor = plainPublisher(server->url(), bodies);
        const IngestFigures live = ingestPublisher(server->url(), events, false);
        server = std::make_unique<testsupport::NatsServer>();
        if (const QString error = server->start(); !error.isEmpty()) {
            std::fprintf(stderr, "%s\n", qPrintable(error));
            return 1;
        }
        const IngestFigures behind = ingestPublisher(server->url(), events, true);
        const double rate = total / live.ackedAfter;
        const double alone = total / behind.ackedAfter;
        const double commit = total / behind.committedAfter;
        floorSum += floor;
        ingestSum += rate;
        commitSum += commit;
        aloneSum += alone;
        std::printf(
            "round %d: floor (plain libnats async publisher) %7.0f events/s\n"
            "         ingest → JetStream (commit, publish, ack) %7.0f events/s (%.0f %% of the floor); "
            "its last commit after %.2f s, last ack after %.2f s\n"
            "         engine alone (submit → commit, no publisher) %7.0f events/s; then the publisher "
            "alone, catching up from the journal, %7.0f events/s (%.0f %% of the floor)\n",
            round, floor, rate, floor > 0 ? 100.0 * rate / floor : 0.0, live.committedAfter, live.ackedAfter,
            commit, alone, floor > 0 ? 100.0 * alone / floor : 0.0);
        std::fflush(stdout);
    }
    std::printf(
        "all rounds (mean): floor %.0f events/s; ingest → JetStream %.0f (%.0f %% of the floor); engine "
        "alone %.0f; publisher alone %.0f (%.0f %% of the floor)\n",
        floorSum / rounds, ingestSum / rounds, floorSum > 0 ? 100.0 * ingestSum / floorSum : 0.0,
        commitSum / rounds, aloneSum / rounds, floorSum > 0 ? 100.0 * aloneSum / floorSum : 0.0);
    return 0;
}

// --- gateways: commit on the ingest → SSE receipt on a gateway ------------------------------

// One `tidewatch --headless --gateway` process. Its stdout (every event, as --headless
// prints them) goes to /dev/null, its stderr to a log.
struct Gateway {
    std::unique_ptr<QProcess> process;
    QString log;
    quint16 port = 0;

    QString start(const QString& natsUrl, const QString& dir, const QString& name) {
        process = std::make_unique<QProcess>();
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("TIDEWATCH_DATA_DIR"),
                   dir + QLatin1Char('/') + name + QStringLiteral("-data"));
        env.insert(QStringLiteral("TIDEWATCH_TOKEN"), QString::fromLatin1(kToken));
        process->setProcessEnvironment(env);
        process->setStandardOutputFile(QProcess::nullDevice());
        log = dir + QLatin1Char('/') + name + QStringLiteral(".log");
        process->setStandardErrorFile(log);
        process->start(QStringLiteral(TIDEWATCH_BINARY),
                       {QStringLiteral("--headless"), QStringLiteral("--gateway"), natsUrl,
                        QStringLiteral("--sse"), QStringLiteral("0"), QStringLiteral("--journal"),
                        dir + QLatin1Char('/') + name + QStringLiteral(".journal")});
        if (!process->waitForStarted(10000))
            return QStringLiteral("cannot run %1: %2")
                .arg(QStringLiteral(TIDEWATCH_BINARY), process->errorString());
        static const QRegularExpression listening(QStringLiteral("listening on \\S+ \\(port (\\d+)\\)"));
        QElapsedTimer waited;
        waited.start();
        QByteArray text;
        while (waited.elapsed() < 30000) {
            QFile file(log);
            if (file.open(QIODevice::ReadOnly))
                text = file.readAll();
            const QRegularExpressionMatch port = listening.match(QString::fromUtf8(text));
            if (port.hasMatch() && text.contains("tidewatch: ready: ")) {
                this->port = quint16(port.captured(1).toUInt());
                return {};
            }
            if (process->state() != QProcess::Running)
                break;
            process->waitForFinished(50); // returns at once if it exits
        }
        return QStringLiteral("gateway %1 did not become ready: %2").arg(name, QString::fromUtf8(text));
    }
    qint64 pid() const { return process ? process->processId() : 0; }
    void stop() {
        if (!process || process->state() == QProcess::NotRunning)
            return;
        process->terminate();
        if (!process->waitForFinished(20000))
            process->kill();
    }
};

struct GatewayFigures {
    qint64 committed = 0;
    double commitSeconds = 0; // first submit → last commit
    qint64 expected = 0;      // deliveries
    qint64 delivered = 0;
    qint64 complete = 0; // clients that got every event
    int live = 0;        // clients that said `ready` before the events started
    qint64 outOfOrder = 0;
    double spanSeconds = 0; // first → last receipt
    double p50 = 0, p99 = 0, maxMs = 0;
    double streamP50 = -1, streamP99 = -1; // commit → message seen on the server, or -1
    // With one client, the events committed from the second second on: without the start
    // (both journals train their compression dictionary in it, once in their life).
    double steadyP50 = -1, steadyP99 = -1;
    std::vector<qint64> rssConnectedKiB, peakRssKiB;
    std::vector<double> cpu;
};

// A plain subscriber on every subject of the stream, in this process: when each seq
// reaches the server (commit → published), beside commit → SSE receipt, to tell the
// ingest's share of the latency from the gateway's. Core NATS, so it sees a message
// as the server routes it, without a consumer of its own in the stream.
class StreamTap {
public:
    StreamTap(const QString& url, const std::vector<qint64>& commitNs)
        : m_commitNs(commitNs)
        , m_seenNs(commitNs.size(), 0) {
        if (natsConnection_ConnectTo(&m_nc, url.toUtf8().constData()) != NATS_OK ||
            natsConnection_Subscribe(&m_sub, m_nc, "tidewatch.>", &StreamTap::onMessage, this) != NATS_OK ||
            natsSubscription_SetPendingLimits(m_sub, -1, -1) != NATS_OK)
            std::fprintf(stderr, "stream tap: cannot subscribe; no commit → stream figures\n");
    }
    ~StreamTap() {
        natsSubscription_Destroy(m_sub);
        natsConnection_Destroy(m_nc);
    }
    void finish(double* p50, double* p99) {
        natsSubscription_Unsubscribe(m_sub);
        std::lock_guard lock(m_mutex);
        if (m_histogram.count == 0)
            return;
        *p50 = m_histogram.percentileMs(0.5);
        *p99 = m_histogram.percentileMs(0.99);
    }
    // When each seq reached the server (ns, 0: not seen).
    std::vector<qint64> seenNs() {
        std::lock_guard lock(m_mutex);
        return m_seenNs;
    }

private:
    static void onMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
        auto* self = static_cast<StreamTap*>(closure);
        const qint64 now = bench::monoNs();
        const char* value = nullptr;
        if (natsMsgHeader_Get(msg, natsheaders::kSeq, &value) == NATS_OK && value) {
            const long long seq = std::atoll(value);
            if (seq > 0 && size_t(seq) < self->m_commitNs.size() && self->m_commitNs[size_t(seq)] > 0) {
                std::lock_guard lock(self->m_mutex);
                self->m_histogram.add(now - self->m_commitNs[size_t(seq)]);
                self->m_seenNs[size_t(seq)] = now;
            }
        }
        natsMsg_Destroy(msg);
    }
    const std::vector<qint64>& m_commitNs;
    std::vector<qint64> m_seenNs;
    natsConnection* m_nc = nullptr;
    natsSubscription* m_sub = nullptr;
    std::mutex m_mutex;
    bench::Histogram m_histogram;
};

// `gateways` gateways with `clientsEach` SSE clients each; `rate` events/s for `seconds`.
// `orders`: 1 KiB order updates, else ~300-byte inserts.
// `floor`: then the floor (latencyFloor) at the same rate on the same server, after the
// ingest and gateways have stopped.
// `memory`: the publisher makes its stream in memory (and the floor its own).
bool runGateways(int gateways, int clientsEach, int rate, int seconds, bool orders, GatewayFigures* f,
                 FloorFigures* floor = nullptr, bool memory = false) {
    const qint64 total = qint64(rate) * seconds;
    testsupport::NatsServer nats;
    if (const QString error = nats.start(); !error.isEmpty()) {
        std::fprintf(stderr, "%s\n", qPrintable(error));
        return false;
    }
    QTemporaryDir dir;
    Engine::Options options;
    options.journalPath = dir.filePath(QStringLiteral("ingest.sqlite"));
    Engine engine(options);
    QString error;
    if (!engine.start(&error)) {
        std::fprintf(stderr, "%s\n", qPrintable(error));
        return false;
    }
    // Commit times by seq: written on the engine thread, read by the client threads
    // once the event has come back through JetStream and a gateway, long after.
    std::vector<qint64> commitNs(size_t(total + 2), 0);
    QObject::connect(
        &engine, &Engine::committed, &engine,
        [&commitNs, total](const CommittedBatch& batch) {
            const qint64 now = bench::monoNs();
            for (const ChangeEvent& e : batch.events)
                if (e.seq() > 0 && e.seq() <= total)
                    commitNs[size_t(e.seq())] = now;
        },
        Qt::DirectConnection);
    StreamTap tap(nats.url(), commitNs);
    NatsPublisher::Options po;
    po.url = nats.url();
    po.memoryStorage = memory;
    NatsPublisher publisher(&engine, po);
    if (!publisher.start(&error)) {
        std::fprintf(stderr, "%s\n", qPrintable(error));
        return false;
    }
    std::vector<Gateway> gws(static_cast<size_t>(gateways));
    for (int g = 0; g < gateways; ++g)
        if (const QString why =
                gws[size_t(g)].start(nats.url(), dir.path(), QStringLiteral("gateway%1").arg(g));
            !why.isEmpty()) {
            std::fprintf(stderr, "%s\n", qPrintable(why));
            return false;
        }

    // One epoll thread of clients per gateway.
    const QByteArray request =
        QByteArray("GET /v1/subscriptions/headless/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Accept: text/event-stream\r\nAuthorization: Bearer ") +
        kToken + "\r\n\r\n";
    std::atomic<bool> stop{false};
    std::vector<std::unique_ptr<bench::SseClientGroup>> groups;
    std::vector<std::thread> threads;
    for (const Gateway& gw : gws) {
        bench::SseClientGroup::Options o;
        o.count = clientsEach;
        o.port = gw.port;
        o.requests = {request};
        o.commitNs = commitNs.data();
        o.expected = total;
        groups.push_back(std::make_unique<bench::SseClientGroup>(o));
        threads.emplace_back([g = groups.back().get(), &stop] { g->run(stop); });
    }
    auto sum = [&groups](auto value) {
        qint64 s = 0;
        for (const auto& g : groups)
            s += value(*g);
        return s;
    };
    const qint64 clients = qint64(gateways) * clientsEach;
    QElapsedTimer waited;
    waited.start();
    while (waited.elapsed() < 120000 && sum([](const bench::SseClientGroup& g) {
                                            return qint64(g.ready.load() + g.failed.load());
                                        }) < clients)
        QThread::msleep(20);
    f->live = int(sum([](const bench::SseClientGroup& g) { return qint64(g.ready.load()); }));
    for (const Gateway& gw : gws)
        f->rssConnectedKiB.push_back(statusKiB(gw.pid(), "VmRSS:"));
    std::printf("  %d of %lld clients live after %.1f s; gateway RSS with clients:", f->live,
                static_cast<long long>(clients), double(waited.elapsed()) / 1000);
    for (const qint64 kib : f->rssConnectedKiB)
        std::printf(" %lld KiB", static_cast<long long>(kib));
    std::printf("\n");
    std::fflush(stdout);
    std::vector<double> cpuAtStart;
    for (const Gateway& gw : gws)
        cpuAtStart.push_back(cpuSeconds(gw.pid()));

    // The writer: a batch every 10 ms at the target rate, as a source flushes. The events
    // are made before the clock starts: making them (a random generator seeded per order)
    // is the benchmark's work, not the ingest's, and it shares the cores with the stages
    // being measured.
    std::vector<ChangeEvent> made;
    made.reserve(size_t(total));
    for (qint64 i = 1; i <= total; ++i)
        made.push_back(orders
                           ? test::makeOrderEvent(int(i))
                           : test::makeEvent(QStringLiteral("shop"), QStringLiteral("orders"), int(i), 100));
    qint64 submitted = 0;
    QElapsedTimer clock;
    QTimer writer;
    QObject::connect(&writer, &QTimer::timeout, [&] {
        const qint64 due = std::min<qint64>(total, clock.elapsed() * rate / 1000);
        ChangeBatch batch;
        batch.sourceId = QStringLiteral("shop");
        while (submitted < due)
            batch.events.append(std::move(made[size_t(submitted++)]));
        if (!batch.events.isEmpty())
            engine.submit(batch);
        if (submitted >= total)
            writer.stop();
    });
    clock.start();
    writer.start(10);
    qint64 committedAtMs = 0;
    // Until every client has every event, or 60 s past the writer's end.
    const qint64 deadlineMs = qint64(seconds) * 1000 + 60000;
    while (clock.elapsed() < deadlineMs &&
           sum([](const bench::SseClientGroup& g) { return qint64(g.complete.load()); }) < f->live) {
        QCoreApplication::processEvents(QEventLoop::AllEvents, 5);
        if (committedAtMs == 0 && engine.lastCommittedSeq() >= total)
            committedAtMs = clock.elapsed();
        QThread::msleep(1);
    }
    for (size_t g = 0; g < gws.size(); ++g) {
        f->cpu.push_back(cpuSeconds(gws[g].pid()) - cpuAtStart[g]);
        f->peakRssKiB.push_back(statusKiB(gws[g].pid(), "VmHWM:"));
    }
    stop.store(true);
    for (std::thread& t : threads)
        t.join();
    bench::Histogram h;
    qint64 first = 0, last = 0;
    for (const auto& g : groups) {
        h.merge(g->histogram);
        f->delivered += g->delivered;
        f->outOfOrder += g->outOfOrder();
        f->complete += g->complete.load();
        if (g->firstNs && (first == 0 || g->firstNs < first))
            first = g->firstNs;
        last = std::max(last, g->lastNs);
    }
    f->committed = engine.lastCommittedSeq();
    f->commitSeconds = double(committedAtMs ? committedAtMs : clock.elapsed()) / 1000;
    f->expected = total * clients;
    f->spanSeconds = last > first ? double(last - first) / 1e9 : 0;
    f->p50 = h.percentileMs(0.5);
    f->p99 = h.percentileMs(0.99);
    f->maxMs = double(h.maxNs) / 1e6;
    tap.finish(&f->streamP50, &f->streamP99);
    if (clients == 1) { // one receipt per event: comparable with the whole run's figure
        bench::Histogram steady;
        const qint64 from = (commitNs.size() > 1 ? commitNs[1] : 0) + 1000000000LL;
        const std::vector<qint64>& receipt = groups.front()->worstBySeq;
        for (size_t seq = 1; seq < commitNs.size() && seq < receipt.size(); ++seq)
            if (commitNs[seq] >= from && receipt[seq] > 0)
                steady.add(receipt[seq]);
        if (steady.count > 0) {
            f->steadyP50 = steady.percentileMs(0.5);
            f->steadyP99 = steady.percentileMs(0.99);
        }
    }
    // TIDEWATCH_BENCH_DUMP=FILE: each event's seq, commit time (ms from the first), its
    // slowest receipt and when it reached the server (ms after the commit; -1: not seen),
    // to see when the slow ones were committed and on which side of the stream they waited.
    if (const QByteArray dump = qgetenv("TIDEWATCH_BENCH_DUMP"); !dump.isEmpty() && !groups.empty()) {
        if (FILE* out = std::fopen(dump.constData(), "w")) {
            const std::vector<qint64>& worst = groups.front()->worstBySeq;
            const std::vector<qint64> seenNs = tap.seenNs();
            const qint64 origin = commitNs.size() > 1 ? commitNs[1] : 0;
            for (size_t seq = 1; seq < worst.size() && seq < commitNs.size(); ++seq)
                if (commitNs[seq] > 0 && worst[seq] > 0) {
                    const qint64 seen = seq < seenNs.size() ? seenNs[seq] : 0;
                    std::fprintf(out, "%zu %.3f %.3f %.3f\n", seq, double(commitNs[seq] - origin) / 1e6,
                                 double(worst[seq]) / 1e6, seen ? double(seen - commitNs[seq]) / 1e6 : -1.0);
                }
            std::fclose(out);
        }
    }
    for (Gateway& gw : gws)
        gw.stop();
    publisher.stop();
    engine.stop();
    if (floor) {
        QList<QByteArray> bodies;
        bodies.reserve(total);
        for (qint64 i = 1; i <= total; ++i)
            bodies.append(orders
                              ? test::makeOrderEvent(int(i)).toJson()
                              : test::makeEvent(QStringLiteral("shop"), QStringLiteral("orders"), int(i), 100)
                                    .toJson());
        *floor = latencyFloor(nats.url(), bodies, rate, true, memory);
    }
    return true;
}

double threadCpuUs() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e6 + double(ts.tv_nsec) / 1e3;
}

// The ways a gateway has read a message body, alternated in rounds so that the
// machine's load moves them alike; the best round of each (the least disturbed).
Bson libbsonOnly(const QByteArray& json, QString* error) {
    bson_t doc;
    bson_error_t err;
    if (!bson_init_from_json(&doc, json.constData(), json.size(), &err)) {
        *error = QString::fromUtf8(err.message);
        return {};
    }
    const Bson result = Bson::fromBsonT(&doc);
    bson_destroy(&doc);
    return result;
}

void benchRead(int events) {
    QList<QByteArray> bodies;
    for (int i = 1; i <= events; ++i) {
        ChangeEvent e = test::makeOrderEvent(i);
        e.finalize(i);
        bodies.append(e.toJson());
    }
    qint64 bytes = 0;
    for (const QByteArray& b : std::as_const(bodies))
        bytes += b.size();
    std::printf("reading %d order bodies (%.0f bytes of JSON each) back into events, thread CPU:\n", events,
                double(bytes) / events);
    constexpr int kWays = 3;
    double best[kWays] = {1e18, 1e18, 1e18};
    qint64 check[kWays] = {0, 0, 0};
    for (int round = 0; round < 5; ++round) {
        for (int way = 0; way < kWays; ++way) {
            const double start = threadCpuUs();
            for (int i = 0; i < events; ++i) {
                QString error;
                ChangeEvent e;
                if (way == 0)
                    e = ChangeEvent::fromDocument(libbsonOnly(bodies.at(i), &error), i + 1, &error);
                else if (way == 1)
                    e = ChangeEvent::fromRendered(libbsonOnly(bodies.at(i), &error), i + 1, bodies.at(i),
                                                  &error);
                else
                    e = NatsEventReader::read(bodies.at(i), i + 1, &error);
                check[way] += e.toJson().size() + qint64(e.document().size());
            }
            best[way] = std::min(best[way], (threadCpuUs() - start) / events);
        }
    }
    std::printf("  libbson's parser, rendered again:      %.2f us per event\n", best[0]);
    std::printf("  libbson's parser, JSON kept:           %.2f us per event\n", best[1]);
    std::printf("  NatsEventReader (simdjson), JSON kept: %.2f us per event (%.1fx less than libbson's)\n",
                best[2], best[2] > 0 ? best[1] / best[2] : 0);
    std::printf("  (bytes of JSON and BSON made: %lld, %lld and %lld)\n", static_cast<long long>(check[0]),
                static_cast<long long>(check[1]), static_cast<long long>(check[2]));
}

// The documents a gateway's journal stores (the final event's BSON), compressed by the
// journal's codec and by zstd at other levels with the same dictionary.
void benchCodec(int events) {
    QList<QByteArray> docs;
    for (int i = 1; i <= events; ++i) {
        ChangeEvent e = test::makeOrderEvent(i);
        e.finalize(i);
        docs.append(e.document().raw());
    }
    QString error;
    const QByteArray dictionary = BodyCodec::train(docs.mid(0, 2000), &error);
    BodyCodec codec;
    if (dictionary.isEmpty() || !codec.use(dictionary, &error)) {
        std::fprintf(stderr, "no dictionary: %s\n", qPrintable(error));
        return;
    }
    std::printf("compressing %d order documents (%lld bytes of BSON each), thread CPU per event:\n", events,
                static_cast<long long>(docs.constFirst().size()));
    const int levels[] = {1, -1, -5};
    double best[4] = {1e18, 1e18, 1e18, 1e18};
    qint64 bytes[4] = {0, 0, 0, 0};
    std::vector<char> buffer(ZSTD_compressBound(size_t(docs.constFirst().size())) + 1024);
    for (int round = 0; round < 3; ++round) {
        double start = threadCpuUs();
        bytes[0] = 0;
        for (const QByteArray& doc : std::as_const(docs))
            bytes[0] += codec.compress(doc).size();
        best[0] = std::min(best[0], (threadCpuUs() - start) / events);
        for (int l = 0; l < 3; ++l) {
            ZSTD_CDict* cdict =
                ZSTD_createCDict(dictionary.constData(), size_t(dictionary.size()), levels[l]);
            ZSTD_CCtx* context = ZSTD_createCCtx();
            start = threadCpuUs();
            bytes[l + 1] = 0;
            for (const QByteArray& doc : std::as_const(docs))
                bytes[l + 1] += qint64(ZSTD_compress_usingCDict(context, buffer.data(), buffer.size(),
                                                                doc.constData(), size_t(doc.size()), cdict));
            best[l + 1] = std::min(best[l + 1], (threadCpuUs() - start) / events);
            ZSTD_freeCCtx(context);
            ZSTD_freeCDict(cdict);
        }
    }
    std::printf("  BodyCodec (level 3): %.2f us, %.0f bytes\n", best[0], double(bytes[0]) / events);
    for (int l = 0; l < 3; ++l)
        std::printf("  zstd level %2d:       %.2f us, %.0f bytes\n", levels[l], best[l + 1],
                    double(bytes[l + 1]) / events);
}

void printFigures(const char* what, const GatewayFigures& f) {
    std::printf("%s: %lld events committed in %.1f s (%.0f events/s); delivered %lld of %lld, %lld clients "
                "complete, %lld out of order; %.0f deliveries/s (first → last receipt %.2f s)\n",
                what, static_cast<long long>(f.committed), f.commitSeconds,
                f.commitSeconds > 0 ? double(f.committed) / f.commitSeconds : 0,
                static_cast<long long>(f.delivered), static_cast<long long>(f.expected),
                static_cast<long long>(f.complete), static_cast<long long>(f.outOfOrder),
                f.spanSeconds > 0 ? double(f.delivered) / f.spanSeconds : 0, f.spanSeconds);
    std::printf("  commit on the ingest → SSE receipt: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", f.p50, f.p99,
                f.maxMs);
    if (f.streamP50 >= 0)
        std::printf("  of which commit on the ingest → on the stream: p50 %.2f ms, p99 %.2f ms\n",
                    f.streamP50, f.streamP99);
    if (f.steadyP50 >= 0)
        std::printf("  events committed after the first second: p50 %.2f ms, p99 %.2f ms\n", f.steadyP50,
                    f.steadyP99);
    for (size_t g = 0; g < f.cpu.size(); ++g)
        std::printf("  gateway %zu: peak RSS %lld KiB, CPU %.2f s (%.1f us per event committed)\n", g,
                    static_cast<long long>(f.peakRssKiB[g]), f.cpu[g],
                    f.committed > 0 ? f.cpu[g] * 1e6 / double(f.committed) : 0);
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    registerMetaTypes();
    bench::raiseDescriptorLimit();
    const QStringList args = app.arguments();
    const QString mode = args.size() > 1 ? args[1] : QStringLiteral("ingest");
    if (mode == QLatin1String("codec")) {
        benchCodec(args.size() > 2 ? args[2].toInt() : 20000);
        return 0;
    }
    if (mode == QLatin1String("read")) {
        benchRead(args.size() > 2 ? args[2].toInt() : 20000);
        return 0;
    }
    if (mode == QLatin1String("latency")) {
        const int rate = arg(args, QStringLiteral("--rate"), QStringLiteral("10000")).toInt();
        const int seconds = arg(args, QStringLiteral("--seconds"), QStringLiteral("10")).toInt();
        const int clients = arg(args, QStringLiteral("--clients"), QStringLiteral("1")).toInt();
        const bool memory = storageArg(args);
        std::printf("commit on the ingest → SSE client of a gateway: 1 KiB orders at %d events/s for %d s, "
                    "%d client(s), the stream in %s\n",
                    rate, seconds, clients, memory ? "memory" : "files");
        GatewayFigures f;
        FloorFigures floor;
        if (!runGateways(1, clients, rate, seconds, true, &f, &floor, memory))
            return 1;
        printFigures("latency", f);
        std::printf(
            "floor on the same server (plain libnats publisher → ordered push consumer, same bytes "
            "and rate): %lld received, p50 %.2f ms, p99 %.2f ms, max %.2f ms; Tidewatch's p99 %.1f× the "
            "floor's\n",
            static_cast<long long>(floor.received), floor.p50, floor.p99, floor.maxMs,
            floor.p99 > 0 ? f.p99 / floor.p99 : 0);
        return 0;
    }
    if (mode == QLatin1String("floor")) {
        const int rate = arg(args, QStringLiteral("--rate"), QStringLiteral("10000")).toInt();
        const int seconds = arg(args, QStringLiteral("--seconds"), QStringLiteral("5")).toInt();
        const int rounds = arg(args, QStringLiteral("--rounds"), QStringLiteral("3")).toInt();
        const bool memory = storageArg(args);
        QList<QByteArray> bodies;
        for (qint64 i = 1; i <= qint64(rate) * seconds; ++i)
            bodies.append(test::makeOrderEvent(int(i)).toJson());
        std::printf("the floor alone: plain libnats, 1 KiB orders at %d/s for %d s, each run on a new "
                    "nats-server\n",
                    rate, seconds);
        for (int round = 0; round < rounds; ++round)
            for (const bool consumer : {false, true}) {
                testsupport::NatsServer server;
                if (const QString why = server.start(); !why.isEmpty()) {
                    std::fprintf(stderr, "%s\n", qPrintable(why));
                    return 1;
                }
                const FloorFigures f = latencyFloor(server.url(), bodies, rate, consumer, memory);
                std::printf("  %s: publish → core subscriber p50 %.2f ms, p99 %.2f ms",
                            consumer ? "with an ordered consumer" : "no consumer             ", f.coreP50,
                            f.coreP99);
                if (consumer)
                    std::printf("; → the consumer (%lld) p50 %.2f ms, p99 %.2f ms",
                                static_cast<long long>(f.received), f.p50, f.p99);
                std::printf("\n");
                std::fflush(stdout);
            }
        return 0;
    }
    if (mode == QLatin1String("gateways")) {
        const int clients = arg(args, QStringLiteral("--clients"), QStringLiteral("2000")).toInt();
        const int rate = arg(args, QStringLiteral("--rate"), QStringLiteral("1000")).toInt();
        const int seconds = arg(args, QStringLiteral("--seconds"), QStringLiteral("5")).toInt();
        GatewayFigures one, two;
        std::printf("--- 1 gateway × %d clients, %d events/s for %d s\n", clients, rate, seconds);
        if (!runGateways(1, clients, rate, seconds, false, &one))
            return 1;
        printFigures("1 gateway", one);
        std::printf("--- 2 gateways × %d clients, %d events/s for %d s\n", clients, rate, seconds);
        if (!runGateways(2, clients, rate, seconds, false, &two))
            return 1;
        printFigures("2 gateways", two);
        const double a = one.spanSeconds > 0 ? double(one.delivered) / one.spanSeconds : 0;
        const double b = two.spanSeconds > 0 ? double(two.delivered) / two.spanSeconds : 0;
        std::printf("total deliveries/s: 1 gateway %.0f, 2 gateways %.0f (× %.2f)\n", a, b,
                    a > 0 ? b / a : 0);
        return 0;
    }
    // bench_nats [ingest] [events] [rounds]
    const qsizetype first = mode == QLatin1String("ingest") ? 2 : 1;
    const int total = args.size() > first && args[first].toInt() > 0 ? args[first].toInt() : 100000;
    const int rounds = args.size() > first + 1 && args[first + 1].toInt() > 0 ? args[first + 1].toInt() : 1;
    return runIngest(total, rounds);
}

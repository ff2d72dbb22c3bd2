// SSE fan-out benchmark. Prints figures; never pass/fail. See bench/README.md.
//
//   bench_sse latency [--clients 2000] [--rate 1000] [--seconds 10] [--interval 10]
//       Engine + SseServer in this process; the clients in a child process (so the RSS
//       printed is the server's). Events are committed at --rate; every client must
//       receive every event; latency is journal commit -> client receipt, measured
//       with CLOCK_MONOTONIC shared through a file mapped by both processes. The writer
//       submits a batch every --interval ms (a source flushes every ~20 ms).
//       With --pin, the server runs on CPU 0 and the clients on CPU 1.
//   bench_sse fanout [--clients 100] [--events 20000]
//       Commits --events as fast as the engine takes them; reports events x clients
//       delivered per second.
//   bench_sse fanout --replay [--clients 100] [--events 20000] [--replay-cache-bytes N]
//       Commits everything first; the clients then drain it from Last-Event-ID 0.
//       --replay-cache-bytes 0 turns the shared replay cache off (each client reads
//       and renders the journal on its own).
//   bench_sse herd [--clients 2000] [--history 100000] [--rate 1000] [--seconds 10]
//       Commits --history events, then the clients reconnect at once with Last-Event-IDs
//       spread evenly over that history while a writer commits --rate events/s for
//       --seconds; prints when every client was caught up and live (its `ready`), and
//       checks that each got exactly the ids after its own, no loss, no repeat.
//   bench_sse coalesce [--clients 2000] [--rate 1000] [--seconds 10] [--coalesce-first]
//       The latency run twice in one process: live batches written one by one, then
//       coalesced when they queue up; prints server CPU per delivery and p99 for both.
//   bench_sse shape [--clients 1000] [--events 20000] [--shaped-first]
//       The fan-out run twice in one process: unshaped, then shaped (an inclusion of three
//       fields and a constant event name); prints server CPU per delivery for both.
//   bench_sse subscribe --url URL --clients N --events E [--publish URL] --no-ready
//       Only the client side (used against nginx + nchan): N SSE clients on URL; with
//       --publish, POSTs E messages there once everyone is connected (with --clients 0:
//       only publishes).
//   bench_sse clients ...   (internal: the child process of latency/fanout)

#include "SseClientGroup.h"

#include "engine/Engine.h"
#include "http/SseServer.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QThread>
#include <QTimer>

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

using namespace tw;

namespace {

double cpuSeconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

qint64 rssKiB(qint64 pid = 0) {
    QFile f(pid ? QStringLiteral("/proc/%1/status").arg(pid) : QStringLiteral("/proc/self/status"));
    if (!f.open(QIODevice::ReadOnly))
        return 0;
    for (const QByteArray& line : f.readAll().split('\n'))
        if (line.startsWith("VmRSS:"))
            return line.mid(6).trimmed().split(' ').first().toLongLong();
    return 0;
}

QString arg(const QStringList& args, const QString& name, const QString& fallback) {
    const qsizetype i = args.indexOf(name);
    return i >= 0 && i + 1 < args.size() ? args[i + 1] : fallback;
}

ChangeEvent makeEvent(int i) {
    ChangeEvent e;
    e.setSourceId(QStringLiteral("bench"));
    e.setNs(Namespace{QStringLiteral("main"), QStringLiteral("orders")});
    e.setOperation(Operation::Insert);
    BsonBuilder key;
    bson_append_int32(key.get(), "_id", 3, i);
    e.setDocumentKey(key.take());
    BsonBuilder doc;
    bson_append_int32(doc.get(), "_id", 3, i);
    bson_append_utf8(doc.get(), "status", 6, "paid", 4);
    bson_append_double(doc.get(), "total", 5, 12.5 + i);
    bson_append_utf8(doc.get(), "customer", 8, "c-000123", 8);
    e.setFullDocument(doc.take());
    e.setWallTimeMs(QDateTime::currentMSecsSinceEpoch());
    return e;
}

// Runs `clients` connections spread over `threads` threads; returns the process
// exit code. Prints "connected" once all are ready (or subscribed, for nchan), then a
// result line when every client has every event or the deadline passes.
int runClients(const QStringList& args) {
    const QUrl url(arg(args, QStringLiteral("--url"), {}));
    const int clients = arg(args, QStringLiteral("--clients"), QStringLiteral("100")).toInt();
    const qint64 expected = arg(args, QStringLiteral("--events"), QStringLiteral("1000")).toLongLong();
    const int threads =
        clients == 0 ? 0 : arg(args, QStringLiteral("--threads"), QStringLiteral("2")).toInt();
    const QString token = arg(args, QStringLiteral("--token"), {});
    const QString shm = arg(args, QStringLiteral("--shm"), {});
    const QString publish = arg(args, QStringLiteral("--publish"), {});
    const int timeoutS = arg(args, QStringLiteral("--timeout"), QStringLiteral("120")).toInt();

    const qint64* commitNs = nullptr;
    QFile shmFile(shm);
    if (!shm.isEmpty()) {
        if (!shmFile.open(QIODevice::ReadOnly))
            return 3;
        commitNs = reinterpret_cast<const qint64*>(shmFile.map(0, shmFile.size()));
    }
    QByteArray request = "GET " + url.path(QUrl::FullyEncoded).toUtf8() +
                         (url.hasQuery() ? "?" + url.query(QUrl::FullyEncoded).toUtf8() : QByteArray()) +
                         " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
    if (!token.isEmpty())
        request += "Authorization: Bearer " + token.toUtf8() + "\r\n";
    const QString lastEventId = arg(args, QStringLiteral("--last-event-id"), {});
    // --spread-from A --spread-to B: client i resumes from A + i (B - A) / clients.
    const qint64 spreadFrom = arg(args, QStringLiteral("--spread-from"), QStringLiteral("-1")).toLongLong();
    const qint64 spreadTo = arg(args, QStringLiteral("--spread-to"), QStringLiteral("0")).toLongLong();
    QList<QByteArray> requests;
    QList<qint64> lastIds;
    if (spreadFrom >= 0) {
        for (int i = 0; i < clients; ++i) {
            lastIds.append(spreadFrom + qint64(i) * (spreadTo - spreadFrom) / std::max(1, clients));
            requests.append(request + "Last-Event-ID: " + QByteArray::number(lastIds.last()) + "\r\n\r\n");
        }
    } else {
        if (!lastEventId.isEmpty())
            request += "Last-Event-ID: " + lastEventId.toUtf8() + "\r\n";
        requests.append(request + "\r\n");
    }
    const bool checkIds = args.contains(QStringLiteral("--check-ids"));

    std::atomic<bool> stop{false};
    std::vector<std::thread> pool;
    std::vector<bench::SseClientGroup*> groups;
    const int wave = arg(args, QStringLiteral("--connect-wave"), QStringLiteral("500")).toInt();
    int firstClient = 0;
    for (int t = 0; t < threads; ++t) {
        bench::SseClientGroup::Options o;
        o.count = clients / threads + (t < clients % threads ? 1 : 0);
        o.port = quint16(url.port());
        o.requests = requests.size() == 1 ? requests : requests.mid(firstClient, o.count);
        o.lastIds = lastIds.mid(firstClient, lastIds.isEmpty() ? 0 : o.count);
        o.commitNs = commitNs;
        o.expected = expected;
        o.checkIds = checkIds;
        o.connectWave = std::max(1, wave / std::max(1, threads));
        firstClient += o.count;
        auto* g = new bench::SseClientGroup(o);
        groups.push_back(g);
        pool.emplace_back([g, &stop] { g->run(stop); });
    }
    auto sum = [&groups](auto f) {
        qint64 s = 0;
        for (bench::SseClientGroup* g : groups)
            s += f(g);
        return s;
    };
    QElapsedTimer wait;
    wait.start();
    // Tidewatch says `ready`; nchan only sends its response headers, then a moment for
    // the subscription to settle.
    const bool tidewatch = !args.contains(QStringLiteral("--no-ready"));
    auto connected = [&] {
        return tidewatch ? sum([](bench::SseClientGroup* g) { return qint64(g->ready.load()); })
                         : sum([](bench::SseClientGroup* g) { return qint64(g->subscribed.load()); });
    };
    auto failed = [&] { return sum([](bench::SseClientGroup* g) { return qint64(g->failed.load()); }); };
    // Until all are live, or none has become live for 30 s: a server that stopped
    // accepting does not start again.
    qint64 lastLive = 0, lastGainMs = 0;
    while (wait.elapsed() < qint64(timeoutS) * 1000 && connected() + failed() < clients &&
           wait.elapsed() - lastGainMs < 30000) {
        QThread::msleep(20);
        if (const qint64 now = connected(); now > lastLive) {
            lastLive = now;
            lastGainMs = wait.elapsed();
        }
    }
    const qint64 live = connected();
    // To stderr, which the server forwards: how long connecting took, and how far it got.
    std::fprintf(
        stderr,
        "clients: %lld of %d TCP-connected, %lld with response headers, %lld ready, %lld failed, "
        "the last of them %.1f s after the first connect (at most %d connecting at a time)\n",
        static_cast<long long>(sum([](bench::SseClientGroup* g) { return qint64(g->connected.load()); })),
        clients,
        static_cast<long long>(sum([](bench::SseClientGroup* g) { return qint64(g->subscribed.load()); })),
        static_cast<long long>(sum([](bench::SseClientGroup* g) { return qint64(g->ready.load()); })),
        static_cast<long long>(failed()), double(lastGainMs) / 1000, wave);
    if (!tidewatch)
        QThread::msleep(500);
    std::printf("connected %lld\n", static_cast<long long>(live));
    std::fflush(stdout);

    if (!publish.isEmpty()) {
        // nchan: POST each message; 8 in flight keeps its publisher busy without
        // measuring our own request latency.
        QNetworkAccessManager nam;
        qint64 sent = 0, done = 0;
        const QByteArray body = makeEvent(1).toJson();
        std::function<void()> next = [&] {
            if (sent >= expected)
                return;
            ++sent;
            QNetworkRequest r{QUrl(publish)};
            r.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/json"));
            QNetworkReply* reply = nam.post(r, body);
            QObject::connect(reply, &QNetworkReply::finished, reply, [&, reply] {
                ++done;
                reply->deleteLater();
                next();
            });
        };
        for (int i = 0; i < 8; ++i)
            next();
        while (done < expected)
            QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 100);
        if (clients == 0) {
            std::printf("published %lld\n", static_cast<long long>(done));
            return 0;
        }
    }

    QElapsedTimer deadline;
    deadline.start();
    // The clients that became live are the ones the events are for.
    while (deadline.elapsed() < timeoutS * 1000 &&
           sum([](bench::SseClientGroup* g) { return qint64(g->complete.load()); }) < live)
        QThread::msleep(20);
    stop.store(true);
    for (auto& t : pool)
        t.join();
    bench::Histogram h;
    qint64 first = 0, last = 0, delivered = 0, outOfOrder = 0;
    for (bench::SseClientGroup* g : groups) {
        h.merge(g->histogram);
        delivered += g->delivered;
        outOfOrder += g->outOfOrder();
        if (g->firstNs && (first == 0 || g->firstNs < first))
            first = g->firstNs;
        last = std::max(last, g->lastNs);
    }
    const qint64 complete = sum([](bench::SseClientGroup* g) { return qint64(g->complete.load()); });
    const double seconds = last > first ? double(last - first) / 1e9 : 0;
    std::printf(
        "result clients=%d complete=%lld delivered=%lld expected=%lld out_of_order=%lld span_s=%.3f "
        "deliveries_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f client_rss_kib=%lld client_cpu_s=%.2f\n",
        clients, static_cast<long long>(complete), static_cast<long long>(delivered),
        static_cast<long long>(expected * clients), static_cast<long long>(outOfOrder), seconds,
        seconds > 0 ? double(delivered) / seconds : 0, h.percentileMs(0.5), h.percentileMs(0.99),
        double(h.maxNs) / 1e6, static_cast<long long>(rssKiB()), cpuSeconds());
    // The events whose last client got them latest, with when they were committed: a
    // tail made of a few stalls looks different from one spread over every batch.
    if (commitNs) {
        std::vector<std::pair<qint64, qint64>> worst; // (latency, seq)
        for (qint64 id = 1; id <= expected; ++id) {
            qint64 w = 0;
            for (bench::SseClientGroup* g : groups)
                if (size_t(id) < g->worstBySeq.size())
                    w = std::max(w, g->worstBySeq[size_t(id)]);
            worst.emplace_back(w, id);
        }
        std::sort(worst.rbegin(), worst.rend());
        qint64 over20 = 0;
        for (const auto& [ns, id] : worst)
            over20 += ns > 20'000'000;
        std::printf("events whose slowest receipt took over 20 ms: %lld of %lld; slowest:",
                    static_cast<long long>(over20), static_cast<long long>(expected));
        for (size_t i = 0; i < std::min<size_t>(8, worst.size()); ++i)
            std::printf(" seq %lld at +%.2f s: %.1f ms;", static_cast<long long>(worst[i].second),
                        double(commitNs[worst[i].second] - commitNs[1]) / 1e9, double(worst[i].first) / 1e6);
        std::printf("\n");
    }
    std::fflush(stdout);
    return 0;
}

// What one server run measured, for the modes that compare two.
struct RunFigures {
    double cpuPerDelivery = 0; // server CPU seconds per event delivered to a client
    double p99Ms = 0;          // commit -> receipt, from the clients' result line
};

// `shaped`: the subscription keeps three fields under a constant event name.
// --herd: the reconnect storm of `bench_sse herd`.
int runServer(const QStringList& args, bool fanout, bool shaped = false, RunFigures* figures = nullptr) {
    const int asked =
        arg(args, QStringLiteral("--clients"), fanout ? QStringLiteral("100") : QStringLiteral("2000"))
            .toInt();
    const int rate = arg(args, QStringLiteral("--rate"), QStringLiteral("1000")).toInt();
    const int seconds = arg(args, QStringLiteral("--seconds"), QStringLiteral("10")).toInt();
    const bool herd = args.contains(QStringLiteral("--herd"));
    const qint64 history =
        herd ? arg(args, QStringLiteral("--history"), QStringLiteral("100000")).toLongLong() : 0;
    const qint64 total = fanout ? arg(args, QStringLiteral("--events"), QStringLiteral("20000")).toLongLong()
                                : history + qint64(rate) * seconds;
    const int threads = arg(args, QStringLiteral("--threads"), QStringLiteral("2")).toInt();
    int clients = asked;

    QTemporaryDir dir;
    qputenv("TIDEWATCH_DATA_DIR", dir.filePath(QStringLiteral("data")).toLocal8Bit());
    Engine::Options options;
    options.journalPath = dir.filePath(QStringLiteral("journal.sqlite"));
    Engine engine(options);
    QString error;
    if (!engine.start(&error)) {
        std::fprintf(stderr, "%s\n", qPrintable(error));
        return 1;
    }
    Subscription sub;
    sub.id = QStringLiteral("orders");
    sub.persistent = false;
    if (shaped) {
        sub.setProjection(R"({"documentKey": 1, "fullDocument.status": 1, "fullDocument.total": 1})",
                          nullptr);
        sub.event = EventTemplate::compile(QStringLiteral("notification_received"), nullptr);
    }
    engine.addSubscription(sub);

    // Every client is a descriptor of this process, beside its own (journal, WAL, the
    // HTTP thread's, the pipes to the child): the hard limit is per process, and this VM's
    // cannot be raised (no CAP_SYS_RESOURCE), so more clients than it leaves would only
    // be refused at accept().
    const qint64 limit = bench::raiseDescriptorLimit();
    // + the listener, the HTTP thread's, the pipes to the child and a few opened for a
    // moment (/proc files): with 8 to spare, the server stopped accepting 35 short of
    // 19 971 clients and did not start again (probably an accept() that found no
    // descriptor free).
    const int own = bench::openDescriptors() + 64;
    if (limit > 0 && clients > limit - own) {
        clients = int(limit - own);
        std::printf("server: descriptor limit %lld, %d of them this process's own: %d clients, not %d\n",
                    static_cast<long long>(limit), own, clients, asked);
    }

    // Commit times by seq, shared with the client process.
    const QString shmPath = dir.filePath(QStringLiteral("commit-times"));
    QFile shm(shmPath);
    if (!shm.open(QIODevice::ReadWrite) || !shm.resize(qint64(sizeof(qint64)) * (total + 2)))
        return 1;
    auto* commitNs = reinterpret_cast<qint64*>(shm.map(0, shm.size()));
    QObject::connect(
        &engine, &Engine::committed, &engine,
        [commitNs, total](const CommittedBatch& batch) {
            const qint64 now = bench::monoNs();
            for (const ChangeEvent& e : batch.events)
                if (e.seq() <= total)
                    commitNs[e.seq()] = now;
        },
        Qt::DirectConnection);

    SseServer server(&engine);
    SseServer::Options sseOptions;
    sseOptions.token = QStringLiteral("bench-token");
    sseOptions.maxConnections = clients + 100;
    sseOptions.replayCacheBytes =
        arg(args, QStringLiteral("--replay-cache-bytes"), QString::number(sseOptions.replayCacheBytes))
            .toLongLong();
    sseOptions.coalesceLive = !args.contains(QStringLiteral("--no-coalesce"));
    if (!server.start(sseOptions, &error)) {
        std::fprintf(stderr, "%s\n", qPrintable(error));
        return 1;
    }
    const qint64 rssIdle = rssKiB();

    const double cpuAtStart = cpuSeconds();
    const bool replay = args.contains(QStringLiteral("--replay"));
    if (replay || herd) {
        // Everything is in the journal before the clients connect with Last-Event-ID 0:
        // the same drain nchan does for subscribers that ask for its oldest message. The
        // herd's history is stored the same way.
        const qint64 stored = herd ? history : total;
        for (qint64 i = 0; i < stored; i += 1000) {
            ChangeBatch batch;
            batch.sourceId = QStringLiteral("bench");
            for (qint64 k = i; k < std::min(stored, i + 1000); ++k)
                batch.events.append(makeEvent(int(k + 1)));
            engine.submit(batch);
        }
        while (engine.lastCommittedSeq() < stored)
            QThread::msleep(10);
    }
    QStringList childArgs{QStringLiteral("clients"),
                          QStringLiteral("--url"),
                          server.baseUrl().toString() + QStringLiteral("/v1/subscriptions/orders/events"),
                          QStringLiteral("--clients"),
                          QString::number(clients),
                          QStringLiteral("--events"),
                          QString::number(total),
                          QStringLiteral("--threads"),
                          QString::number(threads),
                          QStringLiteral("--token"),
                          sseOptions.token};
    if (args.contains(QStringLiteral("--pin")))
        childArgs << QStringLiteral("--cpu") << QStringLiteral("1");
    for (const QString& passed : {QStringLiteral("--timeout"), QStringLiteral("--connect-wave")})
        if (args.contains(passed))
            childArgs << passed << arg(args, passed, {});
    if (replay)
        childArgs << QStringLiteral("--last-event-id") << QStringLiteral("0");
    else if (herd)
        childArgs << QStringLiteral("--spread-from") << QStringLiteral("0") << QStringLiteral("--spread-to")
                  << QString::number(history) << QStringLiteral("--check-ids");
    else
        childArgs << QStringLiteral("--shm") << shmPath;

    // From before the first connection: a herd's replay is what fills the server.
    qint64 peakRss = rssIdle;
    QTimer rssTimer;
    QObject::connect(&rssTimer, &QTimer::timeout, [&peakRss] { peakRss = std::max(peakRss, rssKiB()); });
    rssTimer.start(100);

    // The writer: batches every 10 ms at the target rate (a source flushes every ~20 ms),
    // or as fast as the engine commits for the fan-out run.
    qint64 submitted = history;
    QElapsedTimer clock;
    QTimer writer;
    QObject::connect(&writer, &QTimer::timeout, [&] {
        const qint64 due = fanout ? std::min<qint64>(total, submitted + 500)
                                  : std::min<qint64>(total, history + clock.elapsed() * rate / 1000);
        if (fanout && submitted - engine.lastCommittedSeq() > 2000)
            return; // keep the engine's queue short
        ChangeBatch batch;
        batch.sourceId = QStringLiteral("bench");
        while (submitted < due)
            batch.events.append(makeEvent(int(++submitted)));
        if (!batch.events.isEmpty())
            engine.submit(batch);
        if (submitted >= total)
            writer.stop();
    });
    const int interval = fanout ? 1 : arg(args, QStringLiteral("--interval"), QStringLiteral("10")).toInt();
    if (herd) {
        // The herd reconnects while the feed goes on.
        clock.start();
        writer.start(interval);
    }

    QProcess child;
    child.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    QElapsedTimer sinceStart;
    sinceStart.start();
    child.start(QCoreApplication::applicationFilePath(), childArgs);
    QByteArray childOut;
    while (!childOut.contains("connected") && !childOut.contains("result")) {
        // The herd's writer runs meanwhile.
        QCoreApplication::processEvents(QEventLoop::AllEvents, 10);
        child.waitForReadyRead(10);
        if (child.state() != QProcess::Running && !child.bytesAvailable())
            return 2;
        childOut += child.readAllStandardOutput();
    }
    const double readyAfter = double(sinceStart.elapsed()) / 1000;
    const qint64 rssConnected = rssKiB();
    const qsizetype at = childOut.indexOf("connected ");
    const int live = at >= 0 ? childOut.mid(at + 10, childOut.indexOf('\n', at) - at - 10).toInt() : 0;
    std::printf("server: %d of %d clients live (their `ready` read) %.1f s after the child started; RSS idle "
                "%lld KiB, with clients %lld KiB; %d descriptors open\n",
                live, clients, readyAfter, static_cast<long long>(rssIdle),
                static_cast<long long>(rssConnected), bench::openDescriptors());
    if (herd) {
        const ReplayCache::Stats cache = server.replayCacheStats();
        std::printf(
            "herd: %d clients from ids spread over 0..%lld all caught up and live (ready) %.2f s after "
            "the first connect; peak RSS so far %lld KiB; replay cache %lld KiB in %lld blocks, %lld "
            "block reads, %lld hits, %lld evictions\n",
            clients, static_cast<long long>(history), readyAfter, static_cast<long long>(peakRss),
            static_cast<long long>(cache.bytes / 1024), static_cast<long long>(cache.blocks),
            static_cast<long long>(cache.reads), static_cast<long long>(cache.hits),
            static_cast<long long>(cache.evictions));
    }
    std::fflush(stdout);

    if (!replay && !herd) {
        clock.start();
        writer.start(interval);
    }

    while (child.state() == QProcess::Running) {
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
        child.waitForReadyRead(10);
        childOut += child.readAllStandardOutput();
    }
    childOut += child.readAllStandardOutput();
    const double writeSeconds = double(clock.elapsed()) / 1000;
    const QByteArray result = childOut.mid(childOut.indexOf("result"));
    std::printf("%s run: %lld events committed in %.1f s to %d clients\n", fanout ? "fanout" : "latency",
                static_cast<long long>(engine.lastCommittedSeq()), writeSeconds, clients);
    std::printf("clients: %s", result.constData());
    std::printf(
        "server: peak RSS %lld KiB; events sent %lld; slow disconnects %lld; CPU %.2f s (engine + HTTP "
        "threads + writer)\n",
        static_cast<long long>(peakRss), static_cast<long long>(server.eventsSent()),
        static_cast<long long>(server.slowDisconnects()), cpuSeconds() - cpuAtStart);
    std::fflush(stdout);
    if (herd) {
        // Each client should get exactly the ids after its own: out_of_order=0 and
        // delivered equal to this.
        qint64 expected = 0;
        for (int i = 0; i < clients; ++i)
            expected += total - qint64(i) * history / std::max(1, clients);
        std::printf("herd: expected deliveries %lld (each client the ids after its Last-Event-ID)\n",
                    static_cast<long long>(expected));
    }
    std::fflush(stdout);
    if (figures) {
        figures->cpuPerDelivery =
            (cpuSeconds() - cpuAtStart) / double(std::max<qint64>(1, server.eventsSent()));
        const qsizetype p99 = result.indexOf("p99_ms=");
        if (p99 >= 0)
            figures->p99Ms = result.mid(p99 + 7, result.indexOf(' ', p99) - p99 - 7).toDouble();
    }
    server.stop();
    engine.stop();
    return 0;
}

// --cpu N pins this process (every thread it starts later inherits it) to one CPU.
// `latency --pin` runs the server on CPU 0 and the clients on CPU 1: otherwise the
// scheduler sometimes keeps the client thread on the server's CPU (a wake-up pulls the
// woken thread towards the waker), and for a while the two queue behind each other.
void pinIfAsked(const QStringList& args) {
    const QString cpu = arg(args, QStringLiteral("--cpu"), {});
    if (cpu.isEmpty())
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu.toInt(), &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        std::perror("sched_setaffinity");
}

} // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    QStringList args = app.arguments();
    bench::raiseDescriptorLimit();
    if (args.contains(QStringLiteral("--pin")))
        args << QStringLiteral("--cpu") << QStringLiteral("0");
    pinIfAsked(args);
    const QString mode = args.size() > 1 ? args[1] : QStringLiteral("latency");
    if (mode == QLatin1String("clients") || mode == QLatin1String("subscribe"))
        return runClients(args);
    if (mode == QLatin1String("fanout"))
        return runServer(args, true);
    if (mode == QLatin1String("latency"))
        return runServer(args, false);
    if (mode == QLatin1String("shape")) {
        if (!args.contains(QStringLiteral("--clients")))
            args << QStringLiteral("--clients") << QStringLiteral("1000");
        RunFigures plain, shaped;
        // --shaped-first swaps the order, to see what warm caches give the second run.
        const bool shapedFirst = args.contains(QStringLiteral("--shaped-first"));
        for (const bool shapedRun : {shapedFirst, !shapedFirst}) {
            std::printf(shapedRun
                            ? "--- shaped: {documentKey, fullDocument.status, fullDocument.total}, event "
                              "notification_received\n"
                            : "--- unshaped\n");
            if (const int rc = runServer(args, true, shapedRun, shapedRun ? &shaped : &plain))
                return rc;
        }
        std::printf("server CPU per delivery: unshaped %.1f ns, shaped %.1f ns (%+.1f %%)\n",
                    plain.cpuPerDelivery * 1e9, shaped.cpuPerDelivery * 1e9,
                    (shaped.cpuPerDelivery / plain.cpuPerDelivery - 1) * 100);
        return 0;
    }
    if (mode == QLatin1String("herd")) {
        if (!args.contains(QStringLiteral("--clients")))
            args << QStringLiteral("--clients") << QStringLiteral("2000");
        args << QStringLiteral("--herd");
        return runServer(args, false);
    }
    if (mode == QLatin1String("coalesce")) {
        RunFigures single, coalesced;
        const bool coalescedFirst = args.contains(QStringLiteral("--coalesce-first"));
        for (const bool coalesce : {coalescedFirst, !coalescedFirst}) {
            std::printf(coalesce ? "--- coalesced when batches queue up\n" : "--- one write per batch\n");
            QStringList runArgs = args;
            if (!coalesce)
                runArgs << QStringLiteral("--no-coalesce");
            if (const int rc = runServer(runArgs, false, false, coalesce ? &coalesced : &single))
                return rc;
        }
        std::printf("server CPU per delivery: one write per batch %.1f ns (p99 %.1f ms), coalesced %.1f ns "
                    "(p99 %.1f ms), %+.1f %% CPU\n",
                    single.cpuPerDelivery * 1e9, single.p99Ms, coalesced.cpuPerDelivery * 1e9,
                    coalesced.p99Ms, (coalesced.cpuPerDelivery / single.cpuPerDelivery - 1) * 100);
        return 0;
    }
    std::fprintf(stderr, "usage: bench_sse latency|fanout|shape|herd|coalesce|subscribe [options]\n");
    return 2;
}

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

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

using namespace tw;

namespace {

qint64 monoNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

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

// Latency histogram in 10 µs buckets up to 2 s.
struct Histogram {
    static constexpr qint64 kBucketNs = 10000;
    std::vector<qint64> buckets = std::vector<qint64>(200000, 0);
    qint64 count = 0;
    qint64 maxNs = 0;
    void add(qint64 ns) {
        ns = std::max<qint64>(0, ns);
        buckets[size_t(std::min<qint64>(ns / kBucketNs, qint64(buckets.size()) - 1))]++;
        ++count;
        maxNs = std::max(maxNs, ns);
    }
    void merge(const Histogram& o) {
        for (size_t i = 0; i < buckets.size(); ++i)
            buckets[i] += o.buckets[i];
        count += o.count;
        maxNs = std::max(maxNs, o.maxNs);
    }
    double percentileMs(double p) const {
        const qint64 target = qint64(double(count) * p);
        qint64 seen = 0;
        for (size_t i = 0; i < buckets.size(); ++i) {
            seen += buckets[i];
            if (seen > target)
                return double(i + 1) * kBucketNs / 1e6;
        }
        return double(maxNs) / 1e6;
    }
};

// N SSE connections on one thread with epoll: the client side must cost far less than
// the server it measures (a QTcpSocket per client doubled the CPU of the whole run).
class ClientGroup {
public:
    struct Conn {
        int fd = -1;
        QByteArray partial;
        bool headersDone = false;
        bool skipData = false; // the data line of a ready or gap message
        qint64 received = 0;
        qint64 lastId = 0;    // its Last-Event-ID until the first event
        qint64 pendingId = 0; // the id line of the message being read
        qint64 outOfOrder = 0;
    };
    std::vector<qint64> worstBySeq; // slowest receipt of each event, ns
    // `requests` holds one request per connection, or one for all. With `checkIds`, every
    // client must see exactly the ids after its Last-Event-ID (`firstIds`), up to `expected`.
    ClientGroup(int count, quint16 port, QList<QByteArray> requests, QList<qint64> lastIds,
                const qint64* commitNs, qint64 expected, bool checkIds)
        : m_count(count)
        , m_port(port)
        , m_requests(std::move(requests))
        , m_lastIds(std::move(lastIds))
        , m_commitNs(commitNs)
        , m_expected(expected)
        , m_checkIds(checkIds || commitNs) {}
    void run(const std::atomic<bool>& stop) {
        const int ep = epoll_create1(0);
        m_conns.resize(size_t(m_count));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(m_port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (int i = 0; i < m_count; ++i) {
            const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            // Blocking connect and request, then non-blocking reads.
            if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
                std::fprintf(stderr, "connect failed: %s\n", strerror(errno));
                if (fd >= 0)
                    ::close(fd);
                continue;
            }
            const QByteArray& request = m_requests.at(m_requests.size() == 1 ? 0 : i);
            const ssize_t sent = ::send(fd, request.constData(), size_t(request.size()), 0);
            Q_UNUSED(sent);
            ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
            m_conns[size_t(i)].fd = fd;
            m_conns[size_t(i)].lastId = m_lastIds.isEmpty() ? 0 : m_lastIds.at(i);
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = quint64(i);
            ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        std::vector<epoll_event> events(256);
        std::vector<char> buffer(256 * 1024);
        while (!stop.load(std::memory_order_relaxed)) {
            const int n = ::epoll_wait(ep, events.data(), int(events.size()), 50);
            for (int k = 0; k < n; ++k) {
                Conn& c = m_conns[size_t(events[size_t(k)].data.u64)];
                const ssize_t got = ::recv(c.fd, buffer.data(), buffer.size(), 0);
                if (got <= 0) {
                    if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                        ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
                        ::close(c.fd);
                        c.fd = -1;
                    }
                    continue;
                }
                onRead(c, buffer.data(), got);
            }
        }
        for (Conn& c : m_conns)
            if (c.fd >= 0)
                ::close(c.fd);
        ::close(ep);
    }
    // Lines are parsed where recv() put them; only a line cut by the end of a read is
    // copied (into `partial`). Appending every read to a buffer and removing the parsed
    // front made the client process copy each byte twice more than the kernel did, and
    // it shares the two cores with the server it measures.
    void onRead(Conn& c, const char* data, qsizetype size) {
        const qint64 now = monoNs();
        if (!c.headersDone) {
            c.partial.append(data, size);
            const qsizetype end = c.partial.indexOf("\r\n\r\n");
            if (end < 0)
                return;
            c.headersDone = true;
            subscribed.fetch_add(1);
            const QByteArray rest = c.partial.mid(end + 4);
            c.partial.clear();
            if (!rest.isEmpty())
                onRead(c, rest.constData(), rest.size());
            return;
        }
        const char* pos = data;
        const char* const stop = data + size;
        if (!c.partial.isEmpty()) {
            const char* nl = static_cast<const char*>(memchr(pos, '\n', size_t(stop - pos)));
            if (!nl) {
                c.partial.append(pos, stop - pos);
                return;
            }
            c.partial.append(pos, nl - pos);
            onLine(c, c.partial.constData(), c.partial.size(), now);
            c.partial.clear();
            pos = nl + 1;
        }
        while (pos < stop) {
            const char* nl = static_cast<const char*>(memchr(pos, '\n', size_t(stop - pos)));
            if (!nl) {
                c.partial.append(pos, stop - pos);
                break;
            }
            onLine(c, pos, nl - pos, now);
            pos = nl + 1;
        }
    }
    void onLine(Conn& c, const char* line, qsizetype len, qint64 now) {
        if (len == 0)
            return;
        if (len > 5 && memcmp(line, "data:", 5) == 0) {
            if (c.skipData) {
                // A ready or gap message: its id is a position, not an event.
                c.skipData = false;
                c.pendingId = 0;
                return;
            }
            if (c.pendingId)
                onEventId(c, std::exchange(c.pendingId, 0), now);
            // Counted on data lines so nchan (whose ids are not ours) counts alike.
            ++c.received;
            ++delivered;
            if (firstNs == 0)
                firstNs = now;
            lastNs = now;
            // With ids checked a client is complete at the last id, wherever it began.
            if (m_checkIds ? c.lastId == m_expected : c.received == m_expected)
                complete.fetch_add(1);
        } else if (len > 4 && memcmp(line, "id: ", 4) == 0) {
            if (!m_checkIds)
                return;
            qint64 id = 0;
            for (qsizetype i = 4; i < len && line[i] >= '0' && line[i] <= '9'; ++i)
                id = id * 10 + (line[i] - '0');
            c.pendingId = id;
        } else if (len >= 12 && memcmp(line, "event: ready", 12) == 0) {
            ready.fetch_add(1);
            c.skipData = true;
        } else if (len >= 10 && memcmp(line, "event: gap", 10) == 0) {
            c.skipData = true;
        }
    }
    void onEventId(Conn& c, qint64 id, qint64 now) {
        if (id <= 0 || id > m_expected)
            return;
        if (id != c.lastId + 1)
            ++c.outOfOrder;
        c.lastId = id;
        const qint64 committed = m_commitNs ? m_commitNs[id] : 0;
        if (committed > 0) {
            histogram.add(now - committed);
            if (size_t(id) >= worstBySeq.size())
                worstBySeq.resize(size_t(m_expected) + 1, 0);
            worstBySeq[size_t(id)] = std::max(worstBySeq[size_t(id)], now - committed);
        }
    }
    qint64 outOfOrder() const {
        qint64 n = 0;
        for (const Conn& c : m_conns)
            n += c.outOfOrder;
        return n;
    }

    Histogram histogram;
    std::atomic<int> ready{0};
    std::atomic<int> subscribed{0};
    std::atomic<int> complete{0};
    qint64 delivered = 0;
    qint64 firstNs = 0;
    qint64 lastNs = 0;

private:
    int m_count;
    quint16 m_port;
    QList<QByteArray> m_requests;
    QList<qint64> m_lastIds;
    const qint64* m_commitNs;
    qint64 m_expected;
    bool m_checkIds;
    std::vector<Conn> m_conns;
};

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
    std::vector<ClientGroup*> groups;
    int firstClient = 0;
    for (int t = 0; t < threads; ++t) {
        const int n = clients / threads + (t < clients % threads ? 1 : 0);
        auto* g = new ClientGroup(
            n, quint16(url.port()), requests.size() == 1 ? requests : requests.mid(firstClient, n),
            lastIds.mid(firstClient, lastIds.isEmpty() ? 0 : n), commitNs, expected, checkIds);
        firstClient += n;
        groups.push_back(g);
        pool.emplace_back([g, &stop] { g->run(stop); });
    }
    auto sum = [&groups](auto f) {
        qint64 s = 0;
        for (ClientGroup* g : groups)
            s += f(g);
        return s;
    };
    QElapsedTimer wait;
    wait.start();
    // Tidewatch says `ready`; nchan only sends its response headers, then a moment for
    // the subscription to settle.
    const bool tidewatch = !args.contains(QStringLiteral("--no-ready"));
    auto connected = [&] {
        return tidewatch ? sum([](ClientGroup* g) { return qint64(g->ready.load()); })
                         : sum([](ClientGroup* g) { return qint64(g->subscribed.load()); });
    };
    while (wait.elapsed() < qint64(timeoutS) * 1000 && connected() < clients)
        QThread::msleep(20);
    if (!tidewatch)
        QThread::msleep(500);
    std::printf("connected %lld\n", static_cast<long long>(connected()));
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
    while (deadline.elapsed() < timeoutS * 1000 &&
           sum([](ClientGroup* g) { return qint64(g->complete.load()); }) < clients)
        QThread::msleep(20);
    stop.store(true);
    for (auto& t : pool)
        t.join();
    Histogram h;
    qint64 first = 0, last = 0, delivered = 0, outOfOrder = 0;
    for (ClientGroup* g : groups) {
        h.merge(g->histogram);
        delivered += g->delivered;
        outOfOrder += g->outOfOrder();
        if (g->firstNs && (first == 0 || g->firstNs < first))
            first = g->firstNs;
        last = std::max(last, g->lastNs);
    }
    const qint64 complete = sum([](ClientGroup* g) { return qint64(g->complete.load()); });
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
            for (ClientGroup* g : groups)
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
    const int clients =
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

    // Commit times by seq, shared with the client process.
    const QString shmPath = dir.filePath(QStringLiteral("commit-times"));
    QFile shm(shmPath);
    if (!shm.open(QIODevice::ReadWrite) || !shm.resize(qint64(sizeof(qint64)) * (total + 2)))
        return 1;
    auto* commitNs = reinterpret_cast<qint64*>(shm.map(0, shm.size()));
    QObject::connect(
        &engine, &Engine::committed, &engine,
        [commitNs, total](const CommittedBatch& batch) {
            const qint64 now = monoNs();
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
    std::printf("server: %d clients connected; RSS idle %lld KiB, with clients %lld KiB\n", clients,
                static_cast<long long>(rssIdle), static_cast<long long>(rssConnected));
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

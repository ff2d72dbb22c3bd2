// Throughput and commit → client latency of the PostgreSQL source, next to the floor.
//   bench_postgres [writers=4] [rate=10000] [seconds=10]
// Starts a throwaway cluster (PgCluster), an Engine with a PostgresSource watching one
// table, an SSE server with one client on a subscription of that table, and
// `pg_recvlogical` reading a pgoutput slot of the same publication (the floor: it
// decodes nothing and writes the raw messages to its stdout). `writers` connections
// insert single rows (one transaction each) at `rate` rows/s in total, through a
// prepared statement in libpq's pipeline mode: every row due when a writer wakes goes
// in one round trip, each followed by its own sync, so each is its own transaction
// (the writers' backends and round trips, not the readers, used to bound the rate on
// two cores). Each row carries the writer's clock just before it is sent
// ("t=<µs since the epoch>;"). Both readers timestamp a row when its bytes arrive (the
// SSE event line, the raw pgoutput message), so both latencies are commit → reader, on
// the same machine's clock.
// Reports rows/s written, events/s committed, and p50/p99/max of: commit → journal
// (the engine's committed signal), commit → SSE client, commit → pg_recvlogical.
#include "PgCluster.h"

#include "engine/Engine.h"
#include "engine/Subscription.h"
#include "http/SseServer.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QEventLoop>
#include <QFile>
#include <QTemporaryDir>
#include <QTimer>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <libpq-fe.h>

using namespace tw;

namespace {

qint64 nowUs() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Finds every "t=<digits>;" in a byte stream that arrives in pieces and records
// now - t for each; a marker cut between two pieces is completed by the next.
class MarkerScanner {
public:
    void feed(const char* data, size_t size, qint64 now) {
        m_buffer.append(data, qsizetype(size));
        qsizetype from = 0;
        for (;;) {
            const qsizetype at = m_buffer.indexOf("t=", from);
            if (at < 0) {
                from = std::max<qsizetype>(from, m_buffer.size() - 1);
                break;
            }
            qsizetype end = at + 2;
            while (end < m_buffer.size() && m_buffer[end] >= '0' && m_buffer[end] <= '9')
                ++end;
            if (end == m_buffer.size()) {
                from = at; // the rest of this marker comes with the next piece
                break;
            }
            if (m_buffer[end] == ';' && end > at + 2) {
                const qint64 t = m_buffer.mid(at + 2, end - at - 2).toLongLong();
                std::lock_guard lock(m_mutex);
                m_latenciesUs.push_back(now - t);
            }
            from = end;
        }
        m_buffer.remove(0, from);
    }
    std::vector<qint64> latencies() const {
        std::lock_guard lock(m_mutex);
        return m_latenciesUs;
    }
    size_t count() const {
        std::lock_guard lock(m_mutex);
        return m_latenciesUs.size();
    }

private:
    QByteArray m_buffer;
    mutable std::mutex m_mutex;
    std::vector<qint64> m_latenciesUs;
};

void printLatency(const char* what, std::vector<qint64> us) {
    std::sort(us.begin(), us.end());
    const auto at = [&](double q) {
        return us.empty() ? -1.0 : us[std::min(us.size() - 1, size_t(q * double(us.size())))] / 1000.0;
    };
    std::printf("%-28s %8zu rows  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms\n", what, us.size(), at(0.5),
                at(0.99), us.empty() ? -1.0 : us.back() / 1000.0);
}

// Runs this thread's event loop until done() or timeoutMs, sleeping between events.
// (QCoreApplication::processEvents with a maxtime never waits: a loop around it spun a
// whole core of the two next to the writers and the readers it measures.)
void runUntil(const std::function<bool()>& done, qint64 timeoutMs) {
    if (done())
        return;
    const qint64 deadline = QDateTime::currentMSecsSinceEpoch() + timeoutMs;
    QEventLoop loop;
    QTimer check;
    QObject::connect(&check, &QTimer::timeout, &loop, [&] {
        if (done() || QDateTime::currentMSecsSinceEpoch() >= deadline)
            loop.quit();
    });
    check.start(10);
    loop.exec();
}

// CPU time (user + system, ms) this process's threads named tidewatch-* have used so
// far: what Tidewatch costs, whatever else shares the cores.
double tidewatchCpuMs() {
    const long ticks = ::sysconf(_SC_CLK_TCK);
    double ms = 0;
    const QDir tasks(QStringLiteral("/proc/self/task"));
    for (const QString& tid : tasks.entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
        QFile comm(tasks.filePath(tid + QStringLiteral("/comm")));
        if (!comm.open(QIODevice::ReadOnly) || !comm.readAll().startsWith("tidewatch"))
            continue;
        QFile stat(tasks.filePath(tid + QStringLiteral("/stat")));
        if (!stat.open(QIODevice::ReadOnly))
            continue;
        // Fields 14 and 15 (utime, stime), counted after the ")" that ends the name.
        const QByteArray line = stat.readAll();
        const QList<QByteArray> fields = line.mid(line.lastIndexOf(')') + 2).split(' ');
        if (fields.size() > 12)
            ms += (fields[11].toDouble() + fields[12].toDouble()) * 1000.0 / double(ticks);
    }
    return ms;
}

// CPU time (ms) of the children waited for so far (pg_recvlogical, once pclose()d).
double childrenCpuMs() {
    rusage usage{};
    ::getrusage(RUSAGE_CHILDREN, &usage);
    const auto ms = [](const timeval& t) { return double(t.tv_sec) * 1000.0 + double(t.tv_usec) / 1000.0; };
    return ms(usage.ru_utime) + ms(usage.ru_stime);
}

// One writer: its rows at `perWriter` rows/s for `seconds`, through a prepared
// statement in pipeline mode. It wakes at most once a millisecond (a wake-up per row
// cost a context switch here and in its backend for each) and sends every row due by
// then (at most kMaxPipeline), each stamped as it is sent and followed by its own sync
// (so its own implicit transaction), then reads their results. Returns the rows that
// committed; failures go to stderr.
qint64 runWriter(const QByteArray& conninfo, int writer, double perWriter, int seconds,
                 std::chrono::steady_clock::time_point start, std::atomic<qint64>* written) {
    constexpr int kMaxPipeline = 64;
    PGconn* conn = PQconnectdb(conninfo.constData());
    PGresult* prepared =
        PQprepare(conn, "row", "INSERT INTO load(writer, n, note) VALUES ($1, $2, $3)", 3, nullptr);
    const bool ready = PQresultStatus(prepared) == PGRES_COMMAND_OK && PQenterPipelineMode(conn) == 1;
    PQclear(prepared);
    if (!ready) {
        std::fprintf(stderr, "writer %d: %s", writer, PQerrorMessage(conn));
        PQfinish(conn);
        return 0;
    }
    const auto dueOf = [&](qint64 i) {
        return start + std::chrono::microseconds(qint64(double(i) * 1e6 / perWriter));
    };
    const auto end = start + std::chrono::seconds(seconds);
    const QByteArray writerText = QByteArray::number(writer);
    qint64 committed = 0;
    auto lastWake = start - std::chrono::seconds(1);
    for (qint64 i = 0; dueOf(i) < end;) {
        std::this_thread::sleep_until(std::max(dueOf(i), lastWake + std::chrono::milliseconds(1)));
        lastWake = std::chrono::steady_clock::now();
        int sent = 0;
        while (sent < kMaxPipeline && dueOf(i) < end && (sent == 0 || dueOf(i) <= lastWake)) {
            const QByteArray n = QByteArray::number(i);
            const QByteArray note = "t=" + QByteArray::number(nowUs()) + ';';
            const char* values[3] = {writerText.constData(), n.constData(), note.constData()};
            if (PQsendQueryPrepared(conn, "row", 3, values, nullptr, nullptr, 0) != 1 ||
                PQpipelineSync(conn) != 1)
                break;
            ++sent;
            ++i;
        }
        if (sent == 0 || PQflush(conn) != 0) {
            std::fprintf(stderr, "writer %d: %s", writer, PQerrorMessage(conn));
            break;
        }
        // Each row: its command's result, a NULL, then its sync.
        for (int synced = 0; synced < sent;) {
            PGresult* result = PQgetResult(conn);
            if (!result)
                continue;
            const ExecStatusType status = PQresultStatus(result);
            if (status == PGRES_PIPELINE_SYNC)
                ++synced;
            else if (status == PGRES_COMMAND_OK)
                ++committed, written->fetch_add(1);
            else
                std::fprintf(stderr, "writer %d: %s", writer, PQresultErrorMessage(result));
            PQclear(result);
        }
    }
    PQfinish(conn);
    return committed;
}

} // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    const int writers = args.value(1, QStringLiteral("4")).toInt();
    const int rate = args.value(2, QStringLiteral("10000")).toInt();
    const int seconds = args.value(3, QStringLiteral("10")).toInt();

    testsupport::PgCluster cluster;
    const QString error = cluster.start();
    if (!error.isEmpty()) {
        std::fprintf(stderr, "cluster: %s\n", qPrintable(error));
        return 1;
    }
    cluster.exec(QStringLiteral("CREATE TABLE load(id bigserial PRIMARY KEY, writer int, n int, note text)"));

    QTemporaryDir dir;
    qputenv("TIDEWATCH_DATA_DIR", dir.filePath(QStringLiteral("data")).toLocal8Bit());
    Engine::Options options;
    options.journalPath = dir.filePath(QStringLiteral("journal.sqlite"));
    Engine engine(options);
    if (!engine.start() || !engine.addSource(QStringLiteral("pg"), cluster.uri())) {
        std::fprintf(stderr, "engine did not start\n");
        return 1;
    }
    Subscription sub;
    sub.id = QStringLiteral("load");
    sub.persistent = false;
    engine.addSubscription(sub);
    SseServer server(&engine);
    QString serverError;
    if (!server.start(SseServer::Options{}, &serverError)) {
        std::fprintf(stderr, "SSE server: %s\n", qPrintable(serverError));
        return 1;
    }

    std::vector<qint64> journalUs;
    journalUs.reserve(size_t(rate) * seconds + 16);
    qint64 firstMs = 0;
    qint64 lastMs = 0;
    bool ready = false;
    QObject::connect(
        &engine, &Engine::watchReady, &app, [&] { ready = true; }, Qt::QueuedConnection);
    MarkerScanner journalScanner;
    QObject::connect(
        &engine, &Engine::committed, &app,
        [&](const CommittedBatch& batch) {
            const qint64 now = nowUs();
            for (const ChangeEvent& e : batch.events) {
                const QByteArray json = e.toJson();
                journalScanner.feed(json.constData(), size_t(json.size()), now);
            }
            if (!firstMs)
                firstMs = now / 1000;
            lastMs = now / 1000;
        },
        Qt::QueuedConnection);
    engine.watch(QStringLiteral("pg"), Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.load")});
    runUntil([&] { return ready; }, 60000);
    const QString publication = engine.sourceStatuses().value(QStringLiteral("pg")).slotName;

    std::atomic<bool> stop{false};
    // The SSE client: one socket on its own thread, like a consumer process would be.
    MarkerScanner sseScanner;
    std::atomic<bool> sseReady{false};
    const quint16 port = server.port();
    std::thread sseClient([&] {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            std::fprintf(stderr, "SSE client: cannot connect\n");
            return;
        }
        const QByteArray request = "GET /v1/subscriptions/load/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   "Accept: text/event-stream\r\n\r\n";
        if (::send(fd, request.constData(), size_t(request.size()), 0) != request.size())
            return;
        char buffer[65536];
        while (!stop.load()) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0)
                continue;
            const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0)
                break;
            if (!sseReady.load() && std::strstr(std::string(buffer, size_t(n)).c_str(), "event: ready"))
                sseReady.store(true);
            sseScanner.feed(buffer, size_t(n), nowUs());
        }
        ::close(fd);
    });

    // The floor: pg_recvlogical on a slot of its own, same publication, to stdout.
    cluster.exec(QStringLiteral("SELECT pg_create_logical_replication_slot('bench_floor', 'pgoutput')"));
    const QByteArray floorCommand =
        (QStringLiteral("exec %1/pg_recvlogical -d '%2' --slot bench_floor --start "
                        "--no-loop -o proto_version=1 -o publication_names=%3 -f - -s 1")
             .arg(cluster.binDir(), cluster.conninfo(), publication))
            .toUtf8();
    MarkerScanner floorScanner;
    const double childrenBeforeMs = childrenCpuMs();
    FILE* floorPipe = ::popen(floorCommand.constData(), "r");
    std::thread floorReader([&] {
        if (!floorPipe)
            return;
        const int fd = ::fileno(floorPipe);
        char buffer[65536];
        while (!stop.load()) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0)
                continue;
            const ssize_t n = ::read(fd, buffer, sizeof buffer);
            if (n <= 0)
                break;
            floorScanner.feed(buffer, size_t(n), nowUs());
        }
    });
    // Both readers live before the load: the SSE stream said ready, and the floor's
    // slot is streaming (its walsender is active).
    runUntil(
        [&] {
            return sseReady.load() &&
                   cluster.value(QStringLiteral("SELECT active FROM pg_replication_slots WHERE slot_name = "
                                                "'bench_floor'")) == QLatin1String("t");
        },
        30000);

    const double tidewatchBeforeMs = tidewatchCpuMs();
    std::atomic<qint64> written{0};
    std::vector<std::thread> threads;
    const QByteArray conninfo = cluster.conninfo().toUtf8();
    const auto start = std::chrono::steady_clock::now();
    for (int w = 0; w < writers; ++w)
        threads.emplace_back(
            [&, w] { runWriter(conninfo, w, double(rate) / writers, seconds, start, &written); });
    // The committed signal is delivered on this thread: keep its event loop running
    // while the writers work, or every latency would include the whole load.
    std::atomic<bool> loadDone{false};
    std::thread joiner([&] {
        for (std::thread& t : threads)
            t.join();
        loadDone.store(true);
    });
    runUntil([&] { return loadDone.load(); }, qint64(seconds) * 1000 + 600000);
    joiner.join();
    const double loadSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const qint64 total = written.load();
    runUntil(
        [&] {
            return qint64(journalScanner.count()) >= total && qint64(sseScanner.count()) >= total &&
                   qint64(floorScanner.count()) >= total;
        },
        60000);
    const double tidewatchMs = tidewatchCpuMs() - tidewatchBeforeMs;
    stop.store(true);
    sseClient.join();
    floorReader.join();
    // pg_recvlogical streams until its connection ends (--no-loop: no reconnect).
    cluster.exec(QStringLiteral(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'bench_floor'"));
    if (floorPipe)
        ::pclose(floorPipe);
    const double floorMs = childrenCpuMs() - childrenBeforeMs;
    server.stop();
    engine.stop();

    std::printf("writers %d, offered %d rows/s for %d s: wrote %lld rows in %.1f s (%.0f/s)\n", writers, rate,
                seconds, static_cast<long long>(total), loadSeconds, total / loadSeconds);
    std::printf("journal committed %zu events, %.0f/s from first to last commit, in %lld commits\n",
                journalScanner.count(), journalScanner.count() / std::max(0.001, (lastMs - firstMs) / 1000.0),
                static_cast<long long>(engine.commits()));
    std::printf("CPU per row: Tidewatch's threads %.1f us, pg_recvlogical %.1f us\n",
                tidewatchMs * 1000.0 / double(std::max<qint64>(1, total)),
                floorMs * 1000.0 / double(std::max<qint64>(1, total)));
    printLatency("commit -> journal", journalScanner.latencies());
    printLatency("commit -> SSE client", sseScanner.latencies());
    printLatency("commit -> pg_recvlogical", floorScanner.latencies());
    return 0;
}

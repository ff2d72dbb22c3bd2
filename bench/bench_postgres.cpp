// Throughput and commit → journal latency of the PostgreSQL source.
//   bench_postgres [writers=4] [rate=10000] [seconds=10]
// Starts a throwaway cluster (PgCluster), an Engine with a PostgresSource watching one
// table, and `writers` connections that insert single rows (one transaction each) at
// `rate` rows/s in total. Reports the rows/s the journal committed and the latency
// from each transaction's commit (its commit timestamp, the same machine's clock) to
// the engine's committed signal: p50, p99, max.
#include "PgCluster.h"

#include "engine/Engine.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QTemporaryDir>
#include <QTimer>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <libpq-fe.h>

using namespace tw;

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
    Engine::Options options;
    options.journalPath = dir.filePath(QStringLiteral("journal.sqlite"));
    Engine engine(options);
    if (!engine.start() || !engine.addSource(QStringLiteral("pg"), cluster.uri())) {
        std::fprintf(stderr, "engine did not start\n");
        return 1;
    }
    std::vector<qint64> latencies;
    latencies.reserve(size_t(rate) * seconds + 16);
    qint64 firstMs = 0;
    qint64 lastMs = 0;
    bool ready = false;
    QObject::connect(
        &engine, &Engine::watchReady, &app, [&] { ready = true; }, Qt::QueuedConnection);
    QObject::connect(
        &engine, &Engine::committed, &app,
        [&](const CommittedBatch& batch) {
            const qint64 now = QDateTime::currentMSecsSinceEpoch();
            for (const ChangeEvent& e : batch.events)
                latencies.push_back(now - e.wallTimeMs());
            if (!firstMs)
                firstMs = now;
            lastMs = now;
        },
        Qt::QueuedConnection);
    engine.watch(QStringLiteral("pg"), Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.load")});
    while (!ready)
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 100);

    std::atomic<qint64> written{0};
    std::vector<std::thread> threads;
    const QByteArray conninfo = cluster.conninfo().toUtf8();
    const auto start = std::chrono::steady_clock::now();
    for (int w = 0; w < writers; ++w)
        threads.emplace_back([&, w] {
            PGconn* conn = PQconnectdb(conninfo.constData());
            const double perWriter = double(rate) / writers;
            for (qint64 i = 0;; ++i) {
                const auto due = start + std::chrono::microseconds(qint64(double(i) * 1e6 / perWriter));
                if (due - start >= std::chrono::seconds(seconds))
                    break;
                std::this_thread::sleep_until(due);
                const QByteArray sql = "INSERT INTO load(writer, n, note) VALUES (" + QByteArray::number(w) +
                                       "," + QByteArray::number(i) + ",'order note " + QByteArray::number(i) +
                                       "')";
                PQclear(PQexec(conn, sql.constData()));
                written.fetch_add(1);
            }
            PQfinish(conn);
        });
    // The committed signal is delivered on this thread: keep its event loop running
    // while the writers work, or every latency would include the whole load.
    std::atomic<bool> loadDone{false};
    std::thread joiner([&] {
        for (std::thread& t : threads)
            t.join();
        loadDone.store(true);
    });
    while (!loadDone.load())
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 20);
    joiner.join();
    const double loadSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const qint64 total = written.load();
    const qint64 deadline = QDateTime::currentMSecsSinceEpoch() + 60000;
    while (qint64(latencies.size()) < total && QDateTime::currentMSecsSinceEpoch() < deadline)
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 100);
    engine.stop();

    std::sort(latencies.begin(), latencies.end());
    const auto at = [&](double q) {
        return latencies.empty() ? -1
                                 : latencies[std::min(latencies.size() - 1, size_t(q * latencies.size()))];
    };
    std::printf("writers %d, offered %d rows/s for %d s: wrote %lld rows in %.1f s (%.0f/s)\n", writers, rate,
                seconds, static_cast<long long>(total), loadSeconds, total / loadSeconds);
    std::printf("journal committed %zu events, %.0f/s from first to last commit\n", latencies.size(),
                latencies.size() / std::max(0.001, (lastMs - firstMs) / 1000.0));
    std::printf("commit -> journal latency ms: p50 %lld  p99 %lld  max %lld\n",
                static_cast<long long>(at(0.5)), static_cast<long long>(at(0.99)),
                static_cast<long long>(latencies.empty() ? -1 : latencies.back()));
    return 0;
}

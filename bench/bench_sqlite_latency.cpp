// Latency from a commit by another connection to the line on the headless output.
//   bench_sqlite_latency [rows=100000] [rate=1000] [seconds=20] [--capture]
// Starts the real `tidewatch --headless` on a table of `rows` rows, updates random
// rows at `rate` commits/s from this process (each commit stamps the row with a
// counter), reads the NDJSON from the child's stdout and reports p50/p99/max latency.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRandomGenerator>
#include <QTemporaryDir>
#include <QThread>
#include <thread>
#include <vector>

#include <sqlite3.h>

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    const bool capture = args.contains(QStringLiteral("--capture"));
    QStringList numbers = args.mid(1);
    numbers.removeAll(QStringLiteral("--capture"));
    const int rows = numbers.value(0, QStringLiteral("100000")).toInt();
    const int rate = numbers.value(1, QStringLiteral("1000")).toInt();
    const int seconds = numbers.value(2, QStringLiteral("20")).toInt();

    QTemporaryDir dir;
    const QByteArray path = dir.filePath(QStringLiteral("bench.sqlite")).toUtf8();
    sqlite3* db = nullptr;
    sqlite3_open(path.constData(), &db);
    sqlite3_exec(
        db,
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        "CREATE TABLE t(id INTEGER PRIMARY KEY, stamp INTEGER, name TEXT, amount REAL);"
        "BEGIN;"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
        "INSERT INTO t(id, stamp, name, amount) SELECT i, 0, 'customer ' || i, i * 1.5 FROM n LIMIT " +
            QByteArray::number(rows) + "; COMMIT;",
        nullptr, nullptr, nullptr);
    // Keep the benchmark's own timestamps; the child process has its own clock.
    std::vector<Clock::time_point> committedAt(size_t(rate) * seconds + 10);

    QProcess child;
    QStringList childArgs{QStringLiteral("--headless"),
                          QStringLiteral("--source"),
                          QStringLiteral("sqlite:") + QString::fromUtf8(path),
                          QStringLiteral("--watch"),
                          QStringLiteral("t"),
                          QStringLiteral("--journal"),
                          dir.filePath(QStringLiteral("j.sqlite"))};
    if (capture)
        childArgs << QStringLiteral("--capture");
    qputenv("TIDEWATCH_DATA_DIR", dir.filePath(QStringLiteral("data")).toLocal8Bit());
    child.start(QStringLiteral(TIDEWATCH_BINARY), childArgs);
    child.waitForStarted();
    QByteArray err;
    while (!err.contains("watching") && child.waitForReadyRead(10000))
        err += child.readAllStandardError();
    QThread::msleep(capture ? 500 : 2000); // baseline snapshot of the table

    std::atomic<int> written{0}; // stamps whose commit time is in committedAt
    QThread* writer = QThread::create([&] {
        sqlite3* w = nullptr;
        sqlite3_open(path.constData(), &w);
        sqlite3_busy_timeout(w, 5000);
        sqlite3_stmt* s = nullptr;
        sqlite3_prepare_v2(w, "UPDATE t SET stamp = ?1 WHERE id = ?2", -1, &s, nullptr);
        const auto start = Clock::now();
        const int total = rate * seconds;
        for (int i = 1; i <= total; ++i) {
            std::this_thread::sleep_until(start + std::chrono::microseconds(qint64(i) * 1000000 / rate));
            sqlite3_bind_int(s, 1, i);
            sqlite3_bind_int(s, 2, 1 + QRandomGenerator::global()->bounded(rows));
            sqlite3_step(s);
            sqlite3_reset(s);
            committedAt[size_t(i)] = Clock::now();
            written.store(i);
        }
        sqlite3_finalize(s);
        sqlite3_close(w);
    });
    writer->start();

    std::vector<double> latencies;
    QByteArray buffer;
    QElapsedTimer wall;
    wall.start();
    const int expected = rate * seconds;
    while (int(latencies.size()) < expected && wall.elapsed() < (seconds + 30) * 1000) {
        if (!child.waitForReadyRead(1000))
            continue;
        const auto now = Clock::now();
        buffer += child.readAllStandardOutput();
        qsizetype nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
            const QJsonObject o = QJsonDocument::fromJson(buffer.left(nl)).object();
            buffer.remove(0, nl + 1);
            const int stamp =
                o.value(QLatin1String("fullDocument")).toObject().value(QLatin1String("stamp")).toInt();
            if (stamp <= 0 || stamp > expected)
                continue;
            // The change can reach us before the writer thread has noted its commit time.
            while (written.load() < stamp)
                std::this_thread::yield();
            latencies.push_back(std::max(
                0.0, std::chrono::duration<double, std::milli>(now - committedAt[size_t(stamp)]).count()));
        }
    }
    writer->wait();
    delete writer;
    child.terminate();
    child.waitForFinished(10000);
    sqlite3_close(db);

    std::sort(latencies.begin(), latencies.end());
    auto pct = [&](double p) {
        return latencies.empty() ? 0.0 : latencies[size_t(p * double(latencies.size() - 1))];
    };
    std::printf(
        "sqlite source%s: %d rows, %d commits/s for %d s; %zu of %d changes seen on the headless output\n",
        capture ? " (capture mode)" : "", rows, rate, seconds, latencies.size(), expected);
    std::printf("  commit -> headless stdout latency: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", pct(0.5),
                pct(0.99), latencies.empty() ? 0.0 : latencies.back());
    return 0;
}

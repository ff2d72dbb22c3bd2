// The Live Feed under load: events arrive from another thread in engine-sized
// batches at a fixed rate, go through ChangeFeedModel (≤ 10 flushes/s, bounded ring)
// into a visible FeedView. Prints the GUI-thread stall per flush (the flush itself,
// and the longest event-loop gap around it, which includes layout and paint) as
// p50/p99/max, and RSS over time so memory can be seen to level off at the cap.
//
//   bench_feed [--seconds 60] [--rate 5000] [--cap 250000]
#include "models/ChangeFeedModel.h"
#include "widgets/FeedView.h"

#include <QApplication>
#include <QDateTime>
#include <QElapsedTimer>
#include <QFile>
#include <QThread>
#include <QTimer>
#include <QTreeView>

#include <algorithm>
#include <atomic>
#include <cstdio>

using namespace tw;
using namespace tw::ui;

namespace {

double rssMiB() {
    QFile status(QStringLiteral("/proc/self/status"));
    if (!status.open(QIODevice::ReadOnly))
        return 0;
    for (const QByteArray& line : status.readAll().split('\n'))
        if (line.startsWith("VmRSS:"))
            return line.mid(6).trimmed().split(' ').value(0).toDouble() / 1024.0;
    return 0;
}

// An order update like the demo's: a 7-field document and two updated fields.
ChangeEvent makeEvent(qint64 seq) {
    static const char* const statuses[] = {"pending", "paid", "shipped", "delivered"};
    const qint64 id = seq % 5000;
    ChangeEvent e;
    e.setSourceId(QStringLiteral("bench"));
    e.setNs(Namespace{QStringLiteral("shop"), QStringLiteral("orders")});
    e.setOperation(seq % 5 == 0 ? Operation::Insert : Operation::Update);
    BsonBuilder key;
    bson_append_int64(key.get(), "_id", -1, id);
    e.setDocumentKey(key.take());
    const char* status = statuses[seq % 4];
    BsonBuilder doc;
    bson_append_int64(doc.get(), "_id", -1, id);
    bson_append_int64(doc.get(), "customer_id", -1, seq % 977);
    bson_append_utf8(doc.get(), "status", -1, status, -1);
    bson_append_double(doc.get(), "total", -1, double(seq % 10000) / 7.0);
    bson_append_int32(doc.get(), "items", -1, int(seq % 9) + 1);
    bson_append_utf8(doc.get(), "currency", -1, "EUR", -1);
    bson_append_date_time(doc.get(), "updated_at", -1, 1700000000000 + seq);
    e.setFullDocument(doc.take());
    if (e.operation() == Operation::Update) {
        BsonBuilder updated;
        bson_append_utf8(updated.get(), "status", -1, status, -1);
        bson_append_date_time(updated.get(), "updated_at", -1, 1700000000000 + seq);
        e.setUpdateDescription(ChangeEvent::makeUpdateDescription(updated.take(), {}));
    }
    e.setWallTimeMs(QDateTime::currentMSecsSinceEpoch());
    e.finalize(seq); // renders the document and JSON once, as the engine does at commit
    return e;
}

// Emits batches every 20 ms (the sources' batch window) from its own thread.
class Producer : public QThread {
    Q_OBJECT
public:
    Producer(double rate, int seconds)
        : m_rate(rate)
        , m_seconds(seconds) {}
    std::atomic<bool> stop{false};
    std::atomic<qint64> produced{0};

Q_SIGNALS:
    void batchReady(const tw::ChangeEventList& events);

protected:
    void run() override {
        QElapsedTimer clock;
        clock.start();
        qint64 seq = 0;
        while (!stop && clock.elapsed() < qint64(m_seconds) * 1000) {
            const qint64 due = qint64(m_rate * double(clock.elapsed()) / 1000.0);
            ChangeEventList batch;
            while (seq < due)
                batch.append(makeEvent(++seq));
            if (!batch.isEmpty()) {
                produced += batch.size();
                Q_EMIT batchReady(batch);
            }
            QThread::msleep(20);
        }
    }

private:
    double m_rate;
    int m_seconds;
};

double percentile(QList<double> values, double p) {
    if (values.isEmpty())
        return 0;
    std::sort(values.begin(), values.end());
    return values.at(std::min<qsizetype>(values.size() - 1, qsizetype(p * double(values.size() - 1) + 0.5)));
}

} // namespace

int main(int argc, char** argv) {
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    QApplication app(argc, argv);
    int seconds = 60;
    double rate = 5000;
    int cap = 250000;
    const QStringList args = app.arguments();
    for (int i = 1; i + 1 < args.size(); ++i) {
        if (args[i] == QLatin1String("--seconds"))
            seconds = args[++i].toInt();
        else if (args[i] == QLatin1String("--rate"))
            rate = args[++i].toDouble();
        else if (args[i] == QLatin1String("--cap"))
            cap = args[++i].toInt();
    }
    qRegisterMetaType<ChangeEventList>("tw::ChangeEventList");
    std::printf("bench_feed: %.0f events/s for %d s, ring cap %d rows, view 1200x800 (%s)\n", rate, seconds,
                cap, qPrintable(QGuiApplication::platformName()));

    ChangeFeedModel model;
    model.setCapacity(cap);
    FeedView view(&model);
    view.resize(1200, 800);
    view.show();

    // Event-loop heartbeat: the longest gap between ticks around each flush is what a
    // person would feel as a stall (flush + the view's layout and paint).
    QElapsedTimer loopClock;
    loopClock.start();
    qint64 lastBeat = 0;
    qint64 worstGapNs = 0;
    QTimer heartbeat;
    heartbeat.setTimerType(Qt::PreciseTimer);
    heartbeat.setInterval(1);
    QObject::connect(&heartbeat, &QTimer::timeout, [&] {
        const qint64 now = loopClock.nsecsElapsed();
        worstGapNs = std::max(worstGapNs, now - lastBeat);
        lastBeat = now;
    });
    heartbeat.start();

    QList<double> flushMs;
    QList<double> gapMs;
    QObject::connect(&model, &ChangeFeedModel::flushed, [&](int, int) {
        flushMs.append(double(model.lastFlushNs()) / 1e6);
        // The worst gap of the interval that ended with this flush: it holds the
        // previous flush's layout and paint, which run in later event-loop passes.
        gapMs.append(double(worstGapNs) / 1e6);
        worstGapNs = 0;
    });

    Producer producer(rate, seconds);
    QObject::connect(&producer, &Producer::batchReady, &model, &ChangeFeedModel::append,
                     Qt::QueuedConnection);

    QElapsedTimer wall;
    wall.start();
    QTimer report;
    report.setInterval(seconds >= 20 ? 5000 : 1000);
    QObject::connect(&report, &QTimer::timeout, [&] {
        std::printf("  t=%3llds rows=%7d evicted=%9lld received=%9lld rss=%7.1f MiB\n",
                    (long long)(wall.elapsed() / 1000), model.rowCount(), (long long)model.evictedCount(),
                    (long long)model.receivedCount(), rssMiB());
        std::fflush(stdout);
    });
    report.start();
    QObject::connect(&producer, &QThread::finished, &app,
                     [&] { QTimer::singleShot(300, &app, &QApplication::quit); });
    producer.start();
    app.exec();
    producer.stop = true;
    producer.wait();

    const double achieved = double(model.receivedCount()) / (double(wall.elapsed()) / 1000.0);
    std::printf("received %lld events (%.0f/s), %lld flushes (%.1f/s), %d rows kept, %lld evicted\n",
                (long long)model.receivedCount(), achieved, (long long)model.flushCount(),
                double(model.flushCount()) / (double(wall.elapsed()) / 1000.0), model.rowCount(),
                (long long)model.evictedCount());
    std::printf("flush (model + view signals):  p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
                percentile(flushMs, 0.5), percentile(flushMs, 0.99), percentile(flushMs, 1.0));
    std::printf(
        "GUI stall per flush interval (flush + repaint + loop): p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
        percentile(gapMs, 0.5), percentile(gapMs, 0.99), percentile(gapMs, 1.0));
    std::printf("final RSS %.1f MiB\n", rssMiB());
    return 0;
}

#include "bench_feed.moc"

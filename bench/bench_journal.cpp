// Journal append throughput with group commit, 1 KiB order documents.
//   bench_journal [events=500000] [batch=1000] [journal|engine]
// Prints events/s for Journal::append with documents stored as BSON and compressed, and
// end to end through Engine::submit, plus bytes stored per event.
#include "engine/Engine.h"
#include "journal/Journal.h"
#include "TestUtil.h"

#include <cstdio>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QTemporaryDir>
#include <unistd.h>

using namespace tw;

namespace {

// The first orders, before the journal has a dictionary (stored as BSON and sampled).
constexpr int kWarmUp = 2400;

QList<ChangeEvent> orders(int first, int count) {
    QList<ChangeEvent> events;
    events.reserve(count);
    for (int i = first; i < first + count; ++i)
        events.append(test::makeOrderEvent(i));
    return events;
}

bool appendAll(Journal& journal, const QList<ChangeEvent>& events, int batchSize) {
    for (qsizetype i = 0; i < events.size(); i += batchSize) {
        ChangeBatch b;
        b.sourceId = QStringLiteral("bench");
        b.events = events.mid(i, batchSize);
        b.checkpoint.token = QByteArray::number(i);
        QList<ChangeBatch> list{b};
        if (!journal.append(list))
            return false;
    }
    return true;
}

double fileMiB(const QString& path) {
    return QFileInfo(path).size() / 1048576.0;
}

} // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    const int total = argc > 1 ? atoi(argv[1]) : 500000;
    const int batchSize = argc > 2 ? atoi(argv[2]) : 1000;
    // "journal" or "engine" runs only those phases (for profiling one of them).
    const QByteArray only = argc > 3 ? QByteArray(argv[3]) : QByteArray();
    QTemporaryDir dir;
    {
        const ChangeEvent sample = test::makeOrderEvent(0);
        std::printf("journal append, %d order events (fullDocument %d bytes, event %d bytes of BSON), "
                    "batches of %d\n",
                    total, int(sample.fullDocument().size()), int(sample.document().size()), batchSize);
    }

    // The journal's own figures. In the pipeline each event's body is rendered (and
    // compressed) on its source's thread as the batch leaves (ChangeEvent::prepare),
    // so the journal thread only splices in the seq, builds the stored BSON and
    // writes. First with documents stored as BSON, then compressed, then compressed
    // with the rendering and compression included.
    enum Phase { Plain, Compressed, CompressedIncluded };
    for (const Phase phase : {Plain, Compressed, CompressedIncluded}) {
        if (only == "engine")
            break;
        const QString path = dir.filePath(QStringLiteral("journal-%1.sqlite").arg(int(phase)));
        Journal journal;
        if (!journal.open(path))
            return 1;
        const BodyCodec* codec = phase == Plain ? nullptr : journal.codec().get();
        if (phase != Plain) {
            // Train the dictionary on the first orders, as a new journal does.
            QList<ChangeEvent> warmUp = orders(0, kWarmUp);
            for (const ChangeEvent& e : warmUp)
                e.prepare(codec);
            if (!appendAll(journal, warmUp, batchSize) || !journal.finishTraining())
                return 1;
        }
        QList<ChangeEvent> events = orders(kWarmUp, total);
        double prepareSeconds = 0;
        if (phase != CompressedIncluded) {
            QElapsedTimer t;
            t.start();
            for (const ChangeEvent& e : events)
                e.prepare(codec);
            prepareSeconds = t.nsecsElapsed() / 1e9;
        }
        const double before = fileMiB(path);
        ::sync(); // each phase starts without the previous one's dirty pages in write-back
        QElapsedTimer t;
        t.start();
        if (phase == CompressedIncluded)
            for (const ChangeEvent& e : events)
                e.prepare(codec);
        if (!appendAll(journal, events, batchSize))
            return 1;
        const double s = t.nsecsElapsed() / 1e9;
        journal.checkpoint();
        const double grown = fileMiB(path) - before;
        const char* what = phase == Plain ? "stored as BSON, rendered beforehand (as sources do)"
                           : phase == Compressed
                               ? "compressed, rendered and compressed beforehand (as sources do)"
                               : "compressed, rendering and compression included";
        std::printf("  Journal::append, %s:  %.0f events/s  (%.2f s; %.0f bytes of journal per event", what,
                    total / s, s, grown * 1048576.0 / total);
        if (prepareSeconds > 0)
            std::printf("; the sources' rendering%s took %.2f us per event", codec ? " and compression" : "",
                        prepareSeconds / total * 1e6);
        std::printf(")\n");
    }
    if (only == "journal")
        return 0;
    {
        Engine::Options options;
        options.journalPath = dir.filePath(QStringLiteral("engine.sqlite"));
        Engine engine(options);
        if (!engine.start())
            return 1;
        Subscription sub;
        sub.filter = Filter::compile(R"({"operationType": "update"})");
        sub.persistent = false;
        engine.addSubscription(sub);
        // Train the dictionary first, as a journal in use has.
        const QList<ChangeEvent> warmUp = orders(0, kWarmUp);
        for (qsizetype i = 0; i < warmUp.size(); i += batchSize) {
            ChangeBatch b;
            b.sourceId = QStringLiteral("bench");
            b.events = warmUp.mid(i, batchSize);
            engine.submit(b);
        }
        int nudge = kWarmUp;
        while (engine.codec()->dictionaryId() == 0) {
            // The dictionary is committed with the next append after training ends.
            QThread::msleep(20);
            ChangeBatch b;
            b.sourceId = QStringLiteral("bench");
            b.events = orders(nudge++, 1);
            engine.submit(b);
        }
        while (engine.lastCommittedSeq() < nudge)
            QThread::usleep(200);
        const qint64 base = engine.lastCommittedSeq();
        const QList<ChangeEvent> events = orders(nudge, total);
        ::sync();
        QElapsedTimer t;
        t.start();
        for (qsizetype i = 0; i < events.size(); i += batchSize) {
            ChangeBatch b;
            b.sourceId = QStringLiteral("bench");
            b.events = events.mid(i, batchSize);
            engine.submit(b);
        }
        while (engine.lastCommittedSeq() < base + total)
            QThread::usleep(200);
        const double s = t.nsecsElapsed() / 1e9;
        std::printf(
            "  Engine::submit → committed (rendering, compression, group commit, routing): %.0f events/s  "
            "(%lld commits)\n",
            total / s, static_cast<long long>(engine.commits()));
        engine.stop();
    }
    return 0;
}

// Journal append throughput with group commit, 1 KiB documents.
//   bench_journal [events=500000] [batch=1000] [journal|engine]
// Prints events/s for Journal::append alone and through Engine::submit (which adds
// routing and the queued hand-over), plus the journal size.
#include "engine/Engine.h"
#include "journal/Journal.h"

#include <cstdio>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <unistd.h>

using namespace tw;

static ChangeEvent event1k(int i) {
    ChangeEvent e;
    e.setSourceId(QStringLiteral("bench"));
    e.setNs(Namespace{QStringLiteral("shop"), QStringLiteral("orders")});
    e.setOperation(Operation::Update);
    BsonBuilder key;
    bson_append_int32(key.get(), "_id", 3, i);
    e.setDocumentKey(key.take());
    BsonBuilder doc;
    bson_append_int32(doc.get(), "_id", 3, i);
    bson_append_utf8(doc.get(), "status", -1, "paid", 4);
    bson_append_double(doc.get(), "total", -1, 42.5 + i);
    const QByteArray pad(960, 'x');
    bson_append_utf8(doc.get(), "notes", -1, pad.constData(), int(pad.size()));
    e.setFullDocument(doc.take());
    e.setWallTimeMs(1763800000000 + i);
    return e;
}

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    const int total = argc > 1 ? atoi(argv[1]) : 500000;
    const int batchSize = argc > 2 ? atoi(argv[2]) : 1000;
    // "journal" or "engine" runs only those phases (for profiling one of them).
    const QByteArray only = argc > 3 ? QByteArray(argv[3]) : QByteArray();
    QTemporaryDir dir;
    std::printf("journal append, %d events of %d bytes (fullDocument), batches of %d\n", total,
                int(event1k(0).fullDocument().size()), batchSize);

    // Prepare the events up front: the benchmark measures the journal, not the builder.
    QList<ChangeEvent> prepared;
    prepared.reserve(total);
    for (int i = 0; i < total; ++i)
        prepared.append(event1k(i));

    // The journal's own figure: in the pipeline each event's body is rendered on its
    // source's thread (ChangeEvent::prepare), so the journal thread only splices in the
    // seq, builds the stored BSON and writes. Then the same with rendering included.
    for (const bool rendered : {true, false}) {
        if (only == "engine")
            break;
        if (rendered) {
            for (const ChangeEvent& e : prepared)
                e.prepare();
        } else {
            prepared.clear();
            for (int i = 0; i < total; ++i)
                prepared.append(event1k(i));
        }
        Journal journal;
        if (!journal.open(
                dir.filePath(rendered ? QStringLiteral("direct.sqlite") : QStringLiteral("raw.sqlite"))))
            return 1;
        ::sync(); // each phase starts without the previous one's dirty pages in write-back
        QElapsedTimer t;
        t.start();
        for (int i = 0; i < total; i += batchSize) {
            ChangeBatch b;
            b.sourceId = QStringLiteral("bench");
            b.events = prepared.mid(i, batchSize);
            b.checkpoint.token = QByteArray::number(i);
            QList<ChangeBatch> list{b};
            if (!journal.append(list))
                return 1;
        }
        const double s = t.nsecsElapsed() / 1e9;
        std::printf(
            "  Journal::append, %s:  %.0f events/s  (%.2f s, %.1f MB/s of documents, journal %.0f MiB)\n",
            rendered ? "bodies rendered beforehand (as sources do)" : "rendering included", total / s, s,
            total * 1.0 / s / 1e6 * 1024, journal.sizeBytes() / 1048576.0);
    }
    if (only == "journal")
        return 0;
    // Fresh events: the first pass finalized these in place.
    prepared.clear();
    for (int i = 0; i < total; ++i)
        prepared.append(event1k(i));
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
        ::sync(); // each phase starts without the previous one's dirty pages in write-back
        QElapsedTimer t;
        t.start();
        for (int i = 0; i < total; i += batchSize) {
            ChangeBatch b;
            b.sourceId = QStringLiteral("bench");
            b.events = prepared.mid(i, batchSize);
            engine.submit(b);
        }
        while (engine.lastCommittedSeq() < total)
            QThread::usleep(200);
        const double s = t.nsecsElapsed() / 1e9;
        std::printf("  Engine::submit → committed (group commit + routing): %.0f events/s  (%lld commits)\n",
                    total / s, static_cast<long long>(engine.commits()));
        engine.stop();
    }
    return 0;
}

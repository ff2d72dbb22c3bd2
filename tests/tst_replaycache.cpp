#include "EngineFixture.h"
#include "SseTestClient.h"
#include "TestUtil.h"

#include "http/ReplayCache.h"
#include "http/SseServer.h"
#include "journal/Journal.h"

#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>

using namespace tw;
using namespace tw::test;

namespace {

const QByteArray kToken = "test-token-0123456789";

// The event frames of a raw stream body, as the bytes came off the socket (no retry,
// keep-alive, ready or gap): what a live and a replaying client must agree on.
QList<QByteArray> eventFrames(const QByteArray& received) {
    QList<QByteArray> frames;
    const qsizetype body = received.indexOf("\r\n\r\n");
    if (body < 0)
        return frames;
    qsizetype pos = body + 4;
    for (;;) {
        const qsizetype end = received.indexOf("\n\n", pos);
        if (end < 0)
            break;
        const QByteArray frame = received.mid(pos, end + 2 - pos);
        pos = end + 2;
        if (frame.startsWith("id: ") && !frame.contains("\nevent: ready\n") &&
            !frame.contains("\nevent: gap\n"))
            frames.append(frame);
    }
    return frames;
}

qsizetype readyCount(const RawHttpClient& client) {
    return client.received.count("\nevent: ready\n");
}

QList<qint64> seqsOf(const RawHttpClient& client) {
    QList<qint64> seqs;
    for (const SseMessage& m : client.messages())
        if (m.event != "ready" && m.event != "gap" && !m.id.isEmpty())
            seqs.append(m.seq());
    return seqs;
}

bool isExactly(const QList<qint64>& seqs, qint64 from, qint64 to) {
    if (seqs.size() != to - from + 1)
        return false;
    for (qsizetype i = 0; i < seqs.size(); ++i)
        if (seqs[i] != from + i)
            return false;
    return true;
}

} // namespace

// The replay cache behind SSE Last-Event-ID: replayed bytes are the live bytes, a herd of
// real HTTP clients from spread ids each gets exactly its range through shared blocks, the
// cache stays inside its bound, and retention still produces the gap it always did.
class TestReplayCache : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void replayedFramesAreByteIdenticalToLive_data();
    void replayedFramesAreByteIdenticalToLive();
    void herdFromSpreadIdsGetsExactlyItsRange_data();
    void herdFromSpreadIdsGetsExactlyItsRange();
    void cacheEvictsPastItsBoundAndReplayStaysExact();
    void clientBeforeThePruneMarkGetsItsGapThoughTheRangeIsCached();
    void changedSubscriptionIsNotServedItsOldFrames();
    void stalledReplayKeepsAtMostOneWriteInUserSpace();
    void stalledLiveClientGetsEveryEventInOrderOnceItReadsAgain();

private:
    void startServer(qint64 cacheBytes = qint64(64) << 20);
    void submit(int count, int padBytes = 16, const QString& coll = QStringLiteral("orders"));
    std::unique_ptr<RawHttpClient> openStream(const QByteArray& path, const QByteArray& lastEventId = {});

    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<EngineFixture> m_fx;
    std::unique_ptr<SseServer> m_server;
    int m_nextKey = 1;
};

void TestReplayCache::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    qputenv("TIDEWATCH_DATA_DIR", m_dir->filePath(QStringLiteral("data")).toLocal8Bit());
    m_fx = std::make_unique<EngineFixture>(m_dir->filePath(QStringLiteral("journal.sqlite")));
    QString error;
    QVERIFY2(m_fx->start(&error), qPrintable(error));
    Subscription sub;
    sub.id = QStringLiteral("orders");
    sub.namespaces = {
        SourceNamespace{QStringLiteral("t"), Namespace{QStringLiteral("main"), QStringLiteral("orders")}}};
    m_fx->engine->addSubscription(sub);
    Subscription shaped = sub;
    shaped.id = QStringLiteral("shaped");
    QVERIFY(shaped.setProjection(R"({"documentKey": 1, "fullDocument.n": 1})", nullptr));
    shaped.event = EventTemplate::compile(QStringLiteral("{ns.coll}.{operationType}"), nullptr);
    m_fx->engine->addSubscription(shaped);
    QTRY_VERIFY(m_fx->engine->subscription(QStringLiteral("shaped")).has_value());
    m_nextKey = 1;
}

void TestReplayCache::cleanup() {
    m_server.reset();
    m_fx.reset();
    m_dir.reset();
}

void TestReplayCache::startServer(qint64 cacheBytes) {
    m_server = std::make_unique<SseServer>(m_fx->engine.get());
    SseServer::Options o;
    o.token = QString::fromLatin1(kToken);
    o.replayCacheBytes = cacheBytes;
    QString error;
    QVERIFY2(m_server->start(o, &error), qPrintable(error));
}

void TestReplayCache::submit(int count, int padBytes, const QString& coll) {
    ChangeBatch batch;
    batch.sourceId = QStringLiteral("t");
    for (int i = 0; i < count; ++i)
        batch.events.append(makeEvent(QStringLiteral("t"), coll, m_nextKey++, padBytes));
    m_fx->engine->submit(batch);
}

std::unique_ptr<RawHttpClient> TestReplayCache::openStream(const QByteArray& path,
                                                           const QByteArray& lastEventId) {
    auto client = std::make_unique<RawHttpClient>(m_server->port());
    if (!client->connectToServer(10000))
        return {};
    client->get(path, kToken, lastEventId);
    return client;
}

void TestReplayCache::replayedFramesAreByteIdenticalToLive_data() {
    QTest::addColumn<QByteArray>("path");
    QTest::newRow("full") << QByteArray("/v1/subscriptions/orders/events");
    QTest::newRow("canonical") << QByteArray("/v1/subscriptions/orders/events?format=canonical");
    QTest::newRow("projected and named") << QByteArray("/v1/subscriptions/shaped/events");
    QTest::newRow("keys, by query") << QByteArray("/v1/subscriptions/orders/events?projection=keys&event=x");
}

void TestReplayCache::replayedFramesAreByteIdenticalToLive() {
    QFETCH(QByteArray, path);
    startServer();
    const auto live = openStream(path);
    QVERIFY(live);
    QTRY_COMPARE_WITH_TIMEOUT(readyCount(*live), 1, 10000);
    // Several blocks' worth, with events of another table the subscriptions do not see.
    for (int i = 0; i < 12; ++i) {
        submit(60, 40 + i * 7);
        submit(3, 16, QStringLiteral("customers"));
    }
    const qint64 head = 12 * 63;
    QTRY_COMPARE_WITH_TIMEOUT(m_fx->engine->lastCommittedSeq(), head, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(eventFrames(live->received).size(), 720, 20000);
    const QList<QByteArray> expected = eventFrames(live->received);

    // The first replay fills the cache, the second is served from it; both from 0 and from
    // an id inside a block.
    for (const QByteArray& from : {QByteArray("0"), QByteArray("0"), QByteArray("300")}) {
        const auto replay = openStream(path, from);
        QVERIFY(replay);
        QTRY_COMPARE_WITH_TIMEOUT(readyCount(*replay), 1, 20000);
        const QList<QByteArray> frames = eventFrames(replay->received);
        QList<QByteArray> wanted; // the live frames after `from`
        for (const QByteArray& frame : expected)
            if (frame.mid(4, frame.indexOf('\n') - 4).toLongLong() > from.toLongLong())
                wanted.append(frame);
        QVERIFY(!frames.isEmpty());
        QVERIFY(frames.first().startsWith("id: " + QByteArray::number(from.toLongLong() + 1) + "\n"));
        QCOMPARE(frames.size(), wanted.size());
        for (qsizetype i = 0; i < frames.size(); ++i)
            QCOMPARE(frames[i], wanted[i]);
    }
    const ReplayCache::Stats stats = m_server->replayCacheStats();
    QVERIFY2(stats.hits > 0 && stats.reads > 0,
             qPrintable(QStringLiteral("hits %1, reads %2").arg(stats.hits).arg(stats.reads)));
    // Blocks 0 to 2 hold seqs 1 to 756; each was read from the journal once.
    QCOMPARE(stats.reads, 3);
}

void TestReplayCache::herdFromSpreadIdsGetsExactlyItsRange_data() {
    QTest::addColumn<bool>("writing");
    QTest::newRow("still journal") << false;
    QTest::newRow("while a writer commits") << true;
}

void TestReplayCache::herdFromSpreadIdsGetsExactlyItsRange() {
    QFETCH(bool, writing);
    startServer();
    submit(1500);
    submit(1500);
    QTRY_COMPARE_WITH_TIMEOUT(m_fx->engine->lastCommittedSeq(), 3000, 20000);
    int written = 3000;
    QTimer writer;
    connect(&writer, &QTimer::timeout, this, [&] {
        if (written >= 4000)
            return writer.stop();
        submit(20);
        written += 20;
    });
    if (writing)
        writer.start(5);
    // 40 clients at once from ids spread over the journal, as after a gateway restart.
    constexpr int kClients = 40;
    std::vector<std::unique_ptr<RawHttpClient>> clients;
    QList<qint64> from;
    for (int i = 0; i < kClients; ++i) {
        from.append(qint64(i) * 3000 / kClients + (i % 3));
        clients.push_back(openStream("/v1/subscriptions/orders/events", QByteArray::number(from.last())));
        QVERIFY(clients.back());
    }
    for (const auto& c : clients)
        QTRY_COMPARE_WITH_TIMEOUT(readyCount(*c), 1, 60000);
    if (!writing) {
        // Every block of the journal was read once, whoever asked first; the others were
        // served from the cache. Blocks 0 to 11 hold seqs 1 to 3000.
        const ReplayCache::Stats stats = m_server->replayCacheStats();
        QCOMPARE(stats.reads, 12);
        QVERIFY(stats.hits >= kClients);
        QCOMPARE(stats.evictions, 0);
        submit(100);
        written = 3100;
    }
    QTRY_COMPARE_WITH_TIMEOUT(written >= 3100 && !writer.isActive(), true, 60000);
    QTRY_COMPARE_WITH_TIMEOUT(m_fx->engine->lastCommittedSeq(), qint64(written), 30000);
    const QByteArray last = "id: " + QByteArray::number(written) + "\n";
    for (int i = 0; i < kClients; ++i) {
        QTRY_VERIFY_WITH_TIMEOUT(clients[size_t(i)]->received.contains(last), 60000);
        const QList<qint64> seqs = seqsOf(*clients[size_t(i)]);
        QVERIFY2(isExactly(seqs, from[i] + 1, written),
                 qPrintable(QStringLiteral("client from %1 got %2 events, first %3, last %4")
                                .arg(from[i])
                                .arg(seqs.size())
                                .arg(seqs.isEmpty() ? -1 : seqs.first())
                                .arg(seqs.isEmpty() ? -1 : seqs.last())));
        QCOMPARE(readyCount(*clients[size_t(i)]), 1);
        QVERIFY(!clients[size_t(i)]->received.contains("event: gap"));
    }
}

void TestReplayCache::cacheEvictsPastItsBoundAndReplayStaysExact() {
    // About two blocks of these ~400-byte frames fit.
    constexpr qint64 kBound = 200 * 1024;
    startServer(kBound);
    for (int i = 0; i < 6; ++i)
        submit(500, 200);
    QTRY_COMPARE_WITH_TIMEOUT(m_fx->engine->lastCommittedSeq(), 3000, 20000);
    for (const QByteArray& from : {QByteArray("0"), QByteArray("0"), QByteArray("1234")}) {
        const auto client = openStream("/v1/subscriptions/orders/events", from);
        QVERIFY(client);
        QTRY_COMPARE_WITH_TIMEOUT(readyCount(*client), 1, 30000);
        QVERIFY(isExactly(seqsOf(*client), from.toLongLong() + 1, 3000));
        const ReplayCache::Stats stats = m_server->replayCacheStats();
        QVERIFY2(stats.bytes <= kBound, qPrintable(QString::number(stats.bytes)));
        QVERIFY(stats.blocks >= 1);
    }
    const ReplayCache::Stats stats = m_server->replayCacheStats();
    QVERIFY2(stats.evictions > 0, qPrintable(QString::number(stats.evictions)));
    // The second replay from 0 found the first one's blocks evicted and read them again.
    QVERIFY(stats.reads > 12);
}

void TestReplayCache::clientBeforeThePruneMarkGetsItsGapThoughTheRangeIsCached() {
    startServer();
    submit(50);
    QTRY_COMPARE(m_fx->engine->lastCommittedSeq(), 50);
    {
        const auto warm = openStream("/v1/subscriptions/orders/events", "0");
        QVERIFY(warm);
        QTRY_COMPARE_WITH_TIMEOUT(readyCount(*warm), 1, 10000);
        QVERIFY(isExactly(seqsOf(*warm), 1, 50));
    }
    QCOMPARE(m_server->replayCacheStats().blocks, 1);
    {
        // Retention removes everything committed so far (a tiny age limit, "now" later).
        Journal journal;
        QVERIFY(journal.open(m_fx->engine->journalPath()));
        RetentionPolicy policy;
        policy.maxAgeSeconds = 1;
        policy.maxBytes = 0;
        QVERIFY(journal.prune(policy, QDateTime::currentMSecsSinceEpoch() + 60000) > 0);
        QCOMPARE(journal.prunedThrough(), 50);
    }
    submit(10);
    QTRY_COMPARE(m_fx->engine->lastCommittedSeq(), 60);
    const auto client = openStream("/v1/subscriptions/orders/events", "10");
    QVERIFY(client);
    QTRY_COMPARE_WITH_TIMEOUT(readyCount(*client), 1, 10000);
    const QList<SseMessage> messages = client->messages();
    QCOMPARE(messages.first().event, QByteArray("gap"));
    QCOMPARE(messages.first().id, QByteArray("50"));
    QCOMPARE(parseJson(messages.first().data).value(QStringLiteral("firstAvailable")).toInteger(), 51);
    QVERIFY(isExactly(seqsOf(*client), 51, 60));
}

void TestReplayCache::changedSubscriptionIsNotServedItsOldFrames() {
    startServer();
    submit(40);
    QTRY_COMPARE(m_fx->engine->lastCommittedSeq(), 40);
    {
        const auto warm = openStream("/v1/subscriptions/orders/events", "0");
        QVERIFY(warm);
        QTRY_COMPARE_WITH_TIMEOUT(readyCount(*warm), 1, 10000);
        QVERIFY(isExactly(seqsOf(*warm), 1, 40));
    }
    // The same id, now filtered to one key: a replay must match with the new definition.
    Subscription sub = *m_fx->engine->subscription(QStringLiteral("orders"));
    QString error;
    sub.filter = Filter::compile(R"({"documentKey._id": 7})", &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    m_fx->engine->addSubscription(sub);
    QTRY_VERIFY(m_fx->engine->subscription(QStringLiteral("orders"))->filter.matches(m_fx->events.at(6)));
    const auto client = openStream("/v1/subscriptions/orders/events", "0");
    QVERIFY(client);
    QTRY_COMPARE_WITH_TIMEOUT(readyCount(*client), 1, 10000);
    QCOMPARE(seqsOf(*client), QList<qint64>{7});
}

void TestReplayCache::stalledReplayKeepsAtMostOneWriteInUserSpace() {
    startServer();
    // About 6 MB of ~300-byte frames: more than the kernel's buffers hold for a reader
    // that stopped, so the replay has to wait for it.
    for (int i = 0; i < 10; ++i)
        submit(2000);
    QTRY_COMPARE_WITH_TIMEOUT(m_fx->engine->lastCommittedSeq(), 20000, 30000);
    auto client = std::make_unique<RawHttpClient>(m_server->port());
    QVERIFY(client->connectToServer(10000));
    client->stopReading();
    client->get("/v1/subscriptions/orders/events", kToken, "0");
    auto pending = [this] {
        const QList<SseServer::ClientInfo> clients = m_server->clients();
        return clients.isEmpty() ? qint64(-1) : clients.first().pendingBytes;
    };
    // Stalled: the kernel refused part of a write, and the rest waits in the socket.
    QTRY_VERIFY_WITH_TIMEOUT(pending() > 0, 30000);
    QCOMPARE(readyCount(*client), 0);
    // A cached replay writes only while the kernel takes each write whole, so what waits
    // in user space is at most one block's frames (about 80 KB here), never the 256 KiB
    // high-water mark per client and more that a herd of 2 000 once held (470 MiB).
    for (int i = 0; i < 20; ++i) {
        QTest::qWait(10);
        QVERIFY2(pending() <= 128 * 1024, qPrintable(QString::number(pending())));
    }
    client->resumeReading();
    QTRY_COMPARE_WITH_TIMEOUT(readyCount(*client), 1, 60000);
    QVERIFY(isExactly(seqsOf(*client), 1, 20000));
}

void TestReplayCache::stalledLiveClientGetsEveryEventInOrderOnceItReadsAgain() {
    // A live client that stops reading: the kernel refuses part of a write, a slice of it
    // waits in the socket's own buffer and the rest in the responder's queue. Batches
    // keep coming while it reads again, and it must get every one, in order, without
    // being dropped as slow. (tst_httpresponder makes the one moment where a write could
    // overtake the socket's bytes happen on purpose.)
    startServer();
    auto client = openStream("/v1/subscriptions/orders/events");
    QVERIFY(client);
    QTRY_COMPARE_WITH_TIMEOUT(readyCount(*client), 1, 10000);
    // A small receive window (still above loopback's 64 KiB segments, or the sender would
    // wait for window probes), so that the kernel refuses after a megabyte or so.
    client->socket().setSocketOption(QAbstractSocket::ReceiveBufferSizeSocketOption, 128 * 1024);
    client->stopReading();
    auto pending = [this] {
        const QList<SseServer::ClientInfo> clients = m_server->clients();
        return clients.isEmpty() ? qint64(-1) : clients.first().pendingBytes;
    };
    int batches = 0;
    auto submitBatch = [&] {
        submit(100, 200);
        ++batches;
        QTRY_COMPARE_WITH_TIMEOUT(m_fx->engine->lastCommittedSeq(), qint64(batches) * 100, 30000);
    };
    while (pending() <= 0 && batches < 400)
        submitBatch();
    QVERIFY2(pending() > 0, "the server never had to hold bytes for the stalled client");
    for (int i = 0; i < 5; ++i)
        submitBatch();
    client->resumeReading();
    for (int i = 0; i < 60; ++i) {
        submitBatch();
        QTest::qWait(2);
    }
    const qint64 total = qint64(batches) * 100;
    QTRY_VERIFY_WITH_TIMEOUT(!seqsOf(*client).isEmpty() && seqsOf(*client).constLast() >= total, 30000);
    const QList<qint64> seqs = seqsOf(*client);
    QVERIFY2(isExactly(seqs, 1, total),
             qPrintable(
                 QStringLiteral("%1 events for %2, first %3").arg(seqs.size()).arg(total).arg(seqs.first())));
    QVERIFY(client->isConnected()); // not dropped as a slow client
}

QTEST_GUILESS_MAIN(TestReplayCache)
#include "tst_replaycache.moc"

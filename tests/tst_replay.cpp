#include "TestUtil.h"

#include "engine/CoverageLog.h"
#include "engine/Replay.h"
#include "journal/Journal.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

using namespace tw;
using tw::test::makeEvent;

namespace {

// Appends `count` events of `coll`, keyed from `first`; returns their seqs.
QList<qint64> append(Journal& journal, int first, int count, const QString& coll = QStringLiteral("orders")) {
    ChangeBatch b;
    b.sourceId = QStringLiteral("s");
    for (int i = first; i < first + count; ++i)
        b.events.append(makeEvent(b.sourceId, coll, i));
    QList<ChangeBatch> batches{b};
    if (!journal.append(batches))
        return {};
    QList<qint64> seqs;
    for (const ChangeEvent& e : batches.first().events)
        seqs.append(e.seq());
    return seqs;
}

QList<qint64> seqsOf(const ChangeEventList& events) {
    QList<qint64> seqs;
    for (const ChangeEvent& e : events)
        seqs.append(e.seq());
    return seqs;
}

QList<qint64> range(qint64 from, qint64 to) {
    QList<qint64> seqs;
    for (qint64 s = from; s <= to; ++s)
        seqs.append(s);
    return seqs;
}

QJsonObject parse(const QByteArray& json) {
    return QJsonDocument::fromJson(json).object();
}

} // namespace

// The one replay-then-live reader (SSE Last-Event-ID, long poll, --from-seq), on a
// real journal file.
class TestReplay : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void readsInChunksUpToTheHead_data();
    void readsInChunksUpToTheHead();
    void matcherSkipsOthersAndTheCursorCoversThem();
    void prunedHistoryIsOneGapThenTheEvents();
    void cursorBeyondTheHeadIsAGapAtTheHead();
    void rewindReadsAgainAfterTheLastKept();
    void unreadableJournalIsAnErrorAndTheCursorStays();
    void coverageOfOnePeriod_data();
    void coverageOfOnePeriod();
    void replayFromBeforeCoverageIsOneNoticeThenEveryStoredEvent();
    void aNarrowingEqualToTheSourcesLastIsNotWritten();
    void narrowingsBeforeThePruneMarkAreDropped();

private:
    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<Journal> m_journal;
    std::unique_ptr<JournalReader> m_reader;
};

void TestReplay::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    const QString path = m_dir->filePath(QStringLiteral("j.sqlite"));
    m_journal = std::make_unique<Journal>();
    QVERIFY(m_journal->open(path));
    m_reader = std::make_unique<JournalReader>();
    QVERIFY(m_reader->open(path));
}

void TestReplay::cleanup() {
    m_reader.reset();
    m_journal.reset();
    m_dir.reset();
}

void TestReplay::readsInChunksUpToTheHead_data() {
    QTest::addColumn<int>("limit");
    QTest::addColumn<qint64>("after");
    QTest::addColumn<int>("chunks");
    QTest::newRow("one at a time") << 1 << qint64(0) << 25;
    QTest::newRow("uneven") << 7 << qint64(0) << 4;
    QTest::newRow("exact boundary") << 5 << qint64(0) << 5;
    QTest::newRow("all in one") << 25 << qint64(0) << 1;
    QTest::newRow("more than there is") << 100 << qint64(0) << 1;
    QTest::newRow("from the middle") << 10 << qint64(12) << 2;
    QTest::newRow("from the head") << 10 << qint64(25) << 1;
}

void TestReplay::readsInChunksUpToTheHead() {
    QFETCH(int, limit);
    QFETCH(qint64, after);
    QFETCH(int, chunks);
    QCOMPARE(append(*m_journal, 1, 25), range(1, 25));
    Replay replay(m_reader.get(), {}, after);
    QList<qint64> seen;
    int read = 0;
    while (!replay.isAtHead()) {
        QVERIFY(read < 100);
        const Replay::Chunk chunk = replay.next(limit);
        ++read;
        QVERIFY(chunk.error.isEmpty());
        QVERIFY(!chunk.gap);
        QVERIFY(chunk.events.size() <= limit);
        seen += seqsOf(chunk.events);
        // The cursor is exactly what was handed out: the next read neither repeats nor skips.
        QCOMPARE(replay.cursor(), seen.isEmpty() ? qint64(25) : seen.last());
    }
    QCOMPARE(read, chunks);
    QCOMPARE(seen, range(after + 1, 25));
    QCOMPARE(replay.cursor(), qint64(25));
}

void TestReplay::matcherSkipsOthersAndTheCursorCoversThem() {
    // 1…10 orders, 11…20 others, 21…22 orders.
    append(*m_journal, 1, 10);
    append(*m_journal, 11, 10, QStringLiteral("others"));
    append(*m_journal, 21, 2);
    Subscription orders;
    orders.namespaces = {SourceNamespace{{}, Namespace{QStringLiteral("main"), QStringLiteral("orders")}}};
    Replay replay(m_reader.get(), Replay::matching(orders), 0);
    Replay::Chunk chunk = replay.next(10);
    QCOMPARE(seqsOf(chunk.events), range(1, 10));
    QVERIFY(!replay.isAtHead());
    QCOMPARE(replay.cursor(), qint64(10));
    chunk = replay.next(10);
    QCOMPARE(seqsOf(chunk.events), (QList<qint64>{21, 22}));
    QVERIFY(replay.isAtHead());
    // Nothing after 22 matches, yet the head was read: live events after it come next.
    append(*m_journal, 23, 3, QStringLiteral("others"));
    chunk = replay.next(10);
    QVERIFY(chunk.events.isEmpty());
    QVERIFY(replay.isAtHead());
    QCOMPARE(replay.cursor(), qint64(25));
}

void TestReplay::prunedHistoryIsOneGapThenTheEvents() {
    append(*m_journal, 1, 10);
    RetentionPolicy policy;
    policy.maxBytes = 0;
    policy.maxAgeSeconds = 3600;
    QCOMPARE(m_journal->prune(policy, QDateTime::currentMSecsSinceEpoch() + 2 * 3600 * 1000), 10);
    append(*m_journal, 11, 3);

    Replay replay(m_reader.get(), {}, 5);
    Replay::Chunk chunk = replay.next(2);
    QVERIFY(chunk.gap);
    QCOMPARE(chunk.gap->event.operation(), Operation::Gap);
    QCOMPARE(chunk.gap->id, qint64(10)); // the last seq lost: resuming from it resumes after the gap
    const QJsonObject gap = parse(chunk.gap->event.toJson());
    QCOMPARE(gap.value(QStringLiteral("operationType")).toString(), QStringLiteral("gap"));
    QCOMPARE(gap.value(QStringLiteral("requested")).toInteger(), 5);
    QCOMPARE(gap.value(QStringLiteral("firstAvailable")).toInteger(), 11);
    QVERIFY(gap.value(QStringLiteral("reason")).toString().contains(QStringLiteral("retention")));
    QCOMPARE(seqsOf(chunk.events), (QList<qint64>{11, 12}));
    // Said once: the next chunk carries on after it.
    chunk = replay.next(2);
    QVERIFY(!chunk.gap);
    QCOMPARE(seqsOf(chunk.events), (QList<qint64>{13}));
    QVERIFY(replay.isAtHead());

    // Nothing after 10 was lost.
    Replay fromPruneMark(m_reader.get(), {}, 10);
    chunk = fromPruneMark.next(10);
    QVERIFY(!chunk.gap);
    QCOMPARE(seqsOf(chunk.events), range(11, 13));
}

void TestReplay::cursorBeyondTheHeadIsAGapAtTheHead() {
    append(*m_journal, 1, 5);
    Replay known(m_reader.get(), {}, 5);
    QVERIFY(!known.skipUnknownCursor());
    QCOMPARE(known.cursor(), qint64(5));

    Replay unknown(m_reader.get(), {}, 999);
    const std::optional<Replay::Gap> gap = unknown.skipUnknownCursor();
    QVERIFY(gap);
    QCOMPARE(gap->id, qint64(5));
    const QJsonObject json = parse(gap->event.toJson());
    QCOMPARE(json.value(QStringLiteral("requested")).toInteger(), 999);
    QCOMPARE(json.value(QStringLiteral("firstAvailable")).toInteger(), 1);
    QCOMPARE(json.value(QStringLiteral("resumeAfter")).toInteger(), 5);
    QVERIFY(unknown.isAtHead());
    QCOMPARE(unknown.cursor(), qint64(5));
    append(*m_journal, 6, 2);
    QCOMPARE(seqsOf(unknown.next(10).events), (QList<qint64>{6, 7}));
}

void TestReplay::rewindReadsAgainAfterTheLastKept() {
    append(*m_journal, 1, 10);
    Replay replay(m_reader.get(), {}, 0);
    const Replay::Chunk chunk = replay.next(10);
    QCOMPARE(seqsOf(chunk.events), range(1, 10));
    QVERIFY(replay.isAtHead());
    replay.rewindTo(4); // the caller wrote only 1…4
    QVERIFY(!replay.isAtHead());
    QCOMPARE(seqsOf(replay.next(100).events), range(5, 10));
    QVERIFY(replay.isAtHead());
}

void TestReplay::unreadableJournalIsAnErrorAndTheCursorStays() {
    JournalReader closed; // never opened
    Replay replay(&closed, {}, 7);
    const Replay::Chunk chunk = replay.next(10);
    QVERIFY(!chunk.error.isEmpty());
    QVERIFY(chunk.events.isEmpty());
    QCOMPARE(replay.cursor(), qint64(7));
    QVERIFY(!replay.isAtHead());
}

void TestReplay::narrowingsBeforeThePruneMarkAreDropped() {
    // Each change of what a source reads is a row, and every replay reads them all: once
    // retention removed a period's events, its row goes, and nothing a replay from the
    // mark on is told changes.
    const Namespace scope{QStringLiteral("main"), {}};
    const QByteArray ordersOnly = SourceReading::toJson(
        {ScopeReading{scope,
                      {WatchOptions::Reader{Namespace{QStringLiteral("main"), QStringLiteral("orders")},
                                            Bson::empty(), true}}}});
    const QByteArray whole = SourceReading::toJson({ScopeReading{scope, {}}});
    const QByteArray nothing = SourceReading::toJson({});
    auto batch = [](const QString& source, const QByteArray& reading, int first, int count) {
        ChangeBatch b;
        b.sourceId = source;
        b.narrowings.append(SourceNarrowing{0, reading});
        for (int i = first; i < first + count; ++i)
            b.events.append(makeEvent(source, QStringLiteral("items"), i));
        return b;
    };
    // s: orders only (1-3), whole (4-6), orders only (7-9); t: orders only, then removed.
    QList<ChangeBatch> early{
        batch(QStringLiteral("t"), ordersOnly, 0, 0), batch(QStringLiteral("s"), ordersOnly, 1, 3),
        batch(QStringLiteral("s"), whole, 4, 2), batch(QStringLiteral("t"), nothing, 0, 0),
        batch(QStringLiteral("s"), whole, 6, 1)};
    QVERIFY(m_journal->append(early));
    QCOMPARE(m_reader->narrowings().size(), 4);
    RetentionPolicy policy;
    policy.maxBytes = 0;
    policy.maxAgeSeconds = 3600;
    QCOMPARE(m_journal->prune(policy, QDateTime::currentMSecsSinceEpoch() + 2 * 3600 * 1000), 6);
    QList<ChangeBatch> late{batch(QStringLiteral("s"), ordersOnly, 7, 3)};
    QVERIFY(m_journal->append(late));

    QList<QByteArray> rows;
    for (const JournalReader::Narrowing& n : m_reader->narrowings())
        rows.append(n.sourceId.toUtf8() + '@' + QByteArray::number(n.afterSeq) + ':' + n.reading);
    QCOMPARE(rows, (QList<QByteArray>{"s@3:" + whole, "s@6:" + ordersOnly}));
    // What a replay from the mark is told: items are read only until 6, orders all along.
    Subscription onItems;
    onItems.namespaces = {
        SourceNamespace{QString(), Namespace{QStringLiteral("main"), QStringLiteral("items")}}};
    Replay items(m_reader.get(), Replay::matching(onItems), 6);
    items.limitToCoverage(onItems);
    QCOMPARE(items.coveredAfter(), 9);
    Subscription onOrders;
    onOrders.namespaces = {
        SourceNamespace{QString(), Namespace{QStringLiteral("main"), QStringLiteral("orders")}}};
    Replay orders(m_reader.get(), Replay::matching(onOrders), 6);
    orders.limitToCoverage(onOrders);
    QCOMPARE(orders.coveredAfter(), 0);
}

QTEST_GUILESS_MAIN(TestReplay)
void TestReplay::coverageOfOnePeriod_data() {
    QTest::addColumn<QString>("subscribed"); // db.coll the subscription reads (of any source)
    QTest::addColumn<QByteArray>("filter");  // the subscription's
    QTest::addColumn<QString>("readerNs");   // what the watch on `shop` (the db) read; empty: all
    QTest::addColumn<QByteArray>("readerFilter");
    QTest::addColumn<bool>("covered");
    const QByteArray paid = R"({"fullDocument.status": "paid"})";
    QTest::newRow("read whole") << "shop.orders" << paid << QString() << QByteArray() << true;
    QTest::newRow("same namespace, takes everything")
        << "shop.orders" << paid << "shop.orders" << QByteArray("{}") << true;
    QTest::newRow("containing namespace, same filter") << "shop.orders" << paid << "shop" << paid << true;
    QTest::newRow("same namespace, other filter")
        << "shop.orders" << paid << "shop.orders" << QByteArray(R"({"operationType": "delete"})") << false;
    QTest::newRow("other namespace") << "shop.orders" << QByteArray("{}") << "shop.items" << QByteArray("{}")
                                     << false;
    QTest::newRow("narrower reader than the subscription")
        << "shop" << QByteArray("{}") << "shop.orders" << QByteArray("{}") << false;
    QTest::newRow("a scope the subscription does not see")
        << "other.orders" << QByteArray("{}") << "shop.items" << QByteArray("{}") << true;
}

void TestReplay::coverageOfOnePeriod() {
    QFETCH(QString, subscribed);
    QFETCH(QByteArray, filter);
    QFETCH(QString, readerNs);
    QFETCH(QByteArray, readerFilter);
    QFETCH(bool, covered);
    Subscription sub;
    sub.namespaces = {SourceNamespace{QString(), Namespace::fromString(subscribed)}};
    sub.filter = Filter::compile(filter);
    ScopeReading scope{Namespace{QStringLiteral("shop"), {}}, {}};
    if (!readerNs.isEmpty()) {
        const Filter f = Filter::compile(readerFilter);
        scope.readers.append(
            WatchOptions::Reader{Namespace::fromString(readerNs), f.query(), f.matchesEverything()});
    }
    // Through the journal's JSON, as a replay reads it.
    QList<ScopeReading> read;
    QVERIFY(SourceReading::fromJson(SourceReading::toJson({scope}), &read));
    QCOMPARE(read, QList<ScopeReading>{scope});
    QCOMPARE(CoverageLog::covers(QStringLiteral("m"), read, sub), covered);
}

void TestReplay::replayFromBeforeCoverageIsOneNoticeThenEveryStoredEvent() {
    // Events 1-3 read with shop.items wanted whole and shop.orders only through a filter
    // (order 2 matched it and is stored), 4-6 with shop.orders wanted whole too.
    const Namespace items{QStringLiteral("main"), QStringLiteral("items")};
    const Namespace orders{QStringLiteral("main"), QStringLiteral("orders")};
    const Filter big = Filter::compile(R"({"fullDocument.total": {"$gt": 100}})");
    const WatchOptions::Reader itemsReader{items, Bson::empty(), true};
    const WatchOptions::Reader bigOrdersReader{orders, big.query(), false};
    const WatchOptions::Reader ordersReader{orders, Bson::empty(), true};
    const Namespace scope{QStringLiteral("main"), {}};
    ChangeBatch narrow;
    narrow.sourceId = QStringLiteral("s");
    narrow.narrowings.append(
        SourceNarrowing{0, SourceReading::toJson({ScopeReading{scope, {itemsReader, bigOrdersReader}}})});
    narrow.events = {makeEvent(narrow.sourceId, QStringLiteral("items"), 1),
                     makeEvent(narrow.sourceId, QStringLiteral("orders"), 2),
                     makeEvent(narrow.sourceId, QStringLiteral("items"), 3)};
    ChangeBatch wide;
    wide.sourceId = narrow.sourceId;
    wide.narrowings.append(
        SourceNarrowing{0, SourceReading::toJson({ScopeReading{scope, {itemsReader, ordersReader}}})});
    for (int i = 4; i <= 6; ++i)
        wide.events.append(makeEvent(wide.sourceId, QStringLiteral("orders"), i));
    QList<ChangeBatch> batches{narrow, wide};
    QVERIFY(m_journal->append(batches));
    Subscription onOrders;
    onOrders.namespaces = {SourceNamespace{QString(), orders}};
    Replay replay(m_reader.get(), Replay::matching(onOrders), 1);
    replay.limitToCoverage(onOrders);
    QCOMPARE(replay.coveredAfter(), 3);
    // A chunk at a time, as a long replay goes: one notice, at the cursor, and every
    // stored order after it, the one of the narrowed period too.
    QList<QJsonObject> gaps;
    QList<qint64> gapIds;
    ChangeEventList events;
    for (int reads = 0; !replay.isAtHead() && reads < 10; ++reads) {
        const Replay::Chunk chunk = replay.next(1);
        QVERIFY2(chunk.error.isEmpty(), qPrintable(chunk.error));
        if (chunk.gap) {
            gaps.append(parse(chunk.gap->event.toJson()));
            gapIds.append(chunk.gap->id);
        }
        events.append(chunk.events);
    }
    QVERIFY(replay.isAtHead());
    QCOMPARE(gaps.size(), 1);
    QCOMPARE(gapIds.first(), 1); // skips nothing: resuming from it reads 2 on again
    QCOMPARE(gaps.first()[QStringLiteral("requested")].toInteger(), 1);
    QCOMPARE(gaps.first()[QStringLiteral("firstAvailable")].toInteger(), 2);
    QCOMPARE(gaps.first()[QStringLiteral("resumeAfter")].toInteger(), 1);
    QVERIFY2(
        gaps.first()[QStringLiteral("reason")].toString().contains(QStringLiteral("events 2 to 3 may be")),
        qPrintable(gaps.first()[QStringLiteral("reason")].toString()));
    QCOMPARE(seqsOf(events), (QList<qint64>{2, 4, 5, 6}));
    // From the floor on there is nothing to say.
    Replay recent(m_reader.get(), Replay::matching(onOrders), 3);
    recent.limitToCoverage(onOrders);
    const Replay::Chunk tail = recent.next(100);
    QVERIFY(!tail.gap);
    QCOMPARE(seqsOf(tail.events), range(4, 6));
    // Items were read all along: no gap.
    Subscription onItems;
    onItems.namespaces = {SourceNamespace{QString(), items}};
    Replay itemsReplay(m_reader.get(), Replay::matching(onItems), 0);
    itemsReplay.limitToCoverage(onItems);
    const Replay::Chunk all = itemsReplay.next(100);
    QVERIFY(!all.gap);
    QCOMPARE(seqsOf(all.events), (QList<qint64>{1, 3}));
}

void TestReplay::aNarrowingEqualToTheSourcesLastIsNotWritten() {
    // A source declares again on every watch change; the table is read whole per replay.
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("n.sqlite"));
    const QByteArray a = SourceReading::toJson({ScopeReading{Namespace{QStringLiteral("main"), {}}, {}}});
    const QByteArray b = SourceReading::toJson({});
    auto declare = [](Journal& journal, const QString& source, const QList<QByteArray>& readings) {
        ChangeBatch batch;
        batch.sourceId = source;
        for (const QByteArray& r : readings)
            batch.narrowings.append(SourceNarrowing{0, r});
        batch.events.append(makeEvent(source, QStringLiteral("items"), 1));
        QList<ChangeBatch> batches{batch};
        return journal.append(batches);
    };
    auto rows = [&path] {
        JournalReader reader;
        QList<QByteArray> list;
        if (!reader.open(path))
            return list;
        for (const JournalReader::Narrowing& n : reader.narrowings())
            list.append(n.sourceId.toUtf8() + ':' + n.reading);
        return list;
    };
    {
        Journal journal;
        QVERIFY(journal.open(path));
        QVERIFY(declare(journal, QStringLiteral("s"), {a, a}));
        QVERIFY(declare(journal, QStringLiteral("t"), {a}));
        QVERIFY(declare(journal, QStringLiteral("s"), {a}));
        QVERIFY(declare(journal, QStringLiteral("s"), {b, a}));
    }
    const QByteArray sa = "s:" + a, sb = "s:" + b, ta = "t:" + a;
    QCOMPARE(rows(), (QList<QByteArray>{sa, ta, sb, sa}));
    // After a reopen the last row of each source is still known.
    Journal journal;
    QVERIFY(journal.open(path));
    QVERIFY(declare(journal, QStringLiteral("s"), {a}));
    QVERIFY(declare(journal, QStringLiteral("t"), {b}));
    QCOMPARE(rows(), (QList<QByteArray>{sa, ta, sb, sa, "t:" + b}));
}

#include "tst_replay.moc"

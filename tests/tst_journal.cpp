#include "TestUtil.h"

#include "engine/Subscription.h"
#include "journal/Journal.h"

#include <QCoreApplication>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <QUuid>

#include <csignal>
#include <sqlite3.h>
#include <unistd.h>

using namespace tw;
using tw::test::makeEvent;
using tw::test::makeOrderEvent;

namespace {

ChangeBatch batchOf(const QString& source, int first, int count, const QByteArray& token) {
    ChangeBatch b;
    b.sourceId = source;
    for (int i = first; i < first + count; ++i)
        b.events.append(makeEvent(source, QStringLiteral("orders"), i));
    b.checkpoint.token = token;
    return b;
}

// A batch whose events carry their seqs already, as a NATS gateway's do (the ingest's).
ChangeBatch withSeqs(const QList<qint64>& seqs, const QByteArray& token) {
    ChangeBatch b;
    b.sourceId = QStringLiteral("gateway");
    b.keepSeqs = true;
    for (qint64 seq : seqs) {
        ChangeEvent e = makeEvent(QStringLiteral("shop"), QStringLiteral("orders"), int(seq));
        e.finalize(seq);
        b.events.append(e);
    }
    b.checkpoint.token = token;
    return b;
}

// Child mode: commit batch A, then die by SIGKILL inside batch B's transaction after
// every row is written and before COMMIT.
int runChild(const QString& path, bool killBeforeCommit) {
    Journal journal;
    if (!journal.open(path))
        return 3;
    QList<ChangeBatch> a{batchOf(QStringLiteral("src"), 1, 10, "A")};
    if (!journal.append(a))
        return 4;
    if (killBeforeCommit)
        journal.setBeforeCommitHook([] { ::kill(::getpid(), SIGKILL); });
    QList<ChangeBatch> b{batchOf(QStringLiteral("src"), 11, 10, "B")};
    journal.append(b);
    if (!killBeforeCommit)
        ::kill(::getpid(), SIGKILL); // after COMMIT returned
    return 5;
}

// Appends order events [first, first + count) prepared as the Engine prepares them (on
// the source's thread, with the journal's codec); returns them as committed.
QList<ChangeEvent> appendOrders(Journal& journal, int first, int count) {
    ChangeBatch b;
    b.sourceId = QStringLiteral("shop");
    for (int i = first; i < first + count; ++i) {
        const ChangeEvent e = makeOrderEvent(i);
        e.prepare(journal.codec().get());
        b.events.append(e);
    }
    b.checkpoint.token = QByteArray::number(first + count);
    QList<ChangeBatch> batches{b};
    if (!journal.append(batches))
        return {};
    return batches.first().events;
}

// The stored bytes of rows [from, to], straight from the file.
QList<QByteArray> storedDocs(const QString& path, qint64 from, qint64 to) {
    QList<QByteArray> docs;
    sqlite3* db = nullptr;
    sqlite3_open_v2(QFile::encodeName(path).constData(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, "SELECT doc FROM events WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq", -1, &s,
                       nullptr);
    sqlite3_bind_int64(s, 1, from);
    sqlite3_bind_int64(s, 2, to);
    while (s && sqlite3_step(s) == SQLITE_ROW)
        docs.append(
            QByteArray(static_cast<const char*>(sqlite3_column_blob(s, 0)), sqlite3_column_bytes(s, 0)));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return docs;
}

QString execSql(const QString& path, const char* sql) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(QFile::encodeName(path).constData(), &db, SQLITE_OPEN_READWRITE, nullptr);
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
    const QString error = rc == SQLITE_OK ? QString() : QString::fromUtf8(message ? message : "failed");
    sqlite3_free(message);
    sqlite3_close(db);
    return error;
}

bool isFrame(const QByteArray& stored) {
    return stored.startsWith(QByteArray::fromHex("28b52ffd"));
}

// A journal that has trained its dictionary on 2 400 orders (stored as they are) and
// then stored orders 2 400–3 399 compressed.
bool makeTrainedJournal(const QString& path, QList<ChangeEvent>* committed) {
    Journal j;
    if (!j.open(path))
        return false;
    for (int first = 0; first < 2400; first += 400)
        *committed += appendOrders(j, first, 400);
    if (!j.finishTraining() || j.codec()->dictionaryId() == 0)
        return false;
    *committed += appendOrders(j, 2400, 1000);
    return committed->size() == 3400;
}

} // namespace

class TestJournal : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void seqIncreasesAndSurvivesReopen();
    void idIsMadeOnceAndKept();
    void batchAndCheckpointAreAtomic_data();
    void batchAndCheckpointAreAtomic();
    void sourceStateUpsertsRemovalsAndPrefixes();
    void retentionByAgeYieldsGapAndSeqNeverReused();
    void retentionBySize();
    void readerFiltersAndPages();
    void subscriptionsPersist();
    void corruptFileIsAClearErrorAndCanBeMovedAside();
    void foreignSqliteFileIsRefused();
    void failedAppendLeavesNothing();
    void walIsFoldedBackInTheBackground();
    void storedDocumentsAreCompressedOnceADictionaryIsTrained();
    void anUnreadableStoredEventIsAGapNotASilence();
    void aVersion1JournalIsUpgradedInPlace();
    void aDictionaryThatCannotBeStoredIsNotUsed();
    void givenSeqsAreKeptWhenIncreasing();
    void givenSeqsNotPastTheLastAreRefused_data();
    void givenSeqsNotPastTheLastAreRefused();
    void givenSeqsSurviveReopen();
};

void TestJournal::seqIncreasesAndSurvivesReopen() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    {
        Journal j;
        QVERIFY(j.open(path));
        QList<ChangeBatch> batches{batchOf(QStringLiteral("a"), 1, 3, "t1"),
                                   batchOf(QStringLiteral("b"), 1, 2, "u1")};
        QVERIFY(j.append(batches));
        QCOMPARE(j.lastSeq(), 5);
        QList<qint64> seqs;
        for (const auto& b : batches)
            for (const auto& e : b.events)
                seqs.append(e.seq());
        QCOMPARE(seqs, (QList<qint64>{1, 2, 3, 4, 5}));
        QVERIFY(
            batches[0].events[0].toJson().startsWith(R"({"seq":1,"source":"a","operationType":"insert")"));
    }
    Journal j;
    QVERIFY(j.open(path));
    QCOMPARE(j.lastSeq(), 5);
    QCOMPARE(j.restore(QStringLiteral("a")).token, QByteArray("t1"));
    QCOMPARE(j.restore(QStringLiteral("b")).token, QByteArray("u1"));
    QList<ChangeBatch> more{batchOf(QStringLiteral("a"), 4, 1, {})};
    QVERIFY(j.append(more));
    QCOMPARE(more[0].events[0].seq(), 6);
    QCOMPARE(j.restore(QStringLiteral("a")).token, QByteArray("t1")); // empty token keeps the old one
}

void TestJournal::idIsMadeOnceAndKept() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    QString first;
    {
        Journal j;
        QVERIFY(j.open(path));
        first = j.id();
        QVERIFY(!QUuid::fromString(first).isNull());
    }
    Journal again;
    QVERIFY(again.open(path));
    QCOMPARE(again.id(), first);
    Journal other;
    QVERIFY(other.open(dir.filePath(QStringLiteral("other.sqlite"))));
    QVERIFY(!other.id().isEmpty());
    QVERIFY(other.id() != first);
}

void TestJournal::batchAndCheckpointAreAtomic_data() {
    QTest::addColumn<bool>("killBeforeCommit");
    QTest::addColumn<qint64>("expectedLastSeq");
    QTest::addColumn<QByteArray>("expectedToken");
    QTest::newRow("killed before commit: neither") << true << qint64(10) << QByteArray("A");
    QTest::newRow("killed after commit: both") << false << qint64(20) << QByteArray("B");
}

void TestJournal::batchAndCheckpointAreAtomic() {
    QFETCH(bool, killBeforeCommit);
    QFETCH(qint64, expectedLastSeq);
    QFETCH(QByteArray, expectedToken);
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    QProcess child;
    child.start(QCoreApplication::applicationFilePath(),
                {QStringLiteral("--journal-child"), path,
                 killBeforeCommit ? QStringLiteral("before") : QStringLiteral("after")});
    QVERIFY(child.waitForFinished(60000));
    QCOMPARE(child.exitStatus(), QProcess::CrashExit); // SIGKILL, not a clean exit

    Journal j;
    QVERIFY(j.open(path));
    QCOMPARE(j.lastSeq(), expectedLastSeq);
    QCOMPARE(j.eventCount(), expectedLastSeq);
    QCOMPARE(j.restore(QStringLiteral("src")).token, expectedToken);
    // And the next seq continues after what is committed.
    QList<ChangeBatch> next{batchOf(QStringLiteral("src"), 100, 1, "C")};
    QVERIFY(j.append(next));
    QCOMPARE(next[0].events[0].seq(), expectedLastSeq + 1);
}

void TestJournal::sourceStateUpsertsRemovalsAndPrefixes() {
    QTemporaryDir dir;
    Journal j;
    QVERIFY(j.open(dir.filePath(QStringLiteral("j.sqlite"))));
    ChangeBatch b;
    b.sourceId = QStringLiteral("s");
    b.checkpoint.stateUpserts = {{"t\x1f"
                                  "1",
                                  "h1"},
                                 {"t\x1f"
                                  "2",
                                  "h2"},
                                 {"u\x1f"
                                  "1",
                                  "x"},
                                 {"t\x1e", "schema"}};
    QList<ChangeBatch> list{b};
    QVERIFY(j.append(list));
    QCOMPARE(j.restore(QStringLiteral("s")).state.size(), 4);
    ChangeBatch c;
    c.sourceId = QStringLiteral("s");
    c.checkpoint.stateRemovals = {"u\x1f"
                                  "1"};
    c.checkpoint.stateRemovedPrefixes = {"t\x1f"};
    list = {c};
    QVERIFY(j.append(list));
    const auto state = j.restore(QStringLiteral("s")).state;
    QCOMPARE(state.size(), 1);
    QCOMPARE(state.value("t\x1e"), QByteArray("schema"));
    QVERIFY(j.restore(QStringLiteral("other")).state.isEmpty());
}

void TestJournal::retentionByAgeYieldsGapAndSeqNeverReused() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    Journal j;
    QVERIFY(j.open(path));
    QList<ChangeBatch> list{batchOf(QStringLiteral("s"), 1, 100, "t")};
    QVERIFY(j.append(list));
    RetentionPolicy policy;
    policy.maxBytes = 0;
    policy.maxAgeSeconds = 3600;
    QCOMPARE(j.prune(policy, QDateTime::currentMSecsSinceEpoch()), 0); // all young
    QCOMPARE(j.prune(policy, QDateTime::currentMSecsSinceEpoch() + 2 * 3600 * 1000), 100);
    QCOMPARE(j.prunedThrough(), 100);
    QCOMPARE(j.eventCount(), 0);

    JournalReader reader;
    QVERIFY(reader.open(path));
    auto r = reader.readAfter(5, 10);
    QVERIFY(r.gap);
    QCOMPARE(r.events.size(), 0);

    list = {batchOf(QStringLiteral("s"), 101, 3, "t")};
    QVERIFY(j.append(list));
    QCOMPARE(list[0].events[0].seq(), 101); // never reused, though the table was empty
    r = reader.readAfter(5, 10);
    QVERIFY(r.gap);
    QCOMPARE(r.firstAvailable, 101);
    QCOMPARE(r.events.size(), 3);
    QCOMPARE(r.events[0].seq(), 101);
    r = reader.readAfter(100, 10);
    QVERIFY(!r.gap); // nothing after 100 was lost
    QCOMPARE(r.events.size(), 3);

    j.close();
    QVERIFY(j.open(path));
    QCOMPARE(j.prunedThrough(), 100);
    QCOMPARE(j.lastSeq(), 103);
}

void TestJournal::retentionBySize() {
    QTemporaryDir dir;
    Journal j;
    QVERIFY(j.open(dir.filePath(QStringLiteral("j.sqlite"))));
    for (int round = 0; round < 10; ++round) {
        ChangeBatch b;
        b.sourceId = QStringLiteral("s");
        for (int i = 0; i < 200; ++i)
            b.events.append(makeEvent(QStringLiteral("s"), QStringLiteral("t"), round * 200 + i, 1024));
        QList<ChangeBatch> list{b};
        QVERIFY(j.append(list));
    }
    const qint64 before = j.sizeBytes();
    QVERIFY(before > 2 << 20);
    RetentionPolicy policy;
    policy.maxAgeSeconds = 0;
    policy.maxBytes = before / 2;
    const qint64 removed = j.prune(policy, QDateTime::currentMSecsSinceEpoch());
    QVERIFY2(removed >= 900 && removed < 2000, qPrintable(QString::number(removed)));
    QCOMPARE(j.eventCount(), 2000 - removed);
    QCOMPARE(j.prunedThrough(), removed); // the oldest went first
}

void TestJournal::readerFiltersAndPages() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    Journal j;
    QVERIFY(j.open(path));
    QList<ChangeBatch> list{batchOf(QStringLiteral("s"), 1, 50, "t")};
    QVERIFY(j.append(list));
    JournalReader reader;
    QVERIFY(reader.open(path));
    QCOMPARE(reader.lastSeq(), 50);
    auto even = [](const ChangeEvent& e) { return e.seq() % 2 == 0; };
    auto r = reader.readAfter(0, 10, even);
    QCOMPARE(r.events.size(), 10);
    QCOMPARE(r.events.first().seq(), 2);
    QCOMPARE(r.events.last().seq(), 20);
    QVERIFY(r.hasMore);
    r = reader.readAfter(r.scannedThrough, 100, even);
    QCOMPARE(r.events.size(), 15);
    QVERIFY(!r.hasMore);
    // The replayed event is the committed one, byte for byte.
    QCOMPARE(reader.readAfter(6, 1).events.first().toJson(), list[0].events[6].toJson());
}

void TestJournal::subscriptionsPersist() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    Subscription s;
    s.id = QStringLiteral("paid");
    s.name = QStringLiteral("Paid orders");
    s.namespaces = {
        SourceNamespace{QStringLiteral("demo"), Namespace{QStringLiteral("main"), QStringLiteral("orders")}}};
    s.filter = Filter::compile(R"({"fullDocument.status": "paid"})");
    QVERIFY(s.filter.isValid());
    {
        Journal j;
        QVERIFY(j.open(path));
        QVERIFY(j.saveSubscription({s.id, s.toJson()}));
    }
    Journal j;
    QVERIFY(j.open(path));
    const QList<StoredSubscription> rows = j.subscriptions();
    QCOMPARE(rows.size(), 1);
    QCOMPARE(rows[0].id, QStringLiteral("paid"));
    // The journal hands back the spec it was given, byte for byte.
    QCOMPARE(rows[0].spec, s.toJson());
    QString error;
    const Subscription read = Subscription::fromJson(rows[0].spec, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(read.id, QStringLiteral("paid"));
    QCOMPARE(read.name, QStringLiteral("Paid orders"));
    QCOMPARE(read.namespaces.size(), 1);
    QCOMPARE(read.namespaces[0].ns.coll, QStringLiteral("orders"));
    QVERIFY(read.filter.isValid());
    QVERIFY(!read.filter.matchesEverything());
    QVERIFY(j.removeSubscription(QStringLiteral("paid")));
    QVERIFY(j.subscriptions().isEmpty());
}

void TestJournal::corruptFileIsAClearErrorAndCanBeMovedAside() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    {
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(QByteArray(8192, '\x5a'));
    }
    Journal j;
    QString error;
    QVERIFY(!j.open(path, &error));
    QVERIFY(!j.isOpen());
    QCOMPARE(j.lastError(), Journal::Error::Corrupt);
    QVERIFY2(error.contains(path) && error.contains(QLatin1String("Move it aside")), qPrintable(error));
    QString movedTo;
    QVERIFY(Journal::moveAside(path, &movedTo));
    QVERIFY(QFile::exists(movedTo));
    QVERIFY(!QFile::exists(path));
    QVERIFY(j.open(path, &error));
    QCOMPARE(j.lastSeq(), 0);
}

void TestJournal::foreignSqliteFileIsRefused() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("other.sqlite"));
    QCOMPARE(
        tw::test::runSqlite3(path, QStringLiteral("CREATE TABLE notes(x); INSERT INTO notes VALUES(1);")),
        QString());
    Journal j;
    QString error;
    QVERIFY(!j.open(path, &error));
    QCOMPARE(j.lastError(), Journal::Error::NotAJournal);
    QVERIFY2(error.contains(QLatin1String("not a Tidewatch journal")), qPrintable(error));
    // And the foreign file was not touched.
    QProcess p;
    p.start(QStringLiteral("sqlite3"), {path, QStringLiteral("SELECT count(*) FROM sqlite_master")});
    QVERIFY(p.waitForFinished());
    QCOMPARE(p.readAllStandardOutput().trimmed(), QByteArray("1"));
}

void TestJournal::failedAppendLeavesNothing() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    Journal j;
    QVERIFY(j.open(path));
    QList<ChangeBatch> ok{batchOf(QStringLiteral("s"), 1, 3, "t1")};
    QVERIFY(j.append(ok));
    // Another connection holding the write lock makes BEGIN IMMEDIATE fail after the
    // busy timeout; the journal must stay as it was.
    sqlite3* holder = nullptr;
    QCOMPARE(sqlite3_open(QFile::encodeName(path).constData(), &holder), SQLITE_OK);
    QCOMPARE(
        sqlite3_exec(holder, "BEGIN IMMEDIATE; INSERT INTO meta VALUES('x', 1);", nullptr, nullptr, nullptr),
        SQLITE_OK);
    QList<ChangeBatch> blocked{batchOf(QStringLiteral("s"), 4, 3, "t2")};
    QString error;
    QVERIFY(!j.append(blocked, &error));
    QVERIFY(!error.isEmpty());
    QCOMPARE(blocked[0].events[0].seq(), 0);
    QCOMPARE(j.lastSeq(), 3);
    sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(holder);
    QVERIFY(j.append(blocked));
    QCOMPARE(blocked[0].events[0].seq(), 4);
    QCOMPARE(j.restore(QStringLiteral("s")).token, QByteArray("t2"));
}

// The WAL is copied back into the main file by the journal's own background thread:
// after the writer stops (below the size at which it would fold anything itself), the
// main file still grows to hold the events, and every event reads back.
void TestJournal::walIsFoldedBackInTheBackground() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    Journal j;
    QVERIFY(j.open(path));
    const qint64 mainBefore = QFileInfo(path).size();
    constexpr int kBatches = 16, kPerBatch = 1000;
    for (int round = 0; round < kBatches; ++round) {
        ChangeBatch b;
        b.sourceId = QStringLiteral("s");
        for (int i = 0; i < kPerBatch; ++i)
            b.events.append(makeEvent(QStringLiteral("s"), QStringLiteral("t"), round * kPerBatch + i, 1024));
        b.checkpoint.token = QByteArray::number(round);
        QList<ChangeBatch> list{b};
        QVERIFY(j.append(list));
    }
    // About 20 MiB of pages went to the WAL; the writer folds only past 32 MiB.
    QTRY_VERIFY_WITH_TIMEOUT(QFileInfo(path).size() > mainBefore + (12 << 20), 30000);
    JournalReader reader;
    QVERIFY(reader.open(path));
    qint64 after = 0, seen = 0;
    for (;;) {
        const auto r = reader.readAfter(after, 5000);
        QVERIFY(r.error.isEmpty());
        for (const ChangeEvent& e : r.events)
            QCOMPARE(e.seq(), ++seen);
        after = r.scannedThrough;
        if (!r.hasMore)
            break;
    }
    QCOMPARE(seen, qint64(kBatches * kPerBatch));
}

// Documents are stored compressed with a dictionary the journal trains on its first
// documents, and read back exactly; the dictionary survives a reopen.
void TestJournal::storedDocumentsAreCompressedOnceADictionaryIsTrained() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    QList<ChangeEvent> committed;
    QVERIFY(makeTrainedJournal(path, &committed));

    // Before the dictionary: stored as they are. After: frames of about a third the size.
    const QList<QByteArray> before = storedDocs(path, 1, 2400);
    QCOMPARE(before.size(), 2400);
    QVERIFY(std::none_of(before.cbegin(), before.cend(), isFrame));
    const QList<QByteArray> after = storedDocs(path, 2401, 3400);
    QCOMPARE(after.size(), 1000);
    QVERIFY(std::all_of(after.cbegin(), after.cend(), isFrame));
    qint64 plain = 0, stored = 0;
    for (int k = 2400; k < 3400; ++k)
        plain += committed.at(k).document().size();
    for (const QByteArray& doc : after)
        stored += doc.size();
    qInfo("1 000 order events: %lld bytes of BSON stored in %lld (%.2fx)", static_cast<long long>(plain),
          static_cast<long long>(stored), double(plain) / double(stored));
    QVERIFY2(stored * 2 < plain, "compressed documents should take less than half the bytes");

    // Every event reads back as it was committed.
    JournalReader reader;
    QVERIFY(reader.open(path));
    qint64 after0 = 0;
    int compared = 0;
    for (;;) {
        const JournalReader::Result r = reader.readAfter(after0, 1000);
        QVERIFY2(r.error.isEmpty(), qPrintable(r.error));
        for (const ChangeEvent& e : r.events) {
            QCOMPARE(e.seq(), committed.at(compared).seq());
            QCOMPARE(e.toJson(), committed.at(compared).toJson());
            ++compared;
        }
        after0 = r.scannedThrough;
        if (!r.hasMore)
            break;
    }
    QCOMPARE(compared, 3400);

    // Reopened, the journal compresses with the same dictionary at once.
    Journal again;
    QVERIFY(again.open(path));
    QVERIFY(again.codec()->dictionaryId() != 0);
    const QList<ChangeEvent> more = appendOrders(again, 3400, 10);
    QCOMPARE(more.size(), 10);
    const QList<QByteArray> moreDocs = storedDocs(path, 3401, 3410);
    QVERIFY(std::all_of(moreDocs.cbegin(), moreDocs.cend(), isFrame));
    const JournalReader::Result r = reader.readAfter(3400, 100);
    QCOMPARE(r.events.size(), 10);
    QCOMPARE(r.events.last().toJson(), more.last().toJson());

    // Events that arrive final and keep their seqs (a gateway's, parsed back from the
    // ingest's documents) are compressed the same way, and read back the same.
    ChangeBatch relayed;
    relayed.sourceId = QStringLiteral("gateway");
    relayed.keepSeqs = true;
    for (int i = 0; i < 10; ++i) {
        const qint64 seq = 3500 + i;
        ChangeEvent order = makeOrderEvent(3410 + i);
        order.finalize(seq);
        QString error;
        const ChangeEvent e = ChangeEvent::fromDocument(order.document(), seq, &error);
        QVERIFY2(error.isEmpty(), qPrintable(error));
        e.prepare(again.codec().get());
        relayed.events.append(e);
    }
    QList<ChangeBatch> batches{relayed};
    QVERIFY(again.append(batches));
    const QList<QByteArray> relayedDocs = storedDocs(path, 3500, 3509);
    QCOMPARE(relayedDocs.size(), 10);
    QVERIFY(std::all_of(relayedDocs.cbegin(), relayedDocs.cend(), isFrame));
    const JournalReader::Result back = reader.readAfter(3410, 100);
    QCOMPARE(back.events.size(), 10);
    for (int i = 0; i < 10; ++i) {
        QCOMPARE(back.events.at(i).seq(), 3500 + i);
        QCOMPARE(back.events.at(i).toJson(), relayed.events.at(i).toJson());
    }
}

// A damaged frame, or a frame whose dictionary is gone, is read as a gap at its seq
// that says why; the events around it read as before, and nothing crashes.
void TestJournal::anUnreadableStoredEventIsAGapNotASilence() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    QList<ChangeEvent> committed;
    QVERIFY(makeTrainedJournal(path, &committed));
    QCOMPARE(execSql(path, "UPDATE events SET doc = substr(doc, 1, 12) WHERE seq = 3000"), QString());
    {
        JournalReader reader;
        QVERIFY(reader.open(path));
        const JournalReader::Result r = reader.readAfter(2998, 3);
        QCOMPARE(r.events.size(), 3);
        QCOMPARE(r.events[0].toJson(), committed.at(2998).toJson());
        QCOMPARE(r.events[1].seq(), 3000);
        QCOMPARE(r.events[1].operation(), Operation::Gap);
        QVERIFY2(r.events[1].reason().contains(QLatin1String("event 3000 in the journal cannot be read")),
                 qPrintable(r.events[1].reason()));
        QCOMPARE(r.events[1].sourceId(), QStringLiteral("shop"));
        QCOMPARE(r.events[2].toJson(), committed.at(3000).toJson());
    }
    QCOMPARE(execSql(path, "DELETE FROM dictionaries"), QString());
    JournalReader reader;
    QVERIFY(reader.open(path));
    const JournalReader::Result plain = reader.readAfter(2399, 1);
    QCOMPARE(plain.events.size(), 1);
    QCOMPARE(plain.events[0].toJson(), committed.at(2399).toJson());
    const JournalReader::Result lost = reader.readAfter(2400, 1);
    QCOMPARE(lost.events.size(), 1);
    QCOMPARE(lost.events[0].operation(), Operation::Gap);
    QVERIFY2(lost.events[0].reason().contains(QLatin1String("no compression dictionary")),
             qPrintable(lost.events[0].reason()));
    // The writer refuses nothing: it trains a new dictionary and goes on.
    Journal j;
    QVERIFY(j.open(path));
    QCOMPARE(j.codec()->dictionaryId(), 0u);
    QCOMPARE(appendOrders(j, 3400, 5).size(), 5);
    QCOMPARE(j.lastSeq(), 3405);
}

// A journal from the version that stored every document as BSON opens, is upgraded,
// and its events read back.
void TestJournal::aVersion1JournalIsUpgradedInPlace() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    {
        Journal j;
        QVERIFY(j.open(path));
        QList<ChangeBatch> batches{batchOf(QStringLiteral("a"), 1, 20, "t")};
        QVERIFY(j.append(batches));
    }
    QCOMPARE(execSql(path, "DROP TABLE dictionaries; PRAGMA user_version=1;"), QString());
    Journal j;
    QString error;
    QVERIFY2(j.open(path, &error), qPrintable(error));
    QCOMPARE(j.lastSeq(), 20);
    QCOMPARE(execSql(path, "SELECT count(*) FROM dictionaries"), QString());
    sqlite3* db = nullptr;
    sqlite3_open_v2(QFile::encodeName(path).constData(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr);
    QCOMPARE(sqlite3_step(s), SQLITE_ROW);
    QCOMPARE(sqlite3_column_int(s, 0), 2);
    sqlite3_finalize(s);
    sqlite3_close(db);
    JournalReader reader;
    QVERIFY(reader.open(path));
    const JournalReader::Result r = reader.readAfter(0, 100);
    QCOMPARE(r.events.size(), 20);
    QCOMPARE(r.events.last().seq(), 20);
}

// A dictionary is used only once its row is committed: when the row is refused, events
// go on being stored as BSON (readable), and the dictionary is stored and used with a
// later append.
void TestJournal::aDictionaryThatCannotBeStoredIsNotUsed() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    {
        Journal j;
        QVERIFY(j.open(path));
    }
    QCOMPARE(execSql(path, "CREATE TRIGGER refuse BEFORE INSERT ON dictionaries "
                           "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"),
             QString());
    Journal j;
    QVERIFY(j.open(path));
    for (int first = 0; first < 2400; first += 400)
        QCOMPARE(appendOrders(j, first, 400).size(), 400);
    QVERIFY(!j.finishTraining());
    QCOMPARE(j.codec()->dictionaryId(), 0u);
    QCOMPARE(appendOrders(j, 2400, 10).size(), 10);
    const QList<QByteArray> plain = storedDocs(path, 2401, 2410);
    QCOMPARE(plain.size(), 10);
    QVERIFY(std::none_of(plain.cbegin(), plain.cend(), isFrame));

    QCOMPARE(execSql(path, "DROP TRIGGER refuse"), QString());
    QCOMPARE(appendOrders(j, 2410, 10).size(), 10); // stores the dictionary
    QVERIFY(j.codec()->dictionaryId() != 0);
    const QList<ChangeEvent> last = appendOrders(j, 2420, 10);
    QCOMPARE(last.size(), 10);
    const QList<QByteArray> frames = storedDocs(path, 2421, 2430);
    QVERIFY(std::all_of(frames.cbegin(), frames.cend(), isFrame));
    JournalReader reader;
    QVERIFY(reader.open(path));
    const JournalReader::Result r = reader.readAfter(2400, 100);
    QCOMPARE(r.events.size(), 30);
    for (const ChangeEvent& e : r.events)
        QVERIFY(e.operation() != Operation::Gap);
    QCOMPARE(r.events.last().toJson(), last.last().toJson());
}

void TestJournal::givenSeqsAreKeptWhenIncreasing() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    Journal j;
    QVERIFY(j.open(path));
    // A jump (7 to 12) is fine: the ingest may have pruned or filtered in between.
    QList<ChangeBatch> batches{withSeqs({5, 6, 7}, "g7"), withSeqs({12}, "g12")};
    QVERIFY(j.append(batches));
    QCOMPARE(j.lastSeq(), 12);
    QCOMPARE(batches[0].events[2].seq(), 7);
    QVERIFY(batches[1].events[0].toJson().startsWith(R"({"seq":12,"source":"shop")"));
    QCOMPARE(j.restore(QStringLiteral("gateway")).token, QByteArray("g12"));
    JournalReader reader;
    QVERIFY(reader.open(path));
    const JournalReader::Result r = reader.readAfter(0, 100);
    QVERIFY(r.error.isEmpty());
    QVERIFY(!r.gap);
    QList<qint64> seqs;
    for (const ChangeEvent& e : r.events)
        seqs.append(e.seq());
    QCOMPARE(seqs, (QList<qint64>{5, 6, 7, 12}));
    QCOMPARE(r.events[3].toJson(), batches[1].events[0].toJson());
    // Reading after a seq inside the jump goes on with the next stored one.
    QCOMPARE(reader.readAfter(8, 100).events.first().seq(), 12);
    // The ordinary path goes on after the highest seq kept.
    QList<ChangeBatch> ordinary{batchOf(QStringLiteral("a"), 1, 1, {})};
    QVERIFY(j.append(ordinary));
    QCOMPARE(ordinary[0].events[0].seq(), 13);
}

void TestJournal::givenSeqsNotPastTheLastAreRefused_data() {
    QTest::addColumn<QList<qint64>>("seqs");
    QTest::newRow("equal to the last") << QList<qint64>{10};
    QTest::newRow("below the last") << QList<qint64>{3};
    QTest::newRow("repeated in the batch") << QList<qint64>{11, 11};
    QTest::newRow("decreasing in the batch") << QList<qint64>{14, 12};
    QTest::newRow("not finalized") << QList<qint64>{0};
}

void TestJournal::givenSeqsNotPastTheLastAreRefused() {
    QFETCH(QList<qint64>, seqs);
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    Journal j;
    QVERIFY(j.open(path));
    QList<ChangeBatch> first{withSeqs({10}, "g10")};
    QVERIFY(j.append(first));
    // An ordinary batch in the same transaction is rolled back with the refused one.
    QList<ChangeBatch> refused{withSeqs(seqs, "bad"), batchOf(QStringLiteral("a"), 1, 2, "a2")};
    QString error;
    QVERIFY(!j.append(refused, &error));
    QCOMPARE(j.lastError(), Journal::Error::SeqNotIncreasing);
    QVERIFY2(error.contains(QLatin1String("not past seq")), qPrintable(error));
    QVERIFY(error.contains(QLatin1String("gateway")));
    QCOMPARE(j.lastSeq(), 10);
    QCOMPARE(refused[0].events[0].seq(), seqs[0]); // a given seq stays as it was given
    QCOMPARE(refused[1].events[0].seq(), 0);
    QCOMPARE(j.restore(QStringLiteral("gateway")).token, QByteArray("g10"));
    QVERIFY(j.restore(QStringLiteral("a")).token.isEmpty());
    JournalReader reader;
    QVERIFY(reader.open(path));
    QCOMPARE(reader.readAfter(0, 100).events.size(), 1);
    QCOMPARE(reader.lastSeq(), 10);
}

void TestJournal::givenSeqsSurviveReopen() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("j.sqlite"));
    {
        Journal j;
        QVERIFY(j.open(path));
        QList<ChangeBatch> batches{withSeqs({100, 250}, "g250")};
        QVERIFY(j.append(batches));
    }
    Journal j;
    QVERIFY(j.open(path));
    QCOMPARE(j.lastSeq(), 250);
    QCOMPARE(j.restore(QStringLiteral("gateway")).token, QByteArray("g250"));
    QList<ChangeBatch> again{withSeqs({250}, "x")};
    QVERIFY(!j.append(again));
    QCOMPARE(j.lastError(), Journal::Error::SeqNotIncreasing);
    QList<ChangeBatch> next{withSeqs({251}, "g251")};
    QVERIFY(j.append(next));
    QCOMPARE(j.lastSeq(), 251);
}

int main(int argc, char** argv) {
    if (argc == 4 && QByteArray(argv[1]) == "--journal-child") {
        QCoreApplication app(argc, argv);
        return runChild(QString::fromLocal8Bit(argv[2]), QByteArray(argv[3]) == "before");
    }
    QCoreApplication app(argc, argv);
    TestJournal test;
    return QTest::qExec(&test, argc, argv);
}

#include "tst_journal.moc"

#include "EngineFixture.h"

#include "journal/JournalReader.h"
#include "sources/SourceReading.h"

#include <QtTest>

#include <sqlite3.h>

using namespace tw;
using namespace tw::test;

class TestEngine : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void writerToFilteredSubscriptions();
    void subscriptionsSurviveRestart();
    void aStoredSubscriptionThatCannotBeReadIsSkipped();
    void gapReachesEverySubscriptionOfItsNamespace();
    void journalWriteFailureIsRetriedWithoutLoss();
    void secondEngineOnTheSameJournalIsRefused();
    void groupCommitSharesOneTransaction();
    void removingASourceEndsAPeriodStillUncommitted();

private:
    QString db() const { return m_dir->filePath(QStringLiteral("shop.sqlite")); }
    QString journal() const { return m_dir->filePath(QStringLiteral("journal.sqlite")); }
    std::unique_ptr<QTemporaryDir> m_dir;
};

void TestEngine::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    QCOMPARE(runSqlite3(db(), QStringLiteral(
                                  "PRAGMA journal_mode=WAL;"
                                  "CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT, total REAL);"
                                  "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, tier TEXT);")),
             QString());
}

static Subscription makeSub(const QString& id, const QString& coll, const char* filter) {
    Subscription s;
    s.id = id;
    s.name = id;
    if (!coll.isEmpty())
        s.namespaces = {SourceNamespace{QStringLiteral("shop"), Namespace{QStringLiteral("main"), coll}}};
    QString error;
    s.filter = Filter::compile(filter, &error);
    Q_ASSERT_X(s.filter.isValid(), "makeSub", qPrintable(error));
    return s;
}

void TestEngine::writerToFilteredSubscriptions() {
    EngineFixture f(journal());
    QVERIFY(f.start());
    f.engine->addSubscription(
        makeSub(QStringLiteral("paid"), QStringLiteral("orders"),
                R"({"operationType": "update", "updateDescription.updatedFields.status": "paid"})"));
    f.engine->addSubscription(
        makeSub(QStringLiteral("big"), QStringLiteral("orders"), R"({"fullDocument.total": {"$gte": 100}})"));
    f.engine->addSubscription(makeSub(QStringLiteral("gold"), QStringLiteral("customers"),
                                      R"({"fullDocument.tier": {"$in": ["gold", "platinum"]}})"));
    f.engine->addSubscription(makeSub(QStringLiteral("all"), QString(), "{}"));
    QVERIFY(f.engine->addSource(QStringLiteral("shop"), QStringLiteral("sqlite:") + db()));
    f.engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("orders")});
    f.engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("customers")});
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);

    QCOMPARE(runSqlite3(
                 db(),
                 QStringLiteral("INSERT INTO orders(status,total) VALUES('pending', 50), ('pending', 150);"
                                "INSERT INTO customers(name,tier) VALUES('Ada','gold'), ('Bo','standard');")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 4, 10000);
    QCOMPARE(runSqlite3(db(), QStringLiteral("UPDATE orders SET status='paid' WHERE id=1;"
                                             "UPDATE orders SET status='shipped' WHERE id=2;")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 6, 10000);

    QCOMPARE(f.routed.value(QStringLiteral("all")).size(), 6);
    QCOMPARE(f.routed.value(QStringLiteral("paid")).size(), 1);
    QCOMPARE(fieldJson(f.routed.value(QStringLiteral("paid"))[0].documentKey(), "_id"), QStringLiteral("1"));
    // total >= 100: the insert of order 2 and its update (fullDocument carries the row)
    QCOMPARE(f.routed.value(QStringLiteral("big")).size(), 2);
    QCOMPARE(f.routed.value(QStringLiteral("gold")).size(), 1);
    QCOMPARE(fieldJson(f.routed.value(QStringLiteral("gold"))[0].fullDocument(), "name"),
             QStringLiteral("\"Ada\""));
    QVERIFY(f.seqStrictlyIncreasing());
    // Routed events are the same shared objects as the committed ones: rendered once.
    QCOMPARE(f.routed.value(QStringLiteral("paid"))[0].toJson().constData(),
             std::find_if(f.events.cbegin(), f.events.cend(),
                          [&](const ChangeEvent& e) {
                              return e.seq() == f.routed.value(QStringLiteral("paid"))[0].seq();
                          })
                 ->toJson()
                 .constData());
}

void TestEngine::subscriptionsSurviveRestart() {
    {
        EngineFixture f(journal());
        QVERIFY(f.start());
        f.engine->addSubscription(
            makeSub(QStringLiteral("keep"), QStringLiteral("orders"), R"({"operationType": "insert"})"));
        Subscription adhoc = makeSub(QStringLiteral("adhoc"), QStringLiteral("orders"), "{}");
        adhoc.persistent = false;
        f.engine->addSubscription(adhoc);
        QCOMPARE(f.engine->subscriptions().size(), 2);
        // No wait needed: stop() is queued behind the journal writes on the engine thread.
    }
    EngineFixture f(journal());
    QVERIFY(f.start());
    const SubscriptionList subs = f.engine->subscriptions();
    QCOMPARE(subs.size(), 1);
    QCOMPARE(subs[0].id, QStringLiteral("keep"));
    // And it routes at once.
    QVERIFY(f.engine->addSource(QStringLiteral("shop"), QStringLiteral("sqlite:") + db()));
    f.engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("orders")});
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('x', 1)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.routed.value(QStringLiteral("keep")).size(), 1, 10000);
    QVERIFY(f.engine->removeSubscription(QStringLiteral("keep")));
    QVERIFY(!f.engine->removeSubscription(QStringLiteral("keep")));
    QVERIFY(!f.engine->subscription(QStringLiteral("keep")).has_value());
}

// The journal keeps a subscription as the spec the engine wrote and never reads it; the
// engine does, and skips one it cannot read with a warning that names it.
void TestEngine::aStoredSubscriptionThatCannotBeReadIsSkipped() {
    {
        EngineFixture f(journal());
        QVERIFY(f.start());
        f.engine->addSubscription(
            makeSub(QStringLiteral("keep"), QStringLiteral("orders"), R"({"operationType": "insert"})"));
    }
    QCOMPARE(runSqlite3(
                 journal(),
                 QStringLiteral(R"(INSERT INTO subscriptions(id, spec) VALUES('broken', '{"filter": 7}'))")),
             QString());
    QTest::ignoreMessage(QtWarningMsg,
                         "ignoring a stored subscription broken: filter: must be a query object");
    EngineFixture f(journal());
    QVERIFY(f.start());
    const SubscriptionList subs = f.engine->subscriptions();
    QCOMPARE(subs.size(), 1);
    QCOMPARE(subs[0].id, QStringLiteral("keep"));
}

void TestEngine::gapReachesEverySubscriptionOfItsNamespace() {
    EngineFixture f(journal());
    QVERIFY(f.start());
    f.engine->addSubscription(
        makeSub(QStringLiteral("inserts"), QStringLiteral("orders"), R"({"operationType": "insert"})"));
    f.engine->addSubscription(makeSub(QStringLiteral("customers"), QStringLiteral("customers"), "{}"));
    ChangeBatch b;
    b.sourceId = QStringLiteral("shop");
    b.events = {ChangeEvent::makeGap(QStringLiteral("shop"),
                                     Namespace{QStringLiteral("main"), QStringLiteral("orders")},
                                     QStringLiteral("history lost"))};
    f.engine->submit(b);
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 10000);
    QCOMPARE(f.routed.value(QStringLiteral("inserts")).size(), 1); // a gap passes any filter of its namespace
    QCOMPARE(f.routed.value(QStringLiteral("customers")).size(), 0);
    QCOMPARE(parseJson(f.events[0].toJson()).value(QLatin1String("reason")).toString(),
             QStringLiteral("history lost"));
}

void TestEngine::journalWriteFailureIsRetriedWithoutLoss() {
    EngineFixture f(journal());
    QVERIFY(f.start());
    QSignalSpy failed(f.engine.get(), &Engine::journalFailed);
    // Another connection holds the journal's write lock longer than the busy timeout.
    sqlite3* holder = nullptr;
    QCOMPARE(sqlite3_open(QFile::encodeName(journal()).constData(), &holder), SQLITE_OK);
    QCOMPARE(sqlite3_exec(holder, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    for (int round = 0; round < 3; ++round) {
        ChangeBatch b;
        b.sourceId = QStringLiteral("shop");
        for (int i = 0; i < 10; ++i)
            b.events.append(makeEvent(QStringLiteral("shop"), QStringLiteral("orders"), round * 10 + i));
        b.checkpoint.token = QByteArray::number(round);
        f.engine->submit(b);
    }
    QVERIFY(failed.wait(20000));
    QCOMPARE(f.events.size(), 0);
    sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(holder);
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 30, 20000);
    QVERIFY(f.seqStrictlyIncreasing());
    QCOMPARE(f.events.first().seq(), 1);
    QCOMPARE(f.events.last().seq(), 30);
    // In submission order.
    for (int i = 0; i < 30; ++i)
        QCOMPARE(fieldJson(f.events[i].documentKey(), "_id"), QString::number(i));
}

void TestEngine::secondEngineOnTheSameJournalIsRefused() {
    EngineFixture first(journal());
    QVERIFY(first.start());
    EngineFixture second(journal());
    QString error;
    QVERIFY(!second.start(&error));
    QVERIFY2(error.contains(QLatin1String("in use by another Tidewatch")), qPrintable(error));
}

void TestEngine::groupCommitSharesOneTransaction() {
    EngineFixture f(journal());
    QVERIFY(f.start());
    // Batches queued back to back reach the engine together and commit together.
    for (int round = 0; round < 50; ++round) {
        ChangeBatch b;
        b.sourceId = QStringLiteral("shop");
        b.events = {makeEvent(QStringLiteral("shop"), QStringLiteral("orders"), round)};
        f.engine->submit(b);
    }
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 50, 10000);
    QVERIFY2(f.engine->commits() < 50, qPrintable(QString::number(f.engine->commits())));
    QCOMPARE(f.engine->eventsCommitted(), 50);
}

// A source removed while the batch that carries its first narrowing still waits to be
// committed (the journal cannot be written): its period ends all the same, with a row
// that reads nothing.
void TestEngine::removingASourceEndsAPeriodStillUncommitted() {
    EngineFixture f(journal());
    QVERIFY(f.start());
    QVERIFY(f.engine->addSource(QStringLiteral("shop"), QStringLiteral("sqlite:") + db()));
    f.engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("orders")});
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    // Emitted on the engine's thread: flags set on this one.
    bool failed = false;
    bool removed = false;
    QObject receiver;
    connect(
        f.engine.get(), &Engine::journalFailed, &receiver, [&failed] { failed = true; },
        Qt::QueuedConnection);
    connect(
        f.engine.get(), &Engine::sourceRemoved, &receiver, [&removed] { removed = true; },
        Qt::QueuedConnection);
    // Another connection holds the journal's write lock longer than the busy timeout.
    sqlite3* holder = nullptr;
    QCOMPARE(sqlite3_open(QFile::encodeName(journal()).constData(), &holder), SQLITE_OK);
    QCOMPARE(sqlite3_exec(holder, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

    WatchOptions::Reader reader;
    reader.ns = Namespace{QStringLiteral("main"), QStringLiteral("orders")};
    reader.matchesEverything = true;
    const QByteArray narrowed =
        SourceReading::toJson({ScopeReading{Namespace{QStringLiteral("main"), {}}, {reader}}});
    ChangeBatch b;
    b.sourceId = QStringLiteral("shop");
    b.events = {makeEvent(QStringLiteral("shop"), QStringLiteral("orders"), 1)};
    b.narrowings.append(SourceNarrowing{0, narrowed});
    f.engine->submit(b);
    QTRY_VERIFY_WITH_TIMEOUT(failed, 20000);
    f.engine->removeSource(QStringLiteral("shop"));
    QTRY_VERIFY_WITH_TIMEOUT(removed, 20000);
    sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(holder);
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    f.stop();

    JournalReader journalReader;
    QString error;
    QVERIFY2(journalReader.open(journal(), &error), qPrintable(error));
    const QList<JournalReader::Narrowing> rows = journalReader.narrowings(&error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QList<QByteArray> readings;
    for (const JournalReader::Narrowing& n : rows)
        if (n.sourceId == QLatin1String("shop"))
            readings.append(n.reading);
    QCOMPARE(readings, (QList<QByteArray>{narrowed, SourceReading::toJson({})}));
}

QTEST_GUILESS_MAIN(TestEngine)
#include "tst_engine.moc"

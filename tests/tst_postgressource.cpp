#include "PgSuite.h"

#include "sources/postgres/PostgresSource.h"
#include "sources/SourceFactory.h"

#include <QJsonArray>
#include <QProcess>
#include <QtTest>

#include <atomic>
#include <thread>

#include <libpq-fe.h>

using namespace tw;
using namespace tw::test;
using tw::testsupport::PgCluster;

// The PostgreSQL source against a real throwaway cluster (initdb, pg_ctl): writes
// come from other connections, changes arrive through a pgoutput slot.
class TestPostgresSource : public QObject, public PgSuite {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void insertUpdateDeleteFromAnotherConnection();
    void typesMapToBson();
    void replicaIdentityDefaultListsTheNewRow();
    void replicaIdentityFullGivesExactUpdatesAndBeforeImages();
    void unchangedToastedValuesAreNeitherChangedNorNull();
    void truncateGivesOneEventPerTable();
    void aTransactionOfManyRowsIsCommittedTogether();
    void restartResumesExactlyOnce();
    void serverStopAndStartBacksOffAndLosesNothing();
    void unknownTableAndViewAreClearErrors();
    void browsingListsTablesViewsAndPartitions();
    void walLevelReplicaIsExplained();
    void roleWithoutReplicationIsExplained();
    void replicationTakenAwayGivesAGapThenPolls();
    void invalidatedSlotGivesOneGapThenLive();
    void badConnectionStringIsAClearError();
    void killNineMidStreamTwentyTimesDeliversEachChangeOnce();

private:
    static QJsonObject json(const ChangeEvent& e) { return parseJson(e.toJson()); }
    static QJsonObject updatedFields(const ChangeEvent& e) {
        return json(e)
            .value(QLatin1String("updateDescription"))
            .toObject()
            .value(QLatin1String("updatedFields"))
            .toObject();
    }
};

void TestPostgresSource::initTestCase() {
    const QString error = startCluster();
    QVERIFY2(error.isEmpty(), qPrintable(error));
}

void TestPostgresSource::init() {
    makeCaseDir();
    if (!m_cluster->isRunning())
        QCOMPARE(m_cluster->start(), QString());
}

void TestPostgresSource::insertUpdateDeleteFromAnotherConnection() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE orders(id int PRIMARY KEY, status text, total numeric);"
                                 "INSERT INTO orders VALUES (1, 'pending', 10.5), (2, 'paid', 20)")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("ops"), QStringLiteral("orders")));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(f.ready.first().toString(), QStringLiteral("tidewatch.public.orders"));

    QCOMPARE(exec(QStringLiteral("INSERT INTO orders VALUES (3, 'pending', 99.5)")), QString());
    QCOMPARE(exec(QStringLiteral("UPDATE orders SET status = 'shipped' WHERE id = 1")), QString());
    QCOMPARE(exec(QStringLiteral("DELETE FROM orders WHERE id = 2")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 20000);

    const QJsonObject ins = json(f.events[0]);
    QCOMPARE(f.events[0].operation(), Operation::Insert);
    QCOMPARE(f.events[0].ns().toString(), QStringLiteral("tidewatch.public.orders"));
    QCOMPARE(ins.value(QLatin1String("documentKey")).toObject(), QJsonObject({{QStringLiteral("id"), 3}}));
    QCOMPARE(ins.value(QLatin1String("fullDocument")).toObject().value(QLatin1String("status")).toString(),
             QStringLiteral("pending"));
    QCOMPARE(fieldJson(f.events[0].fullDocument(), "total"), QStringLiteral("{\"$numberDecimal\":\"99.5\"}"));
    QVERIFY(f.events[0].wallTimeMs() > QDateTime::currentMSecsSinceEpoch() - 600000);
    QVERIFY(!f.events[0].clusterTime().isNull());

    QCOMPARE(f.events[1].operation(), Operation::Update);
    QCOMPARE(fieldJson(f.events[1].documentKey(), "id"), QStringLiteral("1"));
    QCOMPARE(fieldJson(f.events[1].fullDocument(), "status"), QStringLiteral("\"shipped\""));

    QCOMPARE(f.events[2].operation(), Operation::Delete);
    QCOMPARE(fieldJson(f.events[2].documentKey(), "id"), QStringLiteral("2"));
    QVERIFY(f.events[2].fullDocument().isAbsent());
    QVERIFY(f.seqStrictlyIncreasing());

    // The slot is told only what the journal holds: it confirms up to the last commit.
    const QString slot = PgSlotName::forJournal(f.engine->journalId(), QStringLiteral("ops"));
    QTRY_VERIFY_WITH_TIMEOUT(m_cluster->value(QStringLiteral("SELECT confirmed_flush_lsn >= "
                                                             "pg_current_wal_lsn() - 100000 FROM "
                                                             "pg_replication_slots WHERE slot_name = '%1'")
                                                  .arg(slot)) == QLatin1String("t"),
                             20000);
}

void TestPostgresSource::typesMapToBson() {
    QCOMPARE(
        exec(QStringLiteral(
            "CREATE TYPE mood AS ENUM ('sad', 'happy');"
            "CREATE TABLE typed(id bigint PRIMARY KEY, i2 int2, i4 int4, f4 real, f8 float8, n numeric, b "
            "bool,"
            " t text, v varchar(10), e mood, tz timestamptz, ts timestamp, d date, u uuid, by bytea, j json,"
            " jb jsonb, ai int[], at text[], iv interval, pt point)")),
        QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("types"), QStringLiteral("typed")));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(
        exec(QStringLiteral(
            "INSERT INTO typed VALUES (9000000000, -3, 42, 1.5, 0.25, 123.4500, true, 'x', 'y', 'happy',"
            " '2026-12-01 12:00:00.25+01', '2026-12-01 12:00:00', '2026-12-01',"
            " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x0102ff', '{\"a\": 1}', '{\"b\": [true, null]}',"
            " '{1,2,NULL}', '{\"p q\",r}', '1 day', '(1,2)')")),
        QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    const Bson doc = f.events[0].fullDocument();
    const QString canonical = QString::fromUtf8(doc.toJson(Bson::JsonMode::Canonical));
    const auto has = [&](const char* part) {
        QVERIFY2(canonical.contains(QLatin1String(part)),
                 qPrintable(canonical + QStringLiteral(" lacks ") + QLatin1String(part)));
    };
    has(R"("id" : { "$numberLong" : "9000000000" })");
    has(R"("i2" : { "$numberInt" : "-3" })");
    has(R"("i4" : { "$numberInt" : "42" })");
    has(R"("f4" : { "$numberDouble" : "1.5" })");
    has(R"("f8" : { "$numberDouble" : "0.25" })");
    has(R"("n" : { "$numberDecimal" : "123.4500" })");
    has(R"("b" : true)");
    has(R"("t" : "x")");
    has(R"("v" : "y")");
    has(R"("e" : "happy")");
    has(R"("tz" : { "$date" : { "$numberLong" : "1796122800250" } })");
    has(R"("ts" : { "$date" : { "$numberLong" : "1796126400000" } })");
    has(R"("d" : { "$date" : { "$numberLong" : "1796083200000" } })");
    has(R"("u" : { "$binary" : { "base64" : "oO68mZwLTvi7bWu5vTgKEQ==", "subType" : "04" } })");
    has(R"("by" : { "$binary" : { "base64" : "AQL/", "subType" : "00" } })");
    has(R"("j" : { "a" : { "$numberInt" : "1" } })");
    has(R"("jb" : { "b" : [ true, null ] })");
    has(R"("ai" : [ { "$numberInt" : "1" }, { "$numberInt" : "2" }, null ])");
    has(R"("at" : [ "p q", "r" ])");
    has(R"("iv" : "P1D")");
    has(R"x("pt" : "(1,2)")x");
    QCOMPARE(fieldJson(f.events[0].documentKey(), "id"), QStringLiteral("9000000000"));
}

void TestPostgresSource::replicaIdentityDefaultListsTheNewRow() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE plain(id int PRIMARY KEY, a text, b text);"
                                 "INSERT INTO plain VALUES (1, 'a', 'b')")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("plain"), QStringLiteral("plain")));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("UPDATE plain SET a = 'A' WHERE id = 1")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    // Without the old row, every column of the new one is reported; the status says why.
    QCOMPARE(updatedFields(f.events[0]), QJsonObject({{QStringLiteral("id"), 1},
                                                      {QStringLiteral("a"), QStringLiteral("A")},
                                                      {QStringLiteral("b"), QStringLiteral("b")}}));
    QVERIFY(f.events[0].fullDocumentBeforeChange().isAbsent());
    QTRY_VERIFY_WITH_TIMEOUT(!f.statuses.isEmpty() &&
                                 f.statuses.last().reason.contains(QLatin1String("REPLICA IDENTITY FULL")),
                             20000);
}

void TestPostgresSource::replicaIdentityFullGivesExactUpdatesAndBeforeImages() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE fullid(id int PRIMARY KEY, a text, b int);"
                                 "ALTER TABLE fullid REPLICA IDENTITY FULL;"
                                 "INSERT INTO fullid VALUES (1, 'a', 5)")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("fullid"), QStringLiteral("fullid")));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("UPDATE fullid SET b = 6 WHERE id = 1")), QString());
    QCOMPARE(exec(QStringLiteral("DELETE FROM fullid WHERE id = 1")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 20000);
    QCOMPARE(updatedFields(f.events[0]), QJsonObject({{QStringLiteral("b"), 6}}));
    QCOMPARE(json(f.events[0]).value(QLatin1String("documentKey")).toObject(),
             QJsonObject({{QStringLiteral("id"), 1}}));
    QCOMPARE(fieldJson(f.events[0].fullDocumentBeforeChange(), "b"), QStringLiteral("5"));
    QCOMPARE(f.events[1].operation(), Operation::Delete);
    QCOMPARE(json(f.events[1]).value(QLatin1String("documentKey")).toObject(),
             QJsonObject({{QStringLiteral("id"), 1}}));
    QCOMPARE(fieldJson(f.events[1].fullDocumentBeforeChange(), "a"), QStringLiteral("\"a\""));
}

void TestPostgresSource::unchangedToastedValuesAreNeitherChangedNorNull() {
    // 200 md5 strings: 6 400 bytes that do not compress, so they are stored out of line.
    QCOMPARE(exec(QStringLiteral("CREATE TABLE toasty(id int PRIMARY KEY, big text, n int);"
                                 "CREATE TABLE toastyfull(id int PRIMARY KEY, big text, n int);"
                                 "ALTER TABLE toastyfull REPLICA IDENTITY FULL;"
                                 "INSERT INTO toasty SELECT 1, string_agg(md5(i::text), ''), 0 "
                                 "FROM generate_series(1, 200) i;"
                                 "INSERT INTO toastyfull SELECT * FROM toasty")),
             QString());
    const QString big = m_cluster->value(QStringLiteral("SELECT big FROM toasty"));
    QCOMPARE(big.size(), 6400);
    EngineFixture f(journalPath());
    QVERIFY(f.start());
    QVERIFY(f.engine->addSource(QStringLiteral("toast"), m_cluster->uri()));
    f.engine->watch(QStringLiteral("toast"),
                    Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.toasty")});
    f.engine->watch(QStringLiteral("toast"),
                    Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.toastyfull")});
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 2, 20000);
    QCOMPARE(exec(QStringLiteral("UPDATE toasty SET n = 1; UPDATE toastyfull SET n = 1")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 20000);
    for (const ChangeEvent& e : std::as_const(f.events)) {
        QCOMPARE(updatedFields(e).value(QLatin1String("n")).toInt(), 1);
        QVERIFY2(!updatedFields(e).contains(QLatin1String("big")), e.toJson().constData());
        const QJsonObject full = json(e).value(QLatin1String("fullDocument")).toObject();
        if (e.ns().coll == QLatin1String("public.toastyfull"))
            QCOMPARE(full.value(QLatin1String("big")).toString(), big); // from the old row
        else
            QVERIFY2(!full.contains(QLatin1String("big")), e.toJson().constData()); // left out, not null
    }
}

void TestPostgresSource::truncateGivesOneEventPerTable() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE t1(id int PRIMARY KEY); CREATE TABLE t2(id int PRIMARY KEY);"
                                 "INSERT INTO t1 VALUES (1); INSERT INTO t2 VALUES (1)")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(f.start());
    QVERIFY(f.engine->addSource(QStringLiteral("trunc"), m_cluster->uri()));
    f.engine->watch(QStringLiteral("trunc"),
                    Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.t1")});
    f.engine->watch(QStringLiteral("trunc"),
                    Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.t2")});
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 2, 20000);
    QCOMPARE(exec(QStringLiteral("TRUNCATE t1, t2")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 20000);
    QSet<QString> tables;
    for (const ChangeEvent& e : std::as_const(f.events)) {
        QCOMPARE(e.operationType(), QByteArray("truncate"));
        tables.insert(e.ns().coll);
    }
    QCOMPARE(tables, (QSet<QString>{QStringLiteral("public.t1"), QStringLiteral("public.t2")}));
}

void TestPostgresSource::aTransactionOfManyRowsIsCommittedTogether() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE many(id int PRIMARY KEY, v text)")), QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("many"), QStringLiteral("many")));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    constexpr int kRows = 3000;
    QCOMPARE(
        exec(QStringLiteral("INSERT INTO many SELECT i, 'v' || i FROM generate_series(1, %1) i").arg(kRows)),
        QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), kRows, 30000);
    // One transaction, one commit to the journal: no reader sees half of it.
    bool together = false;
    for (const QList<ChangeEvent>& commit : std::as_const(f.commits))
        together = together || commit.size() == kRows;
    QVERIFY(together);
    for (int i = 0; i < kRows; ++i)
        QCOMPARE(fieldJson(f.events[i].documentKey(), "id"), QString::number(i + 1));
}

void TestPostgresSource::restartResumesExactlyOnce() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE resume(id int PRIMARY KEY)")), QString());
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatching(f, QStringLiteral("resume"), QStringLiteral("resume")));
        QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
        for (int i = 1; i <= 5; ++i)
            QCOMPARE(exec(QStringLiteral("INSERT INTO resume VALUES (%1)").arg(i)), QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 5, 20000);
    }
    // Closed: five more commits.
    for (int i = 6; i <= 10; ++i)
        QCOMPARE(exec(QStringLiteral("INSERT INTO resume VALUES (%1)").arg(i)), QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("resume"), QStringLiteral("resume")));
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 5, 20000);
    for (int i = 0; i < 5; ++i)
        QCOMPARE(fieldJson(f.events[i].documentKey(), "id"), QString::number(i + 6));
    QCOMPARE(f.events.first().seq(), 6);
    // A marker written last: when it arrives, anything repeated would have come before it.
    QCOMPARE(exec(QStringLiteral("INSERT INTO resume VALUES (11)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 6, 20000);
    QCOMPARE(fieldJson(f.events.last().documentKey(), "id"), QStringLiteral("11"));
}

void TestPostgresSource::serverStopAndStartBacksOffAndLosesNothing() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE bounce(id int PRIMARY KEY)")), QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("bounce"), QStringLiteral("bounce")));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("INSERT INTO bounce SELECT generate_series(1, 100)")), QString());
    QCOMPARE(m_cluster->stop(), QString());
    QTRY_VERIFY_WITH_TIMEOUT(!f.statuses.isEmpty() && f.statuses.last().state == SourceStatus::State::Backoff,
                             20000);
    QCOMPARE(m_cluster->start(), QString());
    QCOMPARE(exec(QStringLiteral("INSERT INTO bounce SELECT generate_series(101, 200)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 200, 60000);
    QSet<QString> ids;
    for (const ChangeEvent& e : std::as_const(f.events))
        ids.insert(fieldJson(e.documentKey(), "id"));
    QCOMPARE(ids.size(), 200);
    QTRY_VERIFY_WITH_TIMEOUT(f.statuses.last().state == SourceStatus::State::Watching, 20000);
    QVERIFY(f.statuses.last().reconnects >= 1);
}

void TestPostgresSource::unknownTableAndViewAreClearErrors() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE real_one(id int PRIMARY KEY);"
                                 "CREATE VIEW a_view AS SELECT * FROM real_one")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("errs"), QStringLiteral("nope")));
    QTRY_COMPARE_WITH_TIMEOUT(f.watchErrors.size(), 1, 20000);
    QVERIFY2(f.watchErrors[0].contains(QLatin1String("No table \"public.nope\"")) &&
                 f.watchErrors[0].contains(QLatin1String("public.real_one")),
             qPrintable(f.watchErrors[0]));
    f.engine->watch(QStringLiteral("errs"),
                    Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.a_view")});
    QTRY_COMPARE_WITH_TIMEOUT(f.watchErrors.size(), 2, 20000);
    QVERIFY2(f.watchErrors[1].contains(QLatin1String("is a view")), qPrintable(f.watchErrors[1]));
}

void TestPostgresSource::browsingListsTablesViewsAndPartitions() {
    QCOMPARE(exec(QStringLiteral("CREATE SCHEMA shop; CREATE TABLE shop.items(id int PRIMARY KEY);"
                                 "CREATE VIEW shop.cheap AS SELECT * FROM shop.items;"
                                 "CREATE TABLE shop.logs(at date) PARTITION BY RANGE (at);"
                                 "CREATE TABLE shop.logs_2026 PARTITION OF shop.logs "
                                 "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(f.start());
    QVERIFY(f.engine->addSource(QStringLiteral("browse"), m_cluster->uri()));
    QList<QList<NamespaceInfo>> listed;
    connect(
        f.engine.get(), &Engine::namespacesListed, this,
        [&](const QString&, const QString&, const QList<NamespaceInfo>& list, const QString& error) {
            QVERIFY2(error.isEmpty(), qPrintable(error));
            listed.append(list);
        },
        Qt::QueuedConnection);
    f.engine->listNamespaces(QStringLiteral("browse"), QString());
    QTRY_COMPARE_WITH_TIMEOUT(listed.size(), 1, 20000);
    QCOMPARE(listed[0].size(), 1);
    QCOMPARE(listed[0][0].ns.db, QStringLiteral("tidewatch"));
    f.engine->listNamespaces(QStringLiteral("browse"), QStringLiteral("tidewatch.shop"));
    QTRY_COMPARE_WITH_TIMEOUT(listed.size(), 2, 20000);
    QHash<QString, QString> kinds;
    for (const NamespaceInfo& info : std::as_const(listed[1]))
        kinds.insert(info.ns.coll, info.kind);
    QCOMPARE(kinds.value(QStringLiteral("shop.items")), QStringLiteral("table"));
    QCOMPARE(kinds.value(QStringLiteral("shop.cheap")), QStringLiteral("view"));
    QCOMPARE(kinds.value(QStringLiteral("shop.logs")), QStringLiteral("table"));
    QCOMPARE(kinds.value(QStringLiteral("shop.logs_2026")), QStringLiteral("partition"));
    QCOMPARE(kinds.size(), 4);
}

void TestPostgresSource::walLevelReplicaIsExplained() {
    PgCluster::Options options;
    options.walLevel = QStringLiteral("replica");
    PgCluster replica(options);
    QCOMPARE(replica.start(), QString());
    QCOMPARE(replica.exec(QStringLiteral("CREATE TABLE orders(id int PRIMARY KEY)")), QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("replica"), QStringLiteral("orders"), {}, replica.uri()));
    // The explanation stays in the status while the table is polled instead.
    QTRY_VERIFY_WITH_TIMEOUT(!f.statuses.isEmpty() && f.statuses.last().state == SourceStatus::State::Polling,
                             20000);
    const QString reason = f.statuses.last().reason;
    QVERIFY2(reason.contains(QLatin1String("wal_level is 'replica'")) &&
                 reason.contains(QLatin1String("ALTER SYSTEM SET wal_level = logical")),
             qPrintable(reason));
}

void TestPostgresSource::roleWithoutReplicationIsExplained() {
    QCOMPARE(exec(QStringLiteral("CREATE ROLE plainuser LOGIN; CREATE TABLE guarded(id int PRIMARY KEY)")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(f.start());
    QVERIFY(f.engine->addSource(
        QStringLiteral("norepl"),
        QStringLiteral("postgresql://plainuser@127.0.0.1:%1/tidewatch").arg(m_cluster->port())));
    QTRY_VERIFY_WITH_TIMEOUT(!f.statuses.isEmpty() && f.statuses.last().state == SourceStatus::State::Polling,
                             20000);
    const QString reason = f.statuses.last().reason;
    QVERIFY2(reason.contains(QLatin1String("lacks the REPLICATION attribute")) &&
                 reason.contains(QLatin1String("ALTER ROLE \"plainuser\" REPLICATION")),
             qPrintable(reason));
}

void TestPostgresSource::replicationTakenAwayGivesAGapThenPolls() {
    QCOMPARE(exec(QStringLiteral(
                 "CREATE ROLE flipper LOGIN REPLICATION; CREATE TABLE flipped(id int PRIMARY KEY);"
                 "GRANT SELECT ON flipped TO flipper; GRANT CREATE ON DATABASE tidewatch TO flipper;"
                 "ALTER TABLE flipped OWNER TO flipper")),
             QString());
    const QString uri = QStringLiteral("postgresql://flipper@127.0.0.1:%1/tidewatch").arg(m_cluster->port());
    const Namespace ns{QStringLiteral("tidewatch"), QStringLiteral("public.flipped")};
    {
        EngineFixture f(journalPath());
        QVERIFY(f.start());
        QVERIFY(f.engine->addSource(QStringLiteral("flip"), uri));
        f.engine->watch(QStringLiteral("flip"), ns);
        QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
        QCOMPARE(exec(QStringLiteral("INSERT INTO flipped VALUES (1)")), QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    }
    // Closed, the attribute is taken away and a row is written.
    QCOMPARE(exec(QStringLiteral("ALTER ROLE flipper NOREPLICATION; INSERT INTO flipped VALUES (2)")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(f.start());
    QVERIFY(f.engine->addSource(QStringLiteral("flip"), uri));
    f.engine->watch(QStringLiteral("flip"), ns);
    // Row 2 cannot be read without the slot: one gap says so, then polling goes on.
    QTRY_VERIFY_WITH_TIMEOUT(!f.ofOperation(Operation::Gap).isEmpty(), 20000);
    const ChangeEvent gap = f.ofOperation(Operation::Gap).first();
    QCOMPARE(gap.ns().toString(), ns.toString());
    QVERIFY2(gap.reason().contains(QLatin1String("no longer possible")) &&
                 gap.reason().contains(QLatin1String("slot")),
             qPrintable(gap.reason()));
    QTRY_VERIFY_WITH_TIMEOUT(!f.statuses.isEmpty() && f.statuses.last().state == SourceStatus::State::Polling,
                             20000);
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("INSERT INTO flipped VALUES (3)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.ofOperation(Operation::Insert).size(), 1, 20000);
    QCOMPARE(fieldJson(f.ofOperation(Operation::Insert).first().documentKey(), "id"), QStringLiteral("3"));
    QCOMPARE(f.ofOperation(Operation::Gap).size(), 1);
}

void TestPostgresSource::invalidatedSlotGivesOneGapThenLive() {
    PgCluster::Options options;
    options.settings = {QStringLiteral("max_slot_wal_keep_size = 1MB"), QStringLiteral("wal_keep_size = 0"),
                        QStringLiteral("max_wal_size = 32MB"), QStringLiteral("min_wal_size = 32MB")};
    PgCluster small(options);
    QCOMPARE(small.start(), QString());
    QCOMPARE(small.exec(QStringLiteral("CREATE TABLE lossy(id int PRIMARY KEY, pad text)")), QString());
    QString slot;
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatching(f, QStringLiteral("lossy"), QStringLiteral("lossy"), {}, small.uri()));
        slot = PgSlotName::forJournal(f.engine->journalId(), QStringLiteral("lossy"));
        QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
        QCOMPARE(small.exec(QStringLiteral("INSERT INTO lossy VALUES (1, 'a')")), QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    }
    // Closed: the server writes past max_slot_wal_keep_size and drops the slot's WAL.
    for (int round = 0;
         round < 20 &&
         small.value(QStringLiteral("SELECT wal_status FROM pg_replication_slots WHERE slot_name = "
                                    "'%1'")
                         .arg(slot)) != QLatin1String("lost");
         ++round)
        QCOMPARE(
            small.exec(QStringLiteral("INSERT INTO lossy SELECT i, repeat('x', 500) FROM generate_series("
                                      "%1, %1 + 4999) i; SELECT pg_switch_wal(); CHECKPOINT")
                           .arg(100000 * (round + 1))),
            QString());
    QCOMPARE(small.value(QStringLiteral("SELECT wal_status FROM pg_replication_slots WHERE slot_name = "
                                        "'%1'")
                             .arg(slot)),
             QStringLiteral("lost"));
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("lossy"), QStringLiteral("lossy"), {}, small.uri()));
    QTRY_COMPARE_WITH_TIMEOUT(f.ofOperation(Operation::Gap).size(), 1, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(small.exec(QStringLiteral("INSERT INTO lossy VALUES (2, 'live')")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.ofOperation(Operation::Insert).size(), 1, 20000);
    QCOMPARE(fieldJson(f.ofOperation(Operation::Insert)[0].documentKey(), "id"), QStringLiteral("2"));
    QCOMPARE(f.ofOperation(Operation::Gap).size(), 1);
    QVERIFY2(f.ofOperation(Operation::Gap)[0].reason().contains(QLatin1String("max_slot_wal_keep_size")),
             qPrintable(f.ofOperation(Operation::Gap)[0].reason()));
}

void TestPostgresSource::badConnectionStringIsAClearError() {
    QString error;
    QVERIFY(!SourceFactory::create(
        QStringLiteral("x"), QStringLiteral("postgresql://app:hunter2@db/shop?nosuchoption=1"), &error));
    QVERIFY2(error.contains(QLatin1String("not a PostgreSQL connection string")) &&
                 !error.contains(QLatin1String("hunter2")),
             qPrintable(error));
    std::unique_ptr<Source> ok(
        SourceFactory::create(QStringLiteral("x"), QStringLiteral("host=db dbname=shop"), &error));
    QVERIFY2(ok, qPrintable(error));
}

namespace {

// Reads NDJSON lines from a headless process's stdout as they come.
struct LineReader {
    QProcess& process;
    QByteArray pending;
    QList<QJsonObject> lines;
    void poll() {
        pending += process.readAllStandardOutput();
        qsizetype nl;
        while ((nl = pending.indexOf('\n')) >= 0) {
            lines.append(QJsonDocument::fromJson(pending.left(nl)).object());
            pending.remove(0, nl + 1);
        }
    }
};

} // namespace

void TestPostgresSource::killNineMidStreamTwentyTimesDeliversEachChangeOnce() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE kn(id int PRIMARY KEY, counter int NOT NULL)")), QString());
    qputenv("TIDEWATCH_DATA_DIR", m_dir->filePath(QStringLiteral("data")).toLocal8Bit());
    const QStringList args{QStringLiteral("--headless"),
                           QStringLiteral("--source"),
                           m_cluster->uri(),
                           QStringLiteral("--watch"),
                           QStringLiteral("public.kn"),
                           QStringLiteral("--journal"),
                           journalPath()};

    // A first run makes the slot: every change from its "ready" on must arrive.
    {
        QProcess p;
        p.start(QStringLiteral(TIDEWATCH_BINARY), args);
        QVERIFY(p.waitForStarted());
        QByteArray log;
        QTRY_VERIFY_WITH_TIMEOUT((log += p.readAllStandardError(), log.contains("tidewatch: ready: ")),
                                 30000);
        p.kill();
        QVERIFY(p.waitForFinished(10000));
    }

    // Writes go on in their own connection for the whole test: new rows, and updates
    // that bump a per-row counter, each in its own transaction.
    std::atomic<bool> writing{true};
    std::atomic<int> rows{0};
    const QByteArray conninfo = m_cluster->conninfo().toUtf8();
    std::thread writer([&] {
        PGconn* conn = PQconnectdb(conninfo.constData());
        for (int i = 1; writing.load() && PQstatus(conn) == CONNECTION_OK; ++i) {
            const QByteArray sql = QStringLiteral("INSERT INTO kn VALUES (%1, 0); "
                                                  "UPDATE kn SET counter = counter + 1 WHERE id = %2")
                                       .arg(i)
                                       .arg((i + 1) / 2)
                                       .toUtf8();
            PQclear(PQexec(conn, sql.constData())); // two statements, two transactions
            rows.store(i);
        }
        PQfinish(conn);
    });
    const auto stopWriter = qScopeGuard([&] {
        writing.store(false);
        if (writer.joinable())
            writer.join();
    });

    for (int round = 0; round < 20; ++round) {
        QProcess p;
        p.start(QStringLiteral(TIDEWATCH_BINARY), args);
        QVERIFY(p.waitForStarted());
        LineReader reader{p, {}, {}};
        // Killed once it has printed a few changes: mid-stream, writes still coming.
        QTRY_VERIFY_WITH_TIMEOUT((reader.poll(), reader.lines.size() >= 10 || p.state() != QProcess::Running),
                                 30000);
        QCOMPARE(p.state(), QProcess::Running);
        p.kill(); // SIGKILL
        QVERIFY(p.waitForFinished(10000));
    }
    writing.store(false);
    writer.join();
    const int written = rows.load();
    QVERIFY(written > 20);
    QCOMPARE(exec(QStringLiteral("INSERT INTO kn VALUES (-1, 0)")), QString()); // the last change

    // Everything the journal holds, from its first event, then live up to the marker.
    QProcess p;
    p.start(QStringLiteral(TIDEWATCH_BINARY),
            args + QStringList{QStringLiteral("--from-seq"), QStringLiteral("0")});
    QVERIFY(p.waitForStarted());
    LineReader reader{p, {}, {}};
    const auto sawMarker = [&] {
        reader.poll();
        for (const QJsonObject& line : std::as_const(reader.lines))
            if (line.value(QLatin1String("documentKey")).toObject().value(QLatin1String("id")).toInt() == -1)
                return true;
        return false;
    };
    QTRY_VERIFY_WITH_TIMEOUT(sawMarker(), 60000);
    p.terminate();
    p.waitForFinished(10000);

    // Exactly once: one insert per row, and each row's counter values 1..final once each.
    QHash<int, int> inserts;
    QHash<int, QList<int>> counters;
    qint64 lastSeq = 0;
    for (const QJsonObject& line : std::as_const(reader.lines)) {
        const qint64 seq = qint64(line.value(QLatin1String("seq")).toDouble());
        QVERIFY2(seq > lastSeq, "seq ids increase");
        lastSeq = seq;
        const int id = line.value(QLatin1String("documentKey")).toObject().value(QLatin1String("id")).toInt();
        const QString op = line.value(QLatin1String("operationType")).toString();
        if (op == QLatin1String("insert"))
            ++inserts[id];
        else if (op == QLatin1String("update"))
            counters[id].append(
                line.value(QLatin1String("fullDocument")).toObject().value(QLatin1String("counter")).toInt());
        else
            QFAIL(qPrintable(QStringLiteral("unexpected event ") + op));
    }
    const QList<QStringList> truth =
        m_cluster->query(QStringLiteral("SELECT id, counter FROM kn WHERE id > 0"));
    QCOMPARE(truth.size(), written);
    QCOMPARE(inserts.size(), written + 1);
    for (const QStringList& row : truth) {
        const int id = row[0].toInt();
        QCOMPARE(inserts.value(id), 1);
        QList<int> expected;
        for (int c = 1; c <= row[1].toInt(); ++c)
            expected.append(c);
        QCOMPARE(counters.value(id), expected);
    }
}

QTEST_GUILESS_MAIN(TestPostgresSource)
#include "tst_postgressource.moc"

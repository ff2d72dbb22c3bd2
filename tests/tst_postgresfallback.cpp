#include "PgSuite.h"

#include "sources/postgres/PgConnection.h"
#include "sources/postgres/PgPoller.h"

#include <QtTest>

#include <atomic>
#include <thread>

#include <libpq-fe.h>

using namespace tw;
using namespace tw::test;
using tw::testsupport::PgCluster;

namespace {

// Faster than the 500 ms default so the suite stays short; one case keeps the default.
constexpr int kTestPollMs = 100;

} // namespace

// The PostgreSQL source where logical replication cannot be used, against a real
// throwaway cluster with wal_level = replica: the status says what to change, tables
// are polled (by primary key and row hash, or by a monotonic column) or captured by
// triggers into tidewatch.changelog. Writes come from other connections.
class TestPostgresFallback : public QObject, public PgSuite {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void explanationNamesTheSettingWhilePolling();
    void pollingByPrimaryKeyReportsInsertUpdateDelete();
    void restartWhileClosedReportsWhatChanged();
    void incrementalByColumnReportsInsertsAndUpdates();
    void incrementalPollingKeepsOnlyTheRowsAtTheMark();
    void tableWithoutPrimaryKeyIsAClearError();
    void captureModeGivesExactBeforeAndAfterImages();
    void captureModeTransactionOfManyRowsArrivesWhole();
    void captureModeTruncateIsOneEventPerTableInOrder();
    void captureModeRestartResumesWithNothingRepeated();
    void captureModeRefusedSaysWhatToGrant();
    void replicationGrantedLaterIsTakenUpWithNothingLostOrRepeated_data();
    void replicationGrantedLaterIsTakenUpWithNothingLostOrRepeated();
    void removingWithServerStateDropsTheTriggers();
    void watchedAgainRepeatsNothing();
    void captureModeTableWatchedLaterAfterARestartMissesNothing();

private:
    // The role without REPLICATION the cluster has.
    QString asWatcher() const {
        return m_cluster->uri(QStringLiteral("tidewatch"), QStringLiteral("watcher"));
    }
    static WatchOptions polling(const QString& pollField = {}) {
        WatchOptions o;
        o.pollIntervalMs = kTestPollMs;
        o.pollField = pollField;
        return o;
    }
    static WatchOptions capture() {
        WatchOptions o;
        o.pollIntervalMs = kTestPollMs;
        o.captureMode = true;
        return o;
    }
    // A table the role without REPLICATION owns, as capture mode needs.
    QString createOwned(const QString& table, const QString& columns) const {
        return exec(
            QStringLiteral("CREATE TABLE %1(%2); ALTER TABLE %1 OWNER TO watcher").arg(table, columns));
    }
    static QJsonObject json(const Bson& doc) { return parseJson(doc.toJson()); }
    static QJsonObject updatedFields(const ChangeEvent& e) {
        return parseJson(e.toJson())
            .value(QLatin1String("updateDescription"))
            .toObject()
            .value(QLatin1String("updatedFields"))
            .toObject();
    }
};

void TestPostgresFallback::initTestCase() {
    PgCluster::Options options;
    options.walLevel = QStringLiteral("replica");
    options.plainRole = QStringLiteral("watcher");
    const QString error = startCluster(options);
    QVERIFY2(error.isEmpty(), qPrintable(error));
}

void TestPostgresFallback::init() {
    makeCaseDir();
}

void TestPostgresFallback::explanationNamesTheSettingWhilePolling() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE explained(id int PRIMARY KEY)")), QString());
    EngineFixture f(journalPath());
    // The default interval (no pollIntervalMs).
    QVERIFY(startWatching(f, QStringLiteral("explained"), QStringLiteral("explained"), WatchOptions()));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QTRY_VERIFY_WITH_TIMEOUT(!f.statuses.isEmpty() &&
                                 f.statuses.last().state == SourceStatus::State::Polling &&
                                 f.statuses.last().reason.contains(QLatin1String("public.explained")),
                             20000);
    const QString reason = f.statuses.last().reason;
    QVERIFY2(reason.contains(QLatin1String("wal_level is 'replica'")) &&
                 reason.contains(QLatin1String("ALTER SYSTEM SET wal_level = logical")) &&
                 reason.contains(QLatin1String("restart")) &&
                 reason.contains(QLatin1String("polling public.explained every 500 ms by primary key")),
             qPrintable(reason));
    QCOMPARE(exec(QStringLiteral("INSERT INTO explained VALUES (1)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    QCOMPARE(f.events[0].operation(), Operation::Insert);
}

void TestPostgresFallback::pollingByPrimaryKeyReportsInsertUpdateDelete() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE orders(id int PRIMARY KEY, status text, total numeric, at "
                                 "timestamptz, tags text[]);"
                                 "INSERT INTO orders VALUES (1, 'pending', 10.5, '2026-12-01 12:00:00+00', "
                                 "'{a}'), (2, 'paid', 20, NULL, NULL)")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("orders"), QStringLiteral("orders"), polling()));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(f.ready.first().toString(), QStringLiteral("tidewatch.public.orders"));
    // The rows there before the watch are its baseline, not events.
    QCOMPARE(exec(QStringLiteral("INSERT INTO orders VALUES (3, 'pending', 99.5, NULL, '{x,y}')")),
             QString());
    QCOMPARE(exec(QStringLiteral("UPDATE orders SET status = 'shipped' WHERE id = 1")), QString());
    QCOMPARE(exec(QStringLiteral("DELETE FROM orders WHERE id = 2")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 20000);

    const QList<ChangeEvent> inserts = f.ofOperation(Operation::Insert);
    const QList<ChangeEvent> updates = f.ofOperation(Operation::Update);
    const QList<ChangeEvent> deletes = f.ofOperation(Operation::Delete);
    QCOMPARE(inserts.size(), 1);
    QCOMPARE(updates.size(), 1);
    QCOMPARE(deletes.size(), 1);
    QCOMPARE(inserts[0].ns().toString(), QStringLiteral("tidewatch.public.orders"));
    QCOMPARE(json(inserts[0].documentKey()), QJsonObject({{QStringLiteral("id"), 3}}));
    // The replication stream's type mapping: numeric is Decimal128, arrays are arrays.
    QCOMPARE(fieldJson(inserts[0].fullDocument(), "total"), QStringLiteral("{\"$numberDecimal\":\"99.5\"}"));
    QCOMPARE(fieldJson(inserts[0].fullDocument(), "tags"), QStringLiteral("[\"x\",\"y\"]"));
    QCOMPARE(fieldJson(inserts[0].fullDocument(), "at"), QStringLiteral("null"));

    // Exactly the changed column, the whole row after it.
    QCOMPARE(json(updates[0].documentKey()), QJsonObject({{QStringLiteral("id"), 1}}));
    QCOMPARE(updatedFields(updates[0]), QJsonObject({{QStringLiteral("status"), QStringLiteral("shipped")}}));
    QCOMPARE(fieldJson(updates[0].fullDocument(), "at"),
             QStringLiteral("{\"$date\":\"2026-12-01T12:00:00Z\"}"));
    QCOMPARE(fieldJson(updates[0].fullDocument(), "total"), QStringLiteral("{\"$numberDecimal\":\"10.5\"}"));

    QCOMPARE(json(deletes[0].documentKey()), QJsonObject({{QStringLiteral("id"), 2}}));
    QVERIFY(deletes[0].fullDocument().isAbsent());
    QVERIFY(f.seqStrictlyIncreasing());
}

void TestPostgresFallback::restartWhileClosedReportsWhatChanged() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE closed(id int PRIMARY KEY, v text);"
                                 "INSERT INTO closed VALUES (1, 'a'), (2, 'b')")),
             QString());
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatching(f, QStringLiteral("closed"), QStringLiteral("closed"), polling()));
        QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
        QCOMPARE(exec(QStringLiteral("INSERT INTO closed VALUES (3, 'c')")), QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    }
    // Closed: one of each.
    QCOMPARE(exec(QStringLiteral("INSERT INTO closed VALUES (4, 'd'); UPDATE closed SET v = 'B' WHERE id = 2;"
                                 "DELETE FROM closed WHERE id = 1")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("closed"), QStringLiteral("closed"), polling()));
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 20000);
    QCOMPARE(f.events.first().seq(), 2);
    QCOMPARE(f.ofOperation(Operation::Insert).size(), 1);
    QCOMPARE(fieldJson(f.ofOperation(Operation::Insert)[0].documentKey(), "id"), QStringLiteral("4"));
    QCOMPARE(updatedFields(f.ofOperation(Operation::Update)[0]), QJsonObject({{QStringLiteral("v"), "B"}}));
    QCOMPARE(fieldJson(f.ofOperation(Operation::Delete)[0].documentKey(), "id"), QStringLiteral("1"));
    // A marker written last: anything repeated (row 3) would have come before it.
    QCOMPARE(exec(QStringLiteral("INSERT INTO closed VALUES (5, 'e')")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 4, 20000);
    QCOMPARE(fieldJson(f.events.last().documentKey(), "id"), QStringLiteral("5"));
}

void TestPostgresFallback::incrementalByColumnReportsInsertsAndUpdates() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE feed(id int PRIMARY KEY, v text, updated_at bigint NOT NULL);"
                                 "INSERT INTO feed VALUES (1, 'a', 10), (2, 'b', 20)")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("feed"), QStringLiteral("feed"),
                          polling(QStringLiteral("updated_at"))));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QTRY_VERIFY_WITH_TIMEOUT(!f.statuses.isEmpty() &&
                                 f.statuses.last().reason.contains(QLatin1String("deletes are not seen")),
                             20000);
    QCOMPARE(exec(QStringLiteral("INSERT INTO feed VALUES (3, 'c', 30)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("UPDATE feed SET v = 'A', updated_at = 40 WHERE id = 1")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 20000);
    // A delete is not seen; a row that did not move its column is not read again.
    QCOMPARE(exec(QStringLiteral("DELETE FROM feed WHERE id = 2; UPDATE feed SET v = 'quiet' WHERE id = 3")),
             QString());
    QCOMPARE(exec(QStringLiteral("INSERT INTO feed VALUES (5, 'e', 50)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 20000);

    QCOMPARE(f.events[0].operation(), Operation::Insert);
    QCOMPARE(fieldJson(f.events[0].documentKey(), "id"), QStringLiteral("3"));
    QCOMPARE(fieldJson(f.events[0].fullDocument(), "updated_at"), QStringLiteral("30"));
    QCOMPARE(f.events[1].operation(), Operation::Update);
    QCOMPARE(updatedFields(f.events[1]),
             QJsonObject({{QStringLiteral("v"), QStringLiteral("A")}, {QStringLiteral("updated_at"), 40}}));
    QCOMPARE(f.events[2].operation(), Operation::Insert);
    QCOMPARE(fieldJson(f.events[2].documentKey(), "id"), QStringLiteral("5"));
}

void TestPostgresFallback::incrementalPollingKeepsOnlyTheRowsAtTheMark() {
    // 1 000 rows in batches of 100: the mark (batch 10) holds 100 of them.
    QCOMPARE(exec(QStringLiteral("CREATE TABLE growing(id int PRIMARY KEY, batch int NOT NULL, v text);"
                                 "INSERT INTO growing SELECT g, (g + 99) / 100, 'a' FROM generate_series(1, "
                                 "1000) g")),
             QString());
    PgConnection conn;
    QString error;
    QVERIFY2(conn.open(m_cluster->conninfo(), false, &error), qPrintable(error));
    const Namespace ns{QStringLiteral("tidewatch"), QStringLiteral("public.growing")};
    const QString qualified = QStringLiteral("\"public\".\"growing\"");
    const QStringList key{QStringLiteral("id")};
    constexpr int kMaxRows = 500;
    // The journal's state for the source, as the polls' checkpoints leave it (upserts,
    // then removals).
    QHash<QByteArray, QByteArray> state;
    auto rowsInState = [&state] {
        int rows = 0;
        for (auto it = state.cbegin(); it != state.cend(); ++it)
            rows += it.key().startsWith("pgpoll\x1fpublic.growing\x1f") ? 1 : 0;
        return rows;
    };
    auto poll = [&](PgPoller& poller) {
        ChangeBatch batch;
        QString why;
        if (!poller.poll(conn, batch, &why))
            qWarning("%s", qPrintable(why));
        for (auto it = batch.checkpoint.stateUpserts.cbegin(); it != batch.checkpoint.stateUpserts.cend();
             ++it)
            state.insert(it.key(), it.value());
        for (const QByteArray& k : std::as_const(batch.checkpoint.stateRemovals))
            state.remove(k);
        return batch.events;
    };

    PgPoller poller(QStringLiteral("growing"), ns, qualified, key, QStringLiteral("batch"));
    poller.setMaxRows(kMaxRows);
    QVERIFY(poll(poller).isEmpty()); // the baseline
    // Over the bound: only the rows at the mark are remembered, in memory and in the journal.
    QCOMPARE(poller.rowCount(), 100);
    QCOMPARE(rowsInState(), 100);
    // Under it, recent rows are remembered: a row moving its column up is an update
    // with exactly what changed.
    QCOMPARE(exec(QStringLiteral("INSERT INTO growing SELECT g, 11, 'a' FROM generate_series(1001, 1005) g;"
                                 "UPDATE growing SET batch = 11, v = 'b' WHERE id = 950")),
             QString());
    ChangeEventList events = poll(poller);
    QCOMPARE(events.size(), 6);
    QCOMPARE(int(std::count_if(events.cbegin(), events.cend(),
                               [](const ChangeEvent& e) { return e.operation() == Operation::Insert; })),
             5);
    QCOMPARE(int(std::count_if(events.cbegin(), events.cend(),
                               [](const ChangeEvent& e) { return e.operation() == Operation::Update; })),
             1);
    QCOMPARE(poller.rowCount(), 105);
    // A row at the mark changed without moving its column is still compared, and an
    // unchanged one is not reported again.
    QCOMPARE(exec(QStringLiteral("UPDATE growing SET v = 'c' WHERE id = 1003")), QString());
    events = poll(poller);
    QCOMPARE(events.size(), 1);
    QCOMPARE(events[0].operation(), Operation::Update);
    QVERIFY(poll(poller).isEmpty());
    // 400 rows at a new mark: over the bound again, so 400 are left.
    QCOMPARE(exec(QStringLiteral("INSERT INTO growing SELECT g, 12, 'a' FROM generate_series(1101, 1500) g")),
             QString());
    QCOMPARE(poll(poller).size(), 400);
    QCOMPARE(poller.rowCount(), 400);
    QCOMPARE(rowsInState(), 400);

    // From the bounded state after a restart: nothing repeated, the next row once.
    PgPoller restarted(QStringLiteral("growing"), ns, qualified, key, QStringLiteral("batch"));
    restarted.setMaxRows(kMaxRows);
    restarted.restore(state);
    QCOMPARE(restarted.rowCount(), 400);
    QVERIFY(poll(restarted).isEmpty());
    QCOMPARE(exec(QStringLiteral("INSERT INTO growing VALUES (1501, 12, 'a')")), QString());
    events = poll(restarted);
    QCOMPARE(events.size(), 1);
    QCOMPARE(events[0].operation(), Operation::Insert);
    QCOMPARE(fieldJson(events[0].documentKey(), "id"), QStringLiteral("1501"));
}

void TestPostgresFallback::tableWithoutPrimaryKeyIsAClearError() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE heap(v text)")), QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("heap"), QStringLiteral("heap"), polling()));
    QTRY_COMPARE_WITH_TIMEOUT(f.watchErrors.size(), 1, 20000);
    const QString error = f.watchErrors.first();
    QVERIFY2(error.contains(QLatin1String("public.heap has no primary key")) &&
                 error.contains(QLatin1String("ADD PRIMARY KEY")) &&
                 error.contains(QLatin1String("pollField")) && error.contains(QLatin1String("capture")),
             qPrintable(error));
    QVERIFY(f.ready.isEmpty());
}

void TestPostgresFallback::captureModeGivesExactBeforeAndAfterImages() {
    QCOMPARE(createOwned(QStringLiteral("captured"),
                         QStringLiteral("id int PRIMARY KEY, a text, n numeric, b int")),
             QString());
    QCOMPARE(exec(QStringLiteral("INSERT INTO captured VALUES (1, 'a', 1.50, 5)")), QString());
    EngineFixture f(journalPath());
    // A role without REPLICATION: capture needs CREATE on the database and the table.
    QVERIFY(startWatching(f, QStringLiteral("captured"), QStringLiteral("captured"), capture(), asWatcher()));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("UPDATE captured SET b = 6 WHERE id = 1")), QString());
    QCOMPARE(exec(QStringLiteral("INSERT INTO captured VALUES (2, NULL, 2, 7)")), QString());
    QCOMPARE(exec(QStringLiteral("DELETE FROM captured WHERE id = 1")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 20000);

    // In the order of the changes, each with its exact images.
    QCOMPARE(f.events[0].operation(), Operation::Update);
    QCOMPARE(json(f.events[0].documentKey()), QJsonObject({{QStringLiteral("id"), 1}}));
    QCOMPARE(updatedFields(f.events[0]), QJsonObject({{QStringLiteral("b"), 6}}));
    QCOMPARE(fieldJson(f.events[0].fullDocumentBeforeChange(), "b"), QStringLiteral("5"));
    QCOMPARE(fieldJson(f.events[0].fullDocumentBeforeChange(), "n"),
             QStringLiteral("{\"$numberDecimal\":\"1.50\"}"));
    QCOMPARE(fieldJson(f.events[0].fullDocument(), "b"), QStringLiteral("6"));
    QCOMPARE(fieldJson(f.events[0].fullDocument(), "a"), QStringLiteral("\"a\""));

    QCOMPARE(f.events[1].operation(), Operation::Insert);
    QCOMPARE(fieldJson(f.events[1].fullDocument(), "a"), QStringLiteral("null"));
    QCOMPARE(fieldJson(f.events[1].fullDocument(), "n"), QStringLiteral("{\"$numberDecimal\":\"2\"}"));
    QVERIFY(f.events[1].fullDocumentBeforeChange().isAbsent());

    QCOMPARE(f.events[2].operation(), Operation::Delete);
    QCOMPARE(json(f.events[2].documentKey()), QJsonObject({{QStringLiteral("id"), 1}}));
    QCOMPARE(fieldJson(f.events[2].fullDocumentBeforeChange(), "b"), QStringLiteral("6"));
    QVERIFY(f.events[2].fullDocument().isAbsent());
    QVERIFY(f.seqStrictlyIncreasing());
    // What the journal committed is pruned from the changelog.
    QTRY_COMPARE_WITH_TIMEOUT(m_cluster->value(QStringLiteral(
                                  "SELECT count(*) FROM tidewatch.changelog WHERE tbl = 'public.captured'")),
                              QStringLiteral("0"), 20000);
}

void TestPostgresFallback::captureModeTransactionOfManyRowsArrivesWhole() {
    QCOMPARE(createOwned(QStringLiteral("bulk"), QStringLiteral("id int PRIMARY KEY")), QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("bulk"), QStringLiteral("bulk"), capture(), asWatcher()));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("INSERT INTO bulk SELECT generate_series(1, 1000)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1000, 30000);
    // One transaction, one commit, in the order it wrote.
    QCOMPARE(f.commits.size(), 1);
    for (int i = 0; i < 1000; ++i)
        QCOMPARE(fieldJson(f.events[i].documentKey(), "id"), QString::number(i + 1));
}

void TestPostgresFallback::captureModeTruncateIsOneEventPerTableInOrder() {
    QCOMPARE(createOwned(QStringLiteral("cut_a"), QStringLiteral("id int PRIMARY KEY")), QString());
    QCOMPARE(createOwned(QStringLiteral("cut_b"), QStringLiteral("id int PRIMARY KEY")), QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("cut"), QStringLiteral("cut_a"), capture(), asWatcher()));
    f.engine->watch(QStringLiteral("cut"),
                    Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.cut_b")}, capture());
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 2, 20000);
    QCOMPARE(exec(QStringLiteral("INSERT INTO cut_a VALUES (1); INSERT INTO cut_b VALUES (1)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 20000);
    // One transaction: a row before the truncate, both tables in one statement, a row after.
    QCOMPARE(exec(QStringLiteral("BEGIN; INSERT INTO cut_a VALUES (2); TRUNCATE cut_a, cut_b; "
                                 "INSERT INTO cut_a VALUES (3); COMMIT")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 6, 20000);
    QCOMPARE(f.events[2].operation(), Operation::Insert);
    QCOMPARE(fieldJson(f.events[2].documentKey(), "id"), QStringLiteral("2"));
    QCOMPARE(f.events[3].operation(), Operation::Truncate);
    QCOMPARE(f.events[4].operation(), Operation::Truncate);
    QVERIFY(f.events[3].documentKey().isAbsent());
    // One per table (the server fires the statement triggers in an order of its own).
    const QSet<QString> truncated{f.events[3].ns().toString(), f.events[4].ns().toString()};
    QCOMPARE(truncated, QSet<QString>({QStringLiteral("tidewatch.public.cut_a"),
                                       QStringLiteral("tidewatch.public.cut_b")}));
    QCOMPARE(f.events[5].operation(), Operation::Insert);
    QCOMPARE(fieldJson(f.events[5].documentKey(), "id"), QStringLiteral("3"));
    QCOMPARE(f.ofOperation(Operation::Truncate).size(), 2);
    QVERIFY(f.seqStrictlyIncreasing());
}

void TestPostgresFallback::removingWithServerStateDropsTheTriggers() {
    QCOMPARE(createOwned(QStringLiteral("leaving"), QStringLiteral("id int PRIMARY KEY")), QString());
    const QString triggers = QStringLiteral("SELECT count(*) FROM pg_trigger WHERE tgname = "
                                            "'tidewatch_capture' AND tgrelid = 'leaving'::regclass");
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("leaving"), QStringLiteral("leaving"), capture(), asWatcher()));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(m_cluster->value(triggers), QStringLiteral("1"));
    // What the window's "drop what the connection left on the server" does.
    f.engine->removeSource(QStringLiteral("leaving"), true);
    QTRY_COMPARE_WITH_TIMEOUT(m_cluster->value(triggers), QStringLiteral("0"), 20000);
    // And nothing is captured any more.
    QCOMPARE(exec(QStringLiteral("INSERT INTO leaving VALUES (1)")), QString());
    QCOMPARE(m_cluster->value(
                 QStringLiteral("SELECT count(*) FROM tidewatch.changelog WHERE tbl = 'public.leaving'")),
             QStringLiteral("0"));
}

void TestPostgresFallback::watchedAgainRepeatsNothing() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE again(id int PRIMARY KEY, v text)")), QString());
    const Namespace ns{QStringLiteral("tidewatch"), QStringLiteral("public.again")};
    {
        // A first run leaves a baseline in the journal.
        EngineFixture f(journalPath());
        QVERIFY(startWatching(f, QStringLiteral("again"), QStringLiteral("again"), polling()));
        QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
        QCOMPARE(exec(QStringLiteral("INSERT INTO again VALUES (1, 'a')")), QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    }
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("again"), QStringLiteral("again"), polling()));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("INSERT INTO again VALUES (2, 'b')")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    // Unwatched and watched again in the same run: a baseline of its own, not the
    // one the run started with (which would send row 2 again).
    f.engine->unwatch(QStringLiteral("again"), ns);
    f.engine->watch(QStringLiteral("again"), ns, polling());
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 2, 20000);
    QCOMPARE(exec(QStringLiteral("INSERT INTO again VALUES (3, 'c')")), QString());
    QTRY_VERIFY_WITH_TIMEOUT(f.events.size() >= 2, 20000);
    QCOMPARE(fieldJson(f.events[0].documentKey(), "id"), QStringLiteral("2"));
    QCOMPARE(fieldJson(f.events[1].documentKey(), "id"), QStringLiteral("3"));
    QCOMPARE(f.events[1].operation(), Operation::Insert);
}

void TestPostgresFallback::captureModeRestartResumesWithNothingRepeated() {
    QCOMPARE(createOwned(QStringLiteral("resumed"), QStringLiteral("id int PRIMARY KEY")), QString());
    {
        EngineFixture f(journalPath());
        QVERIFY(
            startWatching(f, QStringLiteral("resumed"), QStringLiteral("resumed"), capture(), asWatcher()));
        QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
        for (int i = 1; i <= 3; ++i)
            QCOMPARE(exec(QStringLiteral("INSERT INTO resumed VALUES (%1)").arg(i)), QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 20000);
    }
    // Closed: the triggers go on logging.
    QCOMPARE(exec(QStringLiteral("INSERT INTO resumed VALUES (4); UPDATE resumed SET id = 50 WHERE id = 1;"
                                 "DELETE FROM resumed WHERE id = 2")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("resumed"), QStringLiteral("resumed"), capture(), asWatcher()));
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 20000);
    QCOMPARE(f.events.first().seq(), 4);
    QCOMPARE(f.events[0].operation(), Operation::Insert);
    QCOMPARE(fieldJson(f.events[0].documentKey(), "id"), QStringLiteral("4"));
    QCOMPARE(f.events[1].operation(), Operation::Update);
    QCOMPARE(fieldJson(f.events[1].fullDocumentBeforeChange(), "id"), QStringLiteral("1"));
    QCOMPARE(fieldJson(f.events[1].fullDocument(), "id"), QStringLiteral("50"));
    QCOMPARE(f.events[2].operation(), Operation::Delete);
    QCOMPARE(fieldJson(f.events[2].documentKey(), "id"), QStringLiteral("2"));
    // A marker written last: anything repeated would have come before it.
    QCOMPARE(exec(QStringLiteral("INSERT INTO resumed VALUES (6)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 4, 20000);
    QCOMPARE(fieldJson(f.events.last().documentKey(), "id"), QStringLiteral("6"));
}

void TestPostgresFallback::captureModeTableWatchedLaterAfterARestartMissesNothing() {
    QCOMPARE(createOwned(QStringLiteral("first_t"), QStringLiteral("id int PRIMARY KEY")), QString());
    QCOMPARE(createOwned(QStringLiteral("second_t"), QStringLiteral("id int PRIMARY KEY")), QString());
    const Namespace second{QStringLiteral("tidewatch"), QStringLiteral("public.second_t")};
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatching(f, QStringLiteral("pair"), QStringLiteral("first_t"), capture(), asWatcher()));
        f.engine->watch(QStringLiteral("pair"), second, capture());
        QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 2, 20000);
        QCOMPARE(exec(QStringLiteral("INSERT INTO first_t VALUES (1); INSERT INTO second_t VALUES (1)")),
                 QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 20000);
    }
    // Closed: both tables change.
    QCOMPARE(exec(QStringLiteral("INSERT INTO first_t VALUES (2)")), QString());
    QCOMPARE(exec(QStringLiteral("INSERT INTO second_t VALUES (2)")), QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("pair"), QStringLiteral("first_t"), capture(), asWatcher()));
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    // Reads of the first table move on past the journal's bound...
    QCOMPARE(exec(QStringLiteral("INSERT INTO first_t VALUES (3)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 20000);
    // ...and the second, watched only now, still gets what changed while closed.
    f.engine->watch(QStringLiteral("pair"), second, capture());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 20000);
    QCOMPARE(f.events[2].ns().toString(), second.toString());
    QCOMPARE(fieldJson(f.events[2].documentKey(), "id"), QStringLiteral("2"));
    QCOMPARE(exec(QStringLiteral("INSERT INTO second_t VALUES (3)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 4, 20000);
    QCOMPARE(fieldJson(f.events[3].documentKey(), "id"), QStringLiteral("3"));
}

void TestPostgresFallback::captureModeRefusedSaysWhatToGrant() {
    // Owned by postgres: the role may not put a trigger on it.
    QCOMPARE(
        exec(QStringLiteral("CREATE TABLE notmine(id int PRIMARY KEY); GRANT SELECT ON notmine TO watcher")),
        QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("notmine"), QStringLiteral("notmine"), capture(), asWatcher()));
    QTRY_COMPARE_WITH_TIMEOUT(f.watchErrors.size(), 1, 20000);
    const QString error = f.watchErrors.first();
    QVERIFY2(error.contains(QLatin1String("permission denied for table notmine")) &&
                 error.contains(QLatin1String("ALTER TABLE \"public\".\"notmine\" OWNER TO \"watcher\"")) &&
                 error.contains(QLatin1String("GRANT CREATE ON DATABASE")),
             qPrintable(error));
}

void TestPostgresFallback::replicationGrantedLaterIsTakenUpWithNothingLostOrRepeated_data() {
    QTest::addColumn<bool>("captured");
    QTest::newRow("polling") << false;
    QTest::newRow("capture") << true;
}

void TestPostgresFallback::replicationGrantedLaterIsTakenUpWithNothingLostOrRepeated() {
    QFETCH(bool, captured);
    // wal_level = logical, but the role lacks REPLICATION at first: polling, until the
    // grant, then the stream, while another connection inserts all along.
    PgCluster::Options options;
    options.plainRole = QStringLiteral("watcher");
    PgCluster logical(options);
    const QString started = logical.start();
    QVERIFY2(started.isEmpty(), qPrintable(started));
    QCOMPARE(
        logical.exec(QStringLiteral("CREATE TABLE switched(id int PRIMARY KEY, v text); ALTER TABLE "
                                    "switched OWNER TO watcher; INSERT INTO switched VALUES (0, 'base')")),
        QString());
    EngineFixture f(journalPath());
    QVERIFY(f.start());
    // Looks again every 300 ms rather than every minute.
    qputenv("TIDEWATCH_PG_REPLICATION_RETRY_MS", "300");
    const bool added = f.engine->addSource(
        QStringLiteral("switch"), logical.uri(QStringLiteral("tidewatch"), QStringLiteral("watcher")));
    qunsetenv("TIDEWATCH_PG_REPLICATION_RETRY_MS");
    QVERIFY(added);
    f.engine->watch(QStringLiteral("switch"),
                    Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.switched")},
                    captured ? capture() : polling());
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QTRY_VERIFY_WITH_TIMEOUT(!f.statuses.isEmpty() && f.statuses.last().state == SourceStatus::State::Polling,
                             20000);
    const QString reason = f.statuses.last().reason;
    QVERIFY2(reason.contains(QLatin1String("lacks the REPLICATION attribute")) &&
                 reason.contains(QLatin1String("without a restart")),
             qPrintable(reason));

    std::atomic<bool> writing{true};
    std::atomic<int> written{0};
    const QByteArray conninfo = logical.conninfo().toUtf8();
    std::thread writer([&] {
        PGconn* conn = PQconnectdb(conninfo.constData());
        for (int i = 1; writing.load() && PQstatus(conn) == CONNECTION_OK; ++i) {
            const QByteArray sql = "INSERT INTO switched VALUES (" + QByteArray::number(i) + ", 'v')";
            PGresult* r = PQexec(conn, sql.constData());
            if (PQresultStatus(r) == PGRES_COMMAND_OK)
                written = i;
            PQclear(r);
        }
        PQfinish(conn);
    });
    QTRY_VERIFY_WITH_TIMEOUT(f.events.size() >= 20, 20000);
    QCOMPARE(logical.exec(QStringLiteral("ALTER ROLE watcher REPLICATION")), QString());
    QTRY_VERIFY_WITH_TIMEOUT(f.statuses.last().state == SourceStatus::State::Watching, 30000);
    // Some rows written after the switch too.
    const int atSwitch = written.load();
    QTRY_VERIFY_WITH_TIMEOUT(written.load() >= atSwitch + 50, 20000);
    writing = false;
    writer.join();
    const int last = written.load() + 1;
    QCOMPARE(logical.exec(QStringLiteral("INSERT INTO switched VALUES (%1, 'last')").arg(last)), QString());
    QTRY_VERIFY_WITH_TIMEOUT(!f.events.isEmpty() &&
                                 fieldJson(f.events.last().documentKey(), "id") == QString::number(last),
                             30000);
    // Every row once, nothing else: rows 1 .. last.
    QList<int> ids;
    for (const ChangeEvent& e : std::as_const(f.events)) {
        QCOMPARE(e.operation(), Operation::Insert);
        ids.append(fieldJson(e.documentKey(), "id").toInt());
    }
    std::sort(ids.begin(), ids.end());
    QCOMPARE(ids.size(), last);
    for (int i = 0; i < last; ++i)
        QCOMPARE(ids.at(i), i + 1);
    QVERIFY(f.seqStrictlyIncreasing());
    QVERIFY2(f.statuses.last().reason.contains(QLatin1String("slot and publication")),
             qPrintable(f.statuses.last().reason));
    // Capture's triggers and changelog rows go once the switch is committed.
    if (captured) {
        QTRY_COMPARE_WITH_TIMEOUT(
            logical.value(QStringLiteral("SELECT count(*) FROM pg_trigger WHERE tgrelid = "
                                         "'switched'::regclass AND NOT tgisinternal")),
            QStringLiteral("0"), 20000);
        QCOMPARE(logical.value(QStringLiteral("SELECT count(*) FROM tidewatch.changelog")),
                 QStringLiteral("0"));
    }
    f.engine->removeSource(QStringLiteral("switch"), true); // the slot goes with the cluster anyway
}

QTEST_GUILESS_MAIN(TestPostgresFallback)
#include "tst_postgresfallback.moc"

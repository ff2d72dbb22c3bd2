// Schema events of the PostgreSQL source against a real cluster (initdb, pg_ctl): DDL
// from another connection becomes create, drop, rename, modify, createIndexes and
// dropIndexes, in the shapes SQLite and MongoDB give them; what changed while
// Tidewatch was closed is reported after a restart.
#include "PgSuite.h"

#include <QJsonArray>
#include <QtTest>

using namespace tw;
using namespace tw::test;

class TestPostgresSchema : public QObject, public PgSuite {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();
    void addedColumnIsModifyAheadOfTheRowsThatHaveIt();
    void indexCreateAndDropCarryTheIndexSpec();
    void renamedTableIsRenameWithTo();
    void droppedAndMadeAgainIsDropThenCreateThenItsRows();
    void schemaChangedWhileClosedIsReportedAfterRestart();
    void reportedOnceAcrossRestarts();
    void truncateIsADataChangeNamedTruncate();

private:
    bool startWatching(EngineFixture& f, const QString& table) const {
        return PgSuite::startWatching(f, QStringLiteral("pg"), table);
    }
    static QJsonObject description(const ChangeEvent& e) {
        return parseJson(e.toJson()).value(QLatin1String("operationDescription")).toObject();
    }
    static QStringList columnNames(const QJsonValue& columns) {
        QStringList names;
        for (const QJsonValue& c : columns.toArray())
            names.append(c.toObject().value(QLatin1String("name")).toString());
        return names;
    }
    static QList<QByteArray> types(const QList<ChangeEvent>& events) {
        QList<QByteArray> out;
        for (const ChangeEvent& e : events)
            out.append(e.operationType());
        return out;
    }
};

void TestPostgresSchema::initTestCase() {
    const QString error = startCluster();
    QVERIFY2(error.isEmpty(), qPrintable(error));
}

void TestPostgresSchema::init() {
    makeCaseDir();
    QCOMPARE(
        exec(QStringLiteral("DROP TABLE IF EXISTS orders, invoices, other CASCADE;"
                            "CREATE TABLE orders(id int PRIMARY KEY, status text NOT NULL, total numeric);"
                            "INSERT INTO orders VALUES (1, 'new', 5)")),
        QString());
}

void TestPostgresSchema::cleanup() {
    dropSlotsAndPublications();
}

void TestPostgresSchema::addedColumnIsModifyAheadOfTheRowsThatHaveIt() {
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("orders")));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    // In one transaction: the stream's Relation message tells, and the event precedes
    // the row, whichever of the stream and the poll sees it first.
    QCOMPARE(exec(QStringLiteral("BEGIN; ALTER TABLE orders ADD COLUMN note text DEFAULT 'none';"
                                 "INSERT INTO orders VALUES (2, 'paid', 7, 'gift'); COMMIT")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 20000);
    QCOMPARE(types(f.events), (QList<QByteArray>{"modify", "insert"}));
    QCOMPARE(f.events[0].ns().toString(), QStringLiteral("tidewatch.public.orders"));
    QVERIFY(isSchemaOperation(f.events[0].operation()));
    const QStringList before{QStringLiteral("id"), QStringLiteral("status"), QStringLiteral("total")};
    const QJsonObject d = description(f.events[0]);
    QCOMPARE(columnNames(d.value(QLatin1String("previousColumns"))), before);
    QCOMPARE(columnNames(d.value(QLatin1String("columns"))), before + QStringList{QStringLiteral("note")});
    const QJsonObject note = d.value(QLatin1String("columns")).toArray().at(3).toObject();
    QCOMPARE(note.value(QLatin1String("type")).toString(), QStringLiteral("text"));
    QCOMPARE(note.value(QLatin1String("default")).toString(), QStringLiteral("'none'::text"));
    const QJsonObject id = d.value(QLatin1String("columns")).toArray().at(0).toObject();
    QCOMPARE(id.value(QLatin1String("primaryKey")).toBool(), true);
    QCOMPARE(id.value(QLatin1String("notNull")).toBool(), true);
    QCOMPARE(fieldJson(f.events[1].fullDocument(), "note"), QStringLiteral("\"gift\""));

    // Once only: the poll that follows finds nothing new.
    QCOMPARE(exec(QStringLiteral("INSERT INTO orders VALUES (3, 'paid', 1, 'x')")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 20000);
    QCOMPARE(f.events[2].operation(), Operation::Insert);
    // The server waits out one schema poll (every 2 s) before this row: a second
    // modify would be committed ahead of it.
    QCOMPARE(exec(QStringLiteral("SELECT pg_sleep(2.5); INSERT INTO orders VALUES (4, 'paid', 1, 'y')")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.ofOperation(Operation::Insert).size(), 3, 20000);
    QCOMPARE(f.events.size(), 4);
}

void TestPostgresSchema::indexCreateAndDropCarryTheIndexSpec() {
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("orders")));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("CREATE UNIQUE INDEX by_status ON orders(status, total DESC)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    QCOMPARE(f.events[0].operationType(), QByteArray("createIndexes"));
    QCOMPARE(f.events[0].ns().toString(), QStringLiteral("tidewatch.public.orders"));
    // The key keeps the index's column order, which a JSON object parse would not show.
    const QByteArray json = f.events[0].toJson();
    QVERIFY2(json.contains(R"("operationDescription":{"indexes":[{"v":2,"key":{"status":1,"total":-1},)"
                           R"("name":"by_status","unique":true}]})"),
             json.constData());

    QCOMPARE(exec(QStringLiteral("DROP INDEX by_status")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 20000);
    QCOMPARE(f.events[1].operationType(), QByteArray("dropIndexes"));
    const QJsonArray dropped = description(f.events[1]).value(QLatin1String("indexes")).toArray();
    QCOMPARE(dropped.size(), 1);
    QCOMPARE(dropped[0].toObject().value(QLatin1String("name")).toString(), QStringLiteral("by_status"));

    // An index of a table nobody watches is not this watch's business; the server waits
    // out one schema poll (every 2 s) before the row, so the poll has seen the index.
    QCOMPARE(exec(QStringLiteral("CREATE TABLE other(x int); CREATE INDEX by_x ON other(x)")), QString());
    QCOMPARE(exec(QStringLiteral("SELECT pg_sleep(2.5); INSERT INTO orders VALUES (9, 'late', 0)")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 20000);
    QCOMPARE(f.events[2].operation(), Operation::Insert);
}

void TestPostgresSchema::renamedTableIsRenameWithTo() {
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("orders")));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("ALTER TABLE orders RENAME TO invoices")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    QCOMPARE(f.events[0].operation(), Operation::Rename);
    QCOMPARE(f.events[0].ns().toString(), QStringLiteral("tidewatch.public.orders"));
    const QJsonObject to = description(f.events[0]).value(QLatin1String("to")).toObject();
    QCOMPARE(to.value(QLatin1String("db")).toString(), QStringLiteral("tidewatch"));
    QCOMPARE(to.value(QLatin1String("coll")).toString(), QStringLiteral("public.invoices"));
    QCOMPARE(
        parseJson(f.events[0].toJson()).value(QLatin1String("to")).toObject().value(QLatin1String("coll")),
        QJsonValue(QStringLiteral("public.invoices")));
}

void TestPostgresSchema::droppedAndMadeAgainIsDropThenCreateThenItsRows() {
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("orders")));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("DROP TABLE orders")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    QCOMPARE(f.events[0].operation(), Operation::Drop);
    QCOMPARE(exec(QStringLiteral("CREATE TABLE orders(id int PRIMARY KEY, label text)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 20000);
    QCOMPARE(f.events[1].operationType(), QByteArray("create"));
    QCOMPARE(columnNames(description(f.events[1]).value(QLatin1String("columns"))),
             (QStringList{QStringLiteral("id"), QStringLiteral("label")}));
    // The watched name is published again: its rows arrive.
    QCOMPARE(exec(QStringLiteral("INSERT INTO orders VALUES (1, 'again')")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 20000);
    QCOMPARE(f.events[2].operation(), Operation::Insert);
    QCOMPARE(fieldJson(f.events[2].fullDocument(), "label"), QStringLiteral("\"again\""));
}

void TestPostgresSchema::schemaChangedWhileClosedIsReportedAfterRestart() {
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatching(f, QStringLiteral("orders")));
        QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    }
    QCOMPARE(exec(QStringLiteral(
                 "ALTER TABLE orders DROP COLUMN total; CREATE INDEX by_status ON orders(status)")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("orders")));
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 20000);
    QCOMPARE(types(f.events), (QList<QByteArray>{"modify", "createIndexes"}));
    QCOMPARE(columnNames(description(f.events[0]).value(QLatin1String("columns"))),
             (QStringList{QStringLiteral("id"), QStringLiteral("status")}));
}

void TestPostgresSchema::reportedOnceAcrossRestarts() {
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatching(f, QStringLiteral("orders")));
        QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    }
    QCOMPARE(exec(QStringLiteral("ALTER TABLE orders ADD COLUMN note text")), QString());
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatching(f, QStringLiteral("orders")));
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
        QCOMPARE(f.events[0].operationType(), QByteArray("modify"));
    }
    // The third start finds the snapshot the second committed: no modify again.
    EngineFixture again(journalPath());
    QVERIFY(startWatching(again, QStringLiteral("orders")));
    QTRY_COMPARE_WITH_TIMEOUT(again.ready.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("INSERT INTO orders VALUES (5, 'after')")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(again.events.size(), 1, 20000);
    QCOMPARE(again.events[0].operation(), Operation::Insert);
}

void TestPostgresSchema::truncateIsADataChangeNamedTruncate() {
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("orders")));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(exec(QStringLiteral("TRUNCATE orders")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    QCOMPARE(f.events[0].operationType(), QByteArray("truncate"));
    QVERIFY(!isSchemaOperation(f.events[0].operation()));
}

QTEST_GUILESS_MAIN(TestPostgresSchema)
#include "tst_postgresschema.moc"

#include "EngineFixture.h"
#include "sources/sqlite/SqliteSource.h"

#include <QtTest>

using namespace tw;
using namespace tw::test;

// Schema events of an SQLite source, with the sqlite3 program as the writer: each kind
// once, live and across a restart, and a whole-file watch that follows new tables.
class TestSqliteSchema : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void newTableUnderWatchAllIsCreateThenItsRows();
    void indexCreateAndDropCarryTheIndexSpec();
    void addAndRenameColumnAreModifyWithoutFalseUpdates();
    void renamedTableIsRenameWithTo();
    void renameRightAfterReadyOnANewJournalIsReported();
    void dropAndCreateInOneCommitIsNoRename();
    void droppedTableIsOneDropWithoutItsIndexes();
    void schemaChangedWhileClosedIsReportedAfterRestart();
    void oldCheckpointWithoutSchemaResumesQuietly();

private:
    bool startWatching(EngineFixture& f, const QString& table) const {
        if (!f.start() || !f.engine->addSource(QStringLiteral("shop"), QStringLiteral("sqlite:") + dbPath()))
            return false;
        f.engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), table});
        return true;
    }
    QString dbPath() const { return m_dir->filePath(QStringLiteral("shop.sqlite")); }
    QString journalPath() const { return m_dir->filePath(QStringLiteral("journal.sqlite")); }
    static QJsonObject description(const ChangeEvent& e) {
        return parseJson(e.toJson()).value(QLatin1String("operationDescription")).toObject();
    }
    static QStringList columnNames(const QJsonValue& columns) {
        QStringList names;
        for (const QJsonValue& c : columns.toArray())
            names.append(c.toObject().value(QLatin1String("name")).toString());
        return names;
    }
    std::unique_ptr<QTemporaryDir> m_dir;
};

void TestSqliteSchema::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    QCOMPARE(runSqlite3(
                 dbPath(),
                 QStringLiteral("PRAGMA journal_mode=WAL;"
                                "CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT, total REAL);"
                                "INSERT INTO orders(status, total) VALUES('pending', 10.5), ('paid', 20);")),
             QString());
}

void TestSqliteSchema::newTableUnderWatchAllIsCreateThenItsRows() {
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QString()));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    QCOMPARE(f.ready.first(), (Namespace{QStringLiteral("main"), QString()}));
    QCOMPARE(
        runSqlite3(dbPath(), QStringLiteral("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
                                            "INSERT INTO items(name) VALUES('a'), ('b');")),
        QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);
    const ChangeEvent& create = f.events[0];
    QCOMPARE(create.operation(), Operation::Ddl);
    QCOMPARE(create.operationType(), QByteArray("create"));
    QCOMPARE(create.ns().toString(), QStringLiteral("main.items"));
    QVERIFY(create.wallTimeMs() > 0);
    const QJsonArray columns = description(create).value(QLatin1String("columns")).toArray();
    QCOMPARE(columnNames(columns), (QStringList{QStringLiteral("id"), QStringLiteral("name")}));
    QCOMPARE(columns[1].toObject().value(QLatin1String("type")).toString(), QStringLiteral("TEXT"));
    QCOMPARE(columns[1].toObject().value(QLatin1String("notNull")).toBool(), true);
    QCOMPARE(columns[0].toObject().value(QLatin1String("primaryKey")).toBool(), true);
    for (int i = 1; i < 3; ++i) {
        QCOMPARE(f.events[i].operation(), Operation::Insert);
        QCOMPARE(f.events[i].ns().toString(), QStringLiteral("main.items"));
    }
    QCOMPARE(fieldJson(f.events[2].fullDocument(), "name"), QStringLiteral("\"b\""));
    // The table that was there before the watch is followed too, from its baseline on.
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("UPDATE orders SET status='shipped' WHERE id=1")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 4, 10000);
    QCOMPARE(f.events[3].operation(), Operation::Update);
    QCOMPARE(f.events[3].ns().toString(), QStringLiteral("main.orders"));
}

void TestSqliteSchema::indexCreateAndDropCarryTheIndexSpec() {
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("orders")));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    QCOMPARE(
        runSqlite3(dbPath(), QStringLiteral("CREATE UNIQUE INDEX by_status ON orders(status, total DESC)")),
        QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 10000);
    QCOMPARE(f.events[0].operationType(), QByteArray("createIndexes"));
    QCOMPARE(f.events[0].ns().toString(), QStringLiteral("main.orders"));
    // The key keeps the index's column order, which a JSON object parse would not show.
    const QByteArray json = f.events[0].toJson();
    QVERIFY2(json.contains(R"("operationDescription":{"indexes":[{"v":2,"key":{"status":1,"total":-1},)"
                           R"("name":"by_status","unique":true}]})"),
             json.constData());

    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("CREATE INDEX by_total ON orders(total)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 10000);
    const QJsonArray created = description(f.events[1]).value(QLatin1String("indexes")).toArray();
    QCOMPARE(created.size(), 1);
    QCOMPARE(created[0].toObject().value(QLatin1String("name")).toString(), QStringLiteral("by_total"));
    QVERIFY(!created[0].toObject().contains(QLatin1String("unique")));

    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("DROP INDEX by_status")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);
    QCOMPARE(f.events[2].operationType(), QByteArray("dropIndexes"));
    const QJsonArray dropped = description(f.events[2]).value(QLatin1String("indexes")).toArray();
    QCOMPARE(dropped.size(), 1);
    QCOMPARE(dropped[0].toObject().value(QLatin1String("name")).toString(), QStringLiteral("by_status"));
    QCOMPARE(dropped[0].toObject().value(QLatin1String("unique")).toBool(), true);
    // An index on a table nobody watches is not this watch's business; a row change
    // after it shows its commit was read.
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("CREATE TABLE other(x); CREATE INDEX by_x ON other(x);"
                                                 "INSERT INTO orders(status) VALUES('late');")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 4, 10000);
    QCOMPARE(f.events[3].operation(), Operation::Insert);
}

void TestSqliteSchema::addAndRenameColumnAreModifyWithoutFalseUpdates() {
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("orders")));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("ALTER TABLE orders ADD COLUMN note TEXT")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 10000);
    QCOMPARE(f.events[0].operationType(), QByteArray("modify"));
    QCOMPARE(f.events[0].ns().toString(), QStringLiteral("main.orders"));
    const QStringList before{QStringLiteral("id"), QStringLiteral("status"), QStringLiteral("total")};
    QCOMPARE(columnNames(description(f.events[0]).value(QLatin1String("previousColumns"))), before);
    QCOMPARE(columnNames(description(f.events[0]).value(QLatin1String("columns"))),
             before + QStringList{QStringLiteral("note")});

    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("ALTER TABLE orders RENAME COLUMN note TO memo")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 10000);
    QCOMPARE(f.events[1].operationType(), QByteArray("modify"));
    QCOMPARE(columnNames(description(f.events[1]).value(QLatin1String("previousColumns"))),
             before + QStringList{QStringLiteral("note")});
    QCOMPARE(columnNames(description(f.events[1]).value(QLatin1String("columns"))),
             before + QStringList{QStringLiteral("memo")});

    // The existing rows are the new baseline: one update is one event, not one per row.
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("UPDATE orders SET memo='x' WHERE id=2")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);
    QCOMPARE(f.events[2].operation(), Operation::Update);
    QCOMPARE(fieldJson(f.events[2].documentKey(), "_id"), QStringLiteral("2"));
}

void TestSqliteSchema::renamedTableIsRenameWithTo() {
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("orders")));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("ALTER TABLE orders RENAME TO purchases;"
                                                 "CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT);"
                                                 "INSERT INTO orders(status) VALUES('new');")),
             QString());
    // The rename, then the new table of the watched name, its create and its row.
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);
    const ChangeEvent& rename = f.events[0];
    QCOMPARE(rename.operation(), Operation::Rename);
    QCOMPARE(rename.ns().toString(), QStringLiteral("main.orders"));
    QCOMPARE(rename.renameTarget().toString(), QStringLiteral("main.purchases"));
    QCOMPARE(description(rename).value(QLatin1String("to")).toObject(),
             QJsonObject({{QStringLiteral("db"), QStringLiteral("main")},
                          {QStringLiteral("coll"), QStringLiteral("purchases")}}));
    QCOMPARE(parseJson(rename.toJson()).value(QLatin1String("to")).toObject().value(QLatin1String("coll")),
             QJsonValue(QStringLiteral("purchases")));
    QCOMPARE(f.events[1].operationType(), QByteArray("create"));
    QCOMPARE(f.events[1].ns().toString(), QStringLiteral("main.orders"));
    QCOMPARE(f.events[2].operation(), Operation::Insert);
    QCOMPARE(fieldJson(f.events[2].fullDocument(), "status"), QStringLiteral("\"new\""));
}

// On a new journal there is no stored schema: the copy is taken by watch() itself, so a
// rename made after watchReady and before the first scan is still reported.
void TestSqliteSchema::renameRightAfterReadyOnANewJournalIsReported() {
    SqliteSource source(QStringLiteral("shop"), dbPath());
    source.setPollIntervalMs(2000); // the first scan comes well after the rename
    QList<ChangeEvent> events;
    connect(&source, &Source::batchReady, this,
            [&](const ChangeBatch& batch) { events.append(batch.events); });
    QSignalSpy ready(&source, &Source::watchReady);
    source.start(SourceRestore{});
    source.watch(Namespace{QStringLiteral("main"), QStringLiteral("orders")}, WatchOptions{});
    QCOMPARE(ready.size(), 1);
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("ALTER TABLE orders RENAME TO purchases;")), QString());
    QTRY_VERIFY_WITH_TIMEOUT(!events.isEmpty(), 10000);
    QCOMPARE(events.first().operation(), Operation::Rename);
    QCOMPARE(events.first().renameTarget().toString(), QStringLiteral("main.purchases"));
    source.stop();
}

// Everything in one commit, read by one scan: a rename and a new table of the old name
// are a rename, a create and the new table's row as an insert; a drop and a create that
// reuses the freed root page are a drop and a create, not a rename.
void TestSqliteSchema::dropAndCreateInOneCommitIsNoRename() {
    SqliteSource source(QStringLiteral("shop"), dbPath());
    source.setPollIntervalMs(1000);
    QList<ChangeEvent> events;
    connect(&source, &Source::batchReady, this,
            [&](const ChangeBatch& batch) { events.append(batch.events); });
    source.start(SourceRestore{});
    source.watch(Namespace{QStringLiteral("main"), QString()}, WatchOptions{});
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("BEGIN; ALTER TABLE orders RENAME TO purchases;"
                                                 "CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT);"
                                                 "INSERT INTO orders(status) VALUES('new'); COMMIT;")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(events.size(), 3, 10000);
    QCOMPARE(events[0].operation(), Operation::Rename);
    QCOMPARE(events[0].ns().toString(), QStringLiteral("main.orders"));
    QCOMPARE(events[0].renameTarget().toString(), QStringLiteral("main.purchases"));
    QCOMPARE(events[1].operationType(), QByteArray("create"));
    QCOMPARE(events[1].ns().toString(), QStringLiteral("main.orders"));
    QCOMPARE(events[2].operation(), Operation::Insert);
    QCOMPARE(events[2].ns().toString(), QStringLiteral("main.orders"));

    events.clear();
    QCOMPARE(
        runSqlite3(dbPath(), QStringLiteral("BEGIN; DROP TABLE purchases; CREATE TABLE marker(x); COMMIT;")),
        QString());
    QTRY_COMPARE_WITH_TIMEOUT(events.size(), 2, 10000);
    QCOMPARE(events[0].operation(), Operation::Drop);
    QCOMPARE(events[0].ns().toString(), QStringLiteral("main.purchases"));
    QCOMPARE(events[1].operationType(), QByteArray("create"));
    QCOMPARE(events[1].ns().toString(), QStringLiteral("main.marker"));
    source.stop();
}

void TestSqliteSchema::droppedTableIsOneDropWithoutItsIndexes() {
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("CREATE INDEX by_status ON orders(status)")), QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QString()));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("DROP TABLE orders; CREATE TABLE marker(x);")), QString());
    // marker's create comes in the same commit, after the drop: once it is here, the
    // whole commit has been read.
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 10000);
    QCOMPARE(f.events[0].operation(), Operation::Drop);
    QCOMPARE(f.events[0].ns().toString(), QStringLiteral("main.orders"));
    QCOMPARE(f.events[1].operationType(), QByteArray("create"));
    QCOMPARE(f.events[1].ns().toString(), QStringLiteral("main.marker"));
}

void TestSqliteSchema::schemaChangedWhileClosedIsReportedAfterRestart() {
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatching(f, QString()));
        // After ready, or the row could be part of the baseline and never an event.
        QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
        QCOMPARE(runSqlite3(dbPath(), QStringLiteral("INSERT INTO orders(status, total) VALUES('a', 1)")),
                 QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 10000);
    }
    // Closed: a table appears with a row, an index is made, a column is added.
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT);"
                                                 "INSERT INTO items(name) VALUES('kept');"
                                                 "CREATE INDEX by_total ON orders(total);")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QString()));
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);
    QCOMPARE(f.events[0].operationType(), QByteArray("create"));
    QCOMPARE(f.events[0].ns().toString(), QStringLiteral("main.items"));
    QCOMPARE(f.events[1].operationType(), QByteArray("createIndexes"));
    QCOMPARE(f.events[1].ns().toString(), QStringLiteral("main.orders"));
    QCOMPARE(f.events[2].operation(), Operation::Insert);
    QCOMPARE(fieldJson(f.events[2].fullDocument(), "name"), QStringLiteral("\"kept\""));
    QCOMPARE(f.events.first().seq(), 2); // after the first run's insert

    // And an alter while closed is a modify (beside the gap: the rows are not comparable).
    f.stop();
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("ALTER TABLE items ADD COLUMN price REAL")), QString());
    EngineFixture g(journalPath());
    QVERIFY(startWatching(g, QString()));
    QTRY_VERIFY_WITH_TIMEOUT(!g.ofOperation(Operation::Ddl).isEmpty(), 10000);
    const QList<ChangeEvent> ddl = g.ofOperation(Operation::Ddl);
    QCOMPARE(ddl.size(), 1);
    QCOMPARE(ddl[0].operationType(), QByteArray("modify"));
    QCOMPARE(columnNames(description(ddl[0]).value(QLatin1String("columns"))),
             (QStringList{QStringLiteral("id"), QStringLiteral("name"), QStringLiteral("price")}));
}

// A journal written before schema events holds no schema copy: the source takes the
// file's schema as it is and reports nothing for it.
void TestSqliteSchema::oldCheckpointWithoutSchemaResumesQuietly() {
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatching(f, QStringLiteral("orders")));
        QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    }
    // The copy is there (json('none') fails the script when it is not); take it out, as
    // an older Tidewatch would have left the journal, and change the schema meanwhile.
    const QString key = QStringLiteral("X'1e736368656d61'"); // "\x1eschema"
    QCOMPARE(runSqlite3(journalPath(),
                        QStringLiteral("SELECT json(CASE WHEN count(*) = 1 THEN '1' ELSE 'none' END) "
                                       "FROM source_state WHERE key = %1;"
                                       "DELETE FROM source_state WHERE key = %1;")
                            .arg(key)),
             QString());
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("CREATE INDEX by_total ON orders(total)")), QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("orders")));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("INSERT INTO orders(status) VALUES('x')")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 10000);
    QCOMPARE(f.events[0].operation(), Operation::Insert);
}

QTEST_GUILESS_MAIN(TestSqliteSchema)
#include "tst_sqliteschema.moc"

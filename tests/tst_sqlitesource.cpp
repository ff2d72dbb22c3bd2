#include "EngineFixture.h"

#include "demo/DemoWriter.h"
#include "sources/SourceFactory.h"
#include "sources/sqlite/SqliteSource.h"

#include <QtTest>

using namespace tw;
using namespace tw::test;

class TestSqliteSource : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void insertUpdateDeleteFromAnotherProcess();
    void restartReportsChangesMadeWhileClosed();
    void restartMidStreamLosesNothing();
    void lockedFileDelaysChangesButLosesNone();
    void longScanSendsEarlyChangesBeforeItEnds();
    void droppedTableEmitsDropThenInsertsAfterRecreate();
    void resentWatchOfADroppedTableDoesNotFail();
    void alteredTableEmitsModifyAndResnapshots();
    void captureModeGivesBeforeAndAfterImages();
    void unknownTableIsAClearError();
    void missingAndForeignFilesAreClearErrors();
    void neverWritesToTheWatchedFile();
    void deletedFileIsSaidAndItsReturnIsDiffed();
    void replacedFileIsReopenedAndDiffed();
    void truncatedFileReportsDropsNotACrash();
    void demoWriterKeepsWritingAndStopsAtOnce();

private:
    // Starts the engine with the test database as source "shop", watching main.orders.
    bool startWatchingOrders(EngineFixture& f) const {
        if (!f.start() || !f.engine->addSource(QStringLiteral("shop"), QStringLiteral("sqlite:") + dbPath()))
            return false;
        f.engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("orders")});
        return true;
    }
    QString dbPath() const { return m_dir->filePath(QStringLiteral("shop.sqlite")); }
    QString journalPath() const { return m_dir->filePath(QStringLiteral("journal.sqlite")); }
    std::unique_ptr<QTemporaryDir> m_dir;
};

void TestSqliteSource::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    QCOMPARE(runSqlite3(
                 dbPath(),
                 QStringLiteral("PRAGMA journal_mode=WAL;"
                                "CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT, total REAL);"
                                "INSERT INTO orders(status, total) VALUES('pending', 10.5), ('paid', 20);")),
             QString());
}

void TestSqliteSource::insertUpdateDeleteFromAnotherProcess() {
    EngineFixture f(journalPath());
    QVERIFY(startWatchingOrders(f));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    // The existing rows are the baseline, not changes.
    QTest::qWait(50);
    QCOMPARE(f.events.size(), 0);

    QCOMPARE(
        runSqlite3(dbPath(), QStringLiteral("INSERT INTO orders(status, total) VALUES('pending', 99.5)")),
        QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 10000);
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("UPDATE orders SET status='shipped' WHERE id=1")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 10000);
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("DELETE FROM orders WHERE id=2")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);

    const ChangeEvent& ins = f.events[0];
    QCOMPARE(ins.operation(), Operation::Insert);
    QCOMPARE(ins.ns().toString(), QStringLiteral("main.orders"));
    QCOMPARE(ins.sourceId(), QStringLiteral("shop"));
    QCOMPARE(fieldJson(ins.documentKey(), "_id"), QStringLiteral("3"));
    QCOMPARE(fieldJson(ins.fullDocument(), "status"), QStringLiteral("\"pending\""));
    QCOMPARE(fieldJson(ins.fullDocument(), "total"), QStringLiteral("99.5"));

    const ChangeEvent& upd = f.events[1];
    QCOMPARE(upd.operation(), Operation::Update);
    QCOMPARE(fieldJson(upd.documentKey(), "_id"), QStringLiteral("1"));
    const QJsonObject updJson = parseJson(upd.toJson());
    QCOMPARE(updJson.value(QLatin1String("updateDescription"))
                 .toObject()
                 .value(QLatin1String("updatedFields"))
                 .toObject(),
             QJsonObject({{QStringLiteral("status"), QStringLiteral("shipped")}}));
    QCOMPARE(updJson.value(QLatin1String("fullDocument")).toObject().value(QLatin1String("total")).toDouble(),
             10.5);

    const ChangeEvent& del = f.events[2];
    QCOMPARE(del.operation(), Operation::Delete);
    QCOMPARE(fieldJson(del.documentKey(), "_id"), QStringLiteral("2"));
    QVERIFY(del.fullDocument().isAbsent());
    QVERIFY(f.seqStrictlyIncreasing());
    QCOMPARE(f.events.last().seq(), f.engine->lastCommittedSeq());
}

void TestSqliteSource::restartReportsChangesMadeWhileClosed() {
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatchingOrders(f));
        QCOMPARE(runSqlite3(dbPath(), QStringLiteral("INSERT INTO orders(status, total) VALUES('a', 1)")),
                 QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 10000);
    }
    // Closed: three kinds of change happen.
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("INSERT INTO orders(status, total) VALUES('b', 2);"
                                                 "UPDATE orders SET total = 11 WHERE id = 1;"
                                                 "DELETE FROM orders WHERE id = 2;")),
             QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatchingOrders(f));
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);
    QCOMPARE(f.ofOperation(Operation::Insert).size(), 1);
    QCOMPARE(f.ofOperation(Operation::Update).size(), 1);
    QCOMPARE(f.ofOperation(Operation::Delete).size(), 1);
    QCOMPARE(fieldJson(f.ofOperation(Operation::Update)[0].documentKey(), "_id"), QStringLiteral("1"));
    QCOMPARE(f.events.first().seq(), 2); // continues after the first run's seq 1
    QTest::qWait(100);
    QCOMPARE(f.events.size(), 3); // and nothing else, in particular no re-report of seq 1
}

void TestSqliteSource::restartMidStreamLosesNothing() {
    // A writer keeps inserting while the engine is stopped and started again; every
    // row inserted after the first baseline must be reported exactly once.
    // The writer waits for locks as an application would (sqlite3's own default is to
    // fail at once) and stops at the first insert that fails: the count below is then
    // the count of rows that were really written.
    QProcess writer;
    const QString script = QStringLiteral("set -e; for i in $(seq 1 120); do sqlite3 -cmd '.timeout 20000' "
                                          "'%1' \"INSERT INTO orders(status,total) VALUES('w',$i)\"; done")
                               .arg(dbPath());
    QSet<QString> seen;
    int total = 0;
    for (int run = 0; run < 3; ++run) {
        EngineFixture f(journalPath());
        QVERIFY(startWatchingOrders(f));
        if (run == 0) {
            QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
            writer.start(QStringLiteral("bash"), {QStringLiteral("-c"), script});
            QVERIFY(writer.waitForStarted());
        }
        if (run < 2) {
            QTRY_VERIFY_WITH_TIMEOUT(f.events.size() >= 10, 20000);
        } else {
            QVERIFY(writer.waitForFinished(120000));
            QCOMPARE(writer.exitCode(), 0);
            QTRY_VERIFY_WITH_TIMEOUT(seen.size() + f.events.size() >= 120, 30000);
            QTest::qWait(100);
        }
        f.stop();
        for (const ChangeEvent& e : std::as_const(f.events)) {
            QCOMPARE(e.operation(), Operation::Insert);
            seen.insert(fieldJson(e.documentKey(), "_id"));
        }
        total += int(f.events.size());
    }
    QCOMPARE(seen.size(), 120);
    QCOMPARE(total, 120); // none twice
}

void TestSqliteSource::lockedFileDelaysChangesButLosesNone() {
    // A rollback-journal file held under an exclusive lock longer than the source's
    // busy timeout (a long write transaction of another application): the source
    // waits, never calls the file broken, and reports each row once the lock goes.
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("PRAGMA journal_mode=DELETE")), QString());
    EngineFixture f(journalPath());
    QVERIFY(startWatchingOrders(f));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    QProcess writer;
    writer.start(QStringLiteral("sqlite3"), {QStringLiteral("-bail"), dbPath()});
    QVERIFY(writer.waitForStarted());
    // Its own busy timeout: without one, a BEGIN that meets the source mid-read fails at
    // once and -bail ends the writer, so the lock was never taken (seen once in CI).
    writer.write(".timeout 10000\n"
                 "BEGIN EXCLUSIVE;\n"
                 "INSERT INTO orders(status, total) VALUES('held', 1), ('held', 2), ('held', 3);\n");
    // Another reader is refused: the lock is held.
    QTRY_VERIFY_WITH_TIMEOUT(
        runSqlite3(dbPath(), QStringLiteral("SELECT count(*) FROM orders")).contains(QLatin1String("locked")),
        10000);
    // Held for more than twice the busy timeout, while the source polls every 5 ms.
    QTest::qWait(2500);
    QCOMPARE(f.events.size(), 0);
    writer.write("COMMIT;\n");
    writer.closeWriteChannel();
    QVERIFY(writer.waitForFinished(10000));
    QCOMPARE(writer.exitCode(), 0);
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);
    QTest::qWait(100);
    QCOMPARE(f.events.size(), 3);
    QCOMPARE(f.ofOperation(Operation::Insert).size(), 3);
    for (const SourceStatus& status : std::as_const(f.statuses))
        QVERIFY2(status.state != SourceStatus::State::Error, qPrintable(status.reason));
}

// Diffing a large table takes tens of milliseconds; a change found at its start is
// sent on after a few milliseconds instead of waiting for the end of the scan. Each
// part carries its own rows' state: a restart afterwards reports nothing again.
void TestSqliteSource::longScanSendsEarlyChangesBeforeItEnds() {
    constexpr int kRows = 200000;
    QCOMPARE(
        runSqlite3(dbPath(), QStringLiteral("WITH RECURSIVE n(i) AS (SELECT 3 UNION ALL SELECT i + 1 FROM n "
                                            "WHERE i < %1) INSERT INTO orders(id, status, total) "
                                            "SELECT i, 'pending', i FROM n;")
                                 .arg(kRows)),
        QString());
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatchingOrders(f));
        QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 30000);
        // First one change on its own: once it is committed, so is the baseline (the
        // state of 200 000 rows), and the engine is idle again.
        QCOMPARE(runSqlite3(dbPath(), QStringLiteral("UPDATE orders SET status = 'late' WHERE id = 100")),
                 QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 30000);
        f.commits.clear();
        QCOMPARE(
            runSqlite3(dbPath(),
                       QStringLiteral("UPDATE orders SET status = 'paid' WHERE id IN (1, %1)").arg(kRows)),
            QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 30000);
        QList<QString> ids;
        for (const QList<ChangeEvent>& commit : std::as_const(f.commits)) {
            QStringList inCommit;
            for (const ChangeEvent& e : commit)
                inCommit.append(fieldJson(e.documentKey(), "_id"));
            ids.append(inCommit.join(QLatin1Char(',')));
        }
        QCOMPARE(ids, (QList<QString>{QStringLiteral("1"), QString::number(kRows)}));
    }
    EngineFixture f(journalPath());
    QVERIFY(startWatchingOrders(f));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 30000);
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("UPDATE orders SET status = 'shipped' WHERE id = 2")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 30000);
    QCOMPARE(fieldJson(f.events.first().documentKey(), "_id"), QStringLiteral("2"));
}

void TestSqliteSource::droppedTableEmitsDropThenInsertsAfterRecreate() {
    EngineFixture f(journalPath());
    QVERIFY(startWatchingOrders(f));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("DROP TABLE orders")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 10000);
    QCOMPARE(f.events[0].operation(), Operation::Drop);
    QCOMPARE(f.events[0].ns().coll, QStringLiteral("orders"));
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT);"
                                                 "INSERT INTO orders(status) VALUES('fresh');")),
             QString());
    // The new table's create, then its row.
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);
    QCOMPARE(f.events[1].operationType(), QByteArray("create"));
    QCOMPARE(f.events[1].ns().coll, QStringLiteral("orders"));
    QCOMPARE(f.events[2].operation(), Operation::Insert);
    QCOMPARE(fieldJson(f.events[2].fullDocument(), "status"), QStringLiteral("\"fresh\""));
}

// The Engine re-sends a watch whenever its readers change. A re-send that found the
// watched table dropped at that moment failed the watch, and the session then forgot
// it; the table must stay watched and be picked up again when it is recreated.
void TestSqliteSource::resentWatchOfADroppedTableDoesNotFail() {
    EngineFixture f(journalPath());
    QVERIFY(startWatchingOrders(f));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("DROP TABLE orders")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 10000);
    QCOMPARE(f.events[0].operation(), Operation::Drop);

    f.engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("orders")});
    // Watches reach the source in the order they were sent, so once the later watch of
    // a missing table has failed, the re-send has been handled.
    f.engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("ordrs")});
    QTRY_VERIFY_WITH_TIMEOUT(!f.watchErrors.isEmpty(), 10000);
    QCOMPARE(f.watchErrors.size(), 1);
    QVERIFY2(f.watchErrors[0].contains(QLatin1String("No table \"ordrs\"")), qPrintable(f.watchErrors[0]));

    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT);"
                                                 "INSERT INTO orders(status) VALUES('fresh');")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);
    QCOMPARE(f.events[1].operationType(), QByteArray("create"));
    QCOMPARE(f.events[1].ns().coll, QStringLiteral("orders"));
    QCOMPARE(f.events[2].operation(), Operation::Insert);
    QCOMPARE(f.events[2].ns().coll, QStringLiteral("orders"));
    QCOMPARE(fieldJson(f.events[2].fullDocument(), "status"), QStringLiteral("\"fresh\""));
    QCOMPARE(f.watchErrors.size(), 1);
}

void TestSqliteSource::alteredTableEmitsModifyAndResnapshots() {
    EngineFixture f(journalPath());
    QVERIFY(startWatchingOrders(f));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("ALTER TABLE orders ADD COLUMN note TEXT")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 10000);
    // An alter was a `drop` with reason "altered" until schema events; now it is
    // MongoDB's `modify`, with the columns after it.
    QCOMPARE(f.events[0].operation(), Operation::Ddl);
    QCOMPARE(f.events[0].operationType(), QByteArray("modify"));
    QVERIFY(f.events[0].toJson().contains(R"("name":"note")"));
    // The two existing rows are the new baseline: an update after it is one update.
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("UPDATE orders SET note='x' WHERE id=2")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 10000);
    QCOMPARE(f.events[1].operation(), Operation::Update);
    QCOMPARE(parseJson(f.events[1].toJson())
                 .value(QLatin1String("updateDescription"))
                 .toObject()
                 .value(QLatin1String("updatedFields"))
                 .toObject()
                 .keys(),
             QStringList{QStringLiteral("note")});
}

void TestSqliteSource::captureModeGivesBeforeAndAfterImages() {
    EngineFixture f(journalPath());
    QVERIFY(f.start());
    QVERIFY(f.engine->addSource(QStringLiteral("shop"), QStringLiteral("sqlite:") + dbPath()));
    WatchOptions options;
    options.captureMode = true;
    f.engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("orders")},
                    options);
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("UPDATE orders SET status='paid', total=12 WHERE id=1;"
                                                 "UPDATE orders SET status='refunded' WHERE id=1;"
                                                 "DELETE FROM orders WHERE id=2;")),
             QString());
    // Capture mode sees both updates of one commit, which a diff cannot.
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);
    QCOMPARE(f.events[0].operation(), Operation::Update);
    QCOMPARE(fieldJson(f.events[0].fullDocumentBeforeChange(), "status"), QStringLiteral("\"pending\""));
    QCOMPARE(fieldJson(f.events[0].fullDocument(), "status"), QStringLiteral("\"paid\""));
    QCOMPARE(fieldJson(f.events[1].fullDocumentBeforeChange(), "status"), QStringLiteral("\"paid\""));
    QCOMPARE(fieldJson(f.events[1].fullDocument(), "status"), QStringLiteral("\"refunded\""));
    QCOMPARE(parseJson(f.events[1].toJson())
                 .value(QLatin1String("updateDescription"))
                 .toObject()
                 .value(QLatin1String("updatedFields"))
                 .toObject()
                 .keys(),
             QStringList{QStringLiteral("status")});
    QCOMPARE(f.events[2].operation(), Operation::Delete);
    QCOMPARE(fieldJson(f.events[2].fullDocumentBeforeChange(), "total"), QStringLiteral("20.0"));
}

void TestSqliteSource::unknownTableIsAClearError() {
    EngineFixture f(journalPath());
    QVERIFY(f.start());
    QVERIFY(f.engine->addSource(QStringLiteral("shop"), QStringLiteral("sqlite:") + dbPath()));
    f.engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("ordrs")});
    QTRY_COMPARE_WITH_TIMEOUT(f.watchErrors.size(), 1, 10000);
    QVERIFY2(f.watchErrors[0].contains(QLatin1String("No table \"ordrs\"")) &&
                 f.watchErrors[0].contains(QLatin1String("orders")),
             qPrintable(f.watchErrors[0]));
}

void TestSqliteSource::missingAndForeignFilesAreClearErrors() {
    QString error;
    QVERIFY(!SourceFactory::create(QStringLiteral("x"),
                                   QStringLiteral("sqlite:") + m_dir->filePath(QStringLiteral("nope.sqlite")),
                                   &error));
    QVERIFY2(error.contains(QLatin1String("No SQLite file")), qPrintable(error));
    QFile text(m_dir->filePath(QStringLiteral("notes.db")));
    QVERIFY(text.open(QIODevice::WriteOnly));
    text.write("just some text, definitely longer than sixteen bytes\n");
    text.close();
    QVERIFY(!SourceFactory::create(QStringLiteral("x"), QStringLiteral("sqlite:") + text.fileName(), &error));
    QVERIFY2(error.contains(QLatin1String("not an SQLite database")), qPrintable(error));
    QVERIFY(!SourceFactory::create(QStringLiteral("x"), QStringLiteral("ftp://example"), &error));
    QVERIFY2(error.contains(QLatin1String("Unsupported source URI")), qPrintable(error));
    // PostgreSQL URIs are a source of their own now; one libpq refuses is still an
    // error that hides the password.
    QVERIFY(!SourceFactory::create(
        QStringLiteral("x"), QStringLiteral("postgresql://app:hunter2@db/shop?nosuchoption=1"), &error));
    QVERIFY2(error.contains(QLatin1String("not a PostgreSQL connection string")) &&
                 !error.contains(QLatin1String("hunter2")),
             qPrintable(error));
}

void TestSqliteSource::neverWritesToTheWatchedFile() {
    const QByteArray before = [&] {
        QFile f(dbPath());
        f.open(QIODevice::ReadOnly);
        return f.readAll();
    }();
    QFile::setPermissions(dbPath(), QFile::ReadOwner | QFile::ReadGroup);
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatchingOrders(f));
        QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
        QTest::qWait(100);
    }
    QFile f(dbPath());
    QVERIFY(f.open(QIODevice::ReadOnly));
    QCOMPARE(f.readAll(), before);
}

// The last status the engine reported, or a default one.
static SourceStatus lastStatus(const EngineFixture& f) {
    return f.statuses.isEmpty() ? SourceStatus() : f.statuses.last();
}

void TestSqliteSource::deletedFileIsSaidAndItsReturnIsDiffed() {
    EngineFixture f(journalPath());
    QVERIFY(startWatchingOrders(f));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    const QString aside = m_dir->filePath(QStringLiteral("aside.sqlite"));
    // Moved away with its WAL: the path is empty.
    QVERIFY(QFile::rename(dbPath(), aside));
    QFile::rename(dbPath() + QStringLiteral("-wal"), aside + QStringLiteral("-wal"));
    QFile::rename(dbPath() + QStringLiteral("-shm"), aside + QStringLiteral("-shm"));
    QTRY_VERIFY_WITH_TIMEOUT(lastStatus(f).state == SourceStatus::State::Error, 10000);
    QVERIFY2(lastStatus(f).reason.contains(QLatin1String("deleted or moved away")),
             qPrintable(lastStatus(f).reason));
    QVERIFY(lastStatus(f).reason.contains(dbPath()));
    // Written while away, then brought back: the difference is reported.
    QCOMPARE(runSqlite3(aside, QStringLiteral("INSERT INTO orders(status, total) VALUES('while away', 5);"
                                              "DELETE FROM orders WHERE id = 1;")),
             QString());
    QVERIFY(QFile::rename(aside, dbPath()));
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 10000);
    QTRY_VERIFY_WITH_TIMEOUT(lastStatus(f).state == SourceStatus::State::Watching, 10000);
    QList<Operation> ops{f.events[0].operation(), f.events[1].operation()};
    std::sort(ops.begin(), ops.end());
    QList<Operation> expected{Operation::Insert, Operation::Delete};
    std::sort(expected.begin(), expected.end());
    QCOMPARE(ops, expected);
    for (const ChangeEvent& e : std::as_const(f.events))
        if (e.operation() == Operation::Insert)
            QCOMPARE(fieldJson(e.fullDocument(), "status"), QStringLiteral("\"while away\""));
    // And it is watched again.
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("INSERT INTO orders(status, total) VALUES('back', 6)")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);
}

void TestSqliteSource::replacedFileIsReopenedAndDiffed() {
    EngineFixture f(journalPath());
    QVERIFY(startWatchingOrders(f));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    // Another process writes a new file and renames it over the watched one, as a
    // restore from backup does.
    const QString fresh = m_dir->filePath(QStringLiteral("fresh.sqlite"));
    QCOMPARE(runSqlite3(fresh,
                        QStringLiteral("CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT, total REAL);"
                                       "INSERT INTO orders(status, total) VALUES('pending', 10.5),"
                                       "('refunded', 20), ('new', 30);")),
             QString());
    QVERIFY(::rename(QFile::encodeName(fresh).constData(), QFile::encodeName(dbPath()).constData()) == 0);
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 2, 10000);
    QCOMPARE(f.events[0].operation(), Operation::Update);
    QCOMPARE(fieldJson(f.events[0].documentKey(), "_id"), QStringLiteral("2"));
    QCOMPARE(f.events[1].operation(), Operation::Insert);
    QCOMPARE(fieldJson(f.events[1].fullDocument(), "status"), QStringLiteral("\"new\""));
    QTRY_VERIFY_WITH_TIMEOUT(lastStatus(f).reason.contains(QLatin1String("was replaced")), 10000);
    QCOMPARE(lastStatus(f).state, SourceStatus::State::Watching);
    // The new file is the one watched from now on.
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("DELETE FROM orders WHERE id = 3")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 3, 10000);
    QCOMPARE(f.events[2].operation(), Operation::Delete);
}

void TestSqliteSource::truncatedFileReportsDropsNotACrash() {
    EngineFixture f(journalPath());
    QVERIFY(startWatchingOrders(f));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 10000);
    // Emptied in place (same inode), WAL and all: an empty file is an empty database.
    QFile::remove(dbPath() + QStringLiteral("-wal"));
    QFile::remove(dbPath() + QStringLiteral("-shm"));
    QFile file(dbPath());
    QVERIFY(file.open(QIODevice::ReadWrite));
    QVERIFY(file.resize(0));
    file.close();
    // Either the table is reported dropped or the source says it cannot read the
    // file; never silence, never a crash.
    QTRY_VERIFY_WITH_TIMEOUT(!f.ofOperation(Operation::Drop).isEmpty() ||
                                 lastStatus(f).state == SourceStatus::State::Error,
                             10000);
    QVERIFY(f.engine->isRunning());
    // Written again from scratch: the new row is reported, as an insert when the
    // empty file was seen in between (after the drop), else as the update of row 1.
    QCOMPARE(runSqlite3(dbPath(),
                        QStringLiteral("CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT, "
                                       "total REAL); INSERT INTO orders(status, total) VALUES('x', 1);")),
             QString());
    const auto sawNewRow = [&f] {
        for (const ChangeEvent& e : std::as_const(f.events))
            if ((e.operation() == Operation::Insert || e.operation() == Operation::Update) &&
                fieldJson(e.fullDocument(), "status") == QLatin1String("\"x\""))
                return true;
        return false;
    };
    QTRY_VERIFY_WITH_TIMEOUT(sawNewRow(), 10000);
    QTRY_VERIFY_WITH_TIMEOUT(lastStatus(f).state == SourceStatus::State::Watching, 10000);
}

// The demo writer sleeps between changes in slices; it once read the clock twice per
// slice, and when the deadline passed between the two readings the negative rest, made
// unsigned, slept for ever: the demo stopped within seconds on a busy machine and the
// window could not close. At thousands of changes a second that moment comes often.
void TestSqliteSource::demoWriterKeepsWritingAndStopsAtOnce() {
    const QString path = m_dir->filePath(QStringLiteral("demo.sqlite"));
    DemoWriter writer(path);
    writer.setRate(5000);
    writer.start();
    qint64 seen = 0;
    for (int step = 0; step < 40; ++step) { // about 3 s
        QTRY_VERIFY_WITH_TIMEOUT(writer.changesWritten() > seen + 400, 5000);
        seen = writer.changesWritten();
    }
    writer.requestStop();
    QVERIFY2(writer.wait(5000), "the demo writer did not stop within 5 s");
}

QTEST_GUILESS_MAIN(TestSqliteSource)
#include "tst_sqlitesource.moc"

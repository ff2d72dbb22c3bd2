#include "PgSuite.h"

#include "sources/postgres/PgCapture.h"
#include "sources/postgres/PgConnection.h"

#include <QtTest>

using namespace tw;
using namespace tw::test;

// Capture mode's triggers and changelog (PgCapture) when more than one reader captures
// a table, and what a crash left of them, against a real throwaway cluster. Writes come
// from another connection (PgCluster::exec).
class TestPostgresCapture : public QObject, public PgSuite {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void twoReadersOfATableEachReadEveryChange();
    void pruningKeepsTheRowsAnotherReaderHasNotCommitted();
    void removingOneReaderKeepsTheTriggerForTheOther();
    void streamingStartRemovesTheCaptureACrashedSwitchLeft();

private:
    QString triggersOn(const QString& table) const {
        return value(QStringLiteral("SELECT count(*) FROM pg_trigger WHERE tgrelid = '%1'::regclass AND NOT "
                                    "tgisinternal")
                         .arg(table));
    }
    QString changelogRows(const QString& coll) const {
        return value(QStringLiteral("SELECT count(*) FROM tidewatch.changelog WHERE tbl = '%1'").arg(coll));
    }
    // A reader of `table` as a capturing source would make it, on its own connection.
    bool install(PgCapture& capture, PgConnection& conn, const QString& table) {
        QString error;
        if (!conn.open(m_cluster->conninfo(), false, &error)) {
            qWarning() << error;
            return false;
        }
        const Namespace ns{QStringLiteral("tidewatch"), QStringLiteral("public.") + table};
        if (!capture.install(conn, ns, QStringLiteral("public.") + table, {QStringLiteral("id")}, &error)) {
            qWarning() << error;
            return false;
        }
        return true;
    }
    static int readCount(PgCapture& capture, PgConnection& conn, QByteArray* token) {
        ChangeBatch batch;
        QString error;
        if (!capture.read(conn, batch, &error))
            return -1;
        if (!batch.checkpoint.token.isEmpty())
            *token = batch.checkpoint.token;
        return int(batch.events.size());
    }
};

void TestPostgresCapture::initTestCase() {
    const QString error = startCluster();
    QVERIFY2(error.isEmpty(), qPrintable(error));
}

void TestPostgresCapture::init() {
    makeCaseDir();
}

void TestPostgresCapture::twoReadersOfATableEachReadEveryChange() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE shared(id int PRIMARY KEY, v text)")), QString());
    PgConnection connA, connB;
    PgCapture a(QStringLiteral("a"), QStringLiteral("reader_a"));
    PgCapture b(QStringLiteral("b"), QStringLiteral("reader_b"));
    QVERIFY(install(a, connA, QStringLiteral("shared")));
    QVERIFY(install(b, connB, QStringLiteral("shared")));
    QCOMPARE(triggersOn(QStringLiteral("shared")), QStringLiteral("2")); // one row, one truncate trigger
    QCOMPARE(exec(QStringLiteral("INSERT INTO shared VALUES (1, 'x'), (2, 'y'); UPDATE shared SET v = 'z'")),
             QString());
    QByteArray tokenA, tokenB;
    QCOMPARE(readCount(a, connA, &tokenA), 4);
    QCOMPARE(readCount(b, connB, &tokenB), 4);
    QCOMPARE(value(QStringLiteral("SELECT count(*) FROM tidewatch.readers WHERE tbl = 'public.shared'")),
             QStringLiteral("2"));
    a.remove(connA, Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.shared")});
    b.remove(connB, Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.shared")});
}

void TestPostgresCapture::pruningKeepsTheRowsAnotherReaderHasNotCommitted() {
    // Two journals capture one table. The first commits what it read and prunes; the
    // second has not committed yet (or is stopped): its rows must still be there.
    QCOMPARE(exec(QStringLiteral("CREATE TABLE pruned(id int PRIMARY KEY)")), QString());
    PgConnection connA, connB;
    PgCapture a(QStringLiteral("a"), QStringLiteral("reader_a"));
    PgCapture b(QStringLiteral("b"), QStringLiteral("reader_b"));
    QVERIFY(install(a, connA, QStringLiteral("pruned")));
    QVERIFY(install(b, connB, QStringLiteral("pruned")));
    QCOMPARE(exec(QStringLiteral("INSERT INTO pruned VALUES (1)")), QString());
    QCOMPARE(exec(QStringLiteral("INSERT INTO pruned VALUES (2)")), QString());
    QByteArray tokenA;
    QCOMPARE(readCount(a, connA, &tokenA), 2);
    QString error;
    QVERIFY2(a.pruneCommitted(connA, tokenA, &error), qPrintable(error));
    QCOMPARE(changelogRows(QStringLiteral("public.pruned")), QStringLiteral("2"));
    // The second reader, restarted from its journal's (empty) position, still reads both.
    QByteArray tokenB;
    QCOMPARE(readCount(b, connB, &tokenB), 2);
    QVERIFY2(b.pruneCommitted(connB, tokenB, &error), qPrintable(error));
    QCOMPARE(changelogRows(QStringLiteral("public.pruned")), QStringLiteral("0"));
    a.remove(connA, Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.pruned")});
    b.remove(connB, Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.pruned")});
}

void TestPostgresCapture::removingOneReaderKeepsTheTriggerForTheOther() {
    QCOMPARE(exec(QStringLiteral("CREATE TABLE kept(id int PRIMARY KEY)")), QString());
    PgConnection connA, connB;
    PgCapture a(QStringLiteral("a"), QStringLiteral("reader_a"));
    PgCapture b(QStringLiteral("b"), QStringLiteral("reader_b"));
    QVERIFY(install(a, connA, QStringLiteral("kept")));
    QVERIFY(install(b, connB, QStringLiteral("kept")));
    QCOMPARE(exec(QStringLiteral("INSERT INTO kept VALUES (1)")), QString());
    // The first stops capturing before the second has read the row.
    a.remove(connA, Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.kept")});
    QCOMPARE(triggersOn(QStringLiteral("kept")), QStringLiteral("2"));
    QCOMPARE(exec(QStringLiteral("INSERT INTO kept VALUES (2)")), QString());
    QByteArray tokenB;
    QCOMPARE(readCount(b, connB, &tokenB), 2);
    // The last reader takes the triggers and the rows with it.
    b.remove(connB, Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.kept")});
    QCOMPARE(triggersOn(QStringLiteral("kept")), QStringLiteral("0"));
    QCOMPARE(changelogRows(QStringLiteral("public.kept")), QStringLiteral("0"));
    QCOMPARE(value(QStringLiteral("SELECT count(*) FROM tidewatch.readers WHERE tbl = 'public.kept'")),
             QStringLiteral("0"));
}

void TestPostgresCapture::streamingStartRemovesTheCaptureACrashedSwitchLeft() {
    // A source switched from capture to its slot; the journal committed the switch, and
    // the process died before it dropped the triggers. The next start streams from the
    // slot, so the triggers would log every change for ever with nobody pruning.
    QCOMPARE(exec(QStringLiteral("CREATE TABLE crashed(id int PRIMARY KEY)")), QString());
    QString reader;
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatching(f, QStringLiteral("pg"), QStringLiteral("crashed")));
        QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
        QTRY_VERIFY_WITH_TIMEOUT(
            !f.statuses.isEmpty() && f.statuses.last().state == SourceStatus::State::Watching, 20000);
        reader = f.statuses.last().slotName;
        QCOMPARE(exec(QStringLiteral("INSERT INTO crashed VALUES (1)")), QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    }
    QVERIFY(!reader.isEmpty());
    // What the crashed run's capture left: its registration and triggers, and rows.
    PgConnection left;
    PgCapture capture(QStringLiteral("pg"), reader);
    QVERIFY(install(capture, left, QStringLiteral("crashed")));
    // Another journal's reader of the same table, still capturing: it keeps the trigger.
    PgConnection otherConn;
    PgCapture other(QStringLiteral("other"), QStringLiteral("another_journal"));
    QVERIFY(install(other, otherConn, QStringLiteral("crashed")));
    QCOMPARE(exec(QStringLiteral("INSERT INTO crashed VALUES (2)")), QString());
    QCOMPARE(triggersOn(QStringLiteral("crashed")), QStringLiteral("2"));

    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("pg"), QStringLiteral("crashed")));
    QTRY_VERIFY_WITH_TIMEOUT(
        !f.statuses.isEmpty() && f.statuses.last().state == SourceStatus::State::Watching, 20000);
    // The stream goes on exactly after the committed row, and the leftover is gone.
    QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
    QCOMPARE(fieldJson(f.events[0].documentKey(), "id"), QStringLiteral("2"));
    QCOMPARE(value(QStringLiteral("SELECT count(*) FROM tidewatch.readers WHERE reader = '%1'").arg(reader)),
             QStringLiteral("0"));
    // The other reader's trigger and rows stay; alone, its removal takes them.
    QCOMPARE(triggersOn(QStringLiteral("crashed")), QStringLiteral("2"));
    QByteArray token;
    QCOMPARE(readCount(other, otherConn, &token), 1);
    other.remove(otherConn, Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.crashed")});
    QCOMPARE(triggersOn(QStringLiteral("crashed")), QStringLiteral("0"));

    // Alone, the leftover takes the triggers with it.
    QVERIFY(install(capture, left, QStringLiteral("crashed")));
    QCOMPARE(triggersOn(QStringLiteral("crashed")), QStringLiteral("2"));
    f.stop();
    EngineFixture again(journalPath());
    QVERIFY(startWatching(again, QStringLiteral("pg"), QStringLiteral("crashed")));
    QTRY_VERIFY_WITH_TIMEOUT(
        !again.statuses.isEmpty() && again.statuses.last().state == SourceStatus::State::Watching, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(triggersOn(QStringLiteral("crashed")), QStringLiteral("0"), 20000);
    QCOMPARE(changelogRows(QStringLiteral("public.crashed")), QStringLiteral("0"));
}

QTEST_GUILESS_MAIN(TestPostgresCapture)
#include "tst_postgrescapture.moc"

// The journal's disk fills while a real SQLite source is watched: the journal says so,
// /v1/health says so over real HTTP, no checkpoint moves past what is stored, and once
// there is room again every row inserted meanwhile arrives exactly once.
//
// The disk is SQLite's max_page_count (Engine::setJournalPageLimit): the journal gets
// SQLITE_FULL exactly as from a full file system, and a tmpfs would need mount rights
// that CI's machine may not grant.
#include "EngineFixture.h"

#include "http/SseServer.h"

#include <QJsonArray>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QtTest>

using namespace tw;
using namespace tw::test;

namespace {

const QByteArray kToken = "journal-full-token";

} // namespace

class TestJournalFull : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void fullDiskIsReportedAndEveryRowArrivesOnceWhenSpaceReturns();
    void stopWhileFullLosesNothingAfterRestart();
    void aLongOutagePausesTheSourceAndLosesNothing();
    void aCheckpointTheJournalCannotReadKeepsTheSourceWaiting();

private:
    QString dbPath() const { return m_dir->filePath(QStringLiteral("shop.sqlite")); }
    QString journalPath() const { return m_dir->filePath(QStringLiteral("journal.sqlite")); }
    bool startWatchingOrders(EngineFixture& f) const;
    // GET /v1/health over a real socket; an empty object when it did not answer 200.
    QJsonObject health(const SseServer& server);
    // Inserts rows [from, to) with the sqlite3 program, one commit each; every row is
    // bigger than a journal page, so none of them fits in a full journal.
    static QString insertRows(const QString& path, int from, int to);
    // What the journal file itself holds, read by another connection (the sqlite3 program).
    QString stored(const QString& sql) const;
    // The ids of the inserted rows among the events, in commit order.
    static QList<int> insertedIds(const QList<ChangeEvent>& events);

    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<QNetworkAccessManager> m_nam;
};

void TestJournalFull::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    m_nam = std::make_unique<QNetworkAccessManager>();
    QCOMPARE(runSqlite3(dbPath(), QStringLiteral("PRAGMA journal_mode=WAL;"
                                                 "CREATE TABLE orders(id INTEGER PRIMARY KEY, note TEXT);"
                                                 "INSERT INTO orders(id, note) VALUES(1, 'baseline');")),
             QString());
}

void TestJournalFull::cleanup() {
    m_nam.reset();
    m_dir.reset();
}

bool TestJournalFull::startWatchingOrders(EngineFixture& f) const {
    if (!f.start() || !f.engine->addSource(QStringLiteral("shop"), QStringLiteral("sqlite:") + dbPath()))
        return false;
    f.engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("orders")});
    return true;
}

QJsonObject TestJournalFull::health(const SseServer& server) {
    QNetworkRequest request(QUrl(server.baseUrl().toString() + QStringLiteral("/v1/health")));
    request.setRawHeader("Authorization", "Bearer " + kToken);
    QNetworkReply* reply = m_nam->get(request);
    QSignalSpy done(reply, &QNetworkReply::finished);
    if (!reply->isFinished())
        done.wait(30000);
    const int status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    const QByteArray body = reply->readAll();
    reply->deleteLater();
    return status == 200 ? parseJson(body) : QJsonObject();
}

QString TestJournalFull::insertRows(const QString& path, int from, int to) {
    QString sql;
    for (int id = from; id < to; ++id)
        // 12 KB of hex from randomblob: three 4 KiB pages that compression cannot fold.
        sql += QStringLiteral("INSERT INTO orders(id, note) VALUES(%1, hex(randomblob(6000)));").arg(id);
    return runSqlite3(path, sql);
}

QString TestJournalFull::stored(const QString& sql) const {
    QProcess p;
    p.start(QStringLiteral("sqlite3"), {QStringLiteral("-readonly"), journalPath(), sql});
    if (!p.waitForFinished(30000) || p.exitCode() != 0)
        return QStringLiteral("sqlite3 failed: ") + QString::fromUtf8(p.readAllStandardError());
    return QString::fromUtf8(p.readAllStandardOutput()).trimmed();
}

QList<int> TestJournalFull::insertedIds(const QList<ChangeEvent>& events) {
    QList<int> ids;
    for (const ChangeEvent& e : events)
        if (e.operation() == Operation::Insert)
            ids.append(fieldJson(e.documentKey(), "_id").toInt());
    return ids;
}

static QList<int> range(int from, int to) {
    QList<int> ids;
    for (int id = from; id < to; ++id)
        ids.append(id);
    return ids;
}

void TestJournalFull::fullDiskIsReportedAndEveryRowArrivesOnceWhenSpaceReturns() {
    EngineFixture f(journalPath());
    QVERIFY(startWatchingOrders(f));
    SseServer server(f.engine.get());
    SseServer::Options options;
    options.token = QString::fromLatin1(kToken);
    QString error;
    QVERIFY2(server.start(options, &error), qPrintable(error));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 20000);

    // Room: rows 2..4 arrive, and health says the journal is fine.
    QCOMPARE(insertRows(dbPath(), 2, 5), QString());
    QTRY_COMPARE_WITH_TIMEOUT(insertedIds(f.events), range(2, 5), 20000);
    QJsonObject body = health(server);
    QCOMPARE(body.value(QLatin1String("status")).toString(), QStringLiteral("ok"));
    QCOMPARE(body.value(QLatin1String("journal")).toObject().value(QLatin1String("state")).toString(),
             QStringLiteral("ok"));

    // The disk fills: not one more page. Queued to the engine thread before the rows
    // below can reach it (they go through the source's thread first).
    QSignalSpy failed(f.engine.get(), &Engine::journalFailed);
    QSignalSpy recovered(f.engine.get(), &Engine::journalRecovered);
    f.engine->setJournalPageLimit(0);
    const QString storedEvents = stored(QStringLiteral("SELECT count(*) FROM events"));
    const QString storedState =
        stored(QStringLiteral("SELECT count(*), total(length(value)) FROM source_state"));
    const qint64 seqBefore = f.engine->lastCommittedSeq();
    QCOMPARE(insertRows(dbPath(), 5, 10), QString());
    // Emitted on the engine thread, possibly while sqlite3 was still inserting.
    QTRY_VERIFY_WITH_TIMEOUT(!failed.isEmpty(), 20000);
    QVERIFY2(failed.first().first().toString().contains(QLatin1String("disk full at ") + journalPath()),
             qPrintable(failed.first().first().toString()));
    QCOMPARE(f.engine->journalStatus().state, JournalStatus::State::DiskFull);

    // Health says so, with the path and what to do, until room returns.
    QTRY_VERIFY_WITH_TIMEOUT(
        health(server).value(QLatin1String("status")).toString() == QLatin1String("degraded"), 20000);
    body = health(server);
    const QJsonObject journal = body.value(QLatin1String("journal")).toObject();
    QCOMPARE(journal.value(QLatin1String("state")).toString(), QStringLiteral("full"));
    QCOMPARE(journal.value(QLatin1String("path")).toString(), journalPath());
    const QString reason = journal.value(QLatin1String("reason")).toString();
    QVERIFY2(reason.startsWith(QLatin1String("journal: disk full at ") + journalPath()), qPrintable(reason));
    QVERIFY2(reason.contains(QLatin1String("free space")), qPrintable(reason));
    QVERIFY2(reason.contains(QLatin1String("resumes by itself")), qPrintable(reason));
    QVERIFY(journal.value(QLatin1String("pendingEvents")).toInteger() > 0);
    QVERIFY(!journal.value(QLatin1String("since")).toString().isEmpty());

    // More rows while full. None is committed, and nothing the source keeps in the
    // journal (its row hashes, its checkpoint) moves: a restart now would diff from here.
    QCOMPARE(insertRows(dbPath(), 10, 13), QString());
    QTRY_VERIFY_WITH_TIMEOUT(f.engine->journalStatus().pendingEvents >= 8, 20000);
    QCOMPARE(insertedIds(f.events), range(2, 5));
    QCOMPARE(f.engine->lastCommittedSeq(), seqBefore);
    QCOMPARE(stored(QStringLiteral("SELECT count(*) FROM events")), storedEvents);
    QCOMPARE(stored(QStringLiteral("SELECT count(*), total(length(value)) FROM source_state")), storedState);
    QCOMPARE(f.engine->journalStatus().state, JournalStatus::State::DiskFull);

    // Room again: the writer's retry commits everything that waited, once, in order.
    f.engine->setJournalPageLimit(-1);
    QTRY_VERIFY_WITH_TIMEOUT(!recovered.isEmpty(), 20000);
    QTRY_COMPARE_WITH_TIMEOUT(insertedIds(f.events), range(2, 13), 20000);
    QVERIFY(f.seqStrictlyIncreasing());
    QTRY_COMPARE_WITH_TIMEOUT(
        health(server).value(QLatin1String("journal")).toObject().value(QLatin1String("state")).toString(),
        QStringLiteral("ok"), 20000);
    body = health(server);
    QCOMPARE(body.value(QLatin1String("status")).toString(), QStringLiteral("ok"));
    QVERIFY(!body.value(QLatin1String("journal")).toObject().contains(QLatin1String("reason")));

    // And live again afterwards.
    QCOMPARE(insertRows(dbPath(), 13, 14), QString());
    QTRY_COMPARE_WITH_TIMEOUT(insertedIds(f.events), range(2, 14), 20000);
    QCOMPARE(stored(QStringLiteral("SELECT count(*) FROM events")),
             QString::number(storedEvents.toInt() + 9));
    server.stop();
}

// Tidewatch stops while the disk is full: what waited in memory is gone, but the
// journal still holds the source's state from before the outage, so the next start
// reports every row inserted since, once.
void TestJournalFull::stopWhileFullLosesNothingAfterRestart() {
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatchingOrders(f));
        QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 20000);
        QCOMPARE(insertRows(dbPath(), 2, 4), QString());
        QTRY_COMPARE_WITH_TIMEOUT(insertedIds(f.events), range(2, 4), 20000);
        QSignalSpy failed(f.engine.get(), &Engine::journalFailed);
        f.engine->setJournalPageLimit(0);
        QCOMPARE(insertRows(dbPath(), 4, 8), QString());
        QTRY_VERIFY_WITH_TIMEOUT(!failed.isEmpty(), 20000);
        QCOMPARE(f.engine->journalStatus().state, JournalStatus::State::DiskFull);
        f.stop();
        QCOMPARE(insertedIds(f.events), range(2, 4));
    }
    EngineFixture f(journalPath());
    QVERIFY(startWatchingOrders(f));
    QTRY_COMPARE_WITH_TIMEOUT(insertedIds(f.events), range(4, 8), 20000);
    QCOMPARE(f.events.first().seq(), 3); // after the two committed before the outage
    QVERIFY(f.engine->journalStatus().isOk());
}

// More waits than the engine keeps in memory: the source is paused, says so, and reads
// nothing more; once what waited is stored it starts again from the journal's
// checkpoint and every row, those written while it was paused too, arrives once.
void TestJournalFull::aLongOutagePausesTheSourceAndLosesNothing() {
    Engine::Options options = EngineFixture::optionsFor(journalPath());
    options.maxPendingEvents = 3;
    EngineFixture f(options);
    QVERIFY(startWatchingOrders(f));
    QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 20000);
    QCOMPARE(insertRows(dbPath(), 2, 4), QString());
    QTRY_COMPARE_WITH_TIMEOUT(insertedIds(f.events), range(2, 4), 20000);

    QSignalSpy recovered(f.engine.get(), &Engine::journalRecovered);
    f.engine->setJournalPageLimit(0);
    QCOMPARE(insertRows(dbPath(), 4, 12), QString());
    auto shop = [&] { return f.engine->sourceStatuses().value(QStringLiteral("shop")); };
    QTRY_COMPARE_WITH_TIMEOUT(shop().state, SourceStatus::State::Backoff, 20000);
    QVERIFY2(shop().reason.contains(QLatin1String("paused while the journal cannot be written")),
             qPrintable(shop().reason));
    const qint64 waiting = f.engine->journalStatus().pendingEvents;
    QVERIFY(waiting > 3);

    // Paused, it reads nothing: what waits does not grow with more rows (over several
    // of the source's polls and the journal's retries).
    QCOMPARE(insertRows(dbPath(), 12, 30), QString());
    QTest::qWait(2500);
    QCOMPARE(f.engine->journalStatus().pendingEvents, waiting);
    QCOMPARE(shop().state, SourceStatus::State::Backoff);
    QCOMPARE(insertedIds(f.events), range(2, 4));

    f.engine->setJournalPageLimit(-1);
    QTRY_VERIFY_WITH_TIMEOUT(!recovered.isEmpty(), 20000);
    QTRY_COMPARE_WITH_TIMEOUT(insertedIds(f.events), range(2, 30), 30000);
    QVERIFY(f.seqStrictlyIncreasing());
    QTRY_COMPARE_WITH_TIMEOUT(shop().state, SourceStatus::State::Watching, 20000);
    // And it is live again.
    QCOMPARE(insertRows(dbPath(), 30, 31), QString());
    QTRY_COMPARE_WITH_TIMEOUT(insertedIds(f.events), range(2, 31), 20000);
}

// The journal cannot read a source's checkpoint when the source starts (here its table
// is moved away by another connection, as a damaged file or a failing disk would make
// it unreadable). Started without it, the source would begin at the present and skip
// the rows written while Tidewatch was stopped; it waits instead, says why, and starts
// from the checkpoint once it can be read.
void TestJournalFull::aCheckpointTheJournalCannotReadKeepsTheSourceWaiting() {
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatchingOrders(f));
        QTRY_VERIFY_WITH_TIMEOUT(!f.ready.isEmpty(), 20000);
        QCOMPARE(insertRows(dbPath(), 2, 4), QString());
        QTRY_COMPARE_WITH_TIMEOUT(insertedIds(f.events), range(2, 4), 20000);
        f.stop();
    }
    QCOMPARE(insertRows(dbPath(), 4, 8), QString());

    EngineFixture f(journalPath());
    QVERIFY(f.start());
    QCOMPARE(
        runSqlite3(journalPath(), QStringLiteral("ALTER TABLE checkpoints RENAME TO checkpoints_aside;")),
        QString());
    QVERIFY(f.engine->addSource(QStringLiteral("shop"), QStringLiteral("sqlite:") + dbPath()));
    f.engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("orders")});
    auto shop = [&] { return f.engine->sourceStatuses().value(QStringLiteral("shop")); };
    QTRY_COMPARE_WITH_TIMEOUT(shop().state, SourceStatus::State::Backoff, 20000);
    QVERIFY2(
        shop().reason.contains(QLatin1String("cannot read the checkpoint of source shop from the journal ") +
                               journalPath()),
        qPrintable(shop().reason));
    QVERIFY2(shop().reason.contains(QLatin1String("no such table")), qPrintable(shop().reason));
    // Over several of its retries it reads nothing.
    QTest::qWait(2500);
    QCOMPARE(shop().state, SourceStatus::State::Backoff);
    QVERIFY(insertedIds(f.events).isEmpty());

    QCOMPARE(
        runSqlite3(journalPath(), QStringLiteral("ALTER TABLE checkpoints_aside RENAME TO checkpoints;")),
        QString());
    QTRY_COMPARE_WITH_TIMEOUT(insertedIds(f.events), range(4, 8), 20000);
    QCOMPARE(f.events.first().seq(), 3); // after the two committed before the stop
    QTRY_COMPARE_WITH_TIMEOUT(shop().state, SourceStatus::State::Watching, 20000);
}

QTEST_GUILESS_MAIN(TestJournalFull)
#include "tst_journalfull.moc"

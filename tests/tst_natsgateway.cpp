#include "NatsServer.h"
#include "NatsStreamClient.h"
#include "SseTestClient.h"
#include "TestUtil.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QProcessEnvironment>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

using namespace tw;
using namespace tw::test;
using tw::testsupport::NatsServer;
using tw::testsupport::NatsStreamClient;
using tw::testsupport::NatsStreamMessage;

namespace {

constexpr char kToken[] = "gateway-test-token";

// The one value a query prints, through the sqlite3 program.
qint64 sqliteCount(const QString& path, const QString& sql) {
    QProcess p;
    p.start(QStringLiteral("sqlite3"), {QStringLiteral("-cmd"), QStringLiteral(".timeout 10000"), path, sql});
    if (!p.waitForFinished(30000) || p.exitCode() != 0)
        return -1;
    return p.readAllStandardOutput().trimmed().toLongLong();
}

QList<qint64> range(qint64 first, qint64 last) {
    QList<qint64> out;
    for (qint64 i = first; i <= last; ++i)
        out.append(i);
    return out;
}

// The change events (not ready or gap) a client received, as (id, data) in order.
QList<QPair<QByteArray, QByteArray>> changes(const SseTestClient& client) {
    QList<QPair<QByteArray, QByteArray>> out;
    for (const SseMessage& m : client.messages)
        if (m.event != "ready" && m.event != "gap" && !m.id.isEmpty())
            out.append({m.id, m.data});
    return out;
}

// GET with the test's token; the body as JSON (empty on a timeout).
QJsonObject getJson(QNetworkAccessManager& http, const QUrl& url, int* status = nullptr) {
    QNetworkRequest request(url);
    request.setRawHeader("Authorization", QByteArray("Bearer ") + kToken);
    std::unique_ptr<QNetworkReply> reply(http.get(request));
    QSignalSpy done(reply.get(), &QNetworkReply::finished);
    if (!done.wait(10000))
        return {};
    if (status)
        *status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    return parseJson(reply->readAll());
}

// The last seq JetStream acknowledged to the ingest at `ingestBase`, from its /v1/health.
qint64 ackedSeq(QNetworkAccessManager& http, const QUrl& ingestBase) {
    return getJson(http, ingestBase.resolved(QUrl(QStringLiteral(
                             "/v1/health"))))[QStringLiteral("publisher")][QStringLiteral("ackedSeq")]
        .toInteger();
}

// POST with the test's token and a JSON body; the status, and the answer in *answer.
int postJson(QNetworkAccessManager& http, const QUrl& url, const QJsonObject& body, QByteArray* answer) {
    QNetworkRequest request(url);
    request.setRawHeader("Authorization", QByteArray("Bearer ") + kToken);
    request.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/json"));
    std::unique_ptr<QNetworkReply> reply(http.post(request, QJsonDocument(body).toJson()));
    QSignalSpy done(reply.get(), &QNetworkReply::finished);
    if (!done.wait(10000))
        return 0;
    *answer = reply->readAll();
    return reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
}

// The seqs of `a` that `b` lacks, for a failure's message.
QString notIn(const QList<qint64>& a, const QList<qint64>& b) {
    QStringList out;
    for (const qint64 seq : a)
        if (!b.contains(seq))
            out << QString::number(seq);
    return QLatin1Char('[') + out.join(QLatin1Char(',')) + QLatin1Char(']');
}

// The seqs of the events of `stream` on subjects ending in `.<coll token>`, after `after`.
QList<qint64> seqsOn(const QList<tw::testsupport::NatsStreamMessage>& stream, const QByteArray& coll,
                     qint64 after = 0) {
    QList<qint64> out;
    for (const auto& m : stream)
        if (m.subject.endsWith('.' + coll) && m.seq() > after)
            out.append(m.seq());
    return out;
}

QByteArray readFile(const QString& path) {
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

} // namespace

// The gateway side of NATS: one real headless ingest on a real SQLite file written by
// the sqlite3 program publishes to a real nats-server; real headless gateways read the
// stream and serve SSE to real HTTP clients.
class TestNatsGateway : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void twoGatewaysServeEveryChangeOnceInOrderWithTheSameIds();
    void gatewaySendsTheIngestsBytes();
    void gatewayBehindABacklogOfManyPassesServesItAllInOrder();
    void clientMovesToTheOtherGatewayAfterKillNineAndTheKilledOneCatchesUp();
    void gatewayTellsWhatItsIngestWatches();
    void eventsTheStreamNoLongerHoldsAreAGapOnANewGateway();
    void gatewayWhoseConsumerVanishesSubscribesAgain();
    void serverOutageUnderLoadStallsNoClientAndLosesNothing();
    void streamInMemoryMadeAgainIsReadFromItsStart();
    void narrowedGatewayRestartedAfterAStreamMadeAgainStillGivesTheGap();
    void gatewayConsumesOnlyWhatItsSubscriptionsNeed();

private:
    QString db() const { return m_dir->filePath(QStringLiteral("shop.sqlite")); }
    // Starts one headless Tidewatch with its own journal and data folder and waits until
    // its watch is live; with --sse, *base is its HTTP address.
    void startProcess(QProcess& p, const QString& name, const QStringList& args, QUrl* base = nullptr);
    void startIngest(QProcess& p, const QStringList& extra = {}, QUrl* base = nullptr);
    void startGateway(QProcess& p, const QString& name, QUrl* base);
    void write(int rows);
    // One insert per commit, each a new row, until stopWriting().
    void startWriting(QProcess& writer);
    void stopWriting(QProcess& writer);
    QString stopFile() const { return m_dir->filePath(QStringLiteral("stop-writing")); }
    static QUrl events(const QUrl& base) {
        return base.resolved(QUrl(QStringLiteral("/v1/subscriptions/headless/events")));
    }
    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<NatsServer> m_nats;
    int m_written = 0;
};

void TestNatsGateway::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    m_written = 0;
    QCOMPARE(runSqlite3(db(), QStringLiteral(
                                  "PRAGMA journal_mode=WAL;"
                                  "CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT, total REAL);")),
             QString());
    m_nats = std::make_unique<NatsServer>();
    QCOMPARE(m_nats->start(), QString());
}

void TestNatsGateway::cleanup() {
    // What each process said, when a test failed (or always, with TIDEWATCH_TEST_LOGS set).
    if (QTest::currentTestFailed() || qEnvironmentVariableIsSet("TIDEWATCH_TEST_LOGS")) {
        const QStringList logs = QDir(m_dir->path()).entryList({QStringLiteral("*.log")}, QDir::Files);
        for (const QString& name : logs) {
            QFile file(m_dir->filePath(name));
            if (file.open(QIODevice::ReadOnly))
                qWarning().noquote() << "---" << name << "---\n" << file.readAll().right(20000);
        }
    }
    m_nats.reset();
    m_dir.reset();
}

void TestNatsGateway::startProcess(QProcess& p, const QString& name, const QStringList& args, QUrl* base) {
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("TIDEWATCH_DATA_DIR"), m_dir->filePath(name + QStringLiteral("-data")));
    env.insert(QStringLiteral("TIDEWATCH_TOKEN"), QString::fromLatin1(kToken));
    p.setProcessEnvironment(env);
    p.setStandardOutputFile(QProcess::nullDevice());
    // A file of its own, appended to across restarts, printed when a test fails.
    const QString logFile = m_dir->filePath(name + QStringLiteral(".log"));
    p.setStandardErrorFile(logFile, QIODevice::Append);
    QFile existing(logFile);
    const qint64 logStart = existing.exists() ? existing.size() : 0;
    p.start(QStringLiteral(TIDEWATCH_BINARY),
            args + QStringList{QStringLiteral("--headless"), QStringLiteral("--journal"),
                               m_dir->filePath(name + QStringLiteral(".journal"))});
    QVERIFY(p.waitForStarted());
    QByteArray log;
    QRegularExpressionMatch port;
    auto ready = [&] {
        QFile file(logFile);
        if (file.open(QIODevice::ReadOnly) && file.seek(logStart))
            log = file.readAll();
        port = QRegularExpression(QStringLiteral("listening on \\S+ \\(port (\\d+)\\)"))
                   .match(QString::fromUtf8(log));
        return (log.contains("tidewatch: ready: ") && (!base || port.hasMatch())) ||
               p.state() != QProcess::Running;
    };
    QTRY_VERIFY_WITH_TIMEOUT(ready(), 20000);
    QVERIFY2(p.state() == QProcess::Running, log.constData());
    if (base)
        *base = QUrl(QStringLiteral("http://127.0.0.1:%1").arg(port.captured(1)));
}

void TestNatsGateway::startIngest(QProcess& p, const QStringList& extra, QUrl* base) {
    startProcess(p, QStringLiteral("ingest"),
                 QStringList{QStringLiteral("--source"), QStringLiteral("sqlite:") + db(),
                             QStringLiteral("--watch"), QStringLiteral("orders"), QStringLiteral("--publish"),
                             m_nats->url()} +
                     extra,
                 base);
}

void TestNatsGateway::startGateway(QProcess& p, const QString& name, QUrl* base) {
    startProcess(p, name,
                 {QStringLiteral("--gateway"), m_nats->url(), QStringLiteral("--sse"), QStringLiteral("0")},
                 base);
}

#define START(call)                                                                                          \
    do {                                                                                                     \
        call;                                                                                                \
        if (QTest::currentTestFailed())                                                                      \
            return;                                                                                          \
    } while (false)

void TestNatsGateway::write(int rows) {
    QString values;
    for (int i = 0; i < rows; ++i)
        values += QStringLiteral("%1('new', %2)").arg(i == 0 ? "" : ",").arg(++m_written);
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status, total) VALUES ") + values),
             QString());
}

void TestNatsGateway::startWriting(QProcess& writer) {
    writer.start(
        QStringLiteral("sh"),
        {QStringLiteral("-c"),
         QStringLiteral("while [ ! -e '%2' ]; do sqlite3 '%1' \"PRAGMA busy_timeout=5000; INSERT INTO "
                        "orders(status, total) VALUES('new', 1);\" >/dev/null || exit 1; done")
             .arg(db(), stopFile())});
    QVERIFY(writer.waitForStarted());
}

void TestNatsGateway::stopWriting(QProcess& writer) {
    // Asked to stop, so that no insert commits after the rows are counted.
    QFile stop(stopFile());
    QVERIFY(stop.open(QIODevice::WriteOnly));
    stop.close();
    QVERIFY(writer.waitForFinished(30000));
    QCOMPARE(writer.exitCode(), 0);
}

void TestNatsGateway::twoGatewaysServeEveryChangeOnceInOrderWithTheSameIds() {
    QProcess ingest, a, b;
    QUrl baseA, baseB;
    START(startIngest(ingest));
    START(startGateway(a, QStringLiteral("a"), &baseA));
    START(startGateway(b, QStringLiteral("b"), &baseB));
    SseTestClient onA, onB;
    onA.open(events(baseA), kToken);
    onB.open(events(baseB), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(onA.readyCount(), 1, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(onB.readyCount(), 1, 20000);

    // Each commit is seen before the next is made: the ingest reads the file by diffing
    // it, and two commits between its reads are one change (an insert of 'paid' rows).
    write(30);
    QTRY_COMPARE_WITH_TIMEOUT(onA.seqs().size(), 30, 20000);
    QCOMPARE(runSqlite3(db(), QStringLiteral("UPDATE orders SET status = 'paid' WHERE id <= 10")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(onA.seqs().size(), 40, 20000);
    QCOMPARE(runSqlite3(db(), QStringLiteral("DELETE FROM orders WHERE id = 30")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(onA.seqs().size(), 41, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(onB.seqs().size(), 41, 20000);
    // The ingest's seqs, once each and in order, on both: the same id names the same event.
    QCOMPARE(onA.seqs(), range(1, 41));
    QCOMPARE(onB.seqs(), range(1, 41));
    QCOMPARE(changes(onA), changes(onB));
    const QList<QPair<QByteArray, QByteArray>> got = changes(onA);
    for (int i = 0; i < got.size(); ++i) {
        const QJsonObject event = parseJson(got.at(i).second);
        QCOMPARE(event.value(QStringLiteral("seq")).toInteger(), i + 1);
        QCOMPARE(event.value(QStringLiteral("source")).toString(), QStringLiteral("shop"));
        const QString op = i < 30 ? QStringLiteral("insert") : i < 40 ? QStringLiteral("update") : "delete";
        QCOMPARE(event.value(QStringLiteral("operationType")).toString(), op);
        QCOMPARE(event[QStringLiteral("ns")][QStringLiteral("coll")].toString(), QStringLiteral("orders"));
    }
    QCOMPARE(parseJson(got.at(4).second)[QStringLiteral("fullDocument")][QStringLiteral("total")].toDouble(),
             5.0);
    QCOMPARE(onA.gapCount(), 0);
    QCOMPARE(onB.gapCount(), 0);
    for (QProcess* p : {&a, &b, &ingest}) {
        p->terminate();
        QVERIFY(p->waitForFinished(20000));
    }
}

// A gateway keeps each message's body as the event's JSON: its client gets the very
// bytes the ingest's client gets, on values whose text a second rendering could change
// (escapes, non-ASCII, doubles, integers past 32 bits, null).
void TestNatsGateway::gatewaySendsTheIngestsBytes() {
    QProcess ingest, gateway;
    QUrl ingestBase, base;
    START(startIngest(ingest, {QStringLiteral("--sse"), QStringLiteral("0")}, &ingestBase));
    START(startGateway(gateway, QStringLiteral("a"), &base));
    SseTestClient local, remote;
    local.open(events(ingestBase), kToken);
    remote.open(events(base), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(local.readyCount(), 1, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(remote.readyCount(), 1, 20000);
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status, total) VALUES"
                                             "('é \"q\" \\ ' || char(9) || char(1) || '/', 0.1),"
                                             "(5000000000, 1e300), ('中😀', -2.5e-7), (NULL, 5.0)")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(local.seqs().size(), 4, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(remote.seqs().size(), 4, 20000);
    QCOMPARE(runSqlite3(db(), QStringLiteral("UPDATE orders SET total = 1.5 WHERE id = 2")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(remote.seqs().size(), 5, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(local.seqs().size(), 5, 20000);
    const QList<QPair<QByteArray, QByteArray>> sent = changes(local);
    QCOMPARE(sent.size(), 5);
    QVERIFY(sent.at(1).second.contains("5000000000"));
    QVERIFY(sent.at(2).second.contains("中😀"));
    for (int i = 0; i < sent.size(); ++i)
        QCOMPARE(changes(remote).at(i).second, sent.at(i).second);
    QCOMPARE(remote.gapCount(), 0);
    for (QProcess* p : {&gateway, &ingest}) {
        p->terminate();
        QVERIFY(p->waitForFinished(20000));
    }
}

// A gateway started behind the stream reads its backlog in passes of at most 256
// messages, each handed to its journal on its own: every event arrives, once, in order,
// with the ingest's seqs, across the passes' boundaries.
void TestNatsGateway::gatewayBehindABacklogOfManyPassesServesItAllInOrder() {
    constexpr int kRows = 2000; // about eight passes
    QProcess ingest, gateway;
    QUrl ingestBase, base;
    START(startIngest(ingest, {QStringLiteral("--sse"), QStringLiteral("0")}, &ingestBase));
    write(kRows);
    // Everything in the stream before the gateway starts.
    QNetworkAccessManager http;
    const QUrl health = ingestBase.resolved(QUrl(QStringLiteral("/v1/health")));
    QTRY_COMPARE_WITH_TIMEOUT(
        getJson(http, health)[QStringLiteral("publisher")].toObject()[QStringLiteral("ackedSeq")].toInteger(),
        qint64(kRows), 20000);
    START(startGateway(gateway, QStringLiteral("a"), &base));
    // From the start of the gateway's journal: it may have read the backlog before the
    // client connects, and a client without an id gets what comes after it.
    SseTestClient client;
    client.open(events(base), kToken, "0");
    QTRY_COMPARE_WITH_TIMEOUT(client.seqs().size(), kRows, 30000);
    QCOMPARE(client.seqs(), range(1, kRows));
    QCOMPARE(client.gapCount(), 0);
    const QList<QPair<QByteArray, QByteArray>> got = changes(client);
    QCOMPARE(got.size(), kRows);
    for (int i : {0, 255, 256, 257, 1999})
        QCOMPARE(
            parseJson(got.at(i).second)[QStringLiteral("fullDocument")][QStringLiteral("total")].toDouble(),
            double(i + 1));
    for (QProcess* p : {&gateway, &ingest}) {
        p->terminate();
        QVERIFY(p->waitForFinished(20000));
    }
}

void TestNatsGateway::clientMovesToTheOtherGatewayAfterKillNineAndTheKilledOneCatchesUp() {
    QProcess ingest, a, b;
    QUrl baseA, baseB;
    START(startIngest(ingest));
    START(startGateway(a, QStringLiteral("a"), &baseA));
    START(startGateway(b, QStringLiteral("b"), &baseB));
    SseTestClient client, onB;
    client.open(events(baseA), kToken);
    onB.open(events(baseB), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(onB.readyCount(), 1, 20000);

    // One insert per commit while gateway a dies and its client moves to b.
    QProcess writer;
    START(startWriting(writer));
    QTRY_VERIFY_WITH_TIMEOUT(client.seqs().size() >= 20, 20000);
    a.kill();
    QVERIFY(a.waitForFinished(10000));
    QTRY_VERIFY_WITH_TIMEOUT(!client.isOpen(), 20000);
    const QByteArray lastId = client.lastEventId();
    QVERIFY(!lastId.isEmpty());
    // As a load balancer would: the same stream on the other gateway, from the last id.
    client.open(events(baseB), kToken, lastId);
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 2, 20000);
    QTRY_VERIFY_WITH_TIMEOUT(client.seqs().size() >= lastId.toLongLong() + 20, 20000);

    // Restarted while the writes go on, a resumes after what its journal holds.
    QUrl again;
    START(startGateway(a, QStringLiteral("a"), &again));
    START(stopWriting(writer));
    const qint64 rows = sqliteCount(db(), QStringLiteral("SELECT count(*) FROM orders"));
    QVERIFY(rows > 40);
    QTRY_COMPARE_WITH_TIMEOUT(client.seqs().size(), rows, 30000);
    QTRY_COMPARE_WITH_TIMEOUT(onB.seqs().size(), rows, 30000);
    QCOMPARE(client.seqs(), range(1, rows)); // nothing lost or repeated across the move
    QCOMPARE(onB.seqs(), range(1, rows));
    QCOMPARE(client.gapCount(), 0);
    QCOMPARE(changes(client), changes(onB));

    // The restarted gateway has every event, with the same ids and bytes: what it held
    // before the kill and what it caught up on.
    SseTestClient fromA;
    fromA.open(events(again), kToken, "5");
    QTRY_COMPARE_WITH_TIMEOUT(fromA.seqs().size(), rows - 5, 30000);
    QCOMPARE(fromA.seqs(), range(6, rows));
    QCOMPARE(changes(fromA), changes(onB).mid(5));
    for (QProcess* p : {&a, &b, &ingest}) {
        p->terminate();
        QVERIFY(p->waitForFinished(20000));
    }
}

void TestNatsGateway::gatewayTellsWhatItsIngestWatches() {
    QProcess ingest, gateway;
    QUrl base;
    START(startIngest(ingest));
    START(startGateway(gateway, QStringLiteral("a"), &base));
    QNetworkAccessManager http;
    // The ingest's list, as the gateway read it from the stream's key-value bucket.
    auto ingestSources = [&] {
        const QJsonArray sources =
            getJson(http, base.resolved(QUrl(QStringLiteral("/v1/sources"))))[QStringLiteral("sources")]
                .toArray();
        return sources.isEmpty() ? QJsonArray()
                                 : sources[0][QStringLiteral("ingest")][QStringLiteral("sources")].toArray();
    };
    QTRY_COMPARE_WITH_TIMEOUT(ingestSources().size(), 1, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(ingestSources()[0][QStringLiteral("state")].toString(),
                              QStringLiteral("watching"), 20000);
    const QJsonObject shop = ingestSources()[0].toObject();
    QCOMPARE(shop[QStringLiteral("id")].toString(), QStringLiteral("shop"));
    QCOMPARE(shop[QStringLiteral("watches")].toArray(),
             (QJsonArray{QJsonObject{{QStringLiteral("db"), QStringLiteral("main")},
                                     {QStringLiteral("coll"), QStringLiteral("orders")}}}));
    const QJsonObject health = getJson(http, base.resolved(QUrl(QStringLiteral("/v1/health"))));
    QCOMPARE(health[QStringLiteral("status")].toString(), QStringLiteral("ok"));
    QCOMPARE(health[QStringLiteral("sources")][0][QStringLiteral("ingest")][QStringLiteral("sources")][0]
                   [QStringLiteral("id")]
                       .toString(),
             QStringLiteral("shop"));

    // A namespace the ingest watches streams; one it does not is refused with 404.
    int status = 0;
    const QJsonObject refused =
        getJson(http, base.resolved(QUrl(QStringLiteral("/v1/streams?source=shop&ns=main.other"))), &status);
    QCOMPARE(status, 404);
    QVERIFY(refused[QStringLiteral("watched")].toArray().contains(
        QJsonObject{{QStringLiteral("source"), QStringLiteral("shop")},
                    {QStringLiteral("ns"), QStringLiteral("main.orders")}}));
    SseTestClient watched;
    watched.open(base.resolved(QUrl(QStringLiteral("/v1/streams?source=shop&ns=main.orders"))), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(watched.readyCount(), 1, 20000);
    QCOMPARE(watched.status(), 200);
    write(3);
    QTRY_COMPARE_WITH_TIMEOUT(watched.seqs(), range(1, 3), 20000);
    for (QProcess* p : {&gateway, &ingest}) {
        p->terminate();
        QVERIFY(p->waitForFinished(20000));
    }
}

void TestNatsGateway::eventsTheStreamNoLongerHoldsAreAGapOnANewGateway() {
    // A stream of about 2 KiB keeps the last few of 30 messages: a gateway started after
    // them never reads the first ones.
    QProcess ingest, gateway;
    QUrl ingestBase, base;
    START(startIngest(ingest,
                      {QStringLiteral("--nats-max-bytes"), QStringLiteral("2048"), QStringLiteral("--sse"),
                       QStringLiteral("0")},
                      &ingestBase));
    write(30);
    QNetworkAccessManager http;
    auto acked = [&] { return ackedSeq(http, ingestBase); };
    QTRY_COMPARE_WITH_TIMEOUT(acked(), 30, 20000);
    START(startGateway(gateway, QStringLiteral("late"), &base));
    SseTestClient client;
    client.open(events(base), kToken, "0"); // everything the gateway's journal holds
    QTRY_VERIFY_WITH_TIMEOUT(!client.seqs().isEmpty() && client.seqs().constLast() == 30, 20000);
    const QList<qint64> seqs = client.seqs();
    QVERIFY2(seqs.first() > 1, "the stream should have dropped its first messages");
    QCOMPARE(seqs, range(seqs.first(), 30));
    QCOMPARE(client.gapCount(), 1);
    const auto gap = std::find_if(client.messages.cbegin(), client.messages.cend(),
                                  [](const SseMessage& m) { return m.event == "gap"; });
    QVERIFY(gap != client.messages.cend());
    QVERIFY2(gap->data.contains("no longer in stream TIDEWATCH"), gap->data.constData());
    QVERIFY(std::distance(client.messages.cbegin(), gap) <
            std::distance(client.messages.cbegin(),
                          std::find_if(client.messages.cbegin(), client.messages.cend(),
                                       [&](const SseMessage& m) { return m.seq() == seqs.first(); })));
    for (QProcess* p : {&gateway, &ingest}) {
        p->terminate();
        QVERIFY(p->waitForFinished(20000));
    }
}

void TestNatsGateway::gatewayWhoseConsumerVanishesSubscribesAgain() {
    QProcess ingest, gateway;
    QUrl base;
    START(startIngest(ingest));
    START(startGateway(gateway, QStringLiteral("a"), &base));
    SseTestClient client;
    client.open(events(base), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 20000);
    write(5);
    QTRY_COMPARE_WITH_TIMEOUT(client.seqs(), range(1, 5), 20000);
    // The server forgets the gateway's consumer, and says nothing to the gateway.
    QCOMPARE(NatsStreamClient(m_nats->url()).deleteConsumers(), 1);
    write(5);
    QTRY_COMPARE_WITH_TIMEOUT(client.seqs(), range(1, 10), 30000);
    QCOMPARE(client.gapCount(), 0);
    QVERIFY(readFile(m_dir->filePath(QStringLiteral("a.log"))).contains("subscribing again after 5"));
    for (QProcess* p : {&gateway, &ingest}) {
        p->terminate();
        QVERIFY(p->waitForFinished(20000));
    }
}

void TestNatsGateway::serverOutageUnderLoadStallsNoClientAndLosesNothing() {
    QProcess ingest, gateway, writer;
    QUrl ingestBase, base;
    START(startIngest(ingest, {QStringLiteral("--sse"), QStringLiteral("0")}, &ingestBase));
    START(startGateway(gateway, QStringLiteral("a"), &base));
    // The ingest's own SSE client and the gateway's, while the writer goes on throughout.
    SseTestClient local, remote;
    local.open(events(ingestBase), kToken);
    remote.open(events(base), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(local.readyCount(), 1, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(remote.readyCount(), 1, 20000);
    START(startWriting(writer));
    QTRY_VERIFY_WITH_TIMEOUT(remote.seqs().size() >= 20, 20000);
    QNetworkAccessManager http;
    auto publisher = [&] {
        return getJson(http,
                       ingestBase.resolved(QUrl(QStringLiteral("/v1/health"))))[QStringLiteral("publisher")]
            .toObject();
    };

    QCOMPARE(m_nats->stop(), QString());
    // Down for seconds, not one retry: until the oldest event JetStream has not taken has
    // waited 3 s. All the while the local client gets each commit as it comes: it moves
    // on by 20 events again and again.
    auto advances = [&] {
        const qsizetype before = local.seqs().size();
        QTRY_VERIFY_WITH_TIMEOUT(local.seqs().size() >= before + 20, 20000);
    };
    while (publisher()[QStringLiteral("lagSeconds")].toDouble() < 3 && !QTest::currentTestFailed())
        advances();
    if (QTest::currentTestFailed())
        return;
    // The publisher knows the server is gone and waits to try again.
    QTRY_COMPARE_WITH_TIMEOUT(publisher()[QStringLiteral("state")].toString(), QStringLiteral("backoff"),
                              20000);
    QVERIFY(publisher()[QStringLiteral("lagEvents")].toInteger() >= 20);
    advances();
    const qsizetype remoteWhileAway = remote.seqs().size();

    QCOMPARE(m_nats->start(), QString());
    // The publisher catches up and the gateway resumes, the writes still going on.
    QTRY_VERIFY_WITH_TIMEOUT(remote.seqs().size() > remoteWhileAway + 20, 60000);
    START(stopWriting(writer));
    const qint64 rows = sqliteCount(db(), QStringLiteral("SELECT count(*) FROM orders"));
    QVERIFY(rows > remoteWhileAway + 20);
    QTRY_COMPARE_WITH_TIMEOUT(local.seqs().size(), rows, 30000);
    QTRY_COMPARE_WITH_TIMEOUT(remote.seqs().size(), rows, 30000);
    // Once each, in order, with no gap: nothing lost or repeated by either.
    QCOMPARE(local.seqs(), range(1, rows));
    QCOMPARE(remote.seqs(), range(1, rows));
    QCOMPARE(local.gapCount(), 0);
    QCOMPARE(remote.gapCount(), 0);
    QCOMPARE(local.isOpen(), true);
    QCOMPARE(remote.isOpen(), true);
    QCOMPARE(NatsStreamClient(m_nats->url()).messageCount(), rows);
    QTRY_COMPARE_WITH_TIMEOUT(publisher()[QStringLiteral("lagEvents")].toInteger(), 0, 20000);
    const QJsonObject back = publisher();
    QCOMPARE(back[QStringLiteral("state")].toString(), QStringLiteral("publishing"));
    QCOMPARE(back[QStringLiteral("ackedSeq")].toInteger(), rows);
    QVERIFY(back[QStringLiteral("reconnects")].toInteger() >= 1);
    // The stream on files came back as it was: the gateway went on where it was.
    QVERIFY(!readFile(m_dir->filePath(QStringLiteral("a.log"))).contains("was made again"));
    for (QProcess* p : {&gateway, &ingest}) {
        p->terminate();
        QVERIFY(p->waitForFinished(20000));
    }
}

void TestNatsGateway::streamInMemoryMadeAgainIsReadFromItsStart() {
    QProcess ingest, gateway;
    QUrl ingestBase, base;
    START(startIngest(ingest,
                      {QStringLiteral("--nats-storage"), QStringLiteral("memory"), QStringLiteral("--sse"),
                       QStringLiteral("0")},
                      &ingestBase));
    START(startGateway(gateway, QStringLiteral("a"), &base));
    QNetworkAccessManager http;
    auto acked = [&] { return ackedSeq(http, ingestBase); };
    SseTestClient client;
    client.open(events(base), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 20000);
    write(5);
    QTRY_COMPARE_WITH_TIMEOUT(client.seqs(), range(1, 5), 20000);
    QTRY_COMPARE_WITH_TIMEOUT(acked(), 5, 20000); // else the ingest sends some again to the new stream
    QCOMPARE(NatsStreamClient(m_nats->url()).storage(), QStringLiteral("memory"));

    // nats-server stops, and the stream with it. The rows written meanwhile wait in the
    // ingest, which makes the stream again and sends them as its messages 1 to 5: the
    // gateway, at stream sequence 5 of the old stream, must read the new one from its
    // start, not after 5.
    QCOMPARE(m_nats->stop(), QString());
    write(5);
    QCOMPARE(m_nats->start(), QString());
    QTRY_COMPARE_WITH_TIMEOUT(client.seqs(), range(1, 10), 60000);
    QCOMPARE(client.gapCount(), 0);
    QCOMPARE(NatsStreamClient(m_nats->url()).messageCount(), 5);
    QVERIFY(readFile(m_dir->filePath(QStringLiteral("a.log"))).contains("was made again"));

    // With the gateway away, JetStream acknowledges 11 to 15, and loses them with the
    // server: the gateway, back, has no way to read them, and says so.
    gateway.terminate();
    QVERIFY(gateway.waitForFinished(20000));
    write(5);
    QTRY_COMPARE_WITH_TIMEOUT(acked(), 15, 20000);
    QCOMPARE(m_nats->stop(), QString());
    QCOMPARE(m_nats->start(), QString());
    write(5);
    QTRY_COMPARE_WITH_TIMEOUT(acked(), 20, 60000);
    START(startGateway(gateway, QStringLiteral("a"), &base));
    SseTestClient after;
    after.open(events(base), kToken, "10");
    QTRY_COMPARE_WITH_TIMEOUT(after.seqs(), range(16, 20), 30000);
    QCOMPARE(after.gapCount(), 1);
    const auto gap = std::find_if(after.messages.cbegin(), after.messages.cend(),
                                  [](const SseMessage& m) { return m.event == "gap"; });
    QVERIFY(gap != after.messages.cend());
    QVERIFY2(gap->data.contains("events 11 to 15 are not in stream TIDEWATCH: the stream was made again"),
             gap->data.constData());
    for (QProcess* p : {&gateway, &ingest}) {
        p->terminate();
        QVERIFY(p->waitForFinished(20000));
    }
}

void TestNatsGateway::narrowedGatewayRestartedAfterAStreamMadeAgainStillGivesTheGap() {
    // A gateway reading main.orders only finds the stream made again, with nothing of
    // its namespace in it yet, and is restarted: what it owes its readers (a gap for
    // the orders that were only in the lost stream) must survive the restart.
    QCOMPARE(runSqlite3(db(), QStringLiteral("CREATE TABLE items(id INTEGER PRIMARY KEY, qty INTEGER);")),
             QString());
    QProcess ingest, gateway;
    QUrl ingestBase, base;
    START(startIngest(ingest,
                      {QStringLiteral("--watch"), QStringLiteral("items"), QStringLiteral("--nats-storage"),
                       QStringLiteral("memory"), QStringLiteral("--sse"), QStringLiteral("0")},
                      &ingestBase));
    const QStringList gatewayArgs{QStringLiteral("--gateway"), m_nats->url(),
                                  QStringLiteral("--sse"),     QStringLiteral("0"),
                                  QStringLiteral("--watch"),   QStringLiteral("main.orders")};
    START(startProcess(gateway, QStringLiteral("a"), gatewayArgs, &base));
    QNetworkAccessManager http;
    auto acked = [&] { return ackedSeq(http, ingestBase); };
    SseTestClient client;
    client.open(events(base), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 20000);
    write(5);
    QTRY_COMPARE_WITH_TIMEOUT(client.seqs(), range(1, 5), 20000);
    QTRY_COMPARE_WITH_TIMEOUT(acked(), 5, 20000);
    gateway.terminate();
    QVERIFY(gateway.waitForFinished(20000));

    write(5); // 6 to 10, lost with the stream
    QTRY_COMPARE_WITH_TIMEOUT(acked(), 10, 20000);
    QCOMPARE(m_nats->stop(), QString());
    QCOMPARE(m_nats->start(), QString());
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO items(qty) VALUES(1);")), QString()); // 11
    QTRY_COMPARE_WITH_TIMEOUT(acked(), 11, 60000);
    START(startProcess(gateway, QStringLiteral("a"), gatewayArgs, &base));
    QTRY_VERIFY_WITH_TIMEOUT(readFile(m_dir->filePath(QStringLiteral("a.log"))).contains("was made again"),
                             20000);
    gateway.terminate();
    QVERIFY(gateway.waitForFinished(20000));

    START(startProcess(gateway, QStringLiteral("a"), gatewayArgs, &base));
    write(5); // 12 to 16
    SseTestClient after;
    after.open(events(base), kToken, "5");
    QTRY_COMPARE_WITH_TIMEOUT(after.seqs(), range(12, 16), 30000);
    QCOMPARE(after.gapCount(), 1);
    const auto gap = std::find_if(after.messages.cbegin(), after.messages.cend(),
                                  [](const SseMessage& m) { return m.event == "gap"; });
    QVERIFY(gap != after.messages.cend());
    QVERIFY2(gap->data.contains("events 6 to 11 are not in stream TIDEWATCH: the stream was made again"),
             gap->data.constData());
    for (QProcess* p : {&gateway, &ingest}) {
        p->terminate();
        QVERIFY(p->waitForFinished(20000));
    }
}

QTEST_GUILESS_MAIN(TestNatsGateway)
#include "tst_natsgateway.moc"

void TestNatsGateway::gatewayConsumesOnlyWhatItsSubscriptionsNeed() {
    // B's table has a dot, a space and both wildcards in its name: its subject token
    // escapes them, so the narrowed filter names it and nothing else.
    QCOMPARE(runSqlite3(db(), QStringLiteral(
                                  "CREATE TABLE \"line items.*>\"(id INTEGER PRIMARY KEY, qty INTEGER);")),
             QString());
    const QByteArray itemsToken = "line%20items%2E%2A%3E";
    QProcess ingest, gateway;
    QUrl base;
    START(startIngest(ingest, {QStringLiteral("--watch"), QStringLiteral("line items.*>")}));
    // The command line's subscription reads main.orders only.
    START(startProcess(gateway, QStringLiteral("a"),
                       {QStringLiteral("--gateway"), m_nats->url(), QStringLiteral("--sse"),
                        QStringLiteral("0"), QStringLiteral("--watch"), QStringLiteral("main.orders")},
                       &base));
    NatsStreamClient stream(m_nats->url());
    QTRY_VERIFY_WITH_TIMEOUT(stream.consumerFilters().contains("tidewatch.*.main.orders"), 20000);
    SseTestClient fromA;
    fromA.open(events(base), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(fromA.readyCount(), 1, 20000);
    const QString itemsSql = m_dir->filePath(QStringLiteral("items.sql"));
    {
        QFile sql(itemsSql);
        QVERIFY(sql.open(QIODevice::WriteOnly));
        sql.write("PRAGMA busy_timeout=5000; INSERT INTO \"line items.*>\"(qty) VALUES(1);\n");
    }
    auto writeItems = [&](int n) {
        for (int i = 0; i < n; ++i) {
            QProcess p;
            p.setStandardInputFile(itemsSql);
            p.start(QStringLiteral("sqlite3"), {db()});
            QVERIFY(p.waitForFinished(30000));
            QCOMPARE(p.exitCode(), 0);
        }
    };
    write(3);
    writeItems(3);
    write(1);
    // A's fourth event comes after every item in the stream: by then the gateway has
    // passed them, and journaled none.
    QTRY_COMPARE_WITH_TIMEOUT(fromA.seqs().size(), 4, 20000);
    const QString journal = m_dir->filePath(QStringLiteral("a.journal"));
    QCOMPARE(sqliteCount(journal, QStringLiteral("SELECT count(*) FROM events")), 4);
    // A message wider than one collection (here of another journal, which the gateway
    // names in its log and skips) reaches it beside the narrowed filter.
    QCOMPARE(stream.publish("tidewatch.other.%.%",
                            {{"Tidewatch-Journal", "another-journal"},
                             {"Tidewatch-Seq", "1"},
                             {"Tidewatch-Operation", "gap"}},
                            "{}"),
             QString());
    QTRY_VERIFY_WITH_TIMEOUT(
        readFile(m_dir->filePath(QStringLiteral("a.log"))).contains("journal another-journal"), 20000);

    // Continuous writes to both tables while B subscribes.
    QProcess writer;
    writer.start(
        QStringLiteral("sh"),
        {QStringLiteral("-c"),
         QStringLiteral("while [ ! -e '%2' ]; do sqlite3 '%1' \"PRAGMA busy_timeout=5000; INSERT INTO "
                        "orders(status, total) VALUES('new', 1);\" >/dev/null || exit 1; sqlite3 '%1' "
                        "< '%3' >/dev/null || exit 1; done")
             .arg(db(), stopFile(), itemsSql)});
    QVERIFY(writer.waitForStarted());
    QTRY_VERIFY_WITH_TIMEOUT(fromA.seqs().size() >= 14, 20000);
    QNetworkAccessManager http;
    const QJsonObject items{
        {QStringLiteral("id"), QStringLiteral("items")},
        {QStringLiteral("namespaces"),
         QJsonArray{QJsonObject{{QStringLiteral("ns"), QStringLiteral("main.line items.*>")}}}}};
    QByteArray answer;
    QVERIFY2(postJson(http, base.resolved(QUrl(QStringLiteral("/v1/subscriptions"))), items, &answer) == 201,
             answer.constData());
    QTRY_VERIFY_WITH_TIMEOUT(stream.consumerFilters().contains("tidewatch.*.main.*"), 20000);
    const QUrl itemsEvents = base.resolved(QUrl(QStringLiteral("/v1/subscriptions/items/events")));
    SseTestClient liveB, oldB;
    liveB.open(itemsEvents, kToken);
    QTRY_COMPARE_WITH_TIMEOUT(liveB.readyCount(), 1, 20000);
    const qint64 readyAt = parseJson(liveB.messages.first().data)[QStringLiteral("lastEventId")].toInteger();
    oldB.open(itemsEvents, kToken, "1");
    QTRY_VERIFY_WITH_TIMEOUT(liveB.seqs().size() >= 5, 20000);
    START(stopWriting(writer));
    // Every insert is one event in the stream once the ingest has published them all.
    const qint64 rows = sqliteCount(db(), QStringLiteral("SELECT (SELECT count(*) FROM orders) + "
                                                         "(SELECT count(*) FROM \"line items.*>\")"));
    QTRY_COMPARE_WITH_TIMEOUT(stream.messageCount(), rows + 1, 20000); // and the other journal's
    const QList<NatsStreamMessage> all = stream.readAll();
    const QList<qint64> orders = seqsOn(all, "orders");
    QTRY_COMPARE_WITH_TIMEOUT(fromA.seqs(), orders, 20000);
    // B may have joined while the last pass of the consumer before it was still being
    // committed: what that pass skipped of B's table, after its ready, a notice names
    // (at the ready's id: it skips nothing), and B gets every event after it.
    qint64 liveFloor = readyAt;
    for (const SseMessage& m : std::as_const(liveB.messages)) {
        if (m.event != "gap")
            continue;
        QCOMPARE(liveFloor, readyAt); // one notice at most
        QCOMPARE(m.seq(), readyAt);
        const QRegularExpressionMatch named =
            QRegularExpression(QStringLiteral("events (\\d+) to (\\d+) may be missing"))
                .match(parseJson(m.data)[QStringLiteral("reason")].toString());
        QVERIFY2(named.hasMatch(), m.data.constData());
        QCOMPARE(named.captured(1).toLongLong(), readyAt + 1);
        liveFloor = named.captured(2).toLongLong();
        QVERIFY2(liveFloor > readyAt, m.data.constData());
    }
    const QList<qint64> itemsAfterReady = seqsOn(all, itemsToken, liveFloor);
    auto differences = [&] {
        return QStringLiteral("ready at %1, told of %2; not received %3; not expected %4")
            .arg(readyAt)
            .arg(liveFloor)
            .arg(notIn(itemsAfterReady, liveB.seqs()), notIn(liveB.seqs(), itemsAfterReady));
    };
    QTRY_VERIFY2_WITH_TIMEOUT(liveB.seqs() == itemsAfterReady, qPrintable(differences()), 20000);
    // From before B's events were read: a notice first, at the cursor (it skips
    // nothing), naming the last seq before they were, then every one of them.
    QTRY_VERIFY_WITH_TIMEOUT(!oldB.seqs().isEmpty() && oldB.seqs().last() == liveB.seqs().last(), 20000);
    const SseMessage gap = oldB.messages.first();
    QCOMPARE(gap.event, QByteArray("gap"));
    QCOMPARE(gap.seq(), 1);
    const QRegularExpressionMatch floor =
        QRegularExpression(QStringLiteral("events 2 to (\\d+) may be missing"))
            .match(parseJson(gap.data)[QStringLiteral("reason")].toString());
    QVERIFY2(floor.hasMatch(), gap.data.constData());
    const qint64 floorSeq = floor.captured(1).toLongLong();
    // Not after B's live client was told: the same point when it got a notice (it joined
    // while the switch was being committed), else at or before its ready.
    QVERIFY2(floorSeq > 7 && floorSeq <= liveFloor, gap.data.constData());
    QCOMPARE(oldB.seqs(), seqsOn(all, itemsToken, floorSeq));
    for (QProcess* p : {&gateway, &ingest}) {
        p->terminate();
        QVERIFY(p->waitForFinished(20000));
    }
}

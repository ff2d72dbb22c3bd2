#include "NatsServer.h"
#include "NatsStreamClient.h"
#include "SseTestClient.h"
#include "TestUtil.h"

#include "nats/NatsAckWindow.h"
#include "sources/nats/NatsSubject.h"

#include <QJsonArray>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QRegularExpression>
#include <QSet>
#include <QTemporaryDir>
#include <QtTest>

using namespace tw;
using namespace tw::test;
using tw::testsupport::NatsServer;
using tw::testsupport::NatsStreamClient;
using tw::testsupport::NatsStreamMessage;

namespace {

// The one value a query prints, through the sqlite3 program.
qint64 sqliteCount(const QString& path, const QString& sql) {
    QProcess p;
    p.start(QStringLiteral("sqlite3"), {QStringLiteral("-cmd"), QStringLiteral(".timeout 10000"), path, sql});
    if (!p.waitForFinished(30000) || p.exitCode() != 0)
        return -1;
    return p.readAllStandardOutput().trimmed().toLongLong();
}

// The port of the ingest's HTTP server from its log ("listening on … (port N)"); 0
// until it is there.
int listeningPort(QProcess& p, QByteArray& log) {
    log += p.readAllStandardError();
    const QRegularExpressionMatch port =
        QRegularExpression(QStringLiteral("listening on \\S+ \\(port (\\d+)\\)"))
            .match(QString::fromUtf8(log));
    return port.hasMatch() ? port.captured(1).toInt() : 0;
}

// /v1/health's "publisher" object; empty when there is no answer.
QJsonObject publisherHealth(QNetworkAccessManager& http, const QUrl& base) {
    QNetworkRequest request(base.resolved(QUrl(QStringLiteral("/v1/health"))));
    request.setRawHeader("Authorization", "Bearer nats-test-token");
    std::unique_ptr<QNetworkReply> reply(http.get(request));
    QSignalSpy done(reply.get(), &QNetworkReply::finished);
    if (!done.wait(10000))
        return QJsonObject();
    return parseJson(reply->readAll())[QStringLiteral("publisher")].toObject();
}

} // namespace

// The ingest side of NATS: a real headless Tidewatch on a real SQLite file written by
// the sqlite3 program, publishing to a real nats-server; the test reads the stream
// back with its own JetStream consumer.
class TestNatsPublish : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void subjectTokensEscapeAnyName_data();
    void subjectTokensEscapeAnyName();
    void filterSubjectNamesTheUnionOfNamespaces_data();
    void filterSubjectNamesTheUnionOfNamespaces();
    void everyEventOnceInOrderWithHeaders();
    void killNineDuringWritesLeavesEachEventOnceInOrder();
    void serverOutageKeepsSseFlowingAndPublisherCatchesUp();
    void namesWithDotsSpacesAndWildcardsAreOneToken();
    void refusedEventBecomesAStubAndPublishingGoesOn();
    void ackOfAnEarlierConnectionCountsForNothing();

private:
    QString db() const { return m_dir->filePath(QStringLiteral("shop.sqlite")); }
    QString journal() const { return m_dir->filePath(QStringLiteral("journal.sqlite")); }
    void startIngest(QProcess& p, const QStringList& extra, QByteArray* log = nullptr);
    // Every message once, in seq order, with headers that agree with the body.
    void checkStream(const QList<NatsStreamMessage>& messages, qint64 expected);
    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<NatsServer> m_nats;
};

void TestNatsPublish::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    qputenv("TIDEWATCH_DATA_DIR", m_dir->filePath(QStringLiteral("data")).toLocal8Bit());
    qputenv("TIDEWATCH_TOKEN", "nats-test-token");
    QCOMPARE(runSqlite3(db(), QStringLiteral(
                                  "PRAGMA journal_mode=WAL;"
                                  "CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT, total REAL);")),
             QString());
    m_nats = std::make_unique<NatsServer>();
    QCOMPARE(m_nats->start(), QString());
}

void TestNatsPublish::cleanup() {
    m_nats.reset();
    m_dir.reset();
}

void TestNatsPublish::startIngest(QProcess& p, const QStringList& extra, QByteArray* log) {
    QStringList args{QStringLiteral("--headless"),
                     QStringLiteral("--source"),
                     QStringLiteral("sqlite:") + db(),
                     QStringLiteral("--journal"),
                     journal(),
                     QStringLiteral("--publish"),
                     m_nats->url()};
    args += extra;
    if (!args.contains(QStringLiteral("--watch")))
        args += {QStringLiteral("--watch"), QStringLiteral("orders")};
    p.setProcessChannelMode(QProcess::SeparateChannels);
    p.setStandardOutputFile(QProcess::nullDevice());
    p.start(QStringLiteral(TIDEWATCH_BINARY), args);
    QVERIFY(p.waitForStarted());
    QByteArray own;
    QByteArray& text = log ? *log : own;
    auto ready = [&] {
        text += p.readAllStandardError();
        return text.contains("tidewatch: ready: ") || p.state() != QProcess::Running;
    };
    QTRY_VERIFY_WITH_TIMEOUT(ready(), 20000);
    QVERIFY2(p.state() == QProcess::Running, text.constData());
}

#define START_INGEST(p, ...)                                                                                 \
    do {                                                                                                     \
        startIngest(p, __VA_ARGS__);                                                                         \
        if (QTest::currentTestFailed())                                                                      \
            return;                                                                                          \
    } while (false)

void TestNatsPublish::checkStream(const QList<NatsStreamMessage>& messages, qint64 expected) {
    QCOMPARE(messages.size(), expected);
    QByteArray journalId;
    qint64 previous = 0;
    for (const NatsStreamMessage& m : messages) {
        const QJsonObject event = parseJson(m.data);
        QVERIFY2(m.seq() > previous,
                 qPrintable(QStringLiteral("seq %1 after %2").arg(m.seq()).arg(previous)));
        previous = m.seq();
        QCOMPARE(event.value(QStringLiteral("seq")).toInteger(), m.seq());
        QCOMPARE(m.operation, event.value(QStringLiteral("operationType")).toString().toUtf8());
        QVERIFY(!m.journal.isEmpty());
        if (journalId.isEmpty())
            journalId = m.journal;
        QCOMPARE(m.journal, journalId);
        QCOMPARE(m.msgId, m.journal + ':' + m.seqHeader);
    }
    // One journal, nothing pruned: the seqs are 1..N with none missing.
    if (!messages.isEmpty())
        QCOMPARE(messages.constLast().seq(), expected);
}

void TestNatsPublish::subjectTokensEscapeAnyName_data() {
    QTest::addColumn<QString>("name");
    QTest::addColumn<QByteArray>("token");
    QTest::newRow("plain") << QStringLiteral("orders") << QByteArray("orders");
    QTest::newRow("underscore and dash") << QStringLiteral("order_items-2") << QByteArray("order_items-2");
    QTest::newRow("dot") << QStringLiteral("public.orders") << QByteArray("public%2Eorders");
    QTest::newRow("space") << QStringLiteral("my orders") << QByteArray("my%20orders");
    QTest::newRow("wildcards") << QStringLiteral("*>") << QByteArray("%2A%3E");
    QTest::newRow("percent") << QStringLiteral("50%") << QByteArray("50%25");
    QTest::newRow("non-ASCII") << QStringLiteral("bestellungen-ü") << QByteArray("bestellungen-%C3%BC");
    QTest::newRow("empty") << QString() << QByteArray("%");
}

void TestNatsPublish::subjectTokensEscapeAnyName() {
    QFETCH(QString, name);
    QFETCH(QByteArray, token);
    QCOMPARE(NatsSubject::token(name), token);
    QCOMPARE(NatsSubject::fromToken(token), name);
}

void TestNatsPublish::filterSubjectNamesTheUnionOfNamespaces_data() {
    QTest::addColumn<QStringList>("namespaces");
    QTest::addColumn<QByteArray>("filter");
    QTest::addColumn<QString>("reads"); // NatsSubject::namespaceOf(filter)
    QTest::newRow("none") << QStringList{} << QByteArray("tidewatch.>") << QString();
    QTest::newRow("one") << QStringList{"main.orders"} << QByteArray("tidewatch.*.main.orders")
                         << QStringLiteral("main.orders");
    QTest::newRow("one, named twice")
        << QStringList{"main.orders", "main.orders"} << QByteArray("tidewatch.*.main.orders")
        << QStringLiteral("main.orders");
    QTest::newRow("two in one database") << QStringList{"main.orders", "main.items"}
                                         << QByteArray("tidewatch.*.main.*") << QStringLiteral("main");
    QTest::newRow("a database") << QStringList{"shop"} << QByteArray("tidewatch.*.shop.*")
                                << QStringLiteral("shop");
    QTest::newRow("two databases") << QStringList{"a.x", "b.x"} << QByteArray("tidewatch.>") << QString();
    QTest::newRow("everything") << QStringList{""} << QByteArray("tidewatch.>") << QString();
    QTest::newRow("dots, spaces and wildcards escaped")
        << QStringList{"main.line items.*>"} << QByteArray("tidewatch.*.main.line%20items%2E%2A%3E")
        << QStringLiteral("main.line items.*>");
}

void TestNatsPublish::filterSubjectNamesTheUnionOfNamespaces() {
    QFETCH(QStringList, namespaces);
    QFETCH(QByteArray, filter);
    QFETCH(QString, reads);
    QList<Namespace> list;
    for (const QString& ns : std::as_const(namespaces))
        list.append(Namespace::fromString(ns));
    QCOMPARE(NatsSubject::filterFor(list), filter);
    QCOMPARE(NatsSubject::namespaceOf(filter), Namespace::fromString(reads));
}

void TestNatsPublish::everyEventOnceInOrderWithHeaders() {
    NatsStreamClient reader(m_nats->url());
    {
        QProcess p;
        START_INGEST(p, {});
        QString values;
        for (int i = 1; i <= 30; ++i)
            values += QStringLiteral("%1(%2, 'new', %3)").arg(i == 1 ? "" : ",").arg(i).arg(i * 1.5);
        QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders VALUES ") + values), QString());
        QTRY_COMPARE_WITH_TIMEOUT(reader.messageCount(), 30, 20000);
        QCOMPARE(runSqlite3(db(), QStringLiteral("UPDATE orders SET status = 'paid' WHERE id <= 10")),
                 QString());
        QTRY_COMPARE_WITH_TIMEOUT(reader.messageCount(), 40, 20000);
        p.terminate();
        QVERIFY(p.waitForFinished(20000));
    }
    // A clean restart resumes after what the stream holds.
    QCOMPARE(runSqlite3(db(), QStringLiteral("DELETE FROM orders WHERE id > 25")), QString());
    QProcess p;
    START_INGEST(p, {});
    QTRY_COMPARE_WITH_TIMEOUT(reader.messageCount(), 45, 20000);
    const QList<NatsStreamMessage> messages = reader.readAll();
    checkStream(messages, 45);
    if (QTest::currentTestFailed())
        return;
    for (int i = 0; i < 45; ++i) {
        const NatsStreamMessage& m = messages.at(i);
        QCOMPARE(m.subject, QByteArray("tidewatch.shop.main.orders"));
        const QByteArray op = i < 30 ? "insert" : i < 40 ? "update" : "delete";
        QCOMPARE(m.operation, op);
    }
    p.terminate();
    QVERIFY(p.waitForFinished(20000));
}

void TestNatsPublish::killNineDuringWritesLeavesEachEventOnceInOrder() {
    // One insert per commit, each a new row: every row is one event, whether the
    // ingest is up when it is written or finds it at its next start. The writer starts
    // once the first ingest has taken its baseline (rows before it are no events).
    QProcess writer;
    const QString stopFile = m_dir->filePath(QStringLiteral("stop-writing"));
    NatsStreamClient reader(m_nats->url());
    // JetStream drops a repeated Nats-Msg-Id only within the stream's duplicate window
    // (2 minutes by default, longer than this whole test). A window of 100 ms (the
    // server's least), waited out after each kill, leaves the journal's checkpoint and
    // the resync at start as the only guard: an event published again would be stored
    // twice, and counted.
    constexpr qint64 kDuplicateWindowMs = 100;
    QCOMPARE(reader.createStream(0, kDuplicateWindowMs), QString());
    QCOMPARE(reader.duplicateWindowMs(), kDuplicateWindowMs);
    // 20 kills, each soon after a few more events reached the stream: some in flight,
    // some acknowledged and not yet in the journal's checkpoint (it is committed every
    // 250 ms), some committed and never sent.
    constexpr int kKills = 20;
    qint64 seen = 0;
    for (int round = 0; round < kKills; ++round) {
        QProcess p;
        START_INGEST(p, {});
        if (round == 0) {
            writer.start(QStringLiteral("sh"),
                         {QStringLiteral("-c"),
                          QStringLiteral(
                              "while [ ! -e '%2' ]; do sqlite3 '%1' \"PRAGMA busy_timeout=5000; INSERT INTO "
                              "orders(status, total) VALUES('new', 1);\" >/dev/null || exit 1; done")
                              .arg(db(), stopFile)});
            QVERIFY(writer.waitForStarted());
        }
        // Killed while publishing: after some more events of its own reached the stream.
        QTRY_VERIFY_WITH_TIMEOUT(reader.messageCount() >= seen + 3, 20000);
        seen = reader.messageCount();
        p.kill();
        QVERIFY(p.waitForFinished(10000));
        QCOMPARE(reader.waitOutDuplicateWindow(10000), QString());
    }
    // Asked to stop, so that no insert commits after the rows are counted.
    QFile stop(stopFile);
    QVERIFY(stop.open(QIODevice::WriteOnly));
    stop.close();
    QVERIFY(writer.waitForFinished(30000));
    QCOMPARE(writer.exitCode(), 0);
    const qint64 rows = sqliteCount(db(), QStringLiteral("SELECT count(*) FROM orders"));
    QVERIFY(rows > 0);
    QProcess p;
    START_INGEST(p, {});
    QTRY_COMPARE_WITH_TIMEOUT(reader.messageCount(), rows, 30000);
    const QList<NatsStreamMessage> messages = reader.readAll();
    checkStream(messages, rows);
    if (QTest::currentTestFailed())
        return;
    QSet<qint64> ids;
    for (const NatsStreamMessage& m : messages) {
        QCOMPARE(m.operation, QByteArray("insert"));
        ids.insert(parseJson(m.data)["documentKey"].toObject()["_id"].toInteger());
    }
    QCOMPARE(ids.size(), rows);
    QCOMPARE(reader.duplicateWindowMs(), kDuplicateWindowMs); // the ingest used the stream as made
    p.terminate();
    QVERIFY(p.waitForFinished(20000));
    // The journal holds the same events: seqs 1..rows (its primary key), none missing.
    QCOMPARE(sqliteCount(journal(), QStringLiteral("SELECT count(*) FROM events")), rows);
    QCOMPARE(sqliteCount(journal(), QStringLiteral("SELECT min(seq) FROM events")), 1);
    QCOMPARE(sqliteCount(journal(), QStringLiteral("SELECT max(seq) FROM events")), rows);
}

void TestNatsPublish::serverOutageKeepsSseFlowingAndPublisherCatchesUp() {
    QProcess p;
    QByteArray log;
    START_INGEST(p, {QStringLiteral("--sse"), QStringLiteral("0")}, &log);
    int port = 0;
    QTRY_VERIFY_WITH_TIMEOUT((port = listeningPort(p, log)) > 0, 20000);
    const QUrl base(QStringLiteral("http://127.0.0.1:%1").arg(port));
    SseTestClient sse;
    sse.open(base.resolved(QUrl(QStringLiteral("/v1/subscriptions/headless/events"))), "nats-test-token");
    QTRY_COMPARE_WITH_TIMEOUT(sse.readyCount(), 1, 20000);

    NatsStreamClient reader(m_nats->url());
    int written = 0;
    auto write = [&](int count) {
        for (int i = 0; i < count; ++i)
            QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status, total) VALUES('new', %1)")
                                          .arg(++written)),
                     QString());
    };
    write(10);
    QTRY_COMPARE_WITH_TIMEOUT(reader.messageCount(), written, 20000);

    QCOMPARE(m_nats->stop(), QString());
    // The server is gone: local clients still get every change as it commits.
    write(10);
    QTRY_COMPARE_WITH_TIMEOUT(sse.seqs().size(), written, 20000);
    QNetworkAccessManager http;
    auto health = [&] { return publisherHealth(http, base); };
    QTRY_VERIFY_WITH_TIMEOUT(health()[QStringLiteral("lagEvents")].toInteger() >= 10, 20000);
    QCOMPARE(health()[QStringLiteral("stream")].toString(), QStringLiteral("TIDEWATCH"));

    QCOMPARE(m_nats->start(), QString());
    write(5);
    QTRY_COMPARE_WITH_TIMEOUT(sse.seqs().size(), written, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(reader.messageCount(), written, 40000);
    QTRY_COMPARE_WITH_TIMEOUT(health()[QStringLiteral("lagEvents")].toInteger(), 0, 20000);
    checkStream(reader.readAll(), written);
    // The local stream never repeated or skipped either.
    QList<qint64> expected;
    for (int i = 1; i <= written; ++i)
        expected.append(i);
    QCOMPARE(sse.seqs(), expected);

    QNetworkRequest request(base.resolved(QUrl(QStringLiteral("/metrics"))));
    request.setRawHeader("Authorization", "Bearer nats-test-token");
    std::unique_ptr<QNetworkReply> reply(http.get(request));
    QSignalSpy done(reply.get(), &QNetworkReply::finished);
    QVERIFY(done.wait(10000));
    const QByteArray metrics = reply->readAll();
    QVERIFY(metrics.contains("\ntidewatch_nats_lag_events 0\n"));
    QVERIFY(metrics.contains(QByteArray("\ntidewatch_nats_acked_seq ") + QByteArray::number(written) + '\n'));
    p.terminate();
    QVERIFY(p.waitForFinished(20000));
}

void TestNatsPublish::namesWithDotsSpacesAndWildcardsAreOneToken() {
    QCOMPARE(runSqlite3(db(), QStringLiteral("CREATE TABLE \"a.b c*>\"(id INTEGER PRIMARY KEY, v TEXT);")),
             QString());
    QProcess p;
    START_INGEST(p, {QStringLiteral("--source-id"), QStringLiteral("my.shop"), QStringLiteral("--watch"),
                     QStringLiteral("a.b c*>")});
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO \"a.b c*>\" VALUES (1, 'x'), (2, 'y');")),
             QString());
    NatsStreamClient reader(m_nats->url());
    QTRY_COMPARE_WITH_TIMEOUT(reader.messageCount(), 2, 20000);
    const QList<NatsStreamMessage> messages = reader.readAll();
    checkStream(messages, 2);
    for (const NatsStreamMessage& m : messages) {
        QCOMPARE(m.subject, QByteArray("tidewatch.my%2Eshop.main.a%2Eb%20c%2A%3E"));
        const QList<QByteArray> tokens = m.subject.split('.');
        QCOMPARE(tokens.size(), 4);
        QCOMPARE(NatsSubject::fromToken(tokens.at(3)), QStringLiteral("a.b c*>"));
        QCOMPARE(parseJson(m.data)["ns"].toObject()["coll"].toString(), QStringLiteral("a.b c*>"));
    }
    p.terminate();
    QVERIFY(p.waitForFinished(20000));
}

void TestNatsPublish::refusedEventBecomesAStubAndPublishingGoesOn() {
    // A stream that takes messages of 1 KiB at most: a row of 4 000 characters is
    // refused (JetStream answers with an error), the rows around it are not.
    NatsStreamClient reader(m_nats->url());
    QCOMPARE(reader.createStream(1024, 0), QString());
    QProcess p;
    QByteArray log;
    START_INGEST(p, {QStringLiteral("--sse"), QStringLiteral("0")}, &log);
    int port = 0;
    QTRY_VERIFY_WITH_TIMEOUT((port = listeningPort(p, log)) > 0, 20000);
    const QUrl base(QStringLiteral("http://127.0.0.1:%1").arg(port));
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders VALUES (1, 'new', 1);"
                                             "INSERT INTO orders VALUES (2, hex(zeroblob(2000)), 2);"
                                             "INSERT INTO orders VALUES (3, 'new', 3);")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(reader.messageCount(), 3, 30000);
    // Not stalled: what comes later is published too.
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders VALUES (4, 'new', 4)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(reader.messageCount(), 4, 30000);
    const QList<NatsStreamMessage> messages = reader.readAll();
    checkStream(messages, 4);
    if (QTest::currentTestFailed())
        return;
    // In its place and on its subject, a stub that says which event and why.
    const NatsStreamMessage& stub = messages.at(1);
    QCOMPARE(stub.operation, QByteArray("gap"));
    QCOMPARE(stub.subject, QByteArray("tidewatch.shop.main.orders"));
    const QString reason = parseJson(stub.data)[QStringLiteral("reason")].toString();
    QVERIFY2(reason.contains(QLatin1String("event 2 (insert")) &&
                 reason.contains(QLatin1String("larger than stream TIDEWATCH's max_msg_size (1024 bytes)")),
             qPrintable(reason));
    for (int i : {0, 2, 3}) {
        QCOMPARE(messages.at(i).operation, QByteArray("insert"));
        QCOMPARE(parseJson(messages.at(i).data)["documentKey"].toObject()["_id"].toInteger(), i + 1);
    }
    QNetworkAccessManager http;
    QTRY_COMPARE_WITH_TIMEOUT(publisherHealth(http, base)[QStringLiteral("lagEvents")].toInteger(), 0, 20000);
    const QJsonObject health = publisherHealth(http, base);
    QCOMPARE(health[QStringLiteral("rejected")].toInteger(), 1);
    QCOMPARE(health[QStringLiteral("ackedSeq")].toInteger(), 4);
    QCOMPARE(health[QStringLiteral("state")].toString(), QStringLiteral("publishing"));

    // A limit lowered while the ingest runs, which it has not read: JetStream's own
    // refusal becomes the stub. The row is alone in its window, so the stub is in order.
    QCOMPARE(reader.setMaxMsgSize(700), QString());
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders VALUES (5, hex(zeroblob(300)), 5)")),
             QString());
    QTRY_COMPARE_WITH_TIMEOUT(reader.messageCount(), 5, 30000);
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders VALUES (6, 'new', 6)")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(reader.messageCount(), 6, 30000);
    const QList<NatsStreamMessage> after = reader.readAll();
    checkStream(after, 6);
    if (QTest::currentTestFailed())
        return;
    QCOMPARE(after.at(4).operation, QByteArray("gap"));
    const QString refusal = parseJson(after.at(4).data)[QStringLiteral("reason")].toString();
    QVERIFY2(refusal.contains(QLatin1String("event 5 (insert")) &&
                 !refusal.contains(QLatin1String("larger than")),
             qPrintable(refusal));
    QCOMPARE(after.at(5).operation, QByteArray("insert"));
    QTRY_COMPARE_WITH_TIMEOUT(publisherHealth(http, base)[QStringLiteral("rejected")].toInteger(), 2, 20000);
    p.terminate();
    QVERIFY(p.waitForFinished(20000));
}

void TestNatsPublish::ackOfAnEarlierConnectionCountsForNothing() {
    // The window of connection 1 given up on, the same seqs opened again on connection 2.
    NatsAckWindow window;
    window.open(1, {5, 6, 7});
    QVERIFY(window.answer(1, 5, true, false, {}));
    window.open(2, {5, 6, 7});
    // What libnats still delivers for connection 1 changes nothing...
    QVERIFY(!window.answer(1, 5, true, false, {}));
    QVERIFY(!window.answer(1, 6, false, true, QStringLiteral("late refusal")));
    QCOMPARE(window.ackedPrefix(), size_t(0));
    QVERIFY(window.error().isEmpty());
    QVERIFY(!window.isComplete());
    // ...and connection 2's own answers count, once each.
    QVERIFY(window.answer(2, 5, true, false, {}));
    QVERIFY(!window.answer(2, 5, false, false, QStringLiteral("again")));
    QVERIFY(window.answer(2, 7, true, false, {}));
    QCOMPARE(window.ackedPrefix(), size_t(1));
    QVERIFY(!window.answer(2, 8, true, false, {})); // not in the window
    QVERIFY(window.answer(2, 6, false, true, QStringLiteral("message size exceeds maximum allowed")));
    QVERIFY(window.isComplete());
    QCOMPARE(window.ackedPrefix(), size_t(1));
    QVERIFY(window.isRejectionAt(1));
    QCOMPARE(window.error(), QStringLiteral("message size exceeds maximum allowed"));
}

QTEST_GUILESS_MAIN(TestNatsPublish)
#include "tst_natspublish.moc"

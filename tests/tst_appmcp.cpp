#include "TestUtil.h"

#include "http/EventRenderer.h"
#include "journal/Journal.h"
#include "mcp/McpPolls.h"
#include "mcp/McpStdio.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

using namespace tw::test;

// The MCP protocol's edge cases against the real program: JSON-RPC lines written to
// tidewatch --mcp's stdin, every stdout line read back as one JSON-RPC message.
class TestAppMcp : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void versionNegotiation_data();
    void versionNegotiation();
    void badInputGetsAnErrorThatNamesIt_data();
    void badInputGetsAnErrorThatNamesIt();
    void garbageAndOverLongLinesLeaveTheServerServing();
    void notificationsGetNoAnswer();
    void cancelledPollIsNeverAnswered();
    void pollTokenOfAnotherSubscriptionIsRefused();
    void endOfInputStopsCleanly();
    void waitingPollReportsProgress();
    void tokenBelowRetentionYieldsAGapFirst();
    void changesAreTypedByOperation_data();
    void changesAreTypedByOperation();

private:
    QString db() const { return m_dir->filePath(QStringLiteral("shop.sqlite")); }
    void start();
    void send(const QByteArray& line);
    QJsonObject request(int id, const QString& method, const QJsonObject& params = {});
    QJsonObject next();
    QJsonObject callTool(int id, const QString& name, const QJsonObject& arguments);

    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<QProcess> m_process;
    QByteArray m_log;
};

void TestAppMcp::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    m_log.clear();
    qputenv("TIDEWATCH_DATA_DIR", m_dir->filePath(QStringLiteral("data")).toLocal8Bit());
    QCOMPARE(runSqlite3(db(), QStringLiteral("PRAGMA journal_mode=WAL;"
                                             "CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT);")),
             QString());
    start();
}

void TestAppMcp::cleanup() {
    if (m_process && m_process->state() == QProcess::Running) {
        m_process->closeWriteChannel();
        if (!m_process->waitForFinished(30000))
            m_process->kill();
    }
    m_process.reset();
}

void TestAppMcp::start() {
    m_process = std::make_unique<QProcess>();
    m_process->setProcessChannelMode(QProcess::SeparateChannels);
    m_process->start(QStringLiteral(TIDEWATCH_BINARY),
                     {QStringLiteral("--mcp"), QStringLiteral("--journal"),
                      m_dir->filePath(QStringLiteral("journal.sqlite")), QStringLiteral("--source"),
                      QStringLiteral("sqlite:") + db(), QStringLiteral("--watch"), QStringLiteral("orders")});
    QVERIFY(m_process->waitForStarted());
    // Changes count from the watch's baseline on, so the cases that write wait for it.
    QTRY_VERIFY_WITH_TIMEOUT((m_log += m_process->readAllStandardError()).contains("ready: main.orders"),
                             30000);
}

void TestAppMcp::send(const QByteArray& line) {
    m_process->write(line);
    m_process->write("\n");
}

QJsonObject TestAppMcp::next() {
    QElapsedTimer timer;
    timer.start();
    while (!m_process->canReadLine() && timer.elapsed() < 30000)
        m_process->waitForReadyRead(100);
    if (!m_process->canReadLine())
        return {};
    const QByteArray line = m_process->readLine();
    QJsonParseError error;
    const QJsonDocument document = QJsonDocument::fromJson(line, &error);
    // stdout carries protocol messages only: each line is one JSON-RPC object.
    if (error.error != QJsonParseError::NoError || !document.isObject() ||
        document.object().value(QLatin1String("jsonrpc")).toString() != QLatin1String("2.0"))
        qWarning("not a JSON-RPC line on stdout: %s", line.constData());
    return document.object();
}

QJsonObject TestAppMcp::request(int id, const QString& method, const QJsonObject& params) {
    QJsonObject message{{QStringLiteral("jsonrpc"), QStringLiteral("2.0")},
                        {QStringLiteral("id"), id},
                        {QStringLiteral("method"), method}};
    if (!params.isEmpty())
        message.insert(QStringLiteral("params"), params);
    send(QJsonDocument(message).toJson(QJsonDocument::Compact));
    return next();
}

QJsonObject TestAppMcp::callTool(int id, const QString& name, const QJsonObject& arguments) {
    return request(id, QStringLiteral("tools/call"),
                   QJsonObject{{QStringLiteral("name"), name}, {QStringLiteral("arguments"), arguments}});
}

void TestAppMcp::versionNegotiation_data() {
    QTest::addColumn<QString>("asked");
    QTest::addColumn<QString>("answered");
    QTest::newRow("newest") << "2025-11-25"
                            << "2025-11-25";
    QTest::newRow("2025-06-18 kept") << "2025-06-18"
                                     << "2025-06-18";
    QTest::newRow("2025-03-26 kept") << "2025-03-26"
                                     << "2025-03-26";
    QTest::newRow("2024-11-05 kept") << "2024-11-05"
                                     << "2024-11-05";
    QTest::newRow("unknown gets our newest") << "1999-01-01"
                                             << "2025-11-25";
}

void TestAppMcp::versionNegotiation() {
    QFETCH(QString, asked);
    QFETCH(QString, answered);
    const QJsonObject reply =
        request(1, QStringLiteral("initialize"),
                QJsonObject{{QStringLiteral("protocolVersion"), asked},
                            {QStringLiteral("capabilities"), QJsonObject()},
                            {QStringLiteral("clientInfo"),
                             QJsonObject{{QStringLiteral("name"), QStringLiteral("t")},
                                         {QStringLiteral("version"), QStringLiteral("1")}}}});
    const QJsonObject result = reply.value(QLatin1String("result")).toObject();
    QCOMPARE(reply.value(QLatin1String("id")).toInt(), 1);
    QCOMPARE(result.value(QLatin1String("protocolVersion")).toString(), answered);
    QCOMPARE(result.value(QLatin1String("serverInfo")).toObject().value(QLatin1String("name")).toString(),
             QStringLiteral("tidewatch"));
    QVERIFY(result.value(QLatin1String("capabilities")).toObject().contains(QLatin1String("tools")));
    QVERIFY(result.value(QLatin1String("capabilities"))
                .toObject()
                .value(QLatin1String("resources"))
                .toObject()
                .value(QLatin1String("subscribe"))
                .toBool());
}

void TestAppMcp::badInputGetsAnErrorThatNamesIt_data() {
    QTest::addColumn<QByteArray>("line");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("names");
    QTest::newRow("not JSON") << QByteArray("{\"jsonrpc\":") << -32700 << "not JSON";
    QTest::newRow("batch array") << QByteArray(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])") << -32600
                                 << "batches";
    QTest::newRow("no jsonrpc") << QByteArray(R"({"id":1,"method":"ping"})") << -32600 << "jsonrpc";
    QTest::newRow("method not a string")
        << QByteArray(R"({"jsonrpc":"2.0","id":1,"method":7})") << -32600 << "method";
    // Found by fuzz_jsonrpc: the integer check converted the double to qint64 first.
    QTest::newRow("id a number beyond int64")
        << QByteArray(R"({"jsonrpc":"2.0","id":1e300,"method":"ping"})") << -32600 << "id";
    QTest::newRow("id an object") << QByteArray(R"({"jsonrpc":"2.0","id":{},"method":"ping"})") << -32600
                                  << "id";
    QTest::newRow("params an array") << QByteArray(R"({"jsonrpc":"2.0","id":1,"method":"ping","params":[]})")
                                     << -32602 << "params";
    QTest::newRow("unknown method") << QByteArray(R"({"jsonrpc":"2.0","id":1,"method":"prompts/get"})")
                                    << -32601 << "prompts/get";
    QTest::newRow("initialize without version")
        << QByteArray(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}})") << -32602
        << "protocolVersion";
    QTest::newRow("unknown tool")
        << QByteArray(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop_everything"}})")
        << -32602 << "drop_everything";
    QTest::newRow("wrong argument type")
        << QByteArray(
               R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"poll_changes","arguments":{"subscription_id":5}}})")
        << -32602 << "subscription_id must be string";
    QTest::newRow("missing argument")
        << QByteArray(
               R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"poll_changes","arguments":{}}})")
        << -32602 << "subscription_id is required";
    QTest::newRow("unknown argument")
        << QByteArray(
               R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"unsubscribe","arguments":{"subscription_id":"x","force":true}}})")
        << -32602 << "unknown argument force";
    QTest::newRow("option out of range")
        << QByteArray(
               R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"subscribe_changes","arguments":{"options":{"batch_size":0}}}})")
        << -32602 << "options.batch_size must be at least 1";
    QTest::newRow("mixed projection")
        << QByteArray(
               R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"subscribe_changes","arguments":{"options":{"projection":{"fullDocument.a":1,"fullDocument.b":0}}}}})")
        << -32602
        << "options.projection: Cannot do exclusion on field fullDocument.b in inclusion projection";
    QTest::newRow("unknown resource_type")
        << QByteArray(
               R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"subscribe_changes","arguments":{"resource_type":"rows"}}})")
        << -32602 << "resource_type must be one of";
    QTest::newRow("malformed filter")
        << QByteArray(
               R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"subscribe_changes","arguments":{"filters":{"fullDocument.total":{"$gt":1,"$bogus":2}}}}})")
        << -32602 << "filters:";
    QTest::newRow("unknown subscription")
        << QByteArray(
               R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"poll_changes","arguments":{"subscription_id":"nope"}}})")
        << -32602 << "no subscription \"nope\"";
    QTest::newRow("unknown resource")
        << QByteArray(
               R"({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"tidewatch://x/y"}})")
        << -32002 << "tidewatch://x/y";
}

void TestAppMcp::badInputGetsAnErrorThatNamesIt() {
    QFETCH(QByteArray, line);
    QFETCH(int, code);
    QFETCH(QString, names);
    send(line);
    const QJsonObject error = next().value(QLatin1String("error")).toObject();
    QCOMPARE(error.value(QLatin1String("code")).toInt(), code);
    const QString message = error.value(QLatin1String("message")).toString();
    QVERIFY2(message.contains(names), qPrintable(message));
    // The process keeps serving.
    QCOMPARE(request(99, QStringLiteral("ping")).value(QLatin1String("id")).toInt(), 99);
}

void TestAppMcp::garbageAndOverLongLinesLeaveTheServerServing() {
    send(QByteArray("\x01\x02 garbage \xff"));
    QCOMPARE(next().value(QLatin1String("error")).toObject().value(QLatin1String("code")).toInt(), -32700);
    // One line just over the limit, written in pieces as a pipe delivers it.
    const QByteArray big = R"({"jsonrpc":"2.0","id":5,"method":"ping","params":{"pad":")" +
                           QByteArray(int(tw::mcp::McpStdio::maxLineBytes()), 'x') + R"("}})";
    send(big);
    const QJsonObject error = next().value(QLatin1String("error")).toObject();
    QCOMPARE(error.value(QLatin1String("code")).toInt(), -32600);
    QVERIFY2(error.value(QLatin1String("message")).toString().contains(QLatin1String("4 MiB")),
             qPrintable(error.value(QLatin1String("message")).toString()));
    // A line just under the limit is read.
    const QByteArray fits = R"({"jsonrpc":"2.0","id":6,"method":"ping","params":{"pad":")" +
                            QByteArray(int(tw::mcp::McpStdio::maxLineBytes()) - 100, 'y') + R"("}})";
    send(fits);
    QCOMPARE(next().value(QLatin1String("id")).toInt(), 6);
    QCOMPARE(request(7, QStringLiteral("ping")).value(QLatin1String("id")).toInt(), 7);
}

void TestAppMcp::notificationsGetNoAnswer() {
    send(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
    send(R"({"jsonrpc":"2.0","method":"notifications/unknown_thing","params":{"x":1}})");
    send(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":12345}})");
    send(R"({"jsonrpc":"2.0","id":1,"result":{}})"); // a response to nothing we asked
    // Messages are answered in order, so the first line back is the ping's.
    QCOMPARE(request(2, QStringLiteral("ping")),
             QJsonDocument::fromJson(R"({"jsonrpc":"2.0","id":2,"result":{}})").object());
}

void TestAppMcp::cancelledPollIsNeverAnswered() {
    const QJsonObject subscribed =
        callTool(1, QStringLiteral("subscribe_changes"),
                 QJsonObject{{QStringLiteral("filters"),
                              QJsonObject{{QStringLiteral("collection_id"), QStringLiteral("orders")}}}});
    const QString id = subscribed.value(QLatin1String("result"))
                           .toObject()
                           .value(QLatin1String("structuredContent"))
                           .toObject()
                           .value(QLatin1String("subscription_id"))
                           .toString();
    QVERIFY(!id.isEmpty());
    const QJsonObject poll{{QStringLiteral("subscription_id"), id}, {QStringLiteral("timeout"), 120}};
    send(QJsonDocument(QJsonObject{{QStringLiteral("jsonrpc"), QStringLiteral("2.0")},
                                   {QStringLiteral("id"), 7},
                                   {QStringLiteral("method"), QStringLiteral("tools/call")},
                                   {QStringLiteral("params"),
                                    QJsonObject{{QStringLiteral("name"), QStringLiteral("poll_changes")},
                                                {QStringLiteral("arguments"), poll}}}})
             .toJson(QJsonDocument::Compact));
    send(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"test"}})");
    QCOMPARE(request(8, QStringLiteral("ping")).value(QLatin1String("id")).toInt(), 8);
    // A second poll parks too; the insert answers it, and would have answered 7 first
    // had the cancellation not dropped it.
    send(QJsonDocument(QJsonObject{{QStringLiteral("jsonrpc"), QStringLiteral("2.0")},
                                   {QStringLiteral("id"), 9},
                                   {QStringLiteral("method"), QStringLiteral("tools/call")},
                                   {QStringLiteral("params"),
                                    QJsonObject{{QStringLiteral("name"), QStringLiteral("poll_changes")},
                                                {QStringLiteral("arguments"), poll}}}})
             .toJson(QJsonDocument::Compact));
    QCOMPARE(request(10, QStringLiteral("ping")).value(QLatin1String("id")).toInt(), 10); // 9 is parked
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status) VALUES('new');")), QString());
    const QJsonObject answer = next();
    QCOMPARE(answer.value(QLatin1String("id")).toInt(), 9);
    const QJsonArray changes = answer.value(QLatin1String("result"))
                                   .toObject()
                                   .value(QLatin1String("structuredContent"))
                                   .toObject()
                                   .value(QLatin1String("changes"))
                                   .toArray();
    QCOMPARE(changes.size(), 1);
    QCOMPARE(changes.at(0).toObject().value(QLatin1String("type")).toString(), QStringLiteral("created"));
    QCOMPARE(changes.at(0).toObject().value(QLatin1String("resource_id")).toString(), QStringLiteral("1"));
}

void TestAppMcp::pollTokenOfAnotherSubscriptionIsRefused() {
    const auto subscribe = [this](int id) {
        return callTool(id, QStringLiteral("subscribe_changes"), {})
            .value(QLatin1String("result"))
            .toObject()
            .value(QLatin1String("structuredContent"))
            .toObject();
    };
    const QJsonObject first = subscribe(1);
    const QJsonObject second = subscribe(2);
    const QJsonObject reply = callTool(
        3, QStringLiteral("poll_changes"),
        QJsonObject{{QStringLiteral("subscription_id"), second.value(QLatin1String("subscription_id"))},
                    {QStringLiteral("poll_token"), first.value(QLatin1String("poll_token"))}});
    const QJsonObject error = reply.value(QLatin1String("error")).toObject();
    QCOMPARE(error.value(QLatin1String("code")).toInt(), -32602);
    QVERIFY2(error.value(QLatin1String("message"))
                 .toString()
                 .contains(first.value(QLatin1String("subscription_id")).toString()),
             qPrintable(error.value(QLatin1String("message")).toString()));
}

void TestAppMcp::endOfInputStopsCleanly() {
    m_process->closeWriteChannel();
    QVERIFY(m_process->waitForFinished(30000));
    QCOMPARE(m_process->exitStatus(), QProcess::NormalExit);
    QCOMPARE(m_process->exitCode(), 0);
    m_log += m_process->readAllStandardError();
    QVERIFY2(m_log.contains("journal checkpointed"), m_log.constData());
    QCOMPARE(m_process->readAllStandardOutput(), QByteArray());
}

void TestAppMcp::waitingPollReportsProgress() {
    const QString id = callTool(1, QStringLiteral("subscribe_changes"), {})
                           .value(QLatin1String("result"))
                           .toObject()
                           .value(QLatin1String("structuredContent"))
                           .toObject()
                           .value(QLatin1String("subscription_id"))
                           .toString();
    // Progress comes every 5 s while the call waits: a 7 s timeout sees one, then the
    // empty answer.
    send(QJsonDocument(
             QJsonObject{{QStringLiteral("jsonrpc"), QStringLiteral("2.0")},
                         {QStringLiteral("id"), 2},
                         {QStringLiteral("method"), QStringLiteral("tools/call")},
                         {QStringLiteral("params"),
                          QJsonObject{{QStringLiteral("name"), QStringLiteral("poll_changes")},
                                      {QStringLiteral("_meta"),
                                       QJsonObject{{QStringLiteral("progressToken"), QStringLiteral("p1")}}},
                                      {QStringLiteral("arguments"),
                                       QJsonObject{{QStringLiteral("subscription_id"), id},
                                                   {QStringLiteral("timeout"), 7}}}}}})
             .toJson(QJsonDocument::Compact));
    const QJsonObject progress = next();
    QCOMPARE(progress.value(QLatin1String("method")).toString(), QStringLiteral("notifications/progress"));
    QCOMPARE(
        progress.value(QLatin1String("params")).toObject().value(QLatin1String("progressToken")).toString(),
        QStringLiteral("p1"));
    const QJsonObject answer = next();
    QCOMPARE(answer.value(QLatin1String("id")).toInt(), 2);
    const QJsonObject out =
        answer.value(QLatin1String("result")).toObject().value(QLatin1String("structuredContent")).toObject();
    QCOMPARE(out.value(QLatin1String("changes")).toArray().size(), 0);
    QCOMPARE(out.value(QLatin1String("subscription_active")).toBool(), true);
}

void TestAppMcp::tokenBelowRetentionYieldsAGapFirst() {
    // In process, on a journal written here: 10 events pruned, 3 kept after them.
    const QString path = m_dir->filePath(QStringLiteral("pruned.sqlite"));
    tw::Journal journal;
    QVERIFY(journal.open(path));
    const auto append = [&journal](int first, int count) {
        tw::ChangeBatch batch;
        batch.sourceId = QStringLiteral("s");
        for (int i = first; i < first + count; ++i)
            batch.events.append(makeEvent(batch.sourceId, QStringLiteral("orders"), i));
        QList<tw::ChangeBatch> batches{batch};
        return journal.append(batches);
    };
    QVERIFY(append(1, 10));
    tw::RetentionPolicy policy;
    policy.maxBytes = 0;
    policy.maxAgeSeconds = 3600;
    QCOMPARE(journal.prune(policy, QDateTime::currentMSecsSinceEpoch() + 2 * 3600 * 1000), 10);
    QVERIFY(append(11, 3));

    tw::mcp::McpPolls polls;
    QString error;
    QVERIFY2(polls.open(path, &error), qPrintable(error));
    tw::Subscription subscription;
    subscription.id = QStringLiteral("sub");
    QJsonObject result;
    polls.poll(subscription, 5, 0, QStringLiteral("k"),
               [&result](const tw::mcp::JsonRpc::Error* e, const QJsonObject& r) {
                   QVERIFY(!e);
                   result = r;
               });
    const QJsonArray changes = result.value(QLatin1String("changes")).toArray();
    QCOMPARE(changes.size(), 4);
    QCOMPARE(changes.at(0).toObject().value(QLatin1String("type")).toString(), QStringLiteral("gap"));
    QVERIFY(changes.at(0)
                .toObject()
                .value(QLatin1String("event"))
                .toObject()
                .value(QLatin1String("reason"))
                .toString()
                .contains(QLatin1String("retention")));
    for (int i = 1; i < 4; ++i)
        QCOMPARE(changes.at(i).toObject().value(QLatin1String("version")).toInteger(), qint64(10 + i));
    qint64 seq = 0;
    QVERIFY(tw::mcp::McpPolls::parseToken(result.value(QLatin1String("poll_token")).toString(),
                                          QStringLiteral("sub"), &seq, &error));
    QCOMPARE(seq, qint64(13));
    QVERIFY(!tw::mcp::McpPolls::parseToken(QStringLiteral("bm90IGEgdG9rZW4"), QStringLiteral("sub"), &seq,
                                           &error));
    QVERIFY2(error.contains(QLatin1String("poll_token")), qPrintable(error));
}

void TestAppMcp::changesAreTypedByOperation_data() {
    QTest::addColumn<int>("operation");
    QTest::addColumn<QString>("type");
    QTest::addColumn<QString>("resourceType");
    QTest::addColumn<QString>("resourceId");
    QTest::newRow("insert") << int(tw::Operation::Insert) << "created"
                            << "document"
                            << "7";
    QTest::newRow("update") << int(tw::Operation::Update) << "updated"
                            << "document"
                            << "7";
    QTest::newRow("replace") << int(tw::Operation::Replace) << "updated"
                             << "document"
                             << "7";
    QTest::newRow("delete") << int(tw::Operation::Delete) << "deleted"
                            << "document"
                            << "7";
    QTest::newRow("drop") << int(tw::Operation::Drop) << "drop"
                          << "collection"
                          << "main.orders";
}

void TestAppMcp::changesAreTypedByOperation() {
    QFETCH(int, operation);
    QFETCH(QString, type);
    QFETCH(QString, resourceType);
    QFETCH(QString, resourceId);
    tw::ChangeEvent event = makeEvent(QStringLiteral("s"), QStringLiteral("orders"), 7);
    event.setOperation(tw::Operation(operation));
    if (event.operation() == tw::Operation::Delete || event.operation() == tw::Operation::Drop)
        event.setFullDocument(tw::Bson());
    const QJsonObject change = tw::mcp::McpPolls::renderChange(event, true, tw::EventShape());
    QCOMPARE(change.value(QLatin1String("type")).toString(), type);
    QCOMPARE(change.value(QLatin1String("resource_type")).toString(), resourceType);
    QCOMPARE(change.value(QLatin1String("resource_id")).toString(), resourceId);
    QCOMPARE(change.value(QLatin1String("new_data")).isObject(),
             event.operation() != tw::Operation::Delete && event.operation() != tw::Operation::Drop);
    QVERIFY(change.value(QLatin1String("old_data")).isNull());
    QCOMPARE(change.value(QLatin1String("timestamp")).toString(), QStringLiteral("2023-11-14T22:13:20.007Z"));
    // Without data, neither the change nor its event carries documents.
    tw::Subscription keysOnly;
    keysOnly.projection = tw::Subscription::Projection::KeysOnly;
    const QJsonObject keys = tw::mcp::McpPolls::renderChange(event, false, keysOnly.shape());
    QVERIFY(!keys.contains(QLatin1String("new_data")));
    QVERIFY(!keys.value(QLatin1String("event")).toObject().contains(QLatin1String("fullDocument")));
    QCOMPARE(keys.value(QLatin1String("resource_id")).toString(), resourceId);
    // A projection shapes the event; the id and the data still come from the whole event.
    tw::Subscription projected;
    QVERIFY(projected.setProjection(R"({"operationType": 1})", nullptr));
    const QJsonObject shaped = tw::mcp::McpPolls::renderChange(event, true, projected.shape());
    const QJsonObject shapedEvent = shaped.value(QLatin1String("event")).toObject();
    QVERIFY(shapedEvent.contains(QLatin1String("operationType")));
    QVERIFY(!shapedEvent.contains(QLatin1String("documentKey")));
    QVERIFY(!shapedEvent.contains(QLatin1String("fullDocument")));
    QCOMPARE(shaped.value(QLatin1String("resource_id")).toString(), resourceId);
    QCOMPARE(shaped.value(QLatin1String("new_data")).isObject(),
             change.value(QLatin1String("new_data")).isObject());
}

QTEST_GUILESS_MAIN(TestAppMcp)
#include "tst_appmcp.moc"

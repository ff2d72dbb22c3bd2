#include "EngineFixture.h"
#include "SseTestClient.h"
#include "TestUtil.h"

#include "http/SseServer.h"
#include "journal/Journal.h"
#include "sources/SourceReading.h"

#include <QJsonArray>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QSet>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>

using namespace tw;
using namespace tw::test;

namespace {

const QByteArray kToken = "test-token-0123456789";

struct HttpResult {
    int status = 0;
    QByteArray body;
    QList<QNetworkReply::RawHeaderPair> headers;
    QByteArray header(const QByteArray& name) const {
        for (const auto& h : headers)
            if (h.first.compare(name, Qt::CaseInsensitive) == 0)
                return h.second;
        return {};
    }
};

} // namespace

// The SSE server and HTTP API over real sockets on 127.0.0.1, with
// QNetworkAccessManager, bare TCP clients and the curl program.
class TestSseServer : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void eventsArriveInOrderWithIdsAndTypes();
    void replayThenLiveWithConcurrentWritesHasNoGapNoDuplicate();
    void prunedIdGetsGapNamingFirstAvailable();
    void liveClientOfANamespaceNotReadYetIsToldWhatMayBeMissing();
    void unknownIdBeyondHeadGetsGap();
    void auth_data();
    void auth();
    void corsPreflight_data();
    void corsPreflight();
    void slowClientIsCutOffOthersUnaffectedAndResumesLosingNothing();
    void longPollLoopSeesEveryChangeExactlyOnce();
    void longPollWakesOnCommit();
    void subscriptionCrudAndStreamFromNext();
    void adhocStreamFiltersAndIsRemovedWhenClientLeaves();
    void keysOnlyProjectionAndCanonicalFormat();
    void shapedSubscriptionReplayLiveAndLongPollAgree();
    void adhocStreamShapedByQuery();
    void hostileRequestsGetClearErrors_data();
    void hostileRequestsGetClearErrors();
    void oversizedHeadersAndBodiesAreRefused();
    void clientThatNeverFinishesHeadersTimesOut();
    void rapidConnectDisconnectLeavesOthersUnharmed();
    void stopStartWhileClientsConnectedTheyResume();
    void curlStreamsAndResumesWithLastEventId();
    void keepAliveCommentsAreSent();
    void healthAndMetricsWithRealSqliteSource();
    void refusesNonLoopbackWithoutTokenAndPortInUse();
    void headlessSseServesTheCommandLineSubscription();
    void sourcesEndpointsWithoutAControlAre501();
    void unwatchedNamespacesAreRefusedWhenTheServerKnowsItsWatches();

private:
    void startServer(const SseServer::Options& overrides = {}, bool useOverrides = false);
    SseServer::Options defaults() const;
    void submit(int count, int padBytes = 16, const QString& coll = QStringLiteral("orders"));
    QUrl url(const QString& path) const;
    HttpResult request(const QByteArray& method, const QString& path, const QByteArray& body = {},
                       const QList<QPair<QByteArray, QByteArray>>& headers = {}, bool auth = true);
    static bool isExactlyAscending(const QList<qint64>& seqs, qint64 from, qint64 to);

    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<EngineFixture> m_fx;
    std::unique_ptr<SseServer> m_server;
    int m_nextKey = 1;
    QNetworkAccessManager m_nam;
};

void TestSseServer::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    qputenv("TIDEWATCH_DATA_DIR", m_dir->filePath(QStringLiteral("data")).toLocal8Bit());
    m_fx = std::make_unique<EngineFixture>(m_dir->filePath(QStringLiteral("journal.sqlite")));
    QString error;
    QVERIFY2(m_fx->start(&error), qPrintable(error));
    Subscription sub;
    sub.id = QStringLiteral("orders");
    sub.name = QStringLiteral("orders");
    sub.namespaces = {
        SourceNamespace{QStringLiteral("t"), Namespace{QStringLiteral("main"), QStringLiteral("orders")}}};
    m_fx->engine->addSubscription(sub);
    QTRY_VERIFY(m_fx->engine->subscription(QStringLiteral("orders")).has_value());
    m_nextKey = 1;
}

void TestSseServer::cleanup() {
    m_server.reset();
    m_fx.reset();
    m_dir.reset();
}

SseServer::Options TestSseServer::defaults() const {
    SseServer::Options o;
    o.token = QString::fromLatin1(kToken);
    o.corsOrigins = {QStringLiteral("http://allowed.example")};
    return o;
}

void TestSseServer::startServer(const SseServer::Options& overrides, bool useOverrides) {
    m_server = std::make_unique<SseServer>(m_fx->engine.get());
    QString error;
    QVERIFY2(m_server->start(useOverrides ? overrides : defaults(), &error), qPrintable(error));
    QVERIFY(m_server->port() > 0);
}

void TestSseServer::submit(int count, int padBytes, const QString& coll) {
    ChangeBatch batch;
    batch.sourceId = QStringLiteral("t");
    for (int i = 0; i < count; ++i)
        batch.events.append(makeEvent(QStringLiteral("t"), coll, m_nextKey++, padBytes));
    m_fx->engine->submit(batch);
}

QUrl TestSseServer::url(const QString& path) const {
    return QUrl(m_server->baseUrl().toString() + path);
}

HttpResult TestSseServer::request(const QByteArray& method, const QString& path, const QByteArray& body,
                                  const QList<QPair<QByteArray, QByteArray>>& headers, bool auth) {
    QNetworkRequest req(url(path));
    if (auth)
        req.setRawHeader("Authorization", "Bearer " + kToken);
    for (const auto& h : headers)
        req.setRawHeader(h.first, h.second);
    if (!body.isEmpty())
        req.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/json"));
    QNetworkReply* reply = m_nam.sendCustomRequest(req, method, body);
    QSignalSpy done(reply, &QNetworkReply::finished);
    if (!reply->isFinished())
        done.wait(30000);
    HttpResult r;
    r.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    r.body = reply->readAll();
    r.headers = reply->rawHeaderPairs();
    reply->deleteLater();
    return r;
}

bool TestSseServer::isExactlyAscending(const QList<qint64>& seqs, qint64 from, qint64 to) {
    if (seqs.size() != to - from + 1)
        return false;
    for (qsizetype i = 0; i < seqs.size(); ++i)
        if (seqs[i] != from + i)
            return false;
    return true;
}

// --- streams ---------------------------------------------------------------------------------

void TestSseServer::liveClientOfANamespaceNotReadYetIsToldWhatMayBeMissing() {
    // A narrowing source (a MongoDB push-down, a NATS gateway) reads the namespace of a
    // new subscription only some commits after it is made. A client that joins live in
    // between learns from a notice what may be missing, before anything read for it; a
    // client of a namespace read all along, or one that joins later, gets none.
    const Namespace scope{QStringLiteral("main"), {}};
    const Namespace items{QStringLiteral("main"), QStringLiteral("items")};
    const WatchOptions::Reader ordersOnly{Namespace{QStringLiteral("main"), QStringLiteral("orders")},
                                          Bson::empty(), true};
    auto batchOf = [this](const QStringList& colls) {
        ChangeBatch batch;
        batch.sourceId = QStringLiteral("t");
        for (const QString& coll : colls)
            batch.events.append(makeEvent(batch.sourceId, coll, m_nextKey++));
        return batch;
    };
    ChangeBatch narrow = batchOf({QStringLiteral("orders"), QStringLiteral("orders")}); // 1, 2
    narrow.narrowings.append(SourceNarrowing{0, SourceReading::toJson({ScopeReading{scope, {ordersOnly}}})});
    m_fx->engine->submit(narrow);
    QTRY_COMPARE_WITH_TIMEOUT(m_fx->events.size(), 2, 10000);
    Subscription onItems;
    onItems.id = QStringLiteral("items");
    onItems.namespaces = {SourceNamespace{QStringLiteral("t"), items}};
    m_fx->engine->addSubscription(onItems);
    // Half read: it receives the orders while it waits for the items.
    Subscription onBoth = onItems;
    onBoth.id = QStringLiteral("both");
    onBoth.namespaces.append(
        SourceNamespace{QStringLiteral("t"), Namespace{QStringLiteral("main"), QStringLiteral("orders")}});
    m_fx->engine->addSubscription(onBoth);
    QTRY_VERIFY(m_fx->engine->subscription(onItems.id).has_value());
    QTRY_VERIFY(m_fx->engine->subscription(onBoth.id).has_value());
    startServer();
    const QUrl itemsUrl = url(QStringLiteral("/v1/subscriptions/items/events"));
    SseTestClient live, fromStart, ordersClient, both;
    live.open(itemsUrl, kToken);
    fromStart.open(itemsUrl, kToken, "0");
    ordersClient.open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken);
    both.open(url(QStringLiteral("/v1/subscriptions/both/events")), kToken);
    for (SseTestClient* c : {&live, &fromStart, &ordersClient, &both})
        QTRY_COMPARE_WITH_TIMEOUT(c->readyCount(), 1, 10000);
    // The replay told what may be missing so far (1 to 2), before it went live.
    QCOMPARE(fromStart.gapCount(), 1);

    m_fx->engine->submit(
        batchOf({QStringLiteral("orders"), QStringLiteral("orders")})); // 3, 4: still narrowed
    QTRY_COMPARE_WITH_TIMEOUT(ordersClient.seqs(), (QList<qint64>{3, 4}), 10000);
    QTRY_COMPARE_WITH_TIMEOUT(both.seqs(), (QList<qint64>{3, 4}), 10000);
    // Another subscription comes and goes meanwhile: the clients still waiting are still
    // owed all of their notice.
    Subscription unrelated;
    unrelated.id = QStringLiteral("unrelated");
    m_fx->engine->addSubscription(unrelated);
    QTRY_VERIFY(m_fx->engine->subscription(unrelated.id).has_value());
    QVERIFY(m_fx->engine->removeSubscription(unrelated.id));
    ChangeBatch wide = batchOf({QStringLiteral("items"), QStringLiteral("orders")}); // 5, 6: read whole
    wide.narrowings.append(SourceNarrowing{0, SourceReading::toJson({ScopeReading{scope, {}}})});
    m_fx->engine->submit(wide);
    QTRY_COMPARE_WITH_TIMEOUT(live.seqs(), QList<qint64>{5}, 10000);
    QTRY_COMPARE_WITH_TIMEOUT(fromStart.seqs(), QList<qint64>{5}, 10000);
    for (SseTestClient* c : {&live, &fromStart}) {
        // ready or the replay's notice, ready, then this notice, then 5.
        const qsizetype at = c->messages.size() - 2;
        const SseMessage& gap = c->messages.at(at);
        QCOMPARE(gap.event, QByteArray("gap"));
        QCOMPARE(gap.seq(), 2); // at the cursor: it skips nothing
        const QJsonObject notice = parseJson(gap.data);
        QVERIFY2(notice[QStringLiteral("reason")].toString().contains(
                     QStringLiteral("events 3 to 4 may be missing")),
                 gap.data.constData());
        QCOMPARE(notice[QStringLiteral("resumeAfter")].toInteger(), 2);
        QCOMPARE(c->messages.at(at - 1).event, QByteArray("ready"));
    }
    QCOMPARE(live.gapCount(), 1);
    QCOMPARE(fromStart.gapCount(), 2);
    QTRY_COMPARE_WITH_TIMEOUT(both.seqs(), (QList<qint64>{3, 4, 5, 6}), 10000);
    QCOMPARE(both.gapCount(), 1);
    const SseMessage& bothGap = both.messages.at(both.messages.size() - 3);
    QCOMPARE(bothGap.event, QByteArray("gap"));
    QCOMPARE(bothGap.seq(), 4);
    QVERIFY2(parseJson(bothGap.data)[QStringLiteral("reason")].toString().contains(
                 QStringLiteral("events 3 to 4 may be missing")),
             bothGap.data.constData());

    // Read whole from 4 on: nothing more to tell, to them or to a client that joins now.
    SseTestClient later;
    later.open(itemsUrl, kToken);
    QTRY_COMPARE_WITH_TIMEOUT(later.readyCount(), 1, 10000);
    m_fx->engine->submit(batchOf({QStringLiteral("items")})); // 7
    for (SseTestClient* c : {&live, &fromStart})
        QTRY_COMPARE_WITH_TIMEOUT(c->seqs(), (QList<qint64>{5, 7}), 10000);
    QTRY_COMPARE_WITH_TIMEOUT(later.seqs(), QList<qint64>{7}, 10000);
    QCOMPARE(later.gapCount(), 0);
    QCOMPARE(live.gapCount(), 1);
    QCOMPARE(ordersClient.gapCount(), 0);
    QCOMPARE(ordersClient.seqs(), (QList<qint64>{3, 4, 6}));

    // Covered when it joins, then narrowed past before read (a source's readers change
    // one at a time): told too, from where it was last known covered.
    Subscription onNotes = onItems;
    onNotes.id = QStringLiteral("notes");
    onNotes.namespaces = {
        SourceNamespace{QStringLiteral("t"), Namespace{QStringLiteral("main"), QStringLiteral("notes")}}};
    m_fx->engine->addSubscription(onNotes);
    QTRY_VERIFY(m_fx->engine->subscription(onNotes.id).has_value());
    SseTestClient notes;
    notes.open(url(QStringLiteral("/v1/subscriptions/notes/events")), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(notes.readyCount(), 1, 10000);
    ChangeBatch narrowAgain = batchOf({QStringLiteral("orders")}); // 8
    narrowAgain.narrowings.append(
        SourceNarrowing{0, SourceReading::toJson({ScopeReading{scope, {ordersOnly}}})});
    m_fx->engine->submit(narrowAgain);
    QTRY_COMPARE_WITH_TIMEOUT(ordersClient.seqs().size(), 4, 10000);
    ChangeBatch widenAgain = batchOf({QStringLiteral("notes")}); // 9
    widenAgain.narrowings.append(SourceNarrowing{0, SourceReading::toJson({ScopeReading{scope, {}}})});
    m_fx->engine->submit(widenAgain);
    QTRY_COMPARE_WITH_TIMEOUT(notes.seqs(), QList<qint64>{9}, 10000);
    QCOMPARE(notes.gapCount(), 1);
    const SseMessage& notice = notes.messages.at(notes.messages.size() - 2);
    QCOMPARE(notice.event, QByteArray("gap"));
    QCOMPARE(notice.seq(), 7);
    QVERIFY2(parseJson(notice.data)[QStringLiteral("reason")].toString().contains(
                 QStringLiteral("events 8 to 8 may be missing")),
             notice.data.constData());
    // The items clients were narrowed past as well, and are told the same; the orders
    // client was read all along.
    QTRY_COMPARE_WITH_TIMEOUT(live.gapCount(), 2, 10000);
    QTRY_COMPARE_WITH_TIMEOUT(later.gapCount(), 1, 10000);
    QCOMPARE(later.messages.last().event, QByteArray("gap"));
    QCOMPARE(later.messages.last().seq(), 7);
    QCOMPARE(ordersClient.gapCount(), 0);
}

void TestSseServer::eventsArriveInOrderWithIdsAndTypes() {
    startServer();
    SseTestClient client;
    client.open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 10000);
    QCOMPARE(client.status(), 200);
    QVERIFY(client.header("Content-Type").startsWith("text/event-stream"));
    for (int i = 0; i < 20; ++i)
        submit(10);
    submit(5, 16, QStringLiteral("customers")); // another table: not routed to "orders"
    submit(1);
    QTRY_COMPARE_WITH_TIMEOUT(client.seqs().size(), 201, 20000);
    const QList<qint64> seqs = client.seqs();
    QVERIFY(isExactlyAscending(seqs.mid(0, 200), 1, 200));
    QCOMPARE(seqs.last(), 206);
    for (const SseMessage& m : std::as_const(client.messages)) {
        if (m.event == "ready")
            continue;
        QCOMPARE(m.event, QByteArray("insert"));
        const QJsonObject doc = parseJson(m.data);
        QCOMPARE(qint64(doc.value(QStringLiteral("seq")).toInteger()), m.seq());
        QCOMPARE(doc.value(QStringLiteral("ns")).toObject().value(QStringLiteral("coll")).toString(),
                 QStringLiteral("orders"));
    }
}

void TestSseServer::replayThenLiveWithConcurrentWritesHasNoGapNoDuplicate() {
    startServer();
    submit(300);
    QTRY_COMPARE(m_fx->engine->lastCommittedSeq(), 300);
    // A writer keeps committing while clients replay and hand over to live.
    QTimer writer;
    int written = 300;
    connect(&writer, &QTimer::timeout, this, [&] {
        if (written >= 3000)
            return;
        submit(20);
        written += 20;
    });
    writer.start(2);
    QList<std::shared_ptr<SseTestClient>> clients;
    const QList<int> from = {0, 1, 150, 299, 300};
    for (int lastId : from) {
        auto c = std::make_shared<SseTestClient>();
        c->open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken, QByteArray::number(lastId));
        clients.append(c);
        QTest::qWait(20); // stagger, so the clients join at different points of the writes
    }
    QTRY_COMPARE_WITH_TIMEOUT(written, 3000, 60000);
    QTRY_COMPARE_WITH_TIMEOUT(m_fx->engine->lastCommittedSeq(), 3000, 30000);
    for (int i = 0; i < clients.size(); ++i) {
        QTRY_VERIFY_WITH_TIMEOUT(!clients[i]->seqs().isEmpty() && clients[i]->seqs().last() == 3000, 60000);
        const QList<qint64> seqs = clients[i]->seqs();
        QVERIFY2(isExactlyAscending(seqs, from[i] + 1, 3000),
                 qPrintable(QStringLiteral("client from %1 got %2 events, first %3")
                                .arg(from[i])
                                .arg(seqs.size())
                                .arg(seqs.isEmpty() ? -1 : seqs.first())));
        QCOMPARE(clients[i]->readyCount(), 1);
        QCOMPARE(clients[i]->gapCount(), 0);
    }
}

void TestSseServer::prunedIdGetsGapNamingFirstAvailable() {
    startServer();
    submit(50);
    QTRY_COMPARE(m_fx->engine->lastCommittedSeq(), 50);
    {
        // Retention removes everything committed so far (a tiny age limit, "now" later).
        Journal journal;
        QVERIFY(journal.open(m_fx->engine->journalPath()));
        RetentionPolicy policy;
        policy.maxAgeSeconds = 1;
        policy.maxBytes = 0;
        QVERIFY(journal.prune(policy, QDateTime::currentMSecsSinceEpoch() + 60000) > 0);
        QCOMPARE(journal.prunedThrough(), 50);
    }
    submit(10);
    QTRY_COMPARE(m_fx->engine->lastCommittedSeq(), 60);
    SseTestClient client;
    client.open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken, "10");
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 10000);
    QCOMPARE(client.gapCount(), 1);
    const SseMessage gap = client.messages.first();
    QCOMPARE(gap.event, QByteArray("gap"));
    const QJsonObject data = parseJson(gap.data);
    QCOMPARE(data.value(QStringLiteral("firstAvailable")).toInteger(), 51);
    QCOMPARE(gap.id, QByteArray("50"));
    QVERIFY(isExactlyAscending(client.seqs(), 51, 60));
    // The long poll says the same.
    const HttpResult r = request("GET", QStringLiteral("/v1/subscriptions/orders/changes?after=5&timeout=0"));
    QCOMPARE(r.status, 200);
    const QJsonArray changes = parseJson(r.body).value(QStringLiteral("changes")).toArray();
    QCOMPARE(changes.first().toObject().value(QStringLiteral("operationType")).toString(),
             QStringLiteral("gap"));
    QCOMPARE(changes.first().toObject().value(QStringLiteral("firstAvailable")).toInteger(), 51);
    QCOMPARE(changes.size(), 11);
}

void TestSseServer::unknownIdBeyondHeadGetsGap() {
    startServer();
    submit(5);
    QTRY_COMPARE(m_fx->engine->lastCommittedSeq(), 5);
    SseTestClient client;
    client.open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken, "999");
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 10000);
    QCOMPARE(client.gapCount(), 1);
    const QJsonObject data = parseJson(client.messages.first().data);
    QCOMPARE(data.value(QStringLiteral("firstAvailable")).toInteger(), 1);
    QCOMPARE(client.messages.first().id, QByteArray("5"));
    submit(2);
    QTRY_COMPARE(client.seqs(), (QList<qint64>{6, 7}));
    // A malformed id is a client error, not a gap.
    const HttpResult bad =
        request("GET", QStringLiteral("/v1/subscriptions/orders/events"), {}, {{"Last-Event-ID", "abc"}});
    QCOMPARE(bad.status, 400);
    QVERIFY2(bad.body.contains("Last-Event-ID must be an event id"), bad.body.constData());
    // The ad hoc stream reads it the same way, from the query too.
    const HttpResult badAdhoc = request("GET", QStringLiteral("/v1/streams?lastEventId=-3"));
    QCOMPARE(badAdhoc.status, 400);
    QVERIFY2(badAdhoc.body.contains("not \\\"-3\\\""), badAdhoc.body.constData());
}

void TestSseServer::auth_data() {
    QTest::addColumn<QString>("path");
    QTest::addColumn<QByteArray>("authorization");
    QTest::addColumn<int>("status");
    const QString events = QStringLiteral("/v1/subscriptions/orders/events");
    QTest::newRow("missing") << events << QByteArray() << 401;
    QTest::newRow("wrong header") << events << QByteArray("Bearer nope") << 401;
    QTest::newRow("wrong scheme") << events << QByteArray("Basic ") + kToken << 401;
    QTest::newRow("prefix of token") << events << QByteArray("Bearer ") + kToken.left(10) << 401;
    QTest::newRow("header") << events << QByteArray("Bearer ") + kToken << 200;
    QTest::newRow("query") << events + QStringLiteral("?access_token=") + QString::fromLatin1(kToken)
                           << QByteArray() << 200;
    QTest::newRow("wrong query") << events + QStringLiteral("?access_token=x") << QByteArray() << 401;
    // Without the token, an unknown subscription or path looks like any other.
    QTest::newRow("unknown subscription, no token")
        << QStringLiteral("/v1/subscriptions/nope/events") << QByteArray() << 401;
    QTest::newRow("unknown path, no token") << QStringLiteral("/secret") << QByteArray() << 401;
    QTest::newRow("metrics, no token") << QStringLiteral("/metrics") << QByteArray() << 401;
    QTest::newRow("health, no token") << QStringLiteral("/v1/health") << QByteArray() << 401;
}

void TestSseServer::auth() {
    QFETCH(QString, path);
    QFETCH(QByteArray, authorization);
    QFETCH(int, status);
    startServer();
    QList<QPair<QByteArray, QByteArray>> headers;
    if (!authorization.isEmpty())
        headers.append({"Authorization", authorization});
    SseTestClient client;
    client.open(url(path), {}, {}, headers);
    QTRY_VERIFY_WITH_TIMEOUT(client.status() != 0, 10000);
    QCOMPARE(client.status(), status);
    if (status == 401) {
        QTRY_COMPARE_WITH_TIMEOUT(client.finishedCount, 1, 10000);
        QCOMPARE(client.body, QByteArray("{\"error\":\"unauthorized\"}"));
        QVERIFY(client.messages.isEmpty());
    } else {
        QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 10000);
    }
}

void TestSseServer::corsPreflight_data() {
    QTest::addColumn<QByteArray>("origin");
    QTest::addColumn<int>("status");
    QTest::addColumn<bool>("allowed");
    QTest::newRow("allowed origin") << QByteArray("http://allowed.example") << 204 << true;
    QTest::newRow("other origin") << QByteArray("http://evil.example") << 403 << false;
}

void TestSseServer::corsPreflight() {
    QFETCH(QByteArray, origin);
    QFETCH(int, status);
    QFETCH(bool, allowed);
    startServer();
    // Browsers send the preflight without credentials.
    const HttpResult pre = request("OPTIONS", QStringLiteral("/v1/subscriptions/orders/events"), {},
                                   {{"Origin", origin},
                                    {"Access-Control-Request-Method", "GET"},
                                    {"Access-Control-Request-Headers", "authorization,last-event-id"}},
                                   false);
    QCOMPARE(pre.status, status);
    QCOMPARE(pre.header("Access-Control-Allow-Origin"), allowed ? origin : QByteArray());
    if (allowed) {
        QVERIFY(pre.header("Access-Control-Allow-Headers").contains("Authorization"));
        QVERIFY(pre.header("Access-Control-Allow-Headers").contains("Last-Event-ID"));
        QVERIFY(pre.header("Access-Control-Allow-Methods").contains("GET"));
    }
    const HttpResult get = request("GET", QStringLiteral("/v1/health"), {}, {{"Origin", origin}});
    QCOMPARE(get.status, 200);
    QCOMPARE(get.header("Access-Control-Allow-Origin"), allowed ? origin : QByteArray());
}

void TestSseServer::slowClientIsCutOffOthersUnaffectedAndResumesLosingNothing() {
    SseServer::Options o = defaults();
    o.maxPendingBytes = 512 * 1024;
    startServer(o, true);
    SseTestClient healthy;
    healthy.open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken);
    RawHttpClient slow(m_server->port());
    QVERIFY(slow.connectToServer());
    slow.get("/v1/subscriptions/orders/events", kToken);
    QTRY_COMPARE_WITH_TIMEOUT(healthy.readyCount(), 1, 10000);
    QTRY_VERIFY_WITH_TIMEOUT(slow.received.contains("event: ready"), 10000);
    slow.stopReading();
    // 4 KiB events until the kernel buffers and then the server's 512 KiB cap overflow.
    // One commit at a time: the healthy client drains each before the next.
    const int total = 4000;
    for (int i = 1; i <= total / 50; ++i) {
        submit(50, 4096);
        QTRY_COMPARE_WITH_TIMEOUT(m_fx->engine->lastCommittedSeq(), i * 50, 30000);
        QTRY_COMPARE_WITH_TIMEOUT(healthy.seqs().size(), i * 50, 30000);
    }
    QTRY_VERIFY_WITH_TIMEOUT(m_server->slowDisconnects() >= 1, 30000);
    // The other client got everything, undisturbed.
    QTRY_COMPARE_WITH_TIMEOUT(healthy.seqs().size(), total, 60000);
    QVERIFY(isExactlyAscending(healthy.seqs(), 1, total));
    QVERIFY(healthy.isOpen());
    // The slow one drains what reached it, then resumes from its last complete event.
    slow.resumeReading();
    QTRY_VERIFY_WITH_TIMEOUT(!slow.isConnected(), 30000);
    slow.received += slow.socket().readAll();
    const QList<SseMessage> got = slow.messages();
    QList<qint64> seqs;
    QByteArray lastId;
    for (const SseMessage& m : got) {
        if (!m.id.isEmpty())
            lastId = m.id;
        if (m.event == "insert")
            seqs.append(m.seq());
    }
    QVERIFY(seqs.size() < total);
    QVERIFY(!lastId.isEmpty());
    SseTestClient again;
    again.open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken, lastId);
    QTRY_COMPARE_WITH_TIMEOUT(again.readyCount(), 1, 30000);
    seqs += again.seqs();
    QVERIFY(isExactlyAscending(seqs, 1, total));
    const HttpResult metrics = request("GET", QStringLiteral("/metrics"));
    QVERIFY(metrics.body.contains("tidewatch_sse_slow_disconnects_total 1"));
}

// --- long poll -------------------------------------------------------------------------------

void TestSseServer::longPollLoopSeesEveryChangeExactlyOnce() {
    startServer();
    submit(30);
    QTimer writer;
    int written = 30;
    connect(&writer, &QTimer::timeout, this, [&] {
        if (written >= 600)
            return;
        submit(15);
        submit(5, 16, QStringLiteral("customers")); // interleaved, never routed to "orders"
        written += 15;
    });
    writer.start(5);
    QList<qint64> seen;
    QByteArray next = "0";
    int calls = 0;
    while (seen.size() < 600 && calls < 2000) {
        ++calls;
        const HttpResult r =
            request("GET", QStringLiteral("/v1/subscriptions/orders/changes?after=%1&limit=7&timeout=5")
                               .arg(QString::fromLatin1(next)));
        QCOMPARE(r.status, 200);
        const QJsonObject body = parseJson(r.body);
        for (const QJsonValue& v : body.value(QStringLiteral("changes")).toArray()) {
            const QJsonObject change = v.toObject();
            QCOMPARE(change.value(QStringLiteral("ns")).toObject().value(QStringLiteral("coll")).toString(),
                     QStringLiteral("orders"));
            seen.append(change.value(QStringLiteral("seq")).toInteger());
        }
        QVERIFY(body.value(QStringLiteral("changes")).toArray().size() <= 7);
        next = body.value(QStringLiteral("next")).toString().toLatin1();
        QVERIFY(!next.isEmpty());
    }
    QCOMPARE(seen.size(), 600);
    QVERIFY(std::is_sorted(seen.begin(), seen.end()));
    QCOMPARE(QSet<qint64>(seen.begin(), seen.end()).size(), 600);
}

void TestSseServer::longPollWakesOnCommit() {
    startServer();
    submit(3);
    QTRY_COMPARE(m_fx->engine->lastCommittedSeq(), 3);
    QNetworkRequest req(url(QStringLiteral("/v1/subscriptions/orders/changes?after=3&timeout=60")));
    req.setRawHeader("Authorization", "Bearer " + kToken);
    QNetworkReply* reply = m_nam.get(req);
    QElapsedTimer timer;
    timer.start();
    QTest::qWait(300); // the poll is parked
    QVERIFY(!reply->isFinished());
    submit(2);
    QTRY_VERIFY_WITH_TIMEOUT(reply->isFinished(), 10000);
    QVERIFY(timer.elapsed() < 10000);
    const QJsonObject body = parseJson(reply->readAll());
    QCOMPARE(body.value(QStringLiteral("changes")).toArray().size(), 2);
    QCOMPARE(body.value(QStringLiteral("next")).toString(), QStringLiteral("5"));
    QCOMPARE(body.value(QStringLiteral("hasMore")).toBool(), false);
    reply->deleteLater();
    // A poll that times out returns an empty page with the same position.
    const HttpResult empty =
        request("GET", QStringLiteral("/v1/subscriptions/orders/changes?after=5&timeout=1"));
    QCOMPARE(empty.status, 200);
    QCOMPARE(parseJson(empty.body).value(QStringLiteral("changes")).toArray().size(), 0);
    QCOMPARE(parseJson(empty.body).value(QStringLiteral("next")).toString(), QStringLiteral("5"));
}

// --- subscriptions -------------------------------------------------------------------------------

void TestSseServer::subscriptionCrudAndStreamFromNext() {
    startServer();
    submit(5);
    QTRY_COMPARE(m_fx->engine->lastCommittedSeq(), 5);
    const HttpResult created = request(
        "POST", QStringLiteral("/v1/subscriptions"),
        R"({"name":"big","namespaces":[{"source":"t","ns":"main.orders"}],"filter":{"fullDocument.n":{"$gte":8}}})");
    QCOMPARE(created.status, 201);
    const QJsonObject body = parseJson(created.body);
    const QString id = body.value(QStringLiteral("id")).toString();
    QVERIFY(!id.isEmpty());
    QCOMPARE(body.value(QStringLiteral("next")).toString(), QStringLiteral("5"));
    // Events right after creation are not lost to a client that starts from `next`.
    submit(5); // n = 6 … 10: 8, 9, 10 match
    SseTestClient client;
    client.open(url(QStringLiteral("/v1/subscriptions/%1/events").arg(id)), kToken,
                body.value(QStringLiteral("next")).toString().toLatin1());
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 10000);
    QTRY_COMPARE(client.seqs(), (QList<qint64>{8, 9, 10}));
    submit(1);
    QTRY_COMPARE(client.seqs(), (QList<qint64>{8, 9, 10, 11}));

    const HttpResult list = request("GET", QStringLiteral("/v1/subscriptions"));
    QCOMPARE(list.status, 200);
    QVERIFY(list.body.contains(id.toUtf8()));
    const HttpResult one = request("GET", QStringLiteral("/v1/subscriptions/") + id);
    QCOMPARE(one.status, 200);
    QCOMPARE(parseJson(one.body).value(QStringLiteral("name")).toString(), QStringLiteral("big"));
    QCOMPARE(request("DELETE", QStringLiteral("/v1/subscriptions/") + id).status, 204);
    QTRY_VERIFY_WITH_TIMEOUT(!client.isOpen(), 10000);
    QCOMPARE(request("GET", QStringLiteral("/v1/subscriptions/") + id).status, 404);
    QCOMPARE(request("DELETE", QStringLiteral("/v1/subscriptions/") + id).status, 404);
}

void TestSseServer::adhocStreamFiltersAndIsRemovedWhenClientLeaves() {
    startServer();
    const int before = int(m_fx->engine->subscriptions().size());
    SseTestClient client;
    QUrl u = url(QStringLiteral("/v1/streams"));
    QUrlQuery q;
    q.addQueryItem(QStringLiteral("ns"), QStringLiteral("main.orders"));
    q.addQueryItem(QStringLiteral("filter"), QString::fromUtf8(QUrl::toPercentEncoding(
                                                 QStringLiteral(R"({"fullDocument.n":{"$in":[2,4,6]}})"))));
    u.setQuery(q);
    client.open(u, kToken);
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 10000);
    QCOMPARE(m_fx->engine->subscriptions().size(), before + 1);
    submit(8);
    submit(3, 16, QStringLiteral("customers"));
    QTRY_COMPARE(client.seqs(), (QList<qint64>{2, 4, 6}));
    client.close();
    QTRY_COMPARE_WITH_TIMEOUT(int(m_fx->engine->subscriptions().size()), before, 10000);
    QTRY_COMPARE(m_server->clients().size(), 0);
    // An invalid filter is a 400 that names the path.
    const HttpResult bad = request("GET", QStringLiteral("/v1/streams?ns=main.orders&filter=") +
                                              QString::fromUtf8(QUrl::toPercentEncoding(
                                                  QStringLiteral(R"({"fullDocument.total":{"$in":5}})"))));
    QCOMPARE(bad.status, 400);
    QVERIFY2(bad.body.contains("fullDocument.total"), bad.body.constData());
}

void TestSseServer::keysOnlyProjectionAndCanonicalFormat() {
    startServer();
    SseTestClient keys;
    keys.open(url(QStringLiteral("/v1/subscriptions/orders/events?projection=keys")), kToken);
    SseTestClient canonical;
    canonical.open(url(QStringLiteral("/v1/subscriptions/orders/events?format=canonical")), kToken);
    SseTestClient full;
    full.open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken);
    QTRY_VERIFY_WITH_TIMEOUT(keys.readyCount() == 1 && canonical.readyCount() == 1 && full.readyCount() == 1,
                             10000);
    submit(2);
    QTRY_VERIFY(keys.seqs().size() == 2 && canonical.seqs().size() == 2 && full.seqs().size() == 2);
    const QJsonObject k = parseJson(keys.messages.last().data);
    QVERIFY(!k.contains(QStringLiteral("fullDocument")));
    QVERIFY(k.contains(QStringLiteral("documentKey")));
    QVERIFY(canonical.messages.last().data.contains("$numberInt"));
    QVERIFY(parseJson(full.messages.last().data).contains(QStringLiteral("fullDocument")));
    QCOMPARE(request("GET", QStringLiteral("/v1/subscriptions/orders/events?format=xml")).status, 400);
}

void TestSseServer::shapedSubscriptionReplayLiveAndLongPollAgree() {
    startServer();
    const QByteArray body = R"({"id": "shaped", "namespaces": [{"source": "t", "ns": "main.orders"}],
        "event": "{ns.coll}.{operationType}", "projection": {"documentKey": 1, "fullDocument.n": 1}})";
    const HttpResult created = request("POST", QStringLiteral("/v1/subscriptions"), body);
    QCOMPARE(created.status, 201);
    const QJsonObject sub = parseJson(created.body).value(QStringLiteral("subscription")).toObject();
    QCOMPARE(sub.value(QStringLiteral("event")).toString(), QStringLiteral("{ns.coll}.{operationType}"));
    QCOMPARE(sub.value(QStringLiteral("projection")).toObject().keys(),
             (QStringList{QStringLiteral("documentKey"), QStringLiteral("fullDocument.n")}));
    // Two live clients of one shape, one with another JSON flavour.
    SseTestClient live, second, canonical;
    live.open(url(QStringLiteral("/v1/subscriptions/shaped/events")), kToken, "0");
    second.open(url(QStringLiteral("/v1/subscriptions/shaped/events")), kToken, "0");
    canonical.open(url(QStringLiteral("/v1/subscriptions/shaped/events?format=canonical")), kToken, "0");
    QTRY_VERIFY_WITH_TIMEOUT(
        live.readyCount() == 1 && second.readyCount() == 1 && canonical.readyCount() == 1, 10000);
    submit(5);
    submit(2, 16, QStringLiteral("customers"));
    QTRY_COMPARE_WITH_TIMEOUT(live.seqs(), (QList<qint64>{1, 2, 3, 4, 5}), 20000);
    QTRY_COMPARE_WITH_TIMEOUT(second.seqs().size(), 5, 20000);
    QTRY_COMPARE_WITH_TIMEOUT(canonical.seqs().size(), 5, 20000);
    QList<SseMessage> liveEvents;
    for (const SseMessage& m : std::as_const(live.messages))
        if (m.event != "ready")
            liveEvents.append(m);
    for (const SseMessage& m : std::as_const(liveEvents)) {
        QCOMPARE(m.event, QByteArray("orders.insert"));
        const QJsonObject doc = parseJson(m.data);
        QCOMPARE(doc.keys(), (QStringList{QStringLiteral("documentKey"), QStringLiteral("fullDocument"),
                                          QStringLiteral("seq")}));
        QCOMPARE(doc.value(QStringLiteral("fullDocument")).toObject().keys(),
                 QStringList{QStringLiteral("n")});
        QCOMPARE(m.data, QByteArray(R"({"seq":)" + m.id + R"(,"documentKey":{"_id":)" + m.id +
                                    R"(},"fullDocument":{"n":)" + m.id + "}}"));
    }
    QCOMPARE(canonical.messages.at(1).event, QByteArray("orders.insert"));
    QCOMPARE(parseJson(canonical.messages.at(1).data)
                 .value(QStringLiteral("fullDocument"))
                 .toObject()
                 .value(QStringLiteral("n"))
                 .toObject()
                 .value(QStringLiteral("$numberInt"))
                 .toString(),
             QStringLiteral("1"));

    // Replay renders the frames live clients got, byte for byte.
    SseTestClient replay;
    replay.open(url(QStringLiteral("/v1/subscriptions/shaped/events")), kToken, "0");
    QTRY_COMPARE_WITH_TIMEOUT(replay.readyCount(), 1, 10000);
    QList<SseMessage> replayed;
    for (const SseMessage& m : std::as_const(replay.messages))
        if (m.event != "ready")
            replayed.append(m);
    QCOMPARE(replayed.size(), liveEvents.size());
    for (qsizetype i = 0; i < replayed.size(); ++i) {
        QCOMPARE(replayed[i].id, liveEvents[i].id);
        QCOMPARE(replayed[i].event, liveEvents[i].event);
        QCOMPARE(replayed[i].data, liveEvents[i].data);
        QCOMPARE(second.messages.at(i + 1).data, liveEvents[i].data);
    }

    // The long poll carries the name with the same data.
    const HttpResult poll =
        request("GET", QStringLiteral("/v1/subscriptions/shaped/changes?after=0&timeout=0"));
    QCOMPARE(poll.status, 200);
    QByteArray expected = R"({"changes":[)";
    for (qsizetype i = 0; i < liveEvents.size(); ++i)
        expected +=
            (i ? "," : "") + QByteArray(R"({"event":"orders.insert","data":)") + liveEvents[i].data + '}';
    expected += R"(],"next":"7","hasMore":false})";
    QCOMPARE(poll.body, expected);
    // ?event= and ?projection= on a long poll override the subscription's.
    const HttpResult plain = request(
        "GET", QStringLiteral("/v1/subscriptions/shaped/changes?after=4&timeout=0&projection=full&event="));
    QCOMPARE(plain.status, 200);
    const QJsonArray changes = parseJson(plain.body).value(QStringLiteral("changes")).toArray();
    QCOMPARE(changes.size(), 1);
    QVERIFY(changes.first()
                .toObject()
                .value(QStringLiteral("fullDocument"))
                .toObject()
                .contains(QStringLiteral("pad")));
}

void TestSseServer::adhocStreamShapedByQuery() {
    startServer();
    const QString projection = QString::fromUtf8(
        QUrl::toPercentEncoding(QStringLiteral(R"({"fullDocument.pad": 0, "fullDocument._id": 0})")));
    SseTestClient client;
    client.open(url(QStringLiteral("/v1/streams?ns=main.orders&event=notification_received&projection=") +
                    projection),
                kToken);
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 10000);
    const std::optional<Subscription> adhoc = [&]() -> std::optional<Subscription> {
        for (const Subscription& sub : m_fx->engine->subscriptions())
            if (!sub.persistent)
                return sub;
        return std::nullopt;
    }();
    QVERIFY(adhoc);
    QCOMPARE(adhoc->event.text(), QStringLiteral("notification_received"));
    QCOMPARE(adhoc->fieldProjection.json(), QByteArray(R"({"fullDocument.pad":0,"fullDocument._id":0})"));
    submit(3);
    QTRY_COMPARE_WITH_TIMEOUT(client.seqs().size(), 3, 20000);
    for (const SseMessage& m : std::as_const(client.messages)) {
        if (m.event == "ready")
            continue;
        QCOMPARE(m.event, QByteArray("notification_received"));
        const QJsonObject doc = parseJson(m.data);
        QCOMPARE(doc.value(QStringLiteral("fullDocument")).toObject().keys(),
                 QStringList{QStringLiteral("n")});
        QVERIFY(doc.contains(QStringLiteral("documentKey")));
        QVERIFY(doc.contains(QStringLiteral("wallTime")));
    }
    // Bad shapes are a 400 that names the path or the parameter.
    const auto get = [&](const QString& query) {
        return request("GET", QStringLiteral("/v1/streams?ns=main.orders&") + query);
    };
    HttpResult bad = get(QStringLiteral("projection=") +
                         QString::fromUtf8(QUrl::toPercentEncoding(
                             QStringLiteral(R"({"fullDocument.title": 1, "fullDocument.password": 0})"))));
    QCOMPARE(bad.status, 400);
    QVERIFY2(bad.body.contains("Cannot do exclusion on field fullDocument.password in inclusion projection"),
             bad.body.constData());
    bad = get(QStringLiteral("projection=half"));
    QCOMPARE(bad.status, 400);
    QVERIFY2(bad.body.contains("projection must be"), bad.body.constData());
    bad = get(QStringLiteral("event=%7Bns.coll"));
    QCOMPARE(bad.status, 400);
    QVERIFY2(bad.body.contains("event: unclosed {"), bad.body.constData());
    bad = request("GET", QStringLiteral("/v1/subscriptions/orders/events?event=%7Bnope%7D"));
    QCOMPARE(bad.status, 400);
    QVERIFY2(bad.body.contains("no field nope"), bad.body.constData());
}

// --- hostile input ---------------------------------------------------------------------------

void TestSseServer::hostileRequestsGetClearErrors_data() {
    QTest::addColumn<QByteArray>("method");
    QTest::addColumn<QString>("path");
    QTest::addColumn<QByteArray>("body");
    QTest::addColumn<int>("status");
    QTest::addColumn<QByteArray>("mentions");
    QTest::newRow("malformed JSON") << QByteArray("POST") << QStringLiteral("/v1/subscriptions")
                                    << QByteArray("{\"namespaces\": [") << 400 << QByteArray("JSON");
    QTest::newRow("not an object") << QByteArray("POST") << QStringLiteral("/v1/subscriptions")
                                   << QByteArray("[1,2]") << 400 << QByteArray("object");
    QTest::newRow("invalid filter") << QByteArray("POST") << QStringLiteral("/v1/subscriptions")
                                    << QByteArray(R"({"filter":{"fullDocument.total":{"$in":5}}})") << 400
                                    << QByteArray("fullDocument.total");
    QTest::newRow("invalid projection")
        << QByteArray("POST") << QStringLiteral("/v1/subscriptions")
        << QByteArray(R"({"projection":{"fullDocument.a":1,"fullDocument.a.b":1}})") << 400
        << QByteArray("Path collision at fullDocument.a.b");
    QTest::newRow("invalid projection value")
        << QByteArray("POST") << QStringLiteral("/v1/subscriptions")
        << QByteArray(R"({"projection":{"fullDocument.a":{"$slice":2}}})") << 400
        << QByteArray("fullDocument.a.$slice");
    QTest::newRow("invalid event name")
        << QByteArray("POST") << QStringLiteral("/v1/subscriptions")
        << QByteArray(R"({"event":"{ns.coll}.{}"})") << 400 << QByteArray("empty field {}");
    QTest::newRow("unknown subscription events")
        << QByteArray("GET") << QStringLiteral("/v1/subscriptions/nope/events") << QByteArray() << 404
        << QByteArray("nope");
    QTest::newRow("unknown subscription changes")
        << QByteArray("GET") << QStringLiteral("/v1/subscriptions/nope/changes") << QByteArray() << 404
        << QByteArray("nope");
    QTest::newRow("bad after") << QByteArray("GET")
                               << QStringLiteral("/v1/subscriptions/orders/changes?after=x") << QByteArray()
                               << 400 << QByteArray("after");
    QTest::newRow("bad limit") << QByteArray("GET")
                               << QStringLiteral("/v1/subscriptions/orders/changes?limit=0") << QByteArray()
                               << 400 << QByteArray("limit");
    QTest::newRow("unknown path") << QByteArray("GET") << QStringLiteral("/v2/whatever") << QByteArray()
                                  << 404 << QByteArray("no such endpoint");
    QTest::newRow("wrong method") << QByteArray("PUT") << QStringLiteral("/v1/subscriptions/orders")
                                  << QByteArray("{}") << 405 << QByteArray("GET, DELETE");
}

void TestSseServer::hostileRequestsGetClearErrors() {
    QFETCH(QByteArray, method);
    QFETCH(QString, path);
    QFETCH(QByteArray, body);
    QFETCH(int, status);
    QFETCH(QByteArray, mentions);
    startServer();
    SseTestClient bystander;
    bystander.open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(bystander.readyCount(), 1, 10000);
    const HttpResult r = request(method, path, body);
    QCOMPARE(r.status, status);
    QVERIFY2(r.body.contains(mentions), r.body.constData());
    submit(3);
    QTRY_COMPARE(bystander.seqs(), (QList<qint64>{1, 2, 3}));
}

void TestSseServer::oversizedHeadersAndBodiesAreRefused() {
    SseServer::Options o = defaults();
    o.maxHeaderBytes = 8 * 1024;
    o.maxBodyBytes = 64 * 1024;
    startServer(o, true);
    SseTestClient bystander;
    bystander.open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(bystander.readyCount(), 1, 10000);

    RawHttpClient headers(m_server->port());
    QVERIFY(headers.connectToServer());
    headers.send("GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Junk: " + QByteArray(20000, 'a'));
    QTRY_VERIFY_WITH_TIMEOUT(!headers.isConnected(), 10000);
    QVERIFY2(headers.received.isEmpty() || headers.status() == 431, headers.received.left(80).constData());

    RawHttpClient body(m_server->port());
    QVERIFY(body.connectToServer());
    body.send("POST /v1/subscriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken +
              "\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n" +
              QByteArray(200000, ' '));
    QTRY_VERIFY_WITH_TIMEOUT(!body.isConnected(), 10000);
    QVERIFY2(body.received.isEmpty() || body.status() == 413, body.received.left(80).constData());

    // Through QNetworkAccessManager too.
    const HttpResult big = request("POST", QStringLiteral("/v1/subscriptions"), QByteArray(200000, ' '));
    QVERIFY(big.status == 413 || big.status == 0);

    submit(2);
    QTRY_COMPARE(bystander.seqs(), (QList<qint64>{1, 2}));
    QCOMPARE(request("GET", QStringLiteral("/v1/health")).status, 200);
    const HttpResult metrics = request("GET", QStringLiteral("/metrics"));
    QVERIFY(metrics.body.contains("tidewatch_http_rejected_total 3") ||
            metrics.body.contains("tidewatch_http_rejected_total 2"));
}

void TestSseServer::clientThatNeverFinishesHeadersTimesOut() {
    SseServer::Options o = defaults();
    o.requestTimeoutMs = 1000;
    startServer(o, true);
    SseTestClient bystander;
    bystander.open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(bystander.readyCount(), 1, 10000);
    RawHttpClient silent(m_server->port());
    QVERIFY(silent.connectToServer());
    RawHttpClient partial(m_server->port());
    QVERIFY(partial.connectToServer());
    partial.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n");
    QElapsedTimer timer;
    timer.start();
    QTRY_VERIFY_WITH_TIMEOUT(!silent.isConnected() && !partial.isConnected(), 15000);
    QVERIFY(timer.elapsed() >= 500);
    // The stream, a long-lived response, is exempt from the request timeout.
    QTest::qWait(1500);
    QVERIFY(bystander.isOpen());
    submit(1);
    QTRY_COMPARE(bystander.seqs(), (QList<qint64>{1}));
}

void TestSseServer::rapidConnectDisconnectLeavesOthersUnharmed() {
    startServer();
    SseTestClient bystander;
    bystander.open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(bystander.readyCount(), 1, 10000);
    QTimer writer;
    int written = 0;
    connect(&writer, &QTimer::timeout, this, [&] {
        if (written < 500) {
            submit(10);
            written += 10;
        }
    });
    writer.start(10);
    for (int i = 0; i < 1000; ++i) {
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, m_server->port());
        if (i % 3 == 1 && s.waitForConnected(2000))
            s.write("GET /v1/subscriptions/orders/events HTTP/1.1\r\nAuthorization: Bearer " + kToken +
                    "\r\n\r\n");
        if (i % 3 == 2 && s.waitForConnected(2000))
            s.write("GET /v1/hea");
        s.flush();
        s.abort();
        if (i % 50 == 0)
            QCoreApplication::processEvents();
    }
    QTRY_COMPARE_WITH_TIMEOUT(written, 500, 30000);
    QTRY_COMPARE_WITH_TIMEOUT(bystander.seqs().size(), 500, 30000);
    QVERIFY(isExactlyAscending(bystander.seqs(), 1, 500));
    QCOMPARE(request("GET", QStringLiteral("/v1/health")).status, 200);
    QTRY_COMPARE_WITH_TIMEOUT(m_server->clients().size(), 1, 10000);
    QCOMPARE(m_fx->engine->lastCommittedSeq(), 500);
}

// --- lifecycle -----------------------------------------------------------------------------------

void TestSseServer::stopStartWhileClientsConnectedTheyResume() {
    startServer();
    const quint16 port = m_server->port();
    QList<std::shared_ptr<SseTestClient>> clients;
    for (int i = 0; i < 3; ++i) {
        auto c = std::make_shared<SseTestClient>();
        // As EventSource does: reconnect with Last-Event-ID after a drop.
        connect(c.get(), &SseTestClient::finished, this,
                [c = c.get()] { QTimer::singleShot(200, c, [c] { c->reconnect(); }); });
        c->open(url(QStringLiteral("/v1/subscriptions/orders/events")), kToken);
        clients.append(c);
    }
    for (const auto& c : clients)
        QTRY_COMPARE_WITH_TIMEOUT(c->readyCount(), 1, 10000);
    submit(40);
    for (const auto& c : clients)
        QTRY_COMPARE(c->seqs().size(), 40);
    QSignalSpy stopped(m_server.get(), &SseServer::stopped);
    m_server->stop();
    QCOMPARE(stopped.size(), 1);
    QVERIFY(!m_server->isRunning());
    submit(25); // committed while nobody listens
    QTRY_COMPARE(m_fx->engine->lastCommittedSeq(), 65);
    SseServer::Options o = defaults();
    o.port = port;
    QString error;
    QVERIFY2(m_server->start(o, &error), qPrintable(error));
    submit(10);
    for (const auto& c : clients) {
        QTRY_VERIFY_WITH_TIMEOUT(c->seqs().size() >= 75, 30000);
        QVERIFY(isExactlyAscending(c->seqs(), 1, 75));
        QVERIFY(c->readyCount() >= 2);
    }
}

void TestSseServer::curlStreamsAndResumesWithLastEventId() {
    startServer();
    submit(10);
    QTRY_COMPARE(m_fx->engine->lastCommittedSeq(), 10);
    const QString events = url(QStringLiteral("/v1/subscriptions/orders/events")).toString();
    QProcess curl;
    curl.start(QStringLiteral("curl"),
               {QStringLiteral("-N"), QStringLiteral("-s"), QStringLiteral("-H"),
                QStringLiteral("Authorization: Bearer ") + QString::fromLatin1(kToken), QStringLiteral("-H"),
                QStringLiteral("Last-Event-ID: 4"), events});
    QVERIFY(curl.waitForStarted());
    QByteArray out;
    QTRY_VERIFY_WITH_TIMEOUT((out += curl.readAllStandardOutput()).contains("event: ready"), 15000);
    submit(5);
    QTRY_VERIFY_WITH_TIMEOUT((out += curl.readAllStandardOutput()).contains("id: 15\n"), 15000);
    curl.kill();
    curl.waitForFinished();
    SseParser parser;
    QList<qint64> seqs;
    for (const SseMessage& m : parser.feed(out))
        if (m.event == "insert")
            seqs.append(m.seq());
    QVERIFY(isExactlyAscending(seqs, 5, 15));
    QCOMPARE(parser.retry, QByteArray("2000"));
    // Written while curl is away; the resumed curl (query parameters this time) gets
    // exactly the rest.
    submit(5);
    QProcess again;
    again.start(QStringLiteral("curl"),
                {QStringLiteral("-N"), QStringLiteral("-s"),
                 events + QStringLiteral("?lastEventId=15&access_token=") + QString::fromLatin1(kToken)});
    QVERIFY(again.waitForStarted());
    QByteArray out2;
    QTRY_VERIFY_WITH_TIMEOUT((out2 += again.readAllStandardOutput()).contains("event: ready"), 15000);
    again.kill();
    again.waitForFinished();
    SseParser parser2;
    QList<qint64> rest;
    for (const SseMessage& m : parser2.feed(out2))
        if (m.event == "insert")
            rest.append(m.seq());
    QVERIFY(isExactlyAscending(rest, 16, 20));
}

void TestSseServer::keepAliveCommentsAreSent() {
    SseServer::Options o = defaults();
    o.keepAliveMs = 200;
    o.retryMs = 750;
    startServer(o, true);
    RawHttpClient raw(m_server->port());
    QVERIFY(raw.connectToServer());
    raw.get("/v1/subscriptions/orders/events", kToken);
    QTRY_VERIFY_WITH_TIMEOUT(raw.received.count(": keep-alive\n\n") >= 2, 10000);
    QVERIFY(raw.received.contains("retry: 750\n"));
    QVERIFY(raw.received.contains("Cache-Control: no-cache"));
}

void TestSseServer::healthAndMetricsWithRealSqliteSource() {
    const QString db = m_dir->filePath(QStringLiteral("shop.sqlite"));
    QCOMPARE(
        runSqlite3(db, QStringLiteral("PRAGMA journal_mode=WAL; CREATE TABLE items(id INTEGER PRIMARY KEY, "
                                      "name TEXT);")),
        QString());
    QString error;
    QVERIFY2(m_fx->engine->addSource(QStringLiteral("shop"), QStringLiteral("sqlite:") + db, &error),
             qPrintable(error));
    m_fx->engine->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("items")});
    Subscription sub;
    sub.id = QStringLiteral("items");
    sub.namespaces = {
        SourceNamespace{QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("items")}}};
    m_fx->engine->addSubscription(sub);
    startServer();
    SseTestClient client;
    client.open(url(QStringLiteral("/v1/subscriptions/items/events")), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 10000);
    QTRY_VERIFY_WITH_TIMEOUT(m_fx->engine->sourceStatuses().value(QStringLiteral("shop")).state ==
                                 SourceStatus::State::Watching,
                             20000);
    QTest::qWait(300); // the source's baseline before the write
    QCOMPARE(runSqlite3(db, QStringLiteral("INSERT INTO items(name) VALUES('a'),('b');")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(client.seqs().size(), 2, 20000);

    const HttpResult health = request("GET", QStringLiteral("/v1/health"));
    QCOMPARE(health.status, 200);
    const QJsonObject h = parseJson(health.body);
    QCOMPARE(h.value(QStringLiteral("status")).toString(), QStringLiteral("ok"));
    const QJsonArray sources = h.value(QStringLiteral("sources")).toArray();
    QCOMPARE(sources.size(), 1);
    QCOMPARE(sources[0].toObject().value(QStringLiteral("id")).toString(), QStringLiteral("shop"));
    QCOMPARE(sources[0].toObject().value(QStringLiteral("state")).toString(), QStringLiteral("watching"));

    const HttpResult metrics = request("GET", QStringLiteral("/metrics"));
    QCOMPARE(metrics.status, 200);
    QVERIFY(metrics.header("Content-Type").startsWith("text/plain"));
    for (const char* name : {"tidewatch_events_committed_total 2", "tidewatch_events_sent_total 2",
                             "tidewatch_sse_clients 1", "tidewatch_sse_slow_disconnects_total 0",
                             "tidewatch_sse_client_lag{client=", "tidewatch_journal_bytes "})
        QVERIFY2(metrics.body.contains(name), name);
    QCOMPARE(m_server->clients().size(), 1);
    QCOMPARE(m_server->clients().first().subscriptionId, QStringLiteral("items"));
    QCOMPARE(m_server->clients().first().lastSentSeq, 2);
}

void TestSseServer::refusesNonLoopbackWithoutTokenAndPortInUse() {
    SseServer open(m_fx->engine.get());
    SseServer::Options o;
    o.address = QHostAddress::AnyIPv4;
    QString error;
    QVERIFY(!open.start(o, &error));
    QVERIFY2(error.contains(QLatin1String("token")), qPrintable(error));
    startServer();
    SseServer second(m_fx->engine.get());
    SseServer::Options same = defaults();
    same.port = m_server->port();
    QVERIFY(!second.start(same, &error));
    QVERIFY2(error.contains(QLatin1String("in use")), qPrintable(error));
    QVERIFY(
        m_server->curlCommand(QStringLiteral("orders"))
            .startsWith(QStringLiteral("curl -N -H 'Authorization: Bearer ") + QString::fromLatin1(kToken)));
    QVERIFY(m_server->curlCommand(QStringLiteral("orders"))
                .endsWith(QStringLiteral(":%1/v1/subscriptions/orders/events").arg(m_server->port())));
    // Where the token comes from is the application layer's: tst_appsession.
}

void TestSseServer::headlessSseServesTheCommandLineSubscription() {
    // The real binary, as a user runs it: --sse 0 picks a port and logs it.
    const QString db = m_dir->filePath(QStringLiteral("h.sqlite"));
    QCOMPARE(runSqlite3(db, QStringLiteral(
                                "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);")),
             QString());
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("TIDEWATCH_TOKEN"), QStringLiteral("headless-token"));
    p.setProcessEnvironment(env);
    p.start(QStringLiteral(TIDEWATCH_BINARY),
            {QStringLiteral("--headless"), QStringLiteral("--source"), QStringLiteral("sqlite:") + db,
             QStringLiteral("--watch"), QStringLiteral("t"), QStringLiteral("--journal"),
             m_dir->filePath(QStringLiteral("hj.sqlite")), QStringLiteral("--sse"), QStringLiteral("0")});
    QVERIFY(p.waitForStarted());
    QByteArray log;
    QTRY_VERIFY_WITH_TIMEOUT((log += p.readAllStandardError()).contains("TIDEWATCH_TOKEN"), 20000);
    const QRegularExpression re(QStringLiteral("listening on (http://127\\.0\\.0\\.1:(\\d+))"));
    const auto m = re.match(QString::fromUtf8(log));
    QVERIFY2(m.hasMatch(), log.constData());
    QVERIFY(m.captured(2).toInt() > 0);
    SseTestClient client;
    client.open(QUrl(m.captured(1) + QStringLiteral("/v1/subscriptions/headless/events")), "headless-token");
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 10000);
    QTest::qWait(300);
    QCOMPARE(runSqlite3(db, QStringLiteral("INSERT INTO t(v) VALUES('x');")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(client.seqs().size(), 1, 20000);
    p.terminate();
    QVERIFY(p.waitForFinished(20000));
    QCOMPARE(p.exitCode(), 0);
}

void TestSseServer::sourcesEndpointsWithoutAControlAre501() {
    startServer();
    for (const auto& [method, path] : {std::pair<QByteArray, QString>{"GET", QStringLiteral("/v1/sources")},
                                       {"DELETE", QStringLiteral("/v1/sources/shop")},
                                       {"PUT", QStringLiteral("/v1/sources/shop/watches/main.orders")}}) {
        const HttpResult r = request(method, path);
        QCOMPARE(r.status, 501);
        QVERIFY2(parseJson(r.body)
                     .value(QStringLiteral("error"))
                     .toString()
                     .contains(QLatin1String("application")),
                 r.body.constData());
    }
    QCOMPARE(request("GET", QStringLiteral("/v1/sources/shop/nothing")).status, 404);
}

void TestSseServer::unwatchedNamespacesAreRefusedWhenTheServerKnowsItsWatches() {
    const QString db = m_dir->filePath(QStringLiteral("shop.sqlite"));
    QCOMPARE(
        runSqlite3(db, QStringLiteral("PRAGMA journal_mode=WAL; CREATE TABLE items(id INTEGER PRIMARY KEY); "
                                      "CREATE TABLE other(id INTEGER PRIMARY KEY);")),
        QString());
    QString error;
    QVERIFY2(m_fx->engine->addSource(QStringLiteral("shop"), QStringLiteral("sqlite:") + db, &error),
             qPrintable(error));
    const SourceNamespace items{QStringLiteral("shop"),
                                Namespace{QStringLiteral("main"), QStringLiteral("items")}};
    const SourceNamespace other{QStringLiteral("shop"),
                                Namespace{QStringLiteral("main"), QStringLiteral("other")}};
    m_fx->engine->watch(items.sourceId, items.ns);
    QTRY_COMPARE_WITH_TIMEOUT(m_fx->engine->watchedScopes(), QList<SourceNamespace>{items}, 10000);
    SseServer::Options options = defaults();
    options.refuseUnwatched = true;
    startServer(options, true);

    HttpResult r = request("GET", QStringLiteral("/v1/streams?source=shop&ns=main.other"));
    QCOMPARE(r.status, 404);
    QJsonObject body = parseJson(r.body);
    QVERIFY2(body.value(QStringLiteral("error")).toString().contains(QLatin1String("shop/main.other")),
             r.body.constData());
    QCOMPARE(body.value(QStringLiteral("watched")).toArray(),
             (QJsonArray{QJsonObject{{QStringLiteral("source"), QStringLiteral("shop")},
                                     {QStringLiteral("ns"), QStringLiteral("main.items")}}}));
    QCOMPARE(body.value(QStringLiteral("unwatched")).toArray().size(), 1);

    r = request(
        "POST", QStringLiteral("/v1/subscriptions"),
        R"({"namespaces": [{"source": "shop", "ns": "main.items"}, {"source": "shop", "ns": "main.other"}]})");
    QCOMPARE(r.status, 404);
    r = request("POST", QStringLiteral("/v1/subscriptions"), R"({"namespaces": [{"ns": "main.items"}]})");
    QCOMPARE(r.status, 201); // any source: shop's watch covers it

    Subscription sub;
    sub.id = QStringLiteral("other");
    sub.namespaces = {other};
    m_fx->engine->addSubscription(sub);
    QCOMPARE(request("GET", QStringLiteral("/v1/subscriptions/other/changes")).status, 404);
    QCOMPARE(request("GET", QStringLiteral("/v1/subscriptions/other/events")).status, 404);

    // What is watched streams; once unwatched, it is refused too.
    SseTestClient client;
    client.open(url(QStringLiteral("/v1/streams?source=shop&ns=main.items")), kToken);
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 10000);
    QCOMPARE(client.status(), 200);
    m_fx->engine->unwatch(items.sourceId, items.ns);
    QTRY_VERIFY_WITH_TIMEOUT(m_fx->engine->watchedScopes().isEmpty(), 10000);
    QCOMPARE(request("GET", QStringLiteral("/v1/streams?source=shop&ns=main.items")).status, 404);
}

QTEST_GUILESS_MAIN(TestSseServer)
#include "tst_sseserver.moc"

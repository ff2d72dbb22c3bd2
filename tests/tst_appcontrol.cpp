// Run-time control of sources and watches over real HTTP: an application session with
// its SSE server, a real SQLite file written by the sqlite3 program (another process),
// the journal and the workspace in a temporary folder.
#include "ControlRequest.h"
#include "TestUtil.h"

#include "AppSession.h"
#include "engine/Engine.h"
#include "http/SseServer.h"
#include "SseTestClient.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

using namespace tw;
using namespace tw::test;

class TestAppControl : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void sourcesAreAddedListedAndRemoved();
    void badSourceRequestsAreRefused_data();
    void badSourceRequestsAreRefused();
    void namespacesListTablesAndWhetherWatched();
    void watchStartedAtRunTimeIsLiveAndCarriesAnotherProcessWrites();
    void watchOfWhatTheSourceDoesNotHaveIs404();
    void badWatchOptionsAre400();
    void unwatchStopsTheWatchAndStreamsForItAreRefused();
    void subscriptionAndLongPollForUnwatchedNamespacesAre404();
    void watchesMadeInTheSessionShowOverHttp();
    void sourcesAndWatchesPersistAcrossARestart();

private:
    QString db() const { return m_dir->filePath(QStringLiteral("shop.sqlite")); }
    QString journal() const { return m_dir->filePath(QStringLiteral("journal.sqlite")); }
    QString workspaceFile() const { return m_dir->filePath(QStringLiteral("workspace.json")); }
    // A started session serving HTTP on a free port; null on failure.
    std::unique_ptr<AppSession> startSession();
    HttpResult request(const QByteArray& method, const QString& path, const QJsonObject& body = {},
                       bool withBody = false);
    HttpResult addShop(const QJsonObject& options = {});
    bool committedInOrders(int id) const;

    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<QNetworkAccessManager> m_nam;
    QUrl m_base;
    ChangeEventList m_events;
};

void TestAppControl::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    qputenv("TIDEWATCH_DATA_DIR", m_dir->filePath(QStringLiteral("data")).toLocal8Bit());
    qputenv("TIDEWATCH_TOKEN", "control-token");
    m_nam = std::make_unique<QNetworkAccessManager>();
    m_events.clear();
    QCOMPARE(
        runSqlite3(db(), QStringLiteral("PRAGMA journal_mode=WAL; "
                                        "CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT); "
                                        "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT); "
                                        "CREATE VIEW paid AS SELECT * FROM orders WHERE status = 'paid';")),
        QString());
}

void TestAppControl::cleanup() {
    m_nam.reset();
    qunsetenv("TIDEWATCH_TOKEN");
    m_dir.reset();
}

std::unique_ptr<AppSession> TestAppControl::startSession() {
    AppSession::Options options;
    options.journalPath = journal();
    auto session = std::make_unique<AppSession>(options);
    QString error;
    if (!session->start(&error) || !session->startSse(QStringLiteral("127.0.0.1"), 0, &error)) {
        qWarning("%s", qPrintable(error));
        return nullptr;
    }
    connect(session.get(), &AppSession::committed, this,
            [this](const CommittedBatch& batch) { m_events.append(batch.events); });
    m_base = session->sseServer()->baseUrl();
    return session;
}

HttpResult TestAppControl::request(const QByteArray& method, const QString& path, const QJsonObject& body,
                                   bool withBody) {
    return controlRequest(*m_nam, m_base, "control-token", method, path, body, withBody);
}

HttpResult TestAppControl::addShop(const QJsonObject& options) {
    QJsonObject body{{QStringLiteral("id"), QStringLiteral("shop")},
                     {QStringLiteral("uri"), QStringLiteral("sqlite:") + db()}};
    if (!options.isEmpty())
        body.insert(QStringLiteral("options"), options);
    return request("POST", QStringLiteral("/v1/sources"), body, true);
}

bool TestAppControl::committedInOrders(int id) const {
    for (const ChangeEvent& e : m_events)
        if (e.ns().coll == QLatin1String("orders") &&
            e.toJson().contains(QByteArray("\"id\":") + QByteArray::number(id)))
            return true;
    return false;
}

void TestAppControl::sourcesAreAddedListedAndRemoved() {
    auto session = startSession();
    QVERIFY(session);
    HttpResult r = request("GET", QStringLiteral("/v1/sources"));
    QCOMPARE(r.status, 200);
    QCOMPARE(r.body.value(QStringLiteral("sources")).toArray().size(), 0);

    r = addShop();
    QCOMPARE(r.status, 201);
    const QJsonObject added = r.body.value(QStringLiteral("source")).toObject();
    QCOMPARE(added.value(QStringLiteral("id")).toString(), QStringLiteral("shop"));
    QCOMPARE(added.value(QStringLiteral("uri")).toString(), QStringLiteral("sqlite:") + db());
    QVERIFY(session->connection(QStringLiteral("shop"))); // as if added in the window
    QVERIFY(session->engine()->sourceIds().contains(QStringLiteral("shop")));

    r = addShop();
    QCOMPARE(r.status, 409);
    QVERIFY2(r.body.value(QStringLiteral("error")).toString().contains(QLatin1String("shop")),
             r.raw.constData());

    r = request("GET", QStringLiteral("/v1/sources"));
    QCOMPARE(r.status, 200);
    const QJsonArray sources = r.body.value(QStringLiteral("sources")).toArray();
    QCOMPARE(sources.size(), 1);
    const QJsonObject shop = sources.first().toObject();
    QCOMPARE(shop.value(QStringLiteral("id")).toString(), QStringLiteral("shop"));
    QVERIFY(shop.contains(QStringLiteral("state")));
    QVERIFY(shop.contains(QStringLiteral("reason")));
    QVERIFY(shop.value(QStringLiteral("watches")).isArray());

    QSignalSpy removed(session.get(), &AppSession::connectionRemoved);
    r = request("DELETE", QStringLiteral("/v1/sources/shop"));
    QCOMPARE(r.status, 204);
    QCOMPARE(removed.size(), 1); // answered once the source has stopped
    QVERIFY(!session->engine()->sourceIds().contains(QStringLiteral("shop")));
    r = request("GET", QStringLiteral("/v1/sources"));
    QCOMPARE(r.body.value(QStringLiteral("sources")).toArray().size(), 0);
    r = request("DELETE", QStringLiteral("/v1/sources/shop"));
    QCOMPARE(r.status, 404);

    // The id is free again.
    QCOMPARE(addShop().status, 201);
}

void TestAppControl::badSourceRequestsAreRefused_data() {
    QTest::addColumn<QByteArray>("body");
    QTest::addColumn<QString>("named"); // what the error must name
    QTest::newRow("no id") << QByteArray(R"({"uri": "sqlite:/tmp/x.db"})") << QStringLiteral("id");
    QTest::newRow("id with a slash") << QByteArray(R"({"id": "a/b", "uri": "sqlite:/tmp/x.db"})")
                                     << QStringLiteral("id");
    QTest::newRow("no uri") << QByteArray(R"({"id": "x"})") << QStringLiteral("uri");
    QTest::newRow("unknown scheme") << QByteArray(R"({"id": "x", "uri": "ftp://host/db"})")
                                    << QStringLiteral("ftp");
    QTest::newRow("missing file") << QByteArray(R"({"id": "x", "uri": "sqlite:/nonexistent/dir/x.db"})")
                                  << QStringLiteral("/nonexistent/dir/x.db");
    QTest::newRow("unknown field") << QByteArray(R"({"id": "x", "uri": "sqlite:/tmp/x.db", "colour": 1})")
                                   << QStringLiteral("colour");
    QTest::newRow("unknown option")
        << QByteArray(R"({"id": "x", "uri": "sqlite:/tmp/x.db", "options": {"fast": true}})")
        << QStringLiteral("fast");
    QTest::newRow("not JSON") << QByteArray("{id") << QStringLiteral("JSON");
}

void TestAppControl::badSourceRequestsAreRefused() {
    QFETCH(QByteArray, body);
    QFETCH(QString, named);
    auto session = startSession();
    QVERIFY(session);
    QUrl url = m_base;
    url.setPath(QStringLiteral("/v1/sources"));
    QNetworkRequest r(url);
    r.setRawHeader("Authorization", "Bearer control-token");
    r.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/json"));
    QNetworkReply* reply = m_nam->post(r, body);
    QTRY_VERIFY_WITH_TIMEOUT(reply->isFinished(), 20000);
    QCOMPARE(reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt(), 400);
    const QByteArray raw = reply->readAll();
    reply->deleteLater();
    QVERIFY2(parseJson(raw).value(QStringLiteral("error")).toString().contains(named), raw.constData());
    QVERIFY(session->connections().isEmpty());
}

void TestAppControl::namespacesListTablesAndWhetherWatched() {
    auto session = startSession();
    QVERIFY(session);
    QCOMPARE(addShop().status, 201);
    QCOMPARE(request("PUT", QStringLiteral("/v1/sources/shop/watches/main.customers")).status, 201);
    const HttpResult r = request("GET", QStringLiteral("/v1/sources/shop/namespaces"));
    QCOMPARE(r.status, 200);
    QHash<QString, QPair<QString, bool>> seen;
    for (const QJsonValue& v : r.body.value(QStringLiteral("namespaces")).toArray()) {
        const QJsonObject o = v.toObject();
        seen.insert(o.value(QStringLiteral("ns")).toString(), {o.value(QStringLiteral("kind")).toString(),
                                                               o.value(QStringLiteral("watched")).toBool()});
    }
    QCOMPARE(seen.size(), 3);
    QCOMPARE(seen.value(QStringLiteral("main.orders")), qMakePair(QStringLiteral("table"), false));
    QCOMPARE(seen.value(QStringLiteral("main.customers")), qMakePair(QStringLiteral("table"), true));
    QCOMPARE(seen.value(QStringLiteral("main.paid")), qMakePair(QStringLiteral("view"), false));
    QCOMPARE(request("GET", QStringLiteral("/v1/sources/nope/namespaces")).status, 404);
}

void TestAppControl::watchStartedAtRunTimeIsLiveAndCarriesAnotherProcessWrites() {
    auto session = startSession();
    QVERIFY(session);
    QCOMPARE(addShop().status, 201);
    QSignalSpy ready(session.get(), &AppSession::watchReady);
    HttpResult r = request("PUT", QStringLiteral("/v1/sources/shop/watches/main.orders"));
    QCOMPARE(r.status, 201);
    QCOMPARE(ready.size(), 1); // the answer came once the source reported the watch live
    QCOMPARE(r.body.value(QStringLiteral("source")).toString(), QStringLiteral("shop"));
    QCOMPARE(r.body.value(QStringLiteral("ns")).toString(), QStringLiteral("main.orders"));
    QCOMPARE(r.body.value(QStringLiteral("live")).toBool(), true);
    QVERIFY(QDateTime::fromString(r.body.value(QStringLiteral("liveAt")).toString(), Qt::ISODateWithMs)
                .isValid());
    QVERIFY(r.body.contains(QStringLiteral("seq")));
    QVERIFY(session->connection(QStringLiteral("shop"))
                ->watches.contains(Namespace{QStringLiteral("main"), QStringLiteral("orders")}));

    // Asked again: already watched, 200, the same moment.
    const HttpResult again = request("PUT", QStringLiteral("/v1/sources/shop/watches/orders"));
    QCOMPARE(again.status, 200);
    QCOMPARE(again.body.value(QStringLiteral("liveAt")), r.body.value(QStringLiteral("liveAt")));

    // A stream for it opens and carries what another process writes.
    SseTestClient client;
    QUrl url = m_base;
    url.setPath(QStringLiteral("/v1/streams"));
    url.setQuery(QStringLiteral("source=shop&ns=main.orders"));
    client.open(url, "control-token");
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 20000);
    QCOMPARE(client.status(), 200);
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders VALUES (41, 'new');")), QString());
    QTRY_VERIFY_WITH_TIMEOUT(committedInOrders(41), 20000);
    QTRY_VERIFY_WITH_TIMEOUT(!client.seqs().isEmpty(), 20000);
    const auto change = std::find_if(client.messages.cbegin(), client.messages.cend(),
                                     [](const SseMessage& m) { return m.seq() > 0; });
    QVERIFY(change != client.messages.cend());
    QVERIFY2(change->data.contains("\"orders\""), change->data.constData());

    r = request("GET", QStringLiteral("/v1/sources"));
    const QJsonArray watches = r.body.value(QStringLiteral("sources"))
                                   .toArray()
                                   .first()
                                   .toObject()
                                   .value(QStringLiteral("watches"))
                                   .toArray();
    QCOMPARE(watches.size(), 1);
    QCOMPARE(watches.first().toObject().value(QStringLiteral("ns")).toString(),
             QStringLiteral("main.orders"));
    QCOMPARE(watches.first().toObject().value(QStringLiteral("live")).toBool(), true);
}

void TestAppControl::watchOfWhatTheSourceDoesNotHaveIs404() {
    auto session = startSession();
    QVERIFY(session);
    QCOMPARE(addShop().status, 201);
    HttpResult r = request("PUT", QStringLiteral("/v1/sources/shop/watches/main.nope"));
    QCOMPARE(r.status, 404);
    QVERIFY2(r.body.value(QStringLiteral("error")).toString().contains(QLatin1String("main.nope")),
             r.raw.constData());
    QVERIFY(r.body.value(QStringLiteral("namespaces")).toArray().contains(QStringLiteral("main.orders")));
    QVERIFY(session->connection(QStringLiteral("shop"))->watches.isEmpty());
    QCOMPARE(request("PUT", QStringLiteral("/v1/sources/nope/watches/main.orders")).status, 404);
    QCOMPARE(request("DELETE", QStringLiteral("/v1/sources/shop/watches/main.orders")).status, 404);
}

void TestAppControl::badWatchOptionsAre400() {
    auto session = startSession();
    QVERIFY(session);
    QCOMPARE(addShop().status, 201);
    HttpResult r = request("PUT", QStringLiteral("/v1/sources/shop/watches/main.orders"),
                           QJsonObject{{QStringLiteral("colour"), QStringLiteral("red")}}, true);
    QCOMPARE(r.status, 400);
    QVERIFY2(r.body.value(QStringLiteral("error")).toString().contains(QLatin1String("colour")),
             r.raw.constData());
    r = request("PUT", QStringLiteral("/v1/sources/shop/watches/main.orders"),
                QJsonObject{{QStringLiteral("fullDocument"), QStringLiteral("sometimes")}}, true);
    QCOMPARE(r.status, 400);
    QVERIFY2(r.body.value(QStringLiteral("error")).toString().contains(QLatin1String("fullDocument")),
             r.raw.constData());
    QVERIFY(session->connection(QStringLiteral("shop"))->watches.isEmpty());
    r = request("PUT", QStringLiteral("/v1/sources/shop/watches/main.orders"),
                QJsonObject{{QStringLiteral("fullDocument"), QStringLiteral("default")}}, true);
    QCOMPARE(r.status, 201);
}

void TestAppControl::unwatchStopsTheWatchAndStreamsForItAreRefused() {
    auto session = startSession();
    QVERIFY(session);
    QCOMPARE(addShop().status, 201);
    QCOMPARE(request("PUT", QStringLiteral("/v1/sources/shop/watches/main.orders")).status, 201);
    QCOMPARE(request("PUT", QStringLiteral("/v1/sources/shop/watches/main.customers")).status, 201);
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders VALUES (1, 'before');")), QString());
    QTRY_VERIFY_WITH_TIMEOUT(committedInOrders(1), 20000);

    QCOMPARE(request("DELETE", QStringLiteral("/v1/sources/shop/watches/main.orders")).status, 204);
    QVERIFY(!session->connection(QStringLiteral("shop"))
                 ->watches.contains(Namespace{QStringLiteral("main"), QStringLiteral("orders")}));
    QTRY_VERIFY_WITH_TIMEOUT(
        !session->engine()->watchedScopes().contains(SourceNamespace{
            QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("orders")}}),
        10000);

    const HttpResult r = request("GET", QStringLiteral("/v1/streams?source=shop&ns=main.orders"));
    QCOMPARE(r.status, 404);
    QVERIFY2(r.body.value(QStringLiteral("error")).toString().contains(QLatin1String("main.orders")),
             r.raw.constData());
    const QJsonArray watched = r.body.value(QStringLiteral("watched")).toArray();
    QCOMPARE(watched.size(), 1);
    QCOMPARE(watched.first().toObject().value(QStringLiteral("ns")).toString(),
             QStringLiteral("main.customers"));
    // The namespace still watched streams.
    SseTestClient client;
    QUrl url = m_base;
    url.setPath(QStringLiteral("/v1/streams"));
    url.setQuery(QStringLiteral("source=shop&ns=main.customers"));
    client.open(url, "control-token");
    QTRY_COMPARE_WITH_TIMEOUT(client.readyCount(), 1, 20000);
    QCOMPARE(client.status(), 200);

    // Events journaled before the unwatch stay; a later write to the table is not read.
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders VALUES (2, 'after'); "
                                             "INSERT INTO customers VALUES (1, 'Ada');")),
             QString());
    // The customers row is read by the same poll that would have read the order.
    QTRY_VERIFY_WITH_TIMEOUT(
        std::any_of(m_events.begin(), m_events.end(),
                    [](const ChangeEvent& e) { return e.ns().coll == QLatin1String("customers"); }),
        20000);
    QVERIFY(committedInOrders(1));
    QVERIFY(!committedInOrders(2));
}

void TestAppControl::subscriptionAndLongPollForUnwatchedNamespacesAre404() {
    auto session = startSession();
    QVERIFY(session);
    QCOMPARE(addShop().status, 201);
    QCOMPARE(request("PUT", QStringLiteral("/v1/sources/shop/watches/main.orders")).status, 201);

    const QJsonObject unwatched{
        {QStringLiteral("namespaces"),
         QJsonArray{QJsonObject{{QStringLiteral("source"), QStringLiteral("shop")},
                                {QStringLiteral("ns"), QStringLiteral("main.customers")}}}}};
    HttpResult r = request("POST", QStringLiteral("/v1/subscriptions"), unwatched, true);
    QCOMPARE(r.status, 404);
    QVERIFY2(r.body.value(QStringLiteral("error")).toString().contains(QLatin1String("main.customers")),
             r.raw.constData());
    QCOMPARE(r.body.value(QStringLiteral("watched")).toArray().size(), 1);

    const QJsonObject watched{
        {QStringLiteral("namespaces"),
         QJsonArray{QJsonObject{{QStringLiteral("source"), QStringLiteral("shop")},
                                {QStringLiteral("ns"), QStringLiteral("main.orders")}}}}};
    r = request("POST", QStringLiteral("/v1/subscriptions"), watched, true);
    QCOMPARE(r.status, 201);

    // A subscription made elsewhere (the window) for what nothing watches.
    Subscription sub;
    sub.id = QStringLiteral("customers");
    sub.namespaces = {SourceNamespace{QStringLiteral("shop"),
                                      Namespace{QStringLiteral("main"), QStringLiteral("customers")}}};
    session->addSubscription(sub);
    QCOMPARE(request("GET", QStringLiteral("/v1/subscriptions/customers/changes?after=0")).status, 404);
    QCOMPARE(request("GET", QStringLiteral("/v1/subscriptions/customers/events")).status, 404);
    // A subscription of everything is never refused: the journal may hold its history.
    QCOMPARE(request("POST", QStringLiteral("/v1/subscriptions"), QJsonObject{}, true).status, 201);
}

void TestAppControl::watchesMadeInTheSessionShowOverHttp() {
    auto session = startSession();
    QVERIFY(session);
    ConnectionSpec spec;
    spec.id = QStringLiteral("shop");
    spec.uri = QStringLiteral("sqlite:") + db();
    QString error;
    QVERIFY2(session->addConnection(spec, &error), qPrintable(error));
    QSignalSpy ready(session.get(), &AppSession::watchReady);
    session->watch(QStringLiteral("shop"), Namespace{QStringLiteral("main"), QStringLiteral("orders")});
    QVERIFY(ready.wait(20000));
    const HttpResult r = request("GET", QStringLiteral("/v1/sources"));
    const QJsonArray watches = r.body.value(QStringLiteral("sources"))
                                   .toArray()
                                   .first()
                                   .toObject()
                                   .value(QStringLiteral("watches"))
                                   .toArray();
    QCOMPARE(watches.size(), 1);
    QCOMPARE(watches.first().toObject().value(QStringLiteral("live")).toBool(), true);
}

void TestAppControl::sourcesAndWatchesPersistAcrossARestart() {
    {
        auto session = startSession();
        QVERIFY(session);
        session->setWorkspacePath(workspaceFile());
        QCOMPARE(addShop().status, 201);
        QCOMPARE(request("PUT", QStringLiteral("/v1/sources/shop/watches/main.orders"),
                         QJsonObject{{QStringLiteral("fullDocument"), QStringLiteral("default")}}, true)
                     .status,
                 201);
        QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders VALUES (1, 'first run');")), QString());
        QTRY_VERIFY_WITH_TIMEOUT(committedInOrders(1), 20000);
        Workspace saved;
        QString error;
        QVERIFY2(Workspace::load(workspaceFile(), &saved, &error), qPrintable(error));
        QCOMPARE(saved.connections.size(), 1);
        QCOMPARE(saved.connections.first().watches,
                 QList<Namespace>{Namespace(QStringLiteral("main"), QStringLiteral("orders"))});
        QCOMPARE(saved.connections.first()
                     .watchOptions.value(QStringLiteral("main.orders"))
                     .value(QStringLiteral("fullDocument"))
                     .toString(),
                 QStringLiteral("default"));
        session->stop();
    }
    // Written while Tidewatch was closed: the restart reports it, resuming from the journal.
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders VALUES (2, 'while closed');")), QString());
    m_events.clear();

    auto session = startSession();
    QVERIFY(session);
    Workspace workspace;
    QString error;
    QVERIFY2(Workspace::load(workspaceFile(), &workspace, &error), qPrintable(error));
    session->setWorkspacePath(workspaceFile());
    session->applyWorkspace(workspace);
    QTRY_VERIFY_WITH_TIMEOUT(committedInOrders(2), 20000);
    QVERIFY(!committedInOrders(1)); // journaled already: not reported again
    QTRY_VERIFY_WITH_TIMEOUT(request("GET", QStringLiteral("/v1/sources"))
                                 .body.value(QStringLiteral("sources"))
                                 .toArray()
                                 .first()
                                 .toObject()
                                 .value(QStringLiteral("watches"))
                                 .toArray()
                                 .first()
                                 .toObject()
                                 .value(QStringLiteral("live"))
                                 .toBool(),
                             20000);

    // Removed over HTTP: gone from the file too.
    QCOMPARE(request("DELETE", QStringLiteral("/v1/sources/shop")).status, 204);
    QVERIFY2(Workspace::load(workspaceFile(), &workspace, &error), qPrintable(error));
    QVERIFY(workspace.connections.isEmpty());
}

QTEST_GUILESS_MAIN(TestAppControl)
#include "tst_appcontrol.moc"

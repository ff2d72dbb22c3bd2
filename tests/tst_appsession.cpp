// The application session without widgets: a real SQLite file written by another
// process, the journal in a temporary data folder, SSE over a real socket.
#include "TestUtil.h"

#include "AppSession.h"
#include "engine/Engine.h"
#include "http/SseServer.h"
#include "SseToken.h"

#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

using namespace tw;
using namespace tw::test;

class TestAppSession : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void watchedTableDeliversCommittedWrites();
    void removedConnectionFreesItsIdAndComesBack();
    void addWhileTheIdIsStillBeingRemovedWaitsForIt();
    void replacedConnectionUsesTheNewUri();
    void failedReplacementPutsTheOldConnectionBack();
    void replacementErrorKnownAtOnceLeavesTheConnection_data();
    void replacementErrorKnownAtOnceLeavesTheConnection();
    void connectionWaitingToComeUpIsInTheWorkspace();
    void secondAddForAnIdWaitingToComeUpIsRefused();
    void demoConnectionRunsItsWriter();
    void sseServesRealHttp();
    void sseRefusesAnAddressThatIsNotOne();
    void tokenFromEnvironmentElseGeneratedOnceAndKept();
    void journalInUseIsReportedAsACode();
    void damagedJournalIsACodeAndCanBeMovedAside();

private:
    QString db() const { return m_dir->filePath(QStringLiteral("shop.sqlite")); }
    QString journal() const { return m_dir->filePath(QStringLiteral("journal.sqlite")); }
    std::unique_ptr<AppSession> startSession();
    ConnectionSpec shop() const;
    // A second SQLite file with an orders table, for replacing the shop's URI; empty
    // when sqlite3 failed.
    QString makeOtherDatabase() const;
    // Events of the session's committed batches, as they arrive.
    void collect(AppSession* session);
    bool waitReady(const QString& id);

    std::unique_ptr<QTemporaryDir> m_dir;
    ChangeEventList m_events;
    QStringList m_ready;
};

void TestAppSession::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    qputenv("TIDEWATCH_DATA_DIR", m_dir->filePath(QStringLiteral("data")).toLocal8Bit());
    qputenv("TIDEWATCH_TOKEN", "session-token");
    m_events.clear();
    m_ready.clear();
    QCOMPARE(runSqlite3(db(), QStringLiteral("PRAGMA journal_mode=WAL; "
                                             "CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT);")),
             QString());
}

void TestAppSession::cleanup() {
    qunsetenv("TIDEWATCH_TOKEN");
    m_dir.reset();
}

std::unique_ptr<AppSession> TestAppSession::startSession() {
    AppSession::Options options;
    options.journalPath = journal();
    auto session = std::make_unique<AppSession>(options);
    QString error;
    if (!session->start(&error)) {
        qWarning("%s", qPrintable(error));
        return nullptr;
    }
    collect(session.get());
    return session;
}

QString TestAppSession::makeOtherDatabase() const {
    const QString other = m_dir->filePath(QStringLiteral("other.sqlite"));
    const QString error =
        runSqlite3(other, QStringLiteral("PRAGMA journal_mode=WAL; "
                                         "CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT);"));
    if (!error.isEmpty()) {
        qWarning("sqlite3: %s", qPrintable(error));
        return {};
    }
    return other;
}

ConnectionSpec TestAppSession::shop() const {
    ConnectionSpec spec;
    spec.id = QStringLiteral("shop");
    spec.uri = QStringLiteral("sqlite:") + db();
    spec.watches = {Namespace{QStringLiteral("main"), QStringLiteral("orders")}};
    return spec;
}

void TestAppSession::collect(AppSession* session) {
    connect(session, &AppSession::committed, this,
            [this](const CommittedBatch& batch) { m_events.append(batch.events); });
    connect(session, &AppSession::watchReady, this,
            [this](const QString& id, const Namespace&) { m_ready.append(id); });
}

bool TestAppSession::waitReady(const QString& id) {
    // A source reports ready once it has read the table; writes after that are seen.
    return QTest::qWaitFor([&] { return m_ready.contains(id); }, 10000);
}

void TestAppSession::watchedTableDeliversCommittedWrites() {
    auto session = startSession();
    QVERIFY(session);
    QSignalSpy added(session.get(), &AppSession::connectionAdded);
    Subscription sub;
    sub.id = QStringLiteral("orders");
    sub.namespaces = {SourceNamespace{QStringLiteral("shop"), shop().watches.first()}};
    session->addSubscription(sub);
    QHash<QString, ChangeEventList> routed;
    connect(session.get(), &AppSession::committed, this, [&routed](const CommittedBatch& batch) {
        for (auto it = batch.bySubscription.cbegin(); it != batch.bySubscription.cend(); ++it)
            routed[it.key()].append(it.value());
    });

    QString error;
    QVERIFY2(session->addConnection(shop(), &error), qPrintable(error));
    QCOMPARE(added.size(), 1);
    QCOMPARE(session->connections().size(), 1);
    QCOMPARE(session->engine()->sourceIds(), QStringList{QStringLiteral("shop")});
    QVERIFY(waitReady(QStringLiteral("shop")));

    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status) VALUES('new');")), QString());
    // Diff mode reports what changed between two looks at the file: two commits inside
    // one 5 ms poll would arrive as one insert of the final row, so wait for the first.
    QTRY_COMPARE_WITH_TIMEOUT(routed.value(QStringLiteral("orders")).size(), 1, 10000);
    QCOMPARE(runSqlite3(db(), QStringLiteral("UPDATE orders SET status='paid' WHERE id=1;")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(routed.value(QStringLiteral("orders")).size(), 2, 10000);
    const ChangeEventList events = routed.value(QStringLiteral("orders"));
    QCOMPARE(events.at(0).operation(), Operation::Insert);
    QCOMPARE(events.at(1).operation(), Operation::Update);
    QCOMPARE(events.at(0).sourceId(), QStringLiteral("shop"));
    QVERIFY(events.at(0).seq() > 0 && events.at(1).seq() > events.at(0).seq());

    // The workspace holds what was set up, without the layout.
    const Workspace w = session->workspace();
    QCOMPARE(w.connections.size(), 1);
    QCOMPARE(w.connections.first().watches, shop().watches);
    QCOMPARE(w.subscriptions.size(), 1);

    // Stopping delivers what the engine committed, then nothing runs.
    session->stop();
    QVERIFY(!session->isRunning());
}

void TestAppSession::removedConnectionFreesItsIdAndComesBack() {
    auto session = startSession();
    QVERIFY(session);
    QString error;
    QVERIFY2(session->addConnection(shop(), &error), qPrintable(error));
    QVERIFY(waitReady(QStringLiteral("shop")));

    QSignalSpy removed(session.get(), &AppSession::connectionRemoved);
    session->removeConnection(QStringLiteral("shop"));
    QVERIFY(session->connections().isEmpty());
    QTRY_COMPARE_WITH_TIMEOUT(removed.size(), 1, 5000);
    QCOMPARE(removed.first().first().toString(), QStringLiteral("shop"));
    // The signal means the id is free: the engine has no such source any more.
    QVERIFY(session->engine()->sourceIds().isEmpty());

    m_ready.clear();
    QVERIFY2(session->addConnection(shop(), &error), qPrintable(error));
    QCOMPARE(session->engine()->sourceIds(), QStringList{QStringLiteral("shop")});
    QVERIFY(waitReady(QStringLiteral("shop")));
    const qsizetype before = m_events.size();
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status) VALUES('again');")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(m_events.size(), before + 1, 10000);
    QCOMPARE(m_events.last().operation(), Operation::Insert);
}

void TestAppSession::addWhileTheIdIsStillBeingRemovedWaitsForIt() {
    auto session = startSession();
    QVERIFY(session);
    QString error;
    QVERIFY2(session->addConnection(shop(), &error), qPrintable(error));
    QSignalSpy removed(session.get(), &AppSession::connectionRemoved);
    QList<QString> added;
    connect(session.get(), &AppSession::connectionAdded, this,
            [&added](const ConnectionSpec& spec) { added.append(spec.id); });

    session->removeConnection(QStringLiteral("shop"));
    // Accepted at once; it comes up when the old source has stopped.
    QVERIFY2(session->addConnection(shop(), &error), qPrintable(error));
    QTRY_COMPARE_WITH_TIMEOUT(added.size(), 1, 5000);
    QCOMPARE(removed.size(), 1); // first the removal, then the new one
    QCOMPARE(session->engine()->sourceIds(), QStringList{QStringLiteral("shop")});
}

void TestAppSession::replacedConnectionUsesTheNewUri() {
    const QString other = makeOtherDatabase();
    QVERIFY(!other.isEmpty());
    auto session = startSession();
    QVERIFY(session);
    QString error;
    QVERIFY2(session->addConnection(shop(), &error), qPrintable(error));
    QVERIFY(waitReady(QStringLiteral("shop")));

    QSignalSpy removed(session.get(), &AppSession::connectionRemoved);
    QSignalSpy failed(session.get(), &AppSession::connectionFailed);
    ConnectionSpec edited = shop();
    edited.uri = QStringLiteral("sqlite:") + other;
    edited.watches.clear(); // the edit keeps the watches the connection had
    m_ready.clear();
    session->replaceConnection(QStringLiteral("shop"), edited);
    QTRY_COMPARE_WITH_TIMEOUT(removed.size(), 1, 5000);
    QVERIFY(waitReady(QStringLiteral("shop")));
    QCOMPARE(failed.size(), 0);
    QCOMPARE(session->connection(QStringLiteral("shop"))->uri, edited.uri);
    QCOMPARE(session->connection(QStringLiteral("shop"))->watches, shop().watches);
    QCOMPARE(session->engine()->sourceUri(QStringLiteral("shop")), edited.uri);

    const qsizetype before = m_events.size();
    QCOMPARE(runSqlite3(other, QStringLiteral("INSERT INTO orders(status) VALUES('elsewhere');")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(m_events.size(), before + 1, 10000);
}

void TestAppSession::failedReplacementPutsTheOldConnectionBack() {
    auto session = startSession();
    QVERIFY(session);
    QString error;
    QVERIFY2(session->addConnection(shop(), &error), qPrintable(error));
    QSignalSpy failed(session.get(), &AppSession::connectionFailed);
    // The file is there when the edit is checked and gone when the old source has
    // stopped: only the bring-up can tell, so the failure comes as a signal.
    const QString vanishing = m_dir->filePath(QStringLiteral("missing.sqlite"));
    QCOMPARE(runSqlite3(vanishing, QStringLiteral("CREATE TABLE orders(id INTEGER PRIMARY KEY);")),
             QString());
    ConnectionSpec edited = shop();
    edited.uri = QStringLiteral("sqlite:") + vanishing;
    QVERIFY2(session->replaceConnection(QStringLiteral("shop"), edited, &error), qPrintable(error));
    // sourceRemoved reaches the session through its event loop, which has not run yet.
    QVERIFY(QFile::remove(vanishing));
    QTRY_COMPARE_WITH_TIMEOUT(failed.size(), 1, 5000);
    QCOMPARE(failed.first().at(0).toString(), QStringLiteral("shop"));
    QVERIFY2(failed.first().at(1).toString().contains(QLatin1String("missing.sqlite")),
             qPrintable(failed.first().at(1).toString()));
    QCOMPARE(session->connection(QStringLiteral("shop"))->uri, shop().uri);
    QCOMPARE(session->engine()->sourceIds(), QStringList{QStringLiteral("shop")});
}

void TestAppSession::replacementErrorKnownAtOnceLeavesTheConnection_data() {
    QTest::addColumn<QString>("id");
    QTest::addColumn<QString>("uri");
    QTest::addColumn<QString>("expected");
    QTest::newRow("missing file") << QStringLiteral("shop") << QStringLiteral("sqlite:MISSING")
                                  << QStringLiteral("No SQLite file at");
    QTest::newRow("bad uri") << QStringLiteral("shop") << QStringLiteral("ftp://user:secret@host/x")
                             << QStringLiteral("Unsupported source URI \"ftp://user:****@host/x\"");
    QTest::newRow("bad mongodb uri") << QStringLiteral("shop") << QStringLiteral("mongodb://")
                                     << QStringLiteral("Cannot use the MongoDB URI");
    QTest::newRow("name taken") << QStringLiteral("other") << QStringLiteral("sqlite:DB")
                                << QStringLiteral("\"other\" exists already");
}

void TestAppSession::replacementErrorKnownAtOnceLeavesTheConnection() {
    // The Edit Connection dialog stays open with the message, as before the session.
    QFETCH(QString, id);
    QFETCH(QString, uri);
    QFETCH(QString, expected);
    uri.replace(QLatin1String("MISSING"), m_dir->filePath(QStringLiteral("missing.sqlite")));
    uri.replace(QLatin1String("DB"), db());
    auto session = startSession();
    QVERIFY(session);
    QString error;
    QVERIFY2(session->addConnection(shop(), &error), qPrintable(error));
    ConnectionSpec other = shop();
    other.id = QStringLiteral("other");
    QVERIFY2(session->addConnection(other, &error), qPrintable(error));
    QVERIFY(waitReady(QStringLiteral("shop")));
    QSignalSpy removed(session.get(), &AppSession::connectionRemoved);

    ConnectionSpec edited = shop();
    edited.id = id;
    edited.uri = uri;
    error.clear();
    QVERIFY(!session->replaceConnection(QStringLiteral("shop"), edited, &error));
    QVERIFY2(error.contains(expected), qPrintable(error));
    QVERIFY2(!error.contains(QLatin1String("secret")), qPrintable(error));
    // Nothing was taken down: the old connection still serves.
    QCOMPARE(session->connection(QStringLiteral("shop"))->uri, shop().uri);
    QCOMPARE(session->connections().size(), 2);
    const qsizetype before = m_events.size();
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status) VALUES('kept');")), QString());
    QTRY_VERIFY_WITH_TIMEOUT(m_events.size() > before, 10000);
    QCOMPARE(removed.size(), 0);
    QCOMPARE(session->engine()->sourceUri(QStringLiteral("shop")), shop().uri);
}

void TestAppSession::connectionWaitingToComeUpIsInTheWorkspace() {
    const QString other = makeOtherDatabase();
    QVERIFY(!other.isEmpty());
    auto session = startSession();
    QVERIFY(session);
    QString error;
    QVERIFY2(session->addConnection(shop(), &error), qPrintable(error));
    QVERIFY(waitReady(QStringLiteral("shop")));

    // Quitting right after Edit Connection saves the workspace while the old source
    // is still stopping: the edited connection must be in it, in its final form.
    ConnectionSpec edited = shop();
    edited.uri = QStringLiteral("sqlite:") + other;
    edited.watches.clear(); // the edit keeps the watches the connection had
    QVERIFY2(session->replaceConnection(QStringLiteral("shop"), edited, &error), qPrintable(error));
    Workspace w = session->workspace();
    QCOMPARE(w.connections.size(), 1);
    QCOMPARE(w.connections.first().id, QStringLiteral("shop"));
    QCOMPARE(w.connections.first().uri, edited.uri);
    QCOMPARE(w.connections.first().watches, shop().watches);
    QCOMPARE(session->connections().size(), 1);
    QCOMPARE(session->connection(QStringLiteral("shop"))->uri, edited.uri);

    // The same for one added while its id is still being removed.
    QSignalSpy added(session.get(), &AppSession::connectionAdded);
    QTRY_COMPARE_WITH_TIMEOUT(added.size(), 1, 5000);
    session->removeConnection(QStringLiteral("shop"));
    QVERIFY(session->workspace().connections.isEmpty());
    QVERIFY2(session->addConnection(shop(), &error), qPrintable(error));
    w = session->workspace();
    QCOMPARE(w.connections.size(), 1);
    QCOMPARE(w.connections.first().uri, shop().uri);
    QTRY_COMPARE_WITH_TIMEOUT(added.size(), 2, 5000);
    QCOMPARE(session->workspace().connections.size(), 1);
    QCOMPARE(session->engine()->sourceUri(QStringLiteral("shop")), shop().uri);
}

void TestAppSession::secondAddForAnIdWaitingToComeUpIsRefused() {
    const QString other = m_dir->filePath(QStringLiteral("other.sqlite"));
    QCOMPARE(runSqlite3(other, QStringLiteral("CREATE TABLE orders(id INTEGER PRIMARY KEY);")), QString());
    auto session = startSession();
    QVERIFY(session);
    QString error;
    QVERIFY2(session->addConnection(shop(), &error), qPrintable(error));
    QList<ConnectionSpec> added;
    connect(session.get(), &AppSession::connectionAdded, this,
            [&added](const ConnectionSpec& spec) { added.append(spec); });
    session->removeConnection(QStringLiteral("shop"));
    QVERIFY2(session->addConnection(shop(), &error), qPrintable(error));

    ConnectionSpec second = shop();
    second.uri = QStringLiteral("sqlite:") + other;
    error.clear();
    QVERIFY(!session->addConnection(second, &error));
    QVERIFY2(error.contains(QLatin1String("\"shop\" is already waiting")), qPrintable(error));
    QCOMPARE(session->connection(QStringLiteral("shop"))->uri, shop().uri);

    // The first one comes up, not the refused one.
    QTRY_COMPARE_WITH_TIMEOUT(added.size(), 1, 5000);
    QCOMPARE(added.first().uri, shop().uri);
    QCOMPARE(session->engine()->sourceUri(QStringLiteral("shop")), shop().uri);
}

void TestAppSession::demoConnectionRunsItsWriter() {
    AppSession::Options options;
    options.journalPath = journal();
    options.demoRate = 50;
    AppSession session(options);
    QString error;
    QVERIFY2(session.start(&error), qPrintable(error));
    collect(&session);
    QVERIFY2(session.addConnection(AppSession::demoConnection(), &error), qPrintable(error));
    QVERIFY(session.isDemoRunning());
    QTRY_VERIFY_WITH_TIMEOUT(m_events.size() > 5, 15000);
    QSignalSpy removed(&session, &AppSession::connectionRemoved);
    session.removeConnection(QStringLiteral("demo"));
    QVERIFY(!session.isDemoRunning());
    QTRY_COMPARE_WITH_TIMEOUT(removed.size(), 1, 5000);
}

void TestAppSession::sseServesRealHttp() {
    auto session = startSession();
    QVERIFY(session);
    QSignalSpy started(session.get(), &AppSession::sseStarted);
    QString error;
    QVERIFY2(session->startSse(QStringLiteral("127.0.0.1"), 0, &error), qPrintable(error));
    QCOMPARE(started.size(), 1); // the token is in the environment: nothing to wait for
    QVERIFY(session->isSseRunning());
    QCOMPARE(session->sseToken(), QStringLiteral("session-token"));
    QVERIFY(session->sseTokenLocation().contains(QLatin1String("TIDEWATCH_TOKEN")));

    QUrl url = session->sseServer()->baseUrl();
    QVERIFY(url.port() > 0);
    url.setPath(QStringLiteral("/v1/health"));
    QNetworkAccessManager nam;
    QNetworkRequest request(url);
    request.setRawHeader("Authorization", "Bearer session-token");
    QNetworkReply* reply = nam.get(request);
    QTRY_VERIFY_WITH_TIMEOUT(reply->isFinished(), 10000);
    QCOMPARE(reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt(), 200);
    QVERIFY(!reply->readAll().isEmpty());
    reply->deleteLater();

    QSignalSpy stopped(session.get(), &AppSession::sseStopped);
    session->stopSse();
    QCOMPARE(stopped.size(), 1);
    QVERIFY(!session->isSseRunning());
}

void TestAppSession::sseRefusesAnAddressThatIsNotOne() {
    auto session = startSession();
    QVERIFY(session);
    QString error;
    QVERIFY(!session->startSse(QStringLiteral("localhost.example"), 0, &error));
    QVERIFY2(error.contains(QLatin1String("not an IP address")), qPrintable(error));
    QVERIFY(!session->isSseRunning());
}

void TestAppSession::tokenFromEnvironmentElseGeneratedOnceAndKept() {
    // Moved here from tst_sseserver with the token's code.
    QString token, where;
    const auto load = [&] {
        token.clear();
        loadOrCreateToken(this, [&](const QString& t, const QString& w) {
            token = t;
            where = w;
        });
        return QTest::qWaitFor([&] { return !token.isEmpty(); }, 10000);
    };
    qputenv("TIDEWATCH_TOKEN", "from-env");
    QVERIFY(load());
    QCOMPARE(token, QStringLiteral("from-env"));
    QVERIFY(where.contains(QLatin1String("TIDEWATCH_TOKEN")));
    qunsetenv("TIDEWATCH_TOKEN");
    QVERIFY(load());
    const QString generated = token;
    QCOMPARE(generated.size(), 43); // 32 bytes, base64url without padding
    QVERIFY(load());
    QCOMPARE(token, generated);
}

void TestAppSession::journalInUseIsReportedAsACode() {
    auto first = startSession();
    QVERIFY(first);
    AppSession::Options options;
    options.journalPath = journal();
    AppSession second(options);
    QString error;
    Engine::StartError code = Engine::StartError::None;
    QVERIFY(!second.start(&error, &code));
    QCOMPARE(code, Engine::StartError::JournalInUse);
    QVERIFY(!second.isRunning());
    first.reset();
    QVERIFY2(second.start(&error, &code), qPrintable(error));
    QCOMPARE(code, Engine::StartError::None);
}

void TestAppSession::damagedJournalIsACodeAndCanBeMovedAside() {
    {
        QFile f(journal());
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(QByteArray(4096, '\x01'));
    }
    AppSession::Options options;
    options.journalPath = journal();
    AppSession session(options);
    QString error;
    Engine::StartError code = Engine::StartError::None;
    QVERIFY(!session.start(&error, &code));
    QVERIFY2(code != Engine::StartError::None && code != Engine::StartError::JournalInUse, qPrintable(error));
    QString movedTo;
    QVERIFY2(session.moveJournalAside(&movedTo, &error), qPrintable(error));
    QVERIFY(QFile::exists(movedTo));
    QVERIFY2(session.start(&error, &code), qPrintable(error));
}

QTEST_GUILESS_MAIN(TestAppSession)
#include "tst_appsession.moc"

// MongoSource against the wire peer, through the real libmongoc: operation mapping,
// resume (dropped connection, CursorNotFound, engine restart with startAfter), history
// lost -> gap, polling fallback, $match push-down, backoff and prompt stop.

#include "BsonPaths.h"
#include "engine/Engine.h"
#include "engine/Replay.h"
#include "filter/Filter.h"
#include "MongoPeer.h"
#include "OffThread.h"
#include "sources/mongo/ChangeEventMapper.h"
#include "sources/mongo/MongoSource.h"
#include "sources/SourceFactory.h"
#include "TestUtil.h"
#include "threads/Threads.h"

#include <QElapsedTimer>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>

#include <mongoc/mongoc.h>
#include <QThread>

#include <future>
#include <thread>

using namespace tw;
using tw::test::MongoPeer;

namespace {

using namespace tw::test;

// One command through a client of its own, as another program would send it.
bool runCommand(const QString& uri, const char* db, const char* command) {
    return offThread([&] {
        mongoc_init(); // once per process, whoever calls it first
        mongoc_client_t* client = mongoc_client_new(uri.toUtf8().constData());
        mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
        bson_t cmd, reply;
        const Bson body = json(command);
        body.view(&cmd);
        bson_error_t error;
        const bool ok = mongoc_client_command_simple(client, db, &cmd, nullptr, &reply, &error);
        if (!ok)
            qWarning("%s: %s", command, error.message);
        bson_destroy(&reply);
        mongoc_client_destroy(client);
        return ok;
    });
}

// A port nothing listens on.
quint16 deadPort() {
    QTcpServer server;
    server.listen(QHostAddress::LocalHost, 0);
    const quint16 port = server.serverPort();
    server.close();
    return port;
}

// One MongoSource on its own thread, the way the Engine runs it; what it emits is
// collected on this thread through queued connections.
class Harness : public QObject {
public:
    explicit Harness(const QString& uri, const SourceRestore& restore = {},
                     std::function<void(MongoSource*)> configure = {}) {
        QString error;
        m_source = MongoSource::create(QStringLiteral("m"), uri, &error);
        if (!m_source)
            qFatal("cannot create the source: %s", qPrintable(error));
        if (configure)
            configure(m_source);
        m_source->moveToThread(&m_thread);
        connect(
            m_source, &Source::batchReady, this,
            [this](const ChangeBatch& batch) {
                batches.append(batch);
                events.append(batch.events);
                if (!batch.checkpoint.token.isEmpty())
                    token = batch.checkpoint.token;
            },
            Qt::QueuedConnection);
        connect(
            m_source, &Source::statusChanged, this,
            [this](const QString&, const SourceStatus& status) {
                statuses.append(status);
                statusTimes.append(QDateTime::currentMSecsSinceEpoch());
            },
            Qt::QueuedConnection);
        connect(
            m_source, &Source::watchFailed, this,
            [this](const QString&, const Namespace&, const QString& error) { failures.append(error); },
            Qt::QueuedConnection);
        connect(
            m_source, &Source::namespacesListed, this,
            [this](const QString&, const QString&, const QList<NamespaceInfo>& list, const QString& error) {
                listed = list;
                listError = error;
                ++listings;
            },
            Qt::QueuedConnection);
        // Queued before the thread starts, so starting the thread orders it (the first
        // thing the new event loop does is deliver it).
        MongoSource* source = m_source;
        QMetaObject::invokeMethod(
            source, [source, restore] { source->start(restore); }, Qt::QueuedConnection);
        tw::startThread(&m_thread);
    }
    ~Harness() override {
        stop();
        delete m_source;
    }

    void watch(const Namespace& ns, const WatchOptions& options = {}) {
        MongoSource* source = m_source;
        QMetaObject::invokeMethod(
            source, [source, ns, options] { source->watch(ns, options); }, Qt::QueuedConnection);
    }
    void list(const QString& db) {
        MongoSource* source = m_source;
        QMetaObject::invokeMethod(
            source, [source, db] { source->listNamespaces(db); }, Qt::QueuedConnection);
    }
    // Stops the source on its thread; returns how long stop() itself took, in ms.
    qint64 stop() {
        if (!m_thread.isRunning())
            return 0;
        std::atomic<qint64> took{-1};
        MongoSource* source = m_source;
        QThread* thread = &m_thread;
        QMetaObject::invokeMethod(
            source,
            [source, thread, &took] {
                QElapsedTimer timer;
                timer.start();
                source->stop();
                took = timer.elapsed();
                thread->quit();
            },
            Qt::QueuedConnection);
        while (!m_thread.wait(1))
            QTest::qWait(2);
        QCoreApplication::sendPostedEvents(this);
        QTest::qWait(1);
        return took;
    }
    SourceStatus status() const { return statuses.isEmpty() ? SourceStatus() : statuses.last(); }
    bool sawState(SourceStatus::State state) const {
        for (const SourceStatus& s : statuses)
            if (s.state == state)
                return true;
        return false;
    }
    QStringList operations() const {
        QStringList out;
        for (const ChangeEvent& e : events)
            out.append(QString::fromUtf8(e.operationType()));
        return out;
    }

    ChangeEventList events;
    QList<ChangeBatch> batches;
    QList<SourceStatus> statuses;
    QList<qint64> statusTimes;
    QStringList failures;
    QList<NamespaceInfo> listed;
    QString listError;
    int listings = 0;
    QByteArray token;

private:
    MongoSource* m_source = nullptr; // owned; deleted after its thread ended
    QThread m_thread;
};

Bson insertEvent(int n, const char* status = "new") {
    BsonBuilder b;
    bson_append_utf8(b.get(), "operationType", -1, "insert", -1);
    bson_t key, doc;
    bson_append_document_begin(b.get(), "documentKey", -1, &key);
    bson_append_int32(&key, "_id", -1, n);
    bson_append_document_end(b.get(), &key);
    bson_append_document_begin(b.get(), "fullDocument", -1, &doc);
    bson_append_int32(&doc, "_id", -1, n);
    bson_append_utf8(&doc, "status", -1, status, -1);
    bson_append_document_end(b.get(), &doc);
    return b.take();
}

int idOf(const ChangeEvent& e) {
    bson_iter_t it;
    return lookup(e.documentKey(), "_id", &it) ? int(bson_iter_as_int64(&it)) : -1;
}

QList<int> ids(const ChangeEventList& events) {
    QList<int> out;
    for (const ChangeEvent& e : events)
        if (e.operation() == Operation::Insert)
            out.append(idOf(e));
    return out;
}

QList<int> range(int from, int to) {
    QList<int> out;
    for (int i = from; i <= to; ++i)
        out.append(i);
    return out;
}

Bson changeStreamStage(const Bson& aggregate) {
    return sub(aggregate, "pipeline.0.$changeStream");
}

// A subscription with `filter` to `ns` of source "m".
Subscription subscriptionOn(const QString& id, const Namespace& ns, const char* filter) {
    Subscription s;
    s.id = id;
    s.namespaces = {SourceNamespace{QStringLiteral("m"), ns}};
    s.filter = Filter::compile(filter);
    return s;
}

// An Engine on a journal in a temporary folder, collecting what it commits on this
// thread. Engine::stop blocks its caller while the sources stop, and the peer answers
// on this thread: stop() runs it on another.
class EngineOnPeer : public QObject {
public:
    bool start(QString* error) {
        Engine::Options options;
        options.journalPath = journalPath();
        engine = std::make_unique<Engine>(options);
        if (!engine->start(error))
            return false;
        connect(
            engine.get(), &Engine::committed, this,
            [this](const CommittedBatch& batch) { committed.append(batch.events); }, Qt::QueuedConnection);
        return true;
    }
    void stop() {
        if (!engine)
            return;
        Engine* e = engine.get();
        offThread([e] {
            e->stop();
            return 0;
        });
        engine.reset();
    }
    ~EngineOnPeer() override { stop(); }
    QString journalPath() const { return m_dir.filePath(QStringLiteral("journal.sqlite")); }

    std::unique_ptr<Engine> engine;
    ChangeEventList committed;

private:
    QTemporaryDir m_dir;
};

constexpr int kWait = 15000;

} // namespace

class TestMongoSource : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { registerMetaTypes(); }

    void createAcceptsMongoUrisAndRedactsPasswords();
    void mapsEveryOperationType();
    void mapsDdlEventsAndKeepsUnknownFields();
    void expandedEventsArriveInMongoDbsShapes();
    void serverOlderThan60SaysSoAndCarriesOnWithoutDdl();
    void serverRefusingShowExpandedEventsIsAskedAgainWithout();
    void pushDownKeepsTheSchemaEventsReadersWant();
    void cursorCommandsShareOneSessionAndStopKillsTheCursor();
    void optionsReachTheServer();
    void showExpandedEventsIsSentOrExplained();
    void resumesAfterDroppedConnectionLosingNothing();
    void resumesAfterCursorNotFoundLosingNothing();
    void damagedRepliesAreSaidAndResumedLosingNothing_data();
    void damagedRepliesAreSaidAndResumedLosingNothing();
    void unreadableEventBecomesAGapInItsPlace();
    void reopensFromStoredTokenAfterDriverResumeFails();
    void engineRestartResumesWithStartAfterStoredToken();
    void historyLostEmitsGapThenRestartsFromNow();
    void invalidateIsDeliveredAndWatchingResumesWhenCollectionReturns();
    void noChangeStreamsFallsBackToPolling_data();
    void noChangeStreamsFallsBackToPolling();
    void incrementalPollingUsesTheMonotonicField();
    void unionMatchCombinesSubscriptionFilters();
    void pushDownIsUnionAndChangingItReopensLosingNothing();
    void engineDerivesPushDownFromItsSubscriptions();
    void replayFromBeforeThePushDownWidenedStartsWithAGap();
    void unwatchEndsTheNarrowedPeriod();
    void removingANarrowingSourceEndsItsPeriod();
    void engineLeavesOutDataChangesForSchemaSubscriptions();
    void oneUpstreamStreamPerScope();
    void backoffScheduleAgainstDeadPeer();
    void backoffIsCappedAndStopIsPromptDuringBackoff();
    void stopIsPromptWhileStreaming();
    void listsDatabasesAndCollectionsMarkingViewsAndSystem();
    void handshakeErrorShowsRedactedUri();
};

void TestMongoSource::createAcceptsMongoUrisAndRedactsPasswords() {
    QString error;
    std::unique_ptr<Source> source(SourceFactory::create(
        QStringLiteral("a"), QStringLiteral("mongodb://h:27017/?appname=app.db"), &error));
    QVERIFY2(qobject_cast<MongoSource*>(source.get()), qPrintable(error));

    const QStringList bad = {QStringLiteral("mongodb://alice:s3cr3tpw@host:notaport/"),
                             QStringLiteral("mongodb://alice:s3cr3tpw@/"),
                             QStringLiteral("mongodb+srv://alice:s3cr3tpw@a.example.com:27017/")};
    for (const QString& uri : bad) {
        error.clear();
        std::unique_ptr<Source> none(SourceFactory::create(QStringLiteral("b"), uri, &error));
        QVERIFY2(!none, qPrintable(uri));
        QVERIFY2(!error.isEmpty(), qPrintable(uri));
        QVERIFY2(!error.contains(QLatin1String("s3cr3tpw")), qPrintable(error));
        QVERIFY2(error.contains(QLatin1String("alice:****@")), qPrintable(error));
    }
}

void TestMongoSource::mapsEveryOperationType() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    WatchOptions options;
    options.showExpandedEvents = true;
    h.watch(Namespace{QStringLiteral("shop"), {}}, options);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);

    const QString shop = QStringLiteral("shop"), orders = QStringLiteral("orders");
    peer.pushChange(shop, orders, insertEvent(1));
    peer.pushChange(shop, orders, json(R"({"operationType":"update","documentKey":{"_id":1},
                 "updateDescription":{"updatedFields":{"status":"paid","n":{"$numberLong":"5"}},
                   "removedFields":["tmp"],"truncatedArrays":[{"field":"items","newSize":2}]},
                 "fullDocument":{"_id":1,"status":"paid"}})"));
    peer.pushChange(
        shop, orders,
        json(R"({"operationType":"replace","documentKey":{"_id":1},"fullDocument":{"_id":1,"v":2}})"));
    peer.pushChange(shop, orders, json(R"({"operationType":"delete","documentKey":{"_id":1}})"));
    peer.pushChange(shop, QStringLiteral("tmp"), json(R"({"operationType":"drop"})"));
    peer.pushChange(shop, QStringLiteral("a"),
                    json(R"({"operationType":"rename","to":{"db":"shop","coll":"b"}})"));
    // An expanded (DDL) event: delivered because showExpandedEvents went into the
    // $changeStream stage (tst_mongoschema covers every expanded event).
    peer.pushChange(
        shop, orders,
        json(
            R"({"operationType":"createIndexes","operationDescription":{"indexes":[{"v":2,"key":{"status":1},"name":"status_1"}]}})"));
    peer.pushChange(shop, {}, json(R"({"operationType":"dropDatabase"})")); // invalidates a database stream

    const QStringList expected = {
        QStringLiteral("insert"),        QStringLiteral("update"),       QStringLiteral("replace"),
        QStringLiteral("delete"),        QStringLiteral("drop"),         QStringLiteral("rename"),
        QStringLiteral("createIndexes"), QStringLiteral("dropDatabase"), QStringLiteral("invalidate")};
    QTRY_COMPARE_WITH_TIMEOUT(h.operations(), expected, kWait);
    const ChangeEventList& e = h.events;

    for (const ChangeEvent& event : e) {
        QCOMPARE(event.sourceId(), QStringLiteral("m"));
        QVERIFY2(!event.resumeToken().isAbsent(), event.operationType().constData());
        QVERIFY2(!event.clusterTime().isNull(), event.operationType().constData());
        QVERIFY2(event.wallTimeMs() > 0, event.operationType().constData());
    }
    QCOMPARE(e[0].operation(), Operation::Insert);
    QCOMPARE(e[0].ns(), (Namespace{shop, orders}));
    QCOMPARE(idOf(e[0]), 1);
    QCOMPARE(str(e[0].fullDocument(), "status"), QStringLiteral("new"));

    QCOMPARE(e[1].operation(), Operation::Update);
    QCOMPARE(str(e[1].updateDescription(), "updatedFields.status"), QStringLiteral("paid"));
    QCOMPARE(str(e[1].updateDescription(), "removedFields.0"), QStringLiteral("tmp"));
    QCOMPARE(str(e[1].updateDescription(), "truncatedArrays.0.field"), QStringLiteral("items"));
    bson_iter_t it;
    QVERIFY(lookup(e[1].updateDescription(), "updatedFields.n", &it) && BSON_ITER_HOLDS_INT64(&it));
    QCOMPARE(str(e[1].fullDocument(), "status"), QStringLiteral("paid"));

    QCOMPARE(e[2].operation(), Operation::Replace);
    QVERIFY(has(e[2].fullDocument(), "v"));
    QCOMPARE(e[3].operation(), Operation::Delete);
    QCOMPARE(idOf(e[3]), 1);
    QVERIFY(e[3].fullDocument().isAbsent());
    QCOMPARE(e[4].operation(), Operation::Drop);
    QCOMPARE(e[4].ns(), (Namespace{shop, QStringLiteral("tmp")}));
    QCOMPARE(e[5].operation(), Operation::Rename);
    QCOMPARE(e[5].ns(), (Namespace{shop, QStringLiteral("a")}));
    QCOMPARE(e[5].renameTarget(), (Namespace{shop, QStringLiteral("b")}));
    QCOMPARE(e[6].operation(), Operation::Ddl);
    QCOMPARE(e[6].operationType(), QByteArray("createIndexes"));
    QCOMPARE(e[6].ns(), (Namespace{shop, orders}));
    QCOMPARE(str(e[6].extra(), "operationDescription.indexes.0.name"), QStringLiteral("status_1"));
    QCOMPARE(e[7].operation(), Operation::DropDatabase);
    QCOMPARE(e[7].ns(), (Namespace{shop, {}}));
    QCOMPARE(e[8].operation(), Operation::Invalidate);
    QCOMPARE(e[8].ns(), (Namespace{shop, {}}));
    QVERIFY(!e[8].reason().isEmpty());

    // The checkpoint names the scope and holds the last event's token.
    const QMap<QString, Bson> tokens = MongoSource::decodeTokens(h.token);
    QVERIFY(tokens.contains(shop));
    QCOMPARE(tokens.value(shop), e[8].resumeToken());
    // The document rendered for consumers has the server's shape.
    QCOMPARE(str(e[1].document(), "operationType"), QStringLiteral("update"));
    QCOMPARE(str(e[1].document(), "updateDescription.updatedFields.status"), QStringLiteral("paid"));
}

void TestMongoSource::mapsDdlEventsAndKeepsUnknownFields() {
    // The mapping itself, on the document a server sends (fields Tidewatch has no
    // member for are kept, in order).
    const ChangeEventMapper mapper(QStringLiteral("m"));
    const Bson doc = json(R"({"_id":{"_data":"82AB"},"operationType":"createIndexes",
        "clusterTime":{"$timestamp":{"t":5,"i":2}},"wallTime":{"$date":"2024-01-02T03:04:05Z"},
        "ns":{"db":"shop","coll":"orders"},"collectionUUID":{"$binary":{"base64":"AAAAAAAAAAAAAAAAAAAAAA==","subType":"04"}},
        "operationDescription":{"indexes":[{"v":2,"key":{"status":1},"name":"status_1"}]}})");
    bson_t view;
    QVERIFY(doc.view(&view));
    ChangeEvent e;
    QString error;
    QVERIFY2(mapper.map(&view, &e, &error), qPrintable(error));
    QCOMPARE(e.operation(), Operation::Ddl);
    QCOMPARE(e.operationType(), QByteArray("createIndexes"));
    QCOMPARE(e.ns(), (Namespace{QStringLiteral("shop"), QStringLiteral("orders")}));
    QCOMPARE(e.clusterTime().t, 5u);
    QCOMPARE(e.clusterTime().i, 2u);
    QCOMPARE(e.wallTimeMs(), QDateTime(QDate(2024, 1, 2), QTime(3, 4, 5), Qt::UTC).toMSecsSinceEpoch());
    QCOMPARE(str(e.resumeToken(), "_data"), QStringLiteral("82AB"));
    QCOMPARE(str(e.extra(), "operationDescription.indexes.0.name"), QStringLiteral("status_1"));
    QVERIFY(has(e.extra(), "collectionUUID"));
    // The document consumers get keeps the server's name and fields.
    QCOMPARE(str(e.document(), "operationType"), QStringLiteral("createIndexes"));
    QCOMPARE(str(e.document(), "operationDescription.indexes.0.name"), QStringLiteral("status_1"));

    const Bson bad = json(R"({"_id":{"_data":"1"},"ns":{"db":"a"}})");
    QVERIFY(bad.view(&view));
    QVERIFY(!mapper.map(&view, &e, &error));
    QVERIFY(error.contains(QLatin1String("operationType")));
}

void TestMongoSource::expandedEventsArriveInMongoDbsShapes() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    h.watch(Namespace{QStringLiteral("shop"), {}}); // DDL events are on by default
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    QVERIFY(has(changeStreamStage(peer.receivedCommands(QStringLiteral("aggregate")).last()),
                "showExpandedEvents"));

    const QString uri = peer.uri();
    QVERIFY(runCommand(uri, "shop", R"({"create": "a", "validator": {"n": {"$gte": 0}}})"));
    QVERIFY(
        runCommand(uri, "shop", R"({"createIndexes": "a", "indexes": [{"key": {"n": 1}, "name": "n_1"}]})"));
    QVERIFY(runCommand(uri, "shop", R"({"collMod": "a", "index": {"name": "n_1", "hidden": true}})"));
    QVERIFY(runCommand(uri, "shop", R"({"collMod": "a", "validator": {"n": {"$gte": 1}}})"));
    QVERIFY(runCommand(uri, "shop", R"({"dropIndexes": "a", "index": "n_1"})"));
    QVERIFY(runCommand(uri, "admin", R"({"renameCollection": "shop.a", "to": "shop.b"})"));
    QVERIFY(runCommand(uri, "shop", R"({"drop": "b"})"));
    QVERIFY(runCommand(uri, "admin", R"({"shardCollection": "shop.s", "key": {"k": "hashed"}})"));
    QVERIFY(runCommand(uri, "shop", R"({"dropDatabase": 1})"));

    const QStringList expected = {
        QStringLiteral("create"), QStringLiteral("createIndexes"), QStringLiteral("modify"),
        QStringLiteral("modify"), QStringLiteral("dropIndexes"),   QStringLiteral("rename"),
        QStringLiteral("drop"),   QStringLiteral("create"),        QStringLiteral("shardCollection"),
        QStringLiteral("drop"),   QStringLiteral("dropDatabase"),  QStringLiteral("invalidate")};
    QTRY_COMPARE_WITH_TIMEOUT(h.operations(), expected, kWait);
    const ChangeEventList& e = h.events;
    const Namespace a{QStringLiteral("shop"), QStringLiteral("a")};
    for (int i = 0; i < 11; ++i) {
        const QByteArray op = e[i].operationType();
        QVERIFY2(isSchemaOperation(e[i].operation()), op.constData());
        QVERIFY2(e[i].wallTimeMs() > 0, op.constData());
        QVERIFY2(!e[i].resumeToken().isAbsent(), op.constData());
        if (e[i].operation() != Operation::DropDatabase)
            QVERIFY2(has(e[i].extra(), "collectionUUID"), op.constData());
        QCOMPARE(str(e[i].document(), "operationType"), QString::fromUtf8(op));
    }
    for (int i = 0; i < 6; ++i)
        QCOMPARE(e[i].ns(), a);
    QCOMPARE(e[0].operation(), Operation::Ddl);
    QCOMPARE(str(e[0].extra(), "operationDescription.idIndex.name"), QStringLiteral("_id_"));
    QCOMPARE(str(e[1].extra(), "operationDescription.indexes.0.name"), QStringLiteral("n_1"));
    QCOMPARE(str(e[1].document(), "operationDescription.indexes.0.name"), QStringLiteral("n_1"));
    bson_iter_t it;
    QVERIFY(lookup(e[2].extra(), "operationDescription.index.hidden", &it) && bson_iter_as_bool(&it));
    QVERIFY(has(e[2].extra(), "stateBeforeChange.indexOptions"));
    QCOMPARE(num(e[3].extra(), "operationDescription.validator.n.$gte"), 1);
    QCOMPARE(num(e[3].extra(), "stateBeforeChange.collectionOptions.validator.n.$gte"), 0);
    QCOMPARE(str(e[4].extra(), "operationDescription.indexes.0.name"), QStringLiteral("n_1"));
    QCOMPARE(e[5].operation(), Operation::Rename);
    QCOMPARE(e[5].renameTarget(), (Namespace{QStringLiteral("shop"), QStringLiteral("b")}));
    QCOMPARE(str(e[5].extra(), "operationDescription.to.coll"), QStringLiteral("b"));
    QCOMPARE(e[6].operation(), Operation::Drop);
    QCOMPARE(e[6].ns(), (Namespace{QStringLiteral("shop"), QStringLiteral("b")}));
    QCOMPARE(e[8].operationType(), QByteArray("shardCollection"));
    QCOMPARE(str(e[8].extra(), "operationDescription.shardKey.k"), QStringLiteral("hashed"));
    QVERIFY(lookup(e[8].extra(), "operationDescription.unique", &it) && !bson_iter_as_bool(&it));
    QCOMPARE(e[10].operation(), Operation::DropDatabase);
    QCOMPARE(e[10].ns(), (Namespace{QStringLiteral("shop"), {}}));
    QTRY_COMPARE_WITH_TIMEOUT(h.status().state, SourceStatus::State::Watching, kWait);
    QVERIFY2(!h.status().reason.contains(QLatin1String("DDL")), qPrintable(h.status().reason));
}

void TestMongoSource::serverOlderThan60SaysSoAndCarriesOnWithoutDdl() {
    MongoPeer peer;
    peer.setMaxWireVersion(13); // MongoDB 5.0, which refuses showExpandedEvents
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};
    h.watch(ns);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    QTRY_VERIFY_WITH_TIMEOUT(h.status().reason.contains(QLatin1String("older than MongoDB 6.0")), kWait);
    QCOMPARE(h.status().state, SourceStatus::State::Watching);
    for (const Bson& aggregate : peer.receivedCommands(QStringLiteral("aggregate")))
        QVERIFY(!has(changeStreamStage(aggregate), "showExpandedEvents"));

    QVERIFY(runCommand(peer.uri(), "shop",
                       R"({"createIndexes": "orders", "indexes": [{"key": {"n": 1}, "name": "n_1"}]})"));
    peer.pushChange(ns.db, ns.coll, insertEvent(1));
    QVERIFY(runCommand(peer.uri(), "shop", R"({"drop": "orders"})"));
    QTRY_COMPARE_WITH_TIMEOUT(
        h.operations(),
        (QStringList{QStringLiteral("insert"), QStringLiteral("drop"), QStringLiteral("invalidate")}), kWait);
    QVERIFY(!has(h.events[1].extra(), "operationDescription")); // the 5.0 shape
    QVERIFY(!h.sawState(SourceStatus::State::Backoff));
    QVERIFY(!h.sawState(SourceStatus::State::Error));
}

void TestMongoSource::serverRefusingShowExpandedEventsIsAskedAgainWithout() {
    // A server that reports 6.0's wire version and still does not know the field (an
    // emulation, say) refuses it the way 5.0 does.
    MongoPeer peer;
    QVERIFY(peer.listen());
    peer.failNextCommand(
        QStringLiteral("aggregate"),
        MongoPeer::errorDocument(
            40415, QStringLiteral("Location40415"),
            QStringLiteral("BSON field '$changeStream.showExpandedEvents' is an unknown field.")));
    Harness h(peer.uri());
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};
    h.watch(ns);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    const QList<Bson> aggregates = peer.receivedCommands(QStringLiteral("aggregate"));
    QCOMPARE(aggregates.size(), 2);
    QVERIFY(has(changeStreamStage(aggregates.first()), "showExpandedEvents"));
    QVERIFY(!has(changeStreamStage(aggregates.last()), "showExpandedEvents"));
    QTRY_VERIFY_WITH_TIMEOUT(h.status().reason.contains(QLatin1String("no DDL events")), kWait);
    QCOMPARE(h.status().state, SourceStatus::State::Watching);
    QVERIFY(h.failures.isEmpty());
    peer.pushChange(ns.db, ns.coll, insertEvent(1));
    QTRY_COMPARE_WITH_TIMEOUT(ids(h.events), range(1, 1), kWait);
}

void TestMongoSource::pushDownKeepsTheSchemaEventsReadersWant() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};
    WatchOptions options;
    options.readers = {
        {ns, json(R"({"operationType": {"$in": ["createIndexes", "dropIndexes"]}})"), false},
        {ns, json(R"({"fullDocument.status": "paid"})"), false},
    };
    h.watch(ns, options);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    const Bson aggregate = peer.receivedCommands(QStringLiteral("aggregate")).last();
    QVERIFY(has(aggregate, "pipeline.1.$match.$or"));
    QVERIFY(has(changeStreamStage(aggregate), "showExpandedEvents"));

    const QString uri = peer.uri();
    // create (implicit, not wanted), createIndexes (wanted), an insert nobody wants,
    // one that is wanted, dropIndexes (wanted), modify (not wanted).
    QVERIFY(runCommand(uri, "shop",
                       R"({"createIndexes": "orders", "indexes": [{"key": {"n": 1}, "name": "n_1"}]})"));
    peer.pushChange(ns.db, ns.coll, insertEvent(1, "new"));
    peer.pushChange(ns.db, ns.coll, insertEvent(2, "paid"));
    QVERIFY(runCommand(uri, "shop", R"({"dropIndexes": "orders", "index": "n_1"})"));
    QVERIFY(runCommand(uri, "shop", R"({"collMod": "orders", "validator": {}})"));
    peer.pushChange(ns.db, ns.coll, insertEvent(3, "paid"));
    QTRY_COMPARE_WITH_TIMEOUT(h.operations(),
                              (QStringList{QStringLiteral("createIndexes"), QStringLiteral("insert"),
                                           QStringLiteral("dropIndexes"), QStringLiteral("insert")}),
                              kWait);
    QCOMPARE(ids(h.events), (QList<int>{2, 3}));
}

void TestMongoSource::cursorCommandsShareOneSessionAndStopKillsTheCursor() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    h.watch(Namespace{QStringLiteral("shop"), QStringLiteral("orders")});
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    QTRY_VERIFY_WITH_TIMEOUT(peer.receivedCommands(QStringLiteral("getMore")).size() >= 2, kWait);
    QElapsedTimer timer;
    timer.start();
    h.stop();
    QVERIFY2(timer.elapsed() < 1000, qPrintable(QStringLiteral("%1 ms").arg(timer.elapsed())));
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 0, kWait);

    // A server ties a cursor to the session that opened it.
    const Bson aggregate = peer.receivedCommands(QStringLiteral("aggregate")).last();
    const Bson lsid = sub(aggregate, "lsid");
    QVERIFY(!lsid.isAbsent());
    const QList<Bson> getMores = peer.receivedCommands(QStringLiteral("getMore"));
    for (const Bson& getMore : getMores)
        QCOMPARE(sub(getMore, "lsid"), lsid);
    const QList<Bson> kills = peer.receivedCommands(QStringLiteral("killCursors"));
    QCOMPARE(kills.size(), 1);
    QCOMPARE(sub(kills.first(), "lsid"), lsid);
    QCOMPARE(str(kills.first(), "killCursors"), QStringLiteral("orders"));
    QCOMPARE(num(kills.first(), "cursors.0"), num(getMores.last(), "getMore"));
}

void TestMongoSource::optionsReachTheServer() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    WatchOptions options;
    options.fullDocument = QStringLiteral("whenAvailable");
    options.fullDocumentBeforeChange = QStringLiteral("required");
    options.showExpandedEvents = true;
    options.batchSize = 7;
    options.maxAwaitTimeMs = 300;
    h.watch(Namespace{QStringLiteral("shop"), QStringLiteral("orders")}, options);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    const Bson aggregate = peer.receivedCommands(QStringLiteral("aggregate")).last();
    const Bson stage = changeStreamStage(aggregate);
    QCOMPARE(str(stage, "fullDocument"), QStringLiteral("whenAvailable"));
    QCOMPARE(str(stage, "fullDocumentBeforeChange"), QStringLiteral("required"));
    bson_iter_t it;
    // In the $changeStream stage, never at the command's top level (a server rejects it there).
    QVERIFY(lookup(stage, "showExpandedEvents", &it) && bson_iter_as_bool(&it));
    QVERIFY(!has(aggregate, "showExpandedEvents"));
    QVERIFY(lookup(aggregate, "cursor.batchSize", &it));
    QCOMPARE(bson_iter_as_int64(&it), 7);
    QTRY_VERIFY_WITH_TIMEOUT(!peer.receivedCommands(QStringLiteral("getMore")).isEmpty(), kWait);
    QVERIFY(lookup(peer.receivedCommands(QStringLiteral("getMore")).last(), "maxTimeMS", &it));
    QCOMPARE(bson_iter_as_int64(&it), 300);

    // The default is updateLookup, and no pre-images.
    Harness d(peer.uri());
    d.watch(Namespace{QStringLiteral("shop"), QStringLiteral("users")});
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 2, kWait);
    const Bson second = changeStreamStage(peer.receivedCommands(QStringLiteral("aggregate")).last());
    QCOMPARE(str(second, "fullDocument"), QStringLiteral("updateLookup"));
    QVERIFY(!has(second, "fullDocumentBeforeChange"));
    QVERIFY(!has(second, "startAfter"));
}

void TestMongoSource::showExpandedEventsIsSentOrExplained() {
    // Debian 12's libmongoc (1.23) cannot send showExpandedEvents through its change
    // stream API; our own cursor puts it into the $changeStream stage, and a 6.0 server
    // needs no note in the state.
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    WatchOptions options;
    options.showExpandedEvents = true;
    h.watch(Namespace{QStringLiteral("shop"), QStringLiteral("orders")}, options);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    QVERIFY(has(changeStreamStage(peer.receivedCommands(QStringLiteral("aggregate")).last()),
                "showExpandedEvents"));
    QTRY_COMPARE_WITH_TIMEOUT(h.status().state, SourceStatus::State::Watching, kWait);
    QVERIFY2(!h.status().reason.contains(QLatin1String("DDL")), qPrintable(h.status().reason));
}

void TestMongoSource::resumesAfterDroppedConnectionLosingNothing() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    h.watch(Namespace{QStringLiteral("shop"), QStringLiteral("orders")});
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    for (int i = 1; i <= 3; ++i)
        peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), insertEvent(i));
    QTRY_COMPARE_WITH_TIMEOUT(ids(h.events), range(1, 3), kWait);

    peer.dropConnections();
    for (int i = 4; i <= 8; ++i)
        peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), insertEvent(i));
    QTRY_COMPARE_WITH_TIMEOUT(ids(h.events), range(1, 8), kWait);
    // The resume went to the server with the last delivered token.
    const QList<Bson> aggregates = peer.receivedCommands(QStringLiteral("aggregate"));
    QVERIFY(aggregates.size() >= 2);
    const Bson stage = changeStreamStage(aggregates.last());
    QVERIFY(has(stage, "resumeAfter") || has(stage, "startAfter"));
    QCOMPARE(h.events.size(), 8); // nothing twice
}

void TestMongoSource::resumesAfterCursorNotFoundLosingNothing() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    h.watch(Namespace{QStringLiteral("shop"), QStringLiteral("orders")});
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), insertEvent(1));
    QTRY_COMPARE_WITH_TIMEOUT(ids(h.events), range(1, 1), kWait);

    const int aggregatesBefore = int(peer.receivedCommands(QStringLiteral("aggregate")).size());
    peer.failNextCommand(QStringLiteral("getMore"),
                         MongoPeer::errorDocument(43, QStringLiteral("CursorNotFound"),
                                                  QStringLiteral("cursor id 1 not found")));
    for (int i = 2; i <= 5; ++i)
        peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), insertEvent(i));
    QTRY_COMPARE_WITH_TIMEOUT(ids(h.events), range(1, 5), kWait);
    QVERIFY(peer.receivedCommands(QStringLiteral("aggregate")).size() > aggregatesBefore);
}

void TestMongoSource::damagedRepliesAreSaidAndResumedLosingNothing_data() {
    QTest::addColumn<QString>("kind");
    QTest::newRow("body that is not BSON") << QStringLiteral("malformed");
    QTest::newRow("message above maxMessageSizeBytes") << QStringLiteral("oversized");
    // Half a reply, then silence: the socket timeout (5 s) ends the wait.
    QTest::newRow("stalls mid-message") << QStringLiteral("truncated");
}

void TestMongoSource::damagedRepliesAreSaidAndResumedLosingNothing() {
    QFETCH(QString, kind);
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    h.watch(Namespace{QStringLiteral("shop"), QStringLiteral("orders")});
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), insertEvent(1));
    QTRY_COMPARE_WITH_TIMEOUT(ids(h.events), range(1, 1), kWait);

    const int aggregatesBefore = int(peer.receivedCommands(QStringLiteral("aggregate")).size());
    const qsizetype statusesBefore = h.statuses.size();
    BsonBuilder broken;
    BSON_APPEND_UTF8(broken.get(), "brokenReply", kind.toUtf8().constData());
    peer.failNextCommand(QStringLiteral("getMore"), broken.take());
    for (int i = 2; i <= 5; ++i)
        peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), insertEvent(i));
    // Every change once, in order, through a new cursor resumed from the last token.
    QTRY_COMPARE_WITH_TIMEOUT(ids(h.events), range(1, 5), 30000);
    QCOMPARE(h.events.size(), 5);
    QVERIFY(peer.receivedCommands(QStringLiteral("aggregate")).size() > aggregatesBefore);
    // Watching again, and the state says the stream broke and resumed, and why.
    QTRY_COMPARE_WITH_TIMEOUT(h.statuses.last().state, SourceStatus::State::Watching, kWait);
    QTRY_VERIFY_WITH_TIMEOUT(h.statuses.size() > statusesBefore &&
                                 h.statuses.last().reason.contains(QLatin1String("shop.orders resumed at")),
                             kWait);
    QVERIFY(h.statuses.last().reconnects >= 1);
}

void TestMongoSource::unreadableEventBecomesAGapInItsPlace() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    h.watch(Namespace{QStringLiteral("shop"), QStringLiteral("orders")});
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), insertEvent(1));
    peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), json(R"({"operationType": 42})"));
    peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), insertEvent(2));
    QTRY_COMPARE_WITH_TIMEOUT(h.events.size(), 3, kWait);
    QCOMPARE(h.events[0].operation(), Operation::Insert);
    QCOMPARE(h.events[1].operation(), Operation::Gap);
    QVERIFY2(h.events[1].reason().contains(QLatin1String("could not be read")),
             qPrintable(h.events[1].reason()));
    QCOMPARE(h.events[1].ns().toString(), QStringLiteral("shop.orders"));
    QCOMPARE(h.events[2].operation(), Operation::Insert);
}

void TestMongoSource::reopensFromStoredTokenAfterDriverResumeFails() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri(), {}, [](MongoSource* s) { s->setBackoff(200, 1000, 0.0); });
    h.watch(Namespace{QStringLiteral("shop"), QStringLiteral("orders")});
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), insertEvent(1));
    QTRY_COMPARE_WITH_TIMEOUT(ids(h.events), range(1, 1), kWait);
    const Bson lastToken = h.events.last().resumeToken();

    // The getMore fails, then libmongoc's one resume (and its one retried aggregate)
    // fail too: from there on it is the source's own reopen after a backoff.
    const Bson network = json(R"({"closeConnection": true})");
    peer.failNextCommand(QStringLiteral("getMore"), network);
    peer.failNextCommand(QStringLiteral("aggregate"), network, 2);
    peer.clearReceivedCommands();
    // The getMore already parked times out empty; the next one meets the failure.
    QTRY_VERIFY_WITH_TIMEOUT(h.sawState(SourceStatus::State::Backoff), kWait);
    for (int i = 2; i <= 4; ++i)
        peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), insertEvent(i));
    QTRY_COMPARE_WITH_TIMEOUT(ids(h.events), range(1, 4), kWait);
    QTRY_COMPARE_WITH_TIMEOUT(h.status().state, SourceStatus::State::Watching, kWait);

    const QList<Bson> aggregates = peer.receivedCommands(QStringLiteral("aggregate"));
    QVERIFY(aggregates.size() >= 3);
    QCOMPARE(sub(changeStreamStage(aggregates.last()), "startAfter"), lastToken);
    QCOMPARE(h.status().reconnects, 1);
}

void TestMongoSource::engineRestartResumesWithStartAfterStoredToken() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};

    // One journal, and what each run of an engine on it committed, in order.
    EngineOnPeer engines;
    const ChangeEventList& committed = engines.committed;
    auto run = [&](int from, int to, int expectTotal) {
        QString error;
        QVERIFY2(engines.start(&error), qPrintable(error));
        QVERIFY2(engines.engine->addSource(QStringLiteral("m"), peer.uri(), &error), qPrintable(error));
        const int streams = peer.openChangeStreamCount();
        engines.engine->watch(QStringLiteral("m"), ns);
        QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), streams + 1, kWait);
        for (int i = from; i <= to; ++i)
            peer.pushChange(ns.db, ns.coll, insertEvent(i));
        QTRY_COMPARE_WITH_TIMEOUT(ids(committed), range(1, expectTotal), kWait);
        engines.stop();
    };
    run(1, 3, 3);
    const Bson lastToken = committed.last().resumeToken();

    // Written while Tidewatch was not running: must arrive after the restart.
    for (int i = 4; i <= 6; ++i)
        peer.pushChange(ns.db, ns.coll, insertEvent(i));
    peer.clearReceivedCommands();
    run(7, 8, 8);

    const QList<Bson> aggregates = peer.receivedCommands(QStringLiteral("aggregate"));
    QVERIFY(!aggregates.isEmpty());
    QCOMPARE(sub(changeStreamStage(aggregates.first()), "startAfter"), lastToken);
    QCOMPARE(committed.size(), 8); // nothing lost, nothing twice
}

void TestMongoSource::historyLostEmitsGapThenRestartsFromNow() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};
    const Bson old = peer.pushChange(ns.db, ns.coll, insertEvent(1));
    peer.forgetHistory(); // the oplog rolled over while we were away

    SourceRestore restore;
    restore.token = MongoSource::encodeTokens({{ns.toString(), old}});
    Harness h(peer.uri(), restore);
    h.watch(ns);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    QTRY_COMPARE_WITH_TIMEOUT(h.events.size(), 1, kWait);
    QCOMPARE(h.events[0].operation(), Operation::Gap);
    QCOMPARE(h.events[0].ns(), ns);
    QVERIFY2(h.events[0].reason().contains(QLatin1String("286")), qPrintable(h.events[0].reason()));

    const QList<Bson> aggregates = peer.receivedCommands(QStringLiteral("aggregate"));
    QCOMPARE(sub(changeStreamStage(aggregates.first()), "startAfter"), old);
    QVERIFY(!has(changeStreamStage(aggregates.last()), "startAfter")); // from now
    QCOMPARE(aggregates.size(), 2);                                    // no retry storm

    peer.pushChange(ns.db, ns.coll, insertEvent(2));
    QTRY_COMPARE_WITH_TIMEOUT(ids(h.events), range(2, 2), kWait);
    QVERIFY(MongoSource::decodeTokens(h.token).value(ns.toString()) == h.events.last().resumeToken());
}

void TestMongoSource::invalidateIsDeliveredAndWatchingResumesWhenCollectionReturns() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};
    Harness h(peer.uri());
    h.watch(ns);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    peer.pushChange(ns.db, ns.coll, insertEvent(1));
    peer.pushChange(ns.db, ns.coll, json(R"({"operationType":"drop"})"));
    QTRY_COMPARE_WITH_TIMEOUT(
        h.operations(),
        (QStringList{QStringLiteral("insert"), QStringLiteral("drop"), QStringLiteral("invalidate")}), kWait);
    QTRY_VERIFY_WITH_TIMEOUT(h.status().reason.contains(QLatin1String("dropped")), kWait);
    QCOMPARE(h.status().state, SourceStatus::State::Watching);
    const Bson invalidateToken = h.events.last().resumeToken();

    // The stream reopened after the invalidate (startAfter its token) and sees the
    // collection being used again.
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    QCOMPARE(sub(changeStreamStage(peer.receivedCommands(QStringLiteral("aggregate")).last()), "startAfter"),
             invalidateToken);
    peer.pushChange(ns.db, ns.coll, insertEvent(2));
    QTRY_COMPARE_WITH_TIMEOUT(ids(h.events), (QList<int>{1, 2}), kWait);
    QTRY_VERIFY_WITH_TIMEOUT(h.status().reason.isEmpty(), kWait);
}

void TestMongoSource::noChangeStreamsFallsBackToPolling_data() {
    QTest::addColumn<bool>("replicaSet");
    QTest::newRow("standalone") << false;
    QTest::newRow("replica set answering 40573") << true;
}

void TestMongoSource::noChangeStreamsFallsBackToPolling() {
    QFETCH(bool, replicaSet);
    MongoPeer peer;
    QVERIFY(peer.listen());
    peer.setReplicaSet(replicaSet);
    peer.setChangeStreamsSupported(false);
    peer.setWritesProduceChanges(false);
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};
    peer.setDocuments(ns.db, ns.coll,
                      {json(R"({"_id":1,"status":"new","tmp":true})"), json(R"({"_id":2,"status":"new"})"),
                       json(R"({"_id":3,"status":"new"})")});
    Harness h(peer.uri());
    h.watch(ns);
    QTRY_COMPARE_WITH_TIMEOUT(h.status().state, SourceStatus::State::Polling, kWait);
    QVERIFY2(h.status().reason.contains(QLatin1String("40573")), qPrintable(h.status().reason));
    QTRY_VERIFY_WITH_TIMEOUT(!peer.receivedCommands(QStringLiteral("find")).isEmpty(), kWait);
    QTRY_VERIFY_WITH_TIMEOUT(!h.token.isNull() || !h.batches.isEmpty(), kWait); // the baseline
    QVERIFY(h.events.isEmpty());

    // Insert 4, update 1 (status changed, tmp removed, note added), delete 2.
    peer.setDocuments(ns.db, ns.coll,
                      {json(R"({"_id":1,"status":"paid","note":"x"})"), json(R"({"_id":3,"status":"new"})"),
                       json(R"({"_id":4,"status":"new"})")});
    QTRY_COMPARE_WITH_TIMEOUT(h.events.size(), 3, kWait);
    QHash<QByteArray, ChangeEvent> byOp;
    for (const ChangeEvent& e : h.events)
        byOp.insert(e.operationType(), e);
    QCOMPARE(idOf(byOp.value("insert")), 4);
    QCOMPARE(str(byOp.value("insert").fullDocument(), "status"), QStringLiteral("new"));
    const ChangeEvent update = byOp.value("update");
    QCOMPARE(idOf(update), 1);
    QCOMPARE(str(update.updateDescription(), "updatedFields.status"), QStringLiteral("paid"));
    QCOMPARE(str(update.updateDescription(), "updatedFields.note"), QStringLiteral("x"));
    QCOMPARE(str(update.updateDescription(), "removedFields.0"), QStringLiteral("tmp"));
    QCOMPARE(str(update.fullDocument(), "status"), QStringLiteral("paid"));
    QCOMPARE(idOf(byOp.value("delete")), 2);
    for (const ChangeEvent& e : h.events)
        QCOMPARE(e.ns(), ns);
    // One baseline in the checkpoint state per document still there.
    QTRY_COMPARE_WITH_TIMEOUT(h.status().state, SourceStatus::State::Polling, kWait);
}

void TestMongoSource::incrementalPollingUsesTheMonotonicField() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    peer.setReplicaSet(false);
    peer.setWritesProduceChanges(false);
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};
    peer.setDocuments(ns.db, ns.coll,
                      {json(R"({"_id":1,"updatedAt":10})"), json(R"({"_id":2,"updatedAt":20})")});
    Harness h(peer.uri());
    WatchOptions options;
    options.pollField = QStringLiteral("updatedAt");
    h.watch(ns, options);
    QTRY_COMPARE_WITH_TIMEOUT(h.status().state, SourceStatus::State::Polling, kWait);
    QTRY_VERIFY_WITH_TIMEOUT(!h.batches.isEmpty(), kWait);
    peer.setDocuments(ns.db, ns.coll,
                      {json(R"({"_id":1,"updatedAt":30,"v":1})"), json(R"({"_id":2,"updatedAt":20})"),
                       json(R"({"_id":3,"updatedAt":31})")});
    QTRY_COMPARE_WITH_TIMEOUT(h.operations(),
                              (QStringList{QStringLiteral("update"), QStringLiteral("insert")}), kWait);
    // Later polls only ask for what is at or past the high-water mark.
    QTRY_VERIFY_WITH_TIMEOUT(
        has(peer.receivedCommands(QStringLiteral("find")).last(), "filter.updatedAt.$gte"), kWait);
}

void TestMongoSource::unionMatchCombinesSubscriptionFilters() {
    QString error;
    const Filter paid = Filter::compile(R"({"fullDocument.status": "paid"})", &error);
    QVERIFY2(paid.isValid(), qPrintable(error));
    const Filter deletes = Filter::compile(R"({"operationType": "delete"})", &error);
    QVERIFY2(deletes.isValid(), qPrintable(error));

    QCOMPARE(MongoSource::unionMatch({paid.query()}), paid.query());
    QCOMPARE(MongoSource::unionMatch({paid.query(), paid.query()}), paid.query());
    const Bson both = MongoSource::unionMatch({paid.query(), deletes.query()});
    QCOMPARE(sub(both, "$or.0"), paid.query());
    QCOMPARE(sub(both, "$or.1"), deletes.query());
    // Anyone wanting everything, or filtering on fields only Tidewatch adds, turns
    // the push-down off.
    QVERIFY(MongoSource::unionMatch({paid.query(), Filter().query()}).isAbsent());
    QVERIFY(MongoSource::unionMatch({paid.query(), json(R"({"seq": {"$gt": 5}})")}).isAbsent());
    QVERIFY(MongoSource::unionMatch({json(R"({"$or": [{"source": "a"}, {"x": 1}]})")}).isAbsent());
    QVERIFY(MongoSource::unionMatch({}).isAbsent());
}

void TestMongoSource::engineDerivesPushDownFromItsSubscriptions() {
    // The Engine, not the caller of watch(), knows the subscriptions: it sends their
    // union to the server and re-sends it when a subscription comes or goes.
    MongoPeer peer;
    QVERIFY(peer.listen());
    EngineOnPeer run;
    QString error;
    QVERIFY2(run.start(&error), qPrintable(error));
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};
    auto subscribe = [&](const QString& id, const QString& coll, const char* filter) {
        run.engine->addSubscription(subscriptionOn(id, Namespace{QStringLiteral("shop"), coll}, filter));
    };
    subscribe(QStringLiteral("paid"), QStringLiteral("orders"), R"({"fullDocument.status": "paid"})");
    subscribe(QStringLiteral("other"), QStringLiteral("customers"), R"({"operationType": "insert"})");
    QVERIFY2(run.engine->addSource(QStringLiteral("m"), peer.uri(), &error), qPrintable(error));
    run.engine->watch(QStringLiteral("m"), ns);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    // Only the subscription that sees shop.orders counts.
    QCOMPARE(sub(peer.receivedCommands(QStringLiteral("aggregate")).last(), "pipeline.1.$match"),
             json(R"({"fullDocument.status": "paid"})"));
    peer.pushChange(ns.db, ns.coll, insertEvent(1, "pending")); // dropped by the server
    peer.pushChange(ns.db, ns.coll, insertEvent(2, "paid"));
    QTRY_COMPARE_WITH_TIMEOUT(ids(run.committed), (QList<int>{2}), kWait);

    const int aggregates = int(peer.receivedCommands(QStringLiteral("aggregate")).size());
    subscribe(QStringLiteral("deletes"), QStringLiteral("orders"), R"({"operationType": "delete"})");
    QTRY_COMPARE_WITH_TIMEOUT(int(peer.receivedCommands(QStringLiteral("aggregate")).size()), aggregates + 1,
                              kWait);
    const Bson reopened = peer.receivedCommands(QStringLiteral("aggregate")).last();
    QCOMPARE(sub(reopened, "pipeline.1.$match.$or.0"), json(R"({"fullDocument.status": "paid"})"));
    QCOMPARE(sub(reopened, "pipeline.1.$match.$or.1"), json(R"({"operationType": "delete"})"));

    // A subscription that wants everything turns the push-down off.
    subscribe(QStringLiteral("all"), QStringLiteral("orders"), "{}");
    QTRY_COMPARE_WITH_TIMEOUT(int(peer.receivedCommands(QStringLiteral("aggregate")).size()), aggregates + 2,
                              kWait);
    QVERIFY(!has(peer.receivedCommands(QStringLiteral("aggregate")).last(), "pipeline.1"));
    peer.pushChange(ns.db, ns.coll, insertEvent(3, "pending"));
    QTRY_COMPARE_WITH_TIMEOUT(ids(run.committed), (QList<int>{2, 3}), kWait);
}

void TestMongoSource::replayFromBeforeThePushDownWidenedStartsWithAGap() {
    // The $match keeps out of the journal what nobody wanted. A subscription made later
    // that replays from before its filter was pushed down is told so by a gap, and
    // learns it from the journal, after a restart too; one whose events were read all
    // along replays without one.
    MongoPeer peer;
    QVERIFY(peer.listen());
    EngineOnPeer run;
    QString error;
    QVERIFY2(run.start(&error), qPrintable(error));
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};
    const Subscription paid =
        subscriptionOn(QStringLiteral("paid"), ns, R"({"fullDocument.status": "paid"})");
    const Subscription pending =
        subscriptionOn(QStringLiteral("pending"), ns, R"({"fullDocument.status": "pending"})");
    run.engine->addSubscription(paid);
    QVERIFY2(run.engine->addSource(QStringLiteral("m"), peer.uri(), &error), qPrintable(error));
    run.engine->watch(QStringLiteral("m"), ns);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    peer.pushChange(ns.db, ns.coll, insertEvent(1, "pending")); // dropped by the server's $match
    peer.pushChange(ns.db, ns.coll, insertEvent(2, "paid"));
    QTRY_COMPARE_WITH_TIMEOUT(ids(run.committed), (QList<int>{2}), kWait);
    const qint64 widenedAfter = run.committed.last().seq();

    const int aggregates = int(peer.receivedCommands(QStringLiteral("aggregate")).size());
    run.engine->addSubscription(pending);
    QTRY_COMPARE_WITH_TIMEOUT(int(peer.receivedCommands(QStringLiteral("aggregate")).size()), aggregates + 1,
                              kWait);
    peer.pushChange(ns.db, ns.coll, insertEvent(3, "pending"));
    QTRY_COMPARE_WITH_TIMEOUT(ids(run.committed), (QList<int>{2, 3}), kWait);
    run.stop();

    JournalReader reader;
    QVERIFY2(reader.open(run.journalPath(), &error), qPrintable(error));
    Replay late(&reader, Replay::matching(pending), 0);
    late.limitToCoverage(pending);
    QCOMPARE(late.coveredAfter(), widenedAfter);
    const Replay::Chunk first = late.next(100);
    QVERIFY2(first.error.isEmpty(), qPrintable(first.error));
    QVERIFY(first.gap);
    // A notice that skips nothing: it stands at the cursor, and every stored event after.
    QCOMPARE(first.gap->id, 0);
    QCOMPARE(num(first.gap->event.extra(), "requested"), 0);
    QCOMPARE(num(first.gap->event.extra(), "firstAvailable"), 1);
    QVERIFY(first.gap->event.reason().contains(QStringLiteral("1 to %1").arg(widenedAfter)));
    QCOMPARE(ids(first.events), (QList<int>{3}));

    Replay allAlong(&reader, Replay::matching(paid), 0);
    allAlong.limitToCoverage(paid);
    QCOMPARE(allAlong.coveredAfter(), 0);
    const Replay::Chunk whole = allAlong.next(100);
    QVERIFY(!whole.gap);
    QCOMPARE(ids(whole.events), (QList<int>{2}));

    // From after the widening there is nothing to say.
    Replay recent(&reader, Replay::matching(pending), widenedAfter);
    recent.limitToCoverage(pending);
    const Replay::Chunk tail = recent.next(100);
    QVERIFY(!tail.gap);
    QCOMPARE(ids(tail.events), (QList<int>{3}));
}

void TestMongoSource::removingANarrowingSourceEndsItsPeriod() {
    // A removed source reads nothing from then on: its narrowed period ends where it was
    // removed, so a replay or a poll from after that is told of nothing missing however
    // much other sources commit later, and one from before is told up to the removal.
    MongoPeer peer;
    QVERIFY(peer.listen());
    EngineOnPeer run;
    QString error;
    QVERIFY2(run.start(&error), qPrintable(error));
    const Namespace orders{QStringLiteral("shop"), QStringLiteral("orders")};
    run.engine->addSubscription(
        subscriptionOn(QStringLiteral("paid"), orders, R"({"fullDocument.status": "paid"})"));
    // Never added: the push-down never read what it wants.
    const Subscription deletes =
        subscriptionOn(QStringLiteral("deletes"), orders, R"({"operationType": "delete"})");
    QVERIFY2(run.engine->addSource(QStringLiteral("m"), peer.uri(), &error), qPrintable(error));
    run.engine->watch(QStringLiteral("m"), orders);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    peer.pushChange(orders.db, orders.coll, insertEvent(1, "paid"));
    QTRY_COMPARE_WITH_TIMEOUT(ids(run.committed), (QList<int>{1}), kWait);
    const qint64 removedAt = run.committed.last().seq();
    // Emitted on the engine's thread: received on this one (a QSignalSpy records on the
    // emitting thread).
    bool removed = false;
    QObject receiver;
    connect(
        run.engine.get(), &Engine::sourceRemoved, &receiver, [&removed] { removed = true; },
        Qt::QueuedConnection);
    run.engine->removeSource(QStringLiteral("m"));
    QTRY_VERIFY_WITH_TIMEOUT(removed, kWait);
    ChangeBatch later;
    later.sourceId = QStringLiteral("other");
    for (int i = 2; i <= 3; ++i)
        later.events.append(tw::test::makeEvent(later.sourceId, QStringLiteral("orders"), i));
    run.engine->submit(later);
    QTRY_COMPARE_WITH_TIMEOUT(run.committed.size(), 3, kWait);
    run.stop();

    JournalReader reader;
    QVERIFY2(reader.open(run.journalPath(), &error), qPrintable(error));
    Replay fromRemoval(&reader, Replay::matching(deletes), removedAt);
    fromRemoval.limitToCoverage(deletes);
    QCOMPARE(fromRemoval.coveredAfter(), removedAt);
    const Replay::Chunk after = fromRemoval.next(100);
    QVERIFY2(after.error.isEmpty(), qPrintable(after.error));
    QVERIFY(!after.gap);
    Replay fromStart(&reader, Replay::matching(deletes), 0);
    fromStart.limitToCoverage(deletes);
    const Replay::Chunk all = fromStart.next(100);
    QVERIFY(all.gap);
    QVERIFY2(all.gap->event.reason().contains(QStringLiteral("events 1 to %1 may be").arg(removedAt)),
             qPrintable(all.gap->event.reason()));
}

void TestMongoSource::unwatchEndsTheNarrowedPeriod() {
    // After an unwatch the source no longer reads the scope, so the period it read it
    // narrowed ends there: a poll from after that (what a long poll or an MCP poll reads)
    // gets no gap notice for events of the scopes still watched. An explicit match is
    // the watch's own filter, not a narrowing: it never makes a notice either.
    MongoPeer peer;
    QVERIFY(peer.listen());
    EngineOnPeer run;
    QString error;
    QVERIFY2(run.start(&error), qPrintable(error));
    const Namespace orders{QStringLiteral("shop"), QStringLiteral("orders")};
    const Namespace items{QStringLiteral("shop"), QStringLiteral("items")};
    const Namespace notes{QStringLiteral("shop"), QStringLiteral("notes")};
    const Subscription paid =
        subscriptionOn(QStringLiteral("paid"), orders, R"({"fullDocument.status": "paid"})");
    const Subscription onShop =
        subscriptionOn(QStringLiteral("shop"), Namespace{QStringLiteral("shop"), {}}, "{}");
    const Subscription onNotes =
        subscriptionOn(QStringLiteral("notes"), notes, R"({"fullDocument.status": "pending"})");
    run.engine->addSubscription(paid);
    run.engine->addSubscription(subscriptionOn(QStringLiteral("items"), items, "{}")); // reads items whole
    QVERIFY2(run.engine->addSource(QStringLiteral("m"), peer.uri(), &error), qPrintable(error));
    run.engine->watch(QStringLiteral("m"), orders);
    run.engine->watch(QStringLiteral("m"), items);
    WatchOptions explicitMatch;
    explicitMatch.match = json(R"({"fullDocument.status": "paid"})");
    run.engine->watch(QStringLiteral("m"), notes, explicitMatch);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 3, kWait);
    peer.pushChange(orders.db, orders.coll, insertEvent(1, "paid"));
    QTRY_COMPARE_WITH_TIMEOUT(ids(run.committed), (QList<int>{1}), kWait);

    run.engine->unwatch(QStringLiteral("m"), orders);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 2, kWait);
    peer.pushChange(items.db, items.coll, insertEvent(2));
    peer.pushChange(notes.db, notes.coll, insertEvent(3, "paid"));
    // Two streams: their events commit in either order.
    QTRY_COMPARE_WITH_TIMEOUT(run.committed.size(), 3, kWait);
    QList<int> seen = ids(run.committed);
    std::sort(seen.begin(), seen.end());
    QCOMPARE(seen, (QList<int>{1, 2, 3}));
    const qint64 unwatchedAt = run.committed.first().seq();
    run.stop();

    JournalReader reader;
    QVERIFY2(reader.open(run.journalPath(), &error), qPrintable(error));
    // A poll from after the unwatch: items were read whole, orders no longer are.
    Replay poll(&reader, Replay::matching(onShop), unwatchedAt);
    poll.limitToCoverage(onShop);
    QCOMPARE(poll.coveredAfter(), unwatchedAt);
    const Replay::Chunk chunk = poll.next(100);
    QVERIFY2(chunk.error.isEmpty(), qPrintable(chunk.error));
    QVERIFY(!chunk.gap);
    QCOMPARE(chunk.events.size(), 2);
    // From before it, the narrowed period of orders is still told.
    Replay early(&reader, Replay::matching(onShop), 0);
    early.limitToCoverage(onShop);
    const Replay::Chunk all = early.next(100);
    QVERIFY(all.gap);
    QCOMPARE(all.gap->id, 0);
    QCOMPARE(all.events.size(), 3);
    // The explicit match of notes narrows nothing, whatever the subscription's filter.
    Replay notesReplay(&reader, Replay::matching(onNotes), 0);
    notesReplay.limitToCoverage(onNotes);
    QCOMPARE(notesReplay.coveredAfter(), 0);
    QVERIFY(!notesReplay.next(100).gap);
}

void TestMongoSource::pushDownIsUnionAndChangingItReopensLosingNothing() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};
    const Bson paid = json(R"({"fullDocument.status": "paid"})");
    const Bson deletes = json(R"({"operationType": "delete"})");
    const Bson shipped = json(R"({"fullDocument.status": "shipped"})");
    Harness h(peer.uri());
    WatchOptions options;
    options.match = MongoSource::unionMatch({paid, deletes});
    h.watch(ns, options);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    const Bson first = peer.receivedCommands(QStringLiteral("aggregate")).last();
    QCOMPARE(sub(first, "pipeline.1.$match"), options.match);
    QCOMPARE(sub(first, "pipeline.1.$match.$or.0"), paid);
    QCOMPARE(sub(first, "pipeline.1.$match.$or.1"), deletes);

    peer.pushChange(ns.db, ns.coll, insertEvent(1, "paid"));
    peer.pushChange(ns.db, ns.coll, insertEvent(2, "pending")); // filtered on the server
    peer.pushChange(ns.db, ns.coll, json(R"({"operationType":"delete","documentKey":{"_id":1}})"));
    QTRY_COMPARE_WITH_TIMEOUT(h.operations(),
                              (QStringList{QStringLiteral("insert"), QStringLiteral("delete")}), kWait);
    const Bson lastToken = h.events.last().resumeToken();

    // Written before a subscription for shipped orders joins: the current stream
    // drops it on the server and reports a position past it.
    const int getMores = int(peer.receivedCommands(QStringLiteral("getMore")).size());
    peer.pushChange(ns.db, ns.coll, insertEvent(3, "shipped"));
    QTRY_VERIFY_WITH_TIMEOUT(peer.receivedCommands(QStringLiteral("getMore")).size() > getMores + 1, kWait);
    QCOMPARE(h.events.size(), 2);

    const int aggregatesBefore = int(peer.receivedCommands(QStringLiteral("aggregate")).size());
    options.match = MongoSource::unionMatch({paid, deletes, shipped});
    h.watch(ns, options);
    QTRY_COMPARE_WITH_TIMEOUT(int(peer.receivedCommands(QStringLiteral("aggregate")).size()),
                              aggregatesBefore + 1, kWait);
    peer.pushChange(ns.db, ns.coll, insertEvent(4, "paid"));
    peer.pushChange(ns.db, ns.coll, insertEvent(5, "shipped"));
    peer.pushChange(ns.db, ns.coll, insertEvent(6, "pending"));
    QTRY_COMPARE_WITH_TIMEOUT(h.events.size(), 5, kWait);
    // The reopened stream starts at the last delivered event, not at the position
    // the old one reached: the shipped order written in between is not lost.
    QCOMPARE(ids(h.events), (QList<int>{1, 3, 4, 5}));

    const Bson reopened = peer.receivedCommands(QStringLiteral("aggregate")).last();
    QCOMPARE(sub(reopened, "pipeline.1.$match.$or.2"), shipped);
    QCOMPARE(sub(changeStreamStage(reopened), "startAfter"), lastToken);
    QTest::qWait(200);
    QCOMPARE(h.events.size(), 5);
}

void TestMongoSource::engineLeavesOutDataChangesForSchemaSubscriptions() {
    // A subscription to schema changes only: the server sends no data changes, and
    // the schema events it wants still come.
    MongoPeer peer;
    QVERIFY(peer.listen());
    EngineOnPeer run;
    QString error;
    QVERIFY2(run.start(&error), qPrintable(error));
    const Namespace ns{QStringLiteral("shop"), QStringLiteral("orders")};
    Subscription schema;
    schema.id = QStringLiteral("schema");
    schema.changes = Subscription::Changes::Schema;
    schema.filter = Filter::compile("{}");
    run.engine->addSubscription(schema);
    QVERIFY2(run.engine->addSource(QStringLiteral("m"), peer.uri(), &error), qPrintable(error));
    run.engine->watch(QStringLiteral("m"), ns);
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 1, kWait);
    const Bson aggregate = peer.receivedCommands(QStringLiteral("aggregate")).last();
    QCOMPARE(sub(aggregate, "pipeline.1.$match"),
             json(R"({"operationType": {"$nin": ["insert", "update", "replace", "delete"]}})"));
    QVERIFY(has(changeStreamStage(aggregate), "showExpandedEvents"));

    peer.pushChange(ns.db, ns.coll, insertEvent(1)); // dropped by the server
    QVERIFY(runCommand(peer.uri(), "shop",
                       R"({"createIndexes": "orders", "indexes": [{"key": {"n": 1}, "name": "n_1"}]})"));
    const auto operations = [&] {
        QStringList out;
        for (const ChangeEvent& e : run.committed)
            out.append(QString::fromUtf8(e.operationType()));
        return out;
    };
    QTRY_COMPARE_WITH_TIMEOUT(
        operations(), (QStringList{QStringLiteral("create"), QStringLiteral("createIndexes")}), kWait);

    // A subscription to data changes too: the server sends everything again.
    Subscription data;
    data.id = QStringLiteral("data");
    data.changes = Subscription::Changes::Data;
    data.filter = Filter::compile("{}");
    const int aggregates = int(peer.receivedCommands(QStringLiteral("aggregate")).size());
    run.engine->addSubscription(data);
    QTRY_COMPARE_WITH_TIMEOUT(int(peer.receivedCommands(QStringLiteral("aggregate")).size()), aggregates + 1,
                              kWait);
    QVERIFY(!has(peer.receivedCommands(QStringLiteral("aggregate")).last(), "pipeline.1"));
    peer.pushChange(ns.db, ns.coll, insertEvent(2));
    QTRY_COMPARE_WITH_TIMEOUT(ids(run.committed), (QList<int>{2}), kWait);
}

void TestMongoSource::oneUpstreamStreamPerScope() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    const Namespace orders{QStringLiteral("shop"), QStringLiteral("orders")};
    h.watch(orders);
    h.watch(orders); // a second subscription on the same scope
    h.watch(Namespace{QStringLiteral("shop"), {}});
    h.watch(Namespace{});
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 3, kWait);
    QTest::qWait(300);
    QCOMPARE(peer.openChangeStreamCount(), 3);
    QCOMPARE(peer.receivedCommands(QStringLiteral("aggregate")).size(), 3);
    peer.pushChange(orders.db, orders.coll, insertEvent(1));
    // Collection, database and deployment streams each see it once.
    QTRY_COMPARE_WITH_TIMEOUT(h.events.size(), 3, kWait);
    QTest::qWait(200);
    QCOMPARE(h.events.size(), 3);
    const QMap<QString, Bson> tokens = MongoSource::decodeTokens(h.token);
    QVERIFY(tokens.contains(QStringLiteral("shop.orders")));
    QVERIFY(tokens.contains(QStringLiteral("shop")));
    QVERIFY(tokens.contains(QString()));
}

void TestMongoSource::backoffScheduleAgainstDeadPeer() {
    const QString uri =
        QStringLiteral("mongodb://127.0.0.1:%1/?directConnection=true&serverSelectionTimeoutMS=100")
            .arg(deadPort());
    Harness h(uri);
    h.watch(Namespace{QStringLiteral("shop"), QStringLiteral("orders")});
    auto backoffs = [&h] {
        QList<qint64> delays;
        for (int i = 0; i < h.statuses.size(); ++i)
            if (h.statuses[i].state == SourceStatus::State::Backoff)
                delays.append(h.statuses[i].nextRetry.toMSecsSinceEpoch() - h.statusTimes[i]);
        return delays;
    };
    QTRY_VERIFY_WITH_TIMEOUT(backoffs().size() >= 4, 30000);
    const QList<qint64> delays = backoffs();
    const qint64 expected[] = {500, 1000, 2000, 4000};
    for (int i = 0; i < 4; ++i) {
        // +/-20 % jitter, and a little for the queued delivery of the status.
        QVERIFY2(delays[i] >= expected[i] * 0.8 - 50 && delays[i] <= expected[i] * 1.2 + 10,
                 qPrintable(QStringLiteral("attempt %1: %2 ms").arg(i + 1).arg(delays[i])));
    }
    QVERIFY(h.status().reason.contains(QLatin1String("retrying")));
    QVERIFY(h.status().nextRetry.isValid());
}

void TestMongoSource::backoffIsCappedAndStopIsPromptDuringBackoff() {
    const QString uri =
        QStringLiteral("mongodb://127.0.0.1:%1/?directConnection=true&serverSelectionTimeoutMS=50")
            .arg(deadPort());
    Harness h(uri, {}, [](MongoSource* s) { s->setBackoff(40, 160, 0.0); });
    h.watch(Namespace{QStringLiteral("shop"), QStringLiteral("orders")});
    auto delays = [&h] {
        QList<qint64> out;
        for (int i = 0; i < h.statuses.size(); ++i)
            if (h.statuses[i].state == SourceStatus::State::Backoff)
                out.append(h.statuses[i].nextRetry.toMSecsSinceEpoch() - h.statusTimes[i]);
        return out;
    };
    QTRY_VERIFY_WITH_TIMEOUT(delays().size() >= 6, 30000);
    const QList<qint64> d = delays();
    QVERIFY2(d[4] <= 170 && d[5] <= 170 && d[4] >= 100,
             qPrintable(QStringLiteral("%1 %2").arg(d[4]).arg(d[5])));

    // Now in the middle of the schedule: stop must not wait for the next attempt.
    QElapsedTimer timer;
    timer.start();
    const qint64 took = h.stop();
    QVERIFY2(took < 1000, qPrintable(QString::number(took)));
    QVERIFY2(timer.elapsed() < 1500, qPrintable(QString::number(timer.elapsed())));
    QCOMPARE(h.status().state, SourceStatus::State::Stopped);
}

void TestMongoSource::stopIsPromptWhileStreaming() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    Harness h(peer.uri());
    WatchOptions slow;
    slow.maxAwaitTimeMs = 5000; // clamped: a getMore must not hold stop() back
    h.watch(Namespace{QStringLiteral("shop"), QStringLiteral("orders")}, slow);
    h.watch(Namespace{QStringLiteral("shop"), {}});
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 2, kWait);
    QTRY_VERIFY_WITH_TIMEOUT(peer.receivedCommands(QStringLiteral("getMore")).size() >= 2, kWait);
    QElapsedTimer timer;
    timer.start();
    const qint64 took = h.stop();
    QVERIFY2(timer.elapsed() < 1000,
             qPrintable(QStringLiteral("%1 ms (stop() itself %2 ms)").arg(timer.elapsed()).arg(took)));
    QTRY_COMPARE_WITH_TIMEOUT(peer.openChangeStreamCount(), 0, kWait); // cursors killed
}

void TestMongoSource::listsDatabasesAndCollectionsMarkingViewsAndSystem() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    peer.createCollection(QStringLiteral("shop"), QStringLiteral("orders"));
    peer.createCollection(QStringLiteral("shop"), QStringLiteral("system.profile"));
    peer.createView(QStringLiteral("shop"), QStringLiteral("paid"), QStringLiteral("orders"),
                    {json(R"({"$match": {"status": "paid"}})")});
    Harness h(peer.uri());
    h.list(QString());
    QTRY_COMPARE_WITH_TIMEOUT(h.listings, 1, kWait);
    QVERIFY2(h.listError.isEmpty(), qPrintable(h.listError));
    QHash<QString, QString> kinds;
    for (const NamespaceInfo& info : h.listed)
        kinds.insert(info.ns.toString(), info.kind);
    QCOMPARE(kinds.value(QStringLiteral("shop")), QStringLiteral("database"));
    QCOMPARE(kinds.value(QStringLiteral("admin")), QStringLiteral("system"));

    h.list(QStringLiteral("shop"));
    QTRY_COMPARE_WITH_TIMEOUT(h.listings, 2, kWait);
    kinds.clear();
    for (const NamespaceInfo& info : h.listed)
        kinds.insert(info.ns.toString(), info.kind);
    QCOMPARE(kinds.value(QStringLiteral("shop.orders")), QStringLiteral("collection"));
    QCOMPARE(kinds.value(QStringLiteral("shop.paid")), QStringLiteral("view"));
    QCOMPARE(kinds.value(QStringLiteral("shop.system.profile")), QStringLiteral("system"));
    const Bson command = peer.receivedCommands(QStringLiteral("listCollections")).last();
    bson_iter_t it;
    QVERIFY(lookup(command, "nameOnly", &it) && bson_iter_as_bool(&it));
}

void TestMongoSource::handshakeErrorShowsRedactedUri() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    // The peer knows no authentication: the SCRAM conversation fails at its start.
    QString uri = peer.uri();
    uri.replace(QLatin1String("mongodb://"), QLatin1String("mongodb://alice:s3cr3tpw@"));
    Harness h(uri);
    h.watch(Namespace{QStringLiteral("shop"), QStringLiteral("orders")});
    QTRY_VERIFY_WITH_TIMEOUT(h.status().state == SourceStatus::State::Error ||
                                 h.status().state == SourceStatus::State::Backoff,
                             kWait);
    const QString reason = h.status().reason;
    QVERIFY2(!reason.contains(QLatin1String("s3cr3tpw")), qPrintable(reason));
    QVERIFY2(reason.contains(QLatin1String("alice:****@")), qPrintable(reason));
    QVERIFY(h.status().nextRetry.isValid());
}

QTEST_GUILESS_MAIN(TestMongoSource)
#include "tst_mongosource.moc"

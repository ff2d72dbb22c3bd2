// The MongoDB wire peer, checked against the real driver (libmongoc): if these
// pass, the peer answers the way libmongoc expects a server to, and the MongoSource
// tests that use it test the source rather than the peer.

#include "BsonPaths.h"
#include "MongoPeer.h"
#include "MongoPeerBson.h"
#include "OffThread.h"

#include <QElapsedTimer>
#include <QSignalSpy>
#include <QTcpSocket>
#include <QTest>

#include <mongoc/mongoc.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

using namespace std::chrono_literals;
using tw::Bson;
using tw::BsonBuilder;
using tw::test::MongoPeer;

namespace {

using namespace tw::test;

// The peer lives on this thread and the driver blocks, so driver calls run through
// offThread(); the driver's own timeouts (serverSelectionTimeoutMS, socketTimeoutMS in
// the URI) bound the wait.

struct ClientDeleter {
    void operator()(mongoc_client_t* client) const {
        // Destroying a client sends endSessions and waits for the answer.
        offThread([client] {
            mongoc_client_destroy(client);
            return 0;
        });
    }
};
using ClientPtr = std::unique_ptr<mongoc_client_t, ClientDeleter>;

// Short timeouts so that a peer bug fails a test instead of hanging it.
ClientPtr makeClient(const QString& uri) {
    const QString full =
        uri + QStringLiteral("&serverSelectionTimeoutMS=3000&socketTimeoutMS=10000&appname=tst");
    mongoc_client_t* client = mongoc_client_new(full.toUtf8().constData());
    if (client)
        mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    return ClientPtr(client);
}

struct CommandResult {
    bool ok = false;
    Bson reply;
    bson_error_t error{};
};

CommandResult runCommand(mongoc_client_t* client, const char* db, const Bson& command) {
    return offThread([=] {
        CommandResult result;
        bson_t cmd, reply;
        command.view(&cmd);
        result.ok = mongoc_client_command_simple(client, db, &cmd, nullptr, &reply, &result.error);
        result.reply = Bson::fromBsonT(&reply);
        bson_destroy(&reply);
        return result;
    });
}

// Runs a change stream on its own thread and collects what it yields, the way
// MongoSource's worker does.
class StreamReader {
public:
    StreamReader(mongoc_client_t* client, QByteArray db, QByteArray coll, Bson pipeline, Bson opts)
        : m_client(client)
        , m_db(std::move(db))
        , m_coll(std::move(coll))
        , m_pipeline(std::move(pipeline))
        , m_opts(std::move(opts)) {
        m_thread = std::thread([this] { run(); });
    }
    ~StreamReader() { stop(); }

    void stop() {
        m_stop = true;
        // The worker may be parked in a getMore or sending killCursors: both need
        // the peer, so keep its event loop running until the worker is done.
        while (!m_finished)
            QTest::qWait(2);
        if (m_thread.joinable())
            m_thread.join();
    }
    QList<Bson> events() const {
        std::lock_guard lock(m_mutex);
        return m_events;
    }
    int eventCount() const { return int(events().size()); }
    bool hasError() const {
        std::lock_guard lock(m_mutex);
        return m_errorCode != 0;
    }
    quint32 errorCode() const {
        std::lock_guard lock(m_mutex);
        return m_errorCode;
    }
    Bson errorReply() const {
        std::lock_guard lock(m_mutex);
        return m_errorReply;
    }
    QString errorMessage() const {
        std::lock_guard lock(m_mutex);
        return m_errorMessage;
    }
    bool isFinished() const { return m_finished; }

private:
    void run() {
        bson_t pipeline, opts;
        m_pipeline.view(&pipeline);
        m_opts.view(&opts);
        // An empty collection watches the database, an empty database the deployment.
        mongoc_collection_t* coll = nullptr;
        mongoc_change_stream_t* stream = nullptr;
        if (m_db.isEmpty()) {
            stream = mongoc_client_watch(m_client, &pipeline, &opts);
        } else if (m_coll.isEmpty()) {
            mongoc_database_t* db = mongoc_client_get_database(m_client, m_db.constData());
            stream = mongoc_database_watch(db, &pipeline, &opts);
            mongoc_database_destroy(db);
        } else {
            coll = mongoc_client_get_collection(m_client, m_db.constData(), m_coll.constData());
            stream = mongoc_collection_watch(coll, &pipeline, &opts);
        }
        while (!m_stop) {
            const bson_t* doc = nullptr;
            if (mongoc_change_stream_next(stream, &doc)) {
                const Bson event = Bson::fromBsonT(doc);
                std::lock_guard lock(m_mutex);
                m_events.append(event);
                // After invalidate the cursor is closed; calling next again makes
                // libmongoc resume with resumeAfter=<invalidate token>, which a
                // server refuses (260). A consumer stops here.
                if (str(event, "operationType") == QLatin1String("invalidate"))
                    break;
                continue;
            }
            bson_error_t error;
            const bson_t* reply = nullptr;
            if (mongoc_change_stream_error_document(stream, &error, &reply)) {
                std::lock_guard lock(m_mutex);
                m_errorCode = error.code ? error.code : 1;
                m_errorMessage = QString::fromUtf8(error.message);
                m_errorReply = reply ? Bson::fromBsonT(reply) : Bson();
                break;
            }
        }
        mongoc_change_stream_destroy(stream);
        mongoc_collection_destroy(coll);
        m_finished = true;
    }

    mongoc_client_t* m_client; // not owned; used only by this thread while it runs
    QByteArray m_db, m_coll;
    Bson m_pipeline, m_opts;
    std::thread m_thread;
    std::atomic<bool> m_stop{false};
    std::atomic<bool> m_finished{false};
    mutable std::mutex m_mutex;
    QList<Bson> m_events;
    quint32 m_errorCode = 0;
    QString m_errorMessage;
    Bson m_errorReply;
};

// True when the last received command `name` has a true `field`.
bool boolFromCommand(const MongoPeer& peer, const char* name, const char* field) {
    const QList<Bson> commands = peer.receivedCommands(QString::fromLatin1(name));
    if (commands.isEmpty())
        return false;
    bson_iter_t it;
    return lookup(commands.last(), field, &it) && bson_iter_as_bool(&it);
}

// --- raw wire helpers for the framing tests ----------------------------------------

void put32(QByteArray& out, quint32 v) {
    for (int i = 0; i < 4; ++i)
        out.append(char((v >> (8 * i)) & 0xff));
}

qint32 get32(const QByteArray& in, int at) {
    quint32 v = 0;
    for (int i = 3; i >= 0; --i)
        v = (v << 8) | quint8(in.at(at + i));
    return qint32(v);
}

struct Sequence {
    QByteArray identifier;
    QList<Bson> documents;
};

QByteArray opMsg(qint32 requestId, quint32 flags, const Bson& body, const QList<Sequence>& sequences = {},
                 bool corruptChecksum = false) {
    QByteArray payload;
    payload.append(char(0));
    payload.append(body.raw());
    for (const Sequence& s : sequences) {
        QByteArray section = s.identifier + '\0';
        for (const Bson& d : s.documents)
            section.append(d.raw());
        payload.append(char(1));
        put32(payload, quint32(section.size() + 4));
        payload.append(section);
    }
    const bool checksum = flags & 1u;
    QByteArray msg;
    put32(msg, quint32(16 + 4 + payload.size() + (checksum ? 4 : 0)));
    put32(msg, quint32(requestId));
    put32(msg, 0);
    put32(msg, 2013);
    put32(msg, flags);
    msg.append(payload);
    if (checksum)
        put32(msg, MongoPeer::crc32c(msg) ^ (corruptChecksum ? 1u : 0u));
    return msg;
}

QByteArray opQuery(qint32 requestId, const QByteArray& fullCollectionName, const Bson& query) {
    QByteArray msg;
    QByteArray body;
    put32(body, 0); // flags
    body.append(fullCollectionName + '\0');
    put32(body, 0);           // numberToSkip
    put32(body, quint32(-1)); // numberToReturn
    body.append(query.raw());
    put32(msg, quint32(16 + body.size()));
    put32(msg, quint32(requestId));
    put32(msg, 0);
    put32(msg, 2004);
    msg.append(body);
    return msg;
}

class RawClient {
public:
    bool connectTo(quint16 port) {
        m_socket.connectToHost(QHostAddress::LocalHost, port);
        return QTest::qWaitFor([&] { return m_socket.state() == QAbstractSocket::ConnectedState; }, 5000);
    }
    void send(const QByteArray& bytes) { m_socket.write(bytes); }
    // One whole message, or nullopt when none arrives within the time.
    std::optional<QByteArray> read(int timeoutMs = 5000) {
        const bool got = QTest::qWaitFor(
            [&] {
                m_buffer.append(m_socket.readAll());
                return m_buffer.size() >= 4 && m_buffer.size() >= get32(m_buffer, 0);
            },
            timeoutMs);
        if (!got)
            return std::nullopt;
        const qint32 len = get32(m_buffer, 0);
        const QByteArray msg = m_buffer.left(len);
        m_buffer.remove(0, len);
        return msg;
    }
    bool waitForDisconnect(int timeoutMs = 3000) {
        return QTest::qWaitFor([&] { return m_socket.state() == QAbstractSocket::UnconnectedState; },
                               timeoutMs);
    }

private:
    QTcpSocket m_socket;
    QByteArray m_buffer;
};

Bson opMsgBody(const QByteArray& msg) {
    // header (16) + flagBits (4) + kind byte (1) + document
    return Bson::fromRaw(msg.mid(21, get32(msg, 21)));
}

} // namespace

class TestMongoPeer : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { mongoc_init(); }
    void cleanupTestCase() { mongoc_cleanup(); }

    void crc32cMatchesTheCastagnoliCheckValue();
    void pingThroughDriver_data();
    void pingThroughDriver();
    void helloReportsReplicaSetMemberShape();
    void helloReportsStandaloneShape();
    void driverRefusesTooOldWireVersion();
    void failNextCommandSurfacesServerError();
    void listDatabasesAndCollections();
    void findIteratesWithGetMore();
    void findFiltersSortsAndLimits();
    void changeStreamDeliversPushedEvents();
    void changeStreamSeesDriverWrites();
    void changeStreamGetMoreWaitsForMaxTime();
    void changeStreamResumesAfterDroppedConnection();
    void changeStreamResumesWithStartAfterBeforeFirstEvent();
    void changeStreamScopes_data();
    void changeStreamScopes();
    void changeStreamStartsAtOperationTime();
    void closeConnectionFailpointIsANetworkError();
    void changeStreamResumability_data();
    void changeStreamResumability();
    void changeStreamHistoryLostSurfaces_data();
    void changeStreamHistoryLostSurfaces();
    void changeStreamHistoryLostAfterForgetHistory();
    void changeStreamOnStandaloneFailsWith40573();
    void changeStreamInvalidatedByDrop();
    void changeStreamRefusesShowExpandedEventsAsMongoDb50();
    void schemaCommandsLogTheExpandedEvents();
    void stalledPeerAnswersAfterStallEnds();
    void rawOpMsgFramingAndChecksum();
    void rawOpMsgMoreToComeGetsNoReply();
    void rawOpMsgDocumentSequencesAreMerged();
    void rawOpQueryHandshakeAndLegacyRejection();
};

void TestMongoPeer::crc32cMatchesTheCastagnoliCheckValue() {
    // The standard check value of CRC-32C over "123456789".
    QCOMPARE(MongoPeer::crc32c("123456789"), 0xE3069283u);
}

void TestMongoPeer::pingThroughDriver_data() {
    QTest::addColumn<bool>("replicaSet");
    QTest::addColumn<QString>("extraUri");
    QTest::newRow("replica set") << true << QString();
    QTest::newRow("replica set, directConnection") << true << QStringLiteral("&directConnection=true");
    QTest::newRow("standalone") << false << QString();
}

void TestMongoPeer::pingThroughDriver() {
    QFETCH(bool, replicaSet);
    QFETCH(QString, extraUri);
    MongoPeer peer;
    peer.setReplicaSet(replicaSet);
    QVERIFY(peer.listen());
    QSignalSpy connected(&peer, &MongoPeer::clientConnected);
    ClientPtr client = makeClient(peer.uri() + extraUri);
    QVERIFY(client);

    const CommandResult result = runCommand(client.get(), "admin", json(R"({"ping": 1})"));
    QVERIFY2(result.ok, result.error.message);
    QCOMPARE(num(result.reply, "ok"), 1);
    QVERIFY(connected.count() >= 1);

    // libmongoc 1.23 opens with the legacy handshake, then speaks OP_MSG.
    const QStringList names = peer.receivedCommandNames();
    QVERIFY(!names.isEmpty());
    QVERIFY2(names.first().compare(QLatin1String("isMaster"), Qt::CaseInsensitive) == 0 ||
                 names.first() == QLatin1String("hello"),
             qPrintable(names.join(QLatin1Char(','))));
    QCOMPARE(str(peer.receivedCommands().first(), "client.driver.name").left(6), QStringLiteral("mongoc"));
    const QList<Bson> pings = peer.receivedCommands(QStringLiteral("ping"));
    QCOMPARE(pings.size(), 1);
    QCOMPARE(str(pings.first(), "$db"), QStringLiteral("admin"));
    // Sessions are advertised, so the driver attaches one; cluster time is
    // gossiped only by a replica set.
    QVERIFY(has(pings.first(), "lsid"));
    QCOMPARE(has(pings.first(), "$clusterTime"), replicaSet);
}

void TestMongoPeer::helloReportsReplicaSetMemberShape() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    const CommandResult result = runCommand(client.get(), "admin", json(R"({"hello": 1})"));
    QVERIFY2(result.ok, result.error.message);
    bson_iter_t it;
    QVERIFY(lookup(result.reply, "isWritablePrimary", &it) && bson_iter_as_bool(&it));
    QCOMPARE(str(result.reply, "setName"), QStringLiteral("rs0"));
    QCOMPARE(str(result.reply, "me"), peer.hostAndPort());
    QCOMPARE(str(result.reply, "primary"), peer.hostAndPort());
    QCOMPARE(str(result.reply, "hosts.0"), peer.hostAndPort());
    QCOMPARE(num(result.reply, "maxWireVersion"), 17);
    QCOMPARE(num(result.reply, "minWireVersion"), 0);
    QCOMPARE(num(result.reply, "logicalSessionTimeoutMinutes"), 30);
    QVERIFY(num(result.reply, "connectionId") >= 1);
    QVERIFY(has(result.reply, "$clusterTime.clusterTime"));
    QVERIFY(has(result.reply, "operationTime"));
    // hello answers with isWritablePrimary, not the legacy ismaster.
    QVERIFY(!has(result.reply, "ismaster"));

    const CommandResult legacy = runCommand(client.get(), "admin", json(R"({"isMaster": 1})"));
    QVERIFY2(legacy.ok, legacy.error.message);
    QVERIFY(has(legacy.reply, "ismaster"));
    QVERIFY(!has(legacy.reply, "isWritablePrimary"));

    const CommandResult build = runCommand(client.get(), "admin", json(R"({"buildInfo": 1})"));
    QVERIFY2(build.ok, build.error.message);
    QCOMPARE(str(build.reply, "version"), QStringLiteral("6.0.0"));
    QCOMPARE(num(build.reply, "versionArray.0"), 6);
}

void TestMongoPeer::helloReportsStandaloneShape() {
    MongoPeer peer;
    peer.setReplicaSet(false);
    peer.setMaxWireVersion(13);
    QVERIFY(peer.listen());
    QVERIFY(!peer.uri().contains(QLatin1String("replicaSet")));
    ClientPtr client = makeClient(peer.uri());
    const CommandResult result = runCommand(client.get(), "admin", json(R"({"hello": 1})"));
    QVERIFY2(result.ok, result.error.message);
    QVERIFY(!has(result.reply, "setName"));
    QVERIFY(!has(result.reply, "hosts"));
    QVERIFY(!has(result.reply, "$clusterTime"));
    QCOMPARE(num(result.reply, "maxWireVersion"), 13);
    const CommandResult build = runCommand(client.get(), "admin", json(R"({"buildInfo": 1})"));
    QCOMPARE(str(build.reply, "version"), QStringLiteral("5.0.0"));
}

void TestMongoPeer::driverRefusesTooOldWireVersion() {
    // libmongoc 1.23 needs wire version 6 (MongoDB 3.6); the peer's setting must
    // reach the driver's compatibility check.
    MongoPeer peer;
    peer.setMaxWireVersion(5);
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    const CommandResult result = runCommand(client.get(), "admin", json(R"({"ping": 1})"));
    QVERIFY(!result.ok);
    QVERIFY2(QString::fromUtf8(result.error.message).contains(QLatin1String("wire version")),
             result.error.message);
    QVERIFY(peer.receivedCommands(QStringLiteral("ping")).isEmpty());
}

void TestMongoPeer::failNextCommandSurfacesServerError() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    peer.failNextCommand(
        QStringLiteral("ping"),
        MongoPeer::errorDocument(13, QStringLiteral("Unauthorized"), QStringLiteral("not allowed")), 2);
    for (int i = 0; i < 2; ++i) {
        const CommandResult failed = runCommand(client.get(), "admin", json(R"({"ping": 1})"));
        QVERIFY(!failed.ok);
        QCOMPARE(failed.error.domain, quint32(MONGOC_ERROR_SERVER));
        QCOMPARE(failed.error.code, 13u);
        QCOMPARE(str(failed.reply, "codeName"), QStringLiteral("Unauthorized"));
    }
    const CommandResult ok = runCommand(client.get(), "admin", json(R"({"ping": 1})"));
    QVERIFY2(ok.ok, ok.error.message);

    const CommandResult unknown = runCommand(client.get(), "admin", json(R"({"frobnicate": 1})"));
    QVERIFY(!unknown.ok);
    QCOMPARE(unknown.error.code, 59u);
}

void TestMongoPeer::listDatabasesAndCollections() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    peer.setDocuments(QStringLiteral("shop"), QStringLiteral("orders"), {json(R"({"_id": 1})")});
    peer.setDocuments(QStringLiteral("shop"), QStringLiteral("users"), {});
    peer.setDocuments(QStringLiteral("crm"), QStringLiteral("leads"), {});
    peer.createView(QStringLiteral("shop"), QStringLiteral("bigOrders"), QStringLiteral("orders"),
                    {json(R"({"$match": {"total": {"$gt": 100}}})")});
    ClientPtr client = makeClient(peer.uri());

    const QStringList dbs = offThread([&] {
        QStringList names;
        bson_error_t error;
        char** raw = mongoc_client_get_database_names_with_opts(client.get(), nullptr, &error);
        for (char** p = raw; p && *p; ++p)
            names.append(QString::fromUtf8(*p));
        bson_strfreev(raw);
        return names;
    });
    QVERIFY2(dbs.contains(QLatin1String("shop")) && dbs.contains(QLatin1String("crm")),
             qPrintable(dbs.join(',')));
    QVERIFY(dbs.contains(QLatin1String("admin")));
    QVERIFY(boolFromCommand(peer, "listDatabases", "nameOnly"));

    const auto listCollections = [&](const char* opts) {
        return offThread([&] {
            QList<QPair<QString, QString>> out;
            mongoc_database_t* db = mongoc_client_get_database(client.get(), "shop");
            bson_t o;
            const Bson optsDoc = json(opts);
            optsDoc.view(&o);
            mongoc_cursor_t* cursor = mongoc_database_find_collections_with_opts(db, &o);
            const bson_t* doc = nullptr;
            while (mongoc_cursor_next(cursor, &doc)) {
                const Bson d = Bson::fromBsonT(doc);
                out.append({str(d, "name"), str(d, "type")});
            }
            bson_error_t error;
            if (mongoc_cursor_error(cursor, &error))
                out.append({QStringLiteral("error"), QString::fromUtf8(error.message)});
            mongoc_cursor_destroy(cursor);
            mongoc_database_destroy(db);
            return out;
        });
    };
    const auto all = listCollections("{}");
    QCOMPARE(all.size(), 3);
    QVERIFY(all.contains(qMakePair(QStringLiteral("bigOrders"), QStringLiteral("view"))));
    QVERIFY(all.contains(qMakePair(QStringLiteral("orders"), QStringLiteral("collection"))));
    QVERIFY(all.contains(qMakePair(QStringLiteral("users"), QStringLiteral("collection"))));
    const auto filtered =
        listCollections(R"({"filter": {"type": "collection", "name": {"$in": ["orders", "x"]}}})");
    QCOMPARE(filtered.size(), 1);
    QCOMPARE(filtered.first().first, QStringLiteral("orders"));
}

namespace {
QList<Bson> findAll(mongoc_client_t* client, const char* db, const char* coll, const Bson& filter,
                    const Bson& opts, QString* error) {
    return offThread([&] {
        QList<Bson> out;
        mongoc_collection_t* c = mongoc_client_get_collection(client, db, coll);
        bson_t f, o;
        filter.view(&f);
        opts.view(&o);
        mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(c, &f, &o, nullptr);
        const bson_t* doc = nullptr;
        while (mongoc_cursor_next(cursor, &doc))
            out.append(Bson::fromBsonT(doc));
        bson_error_t err;
        if (mongoc_cursor_error(cursor, &err) && error)
            *error = QString::fromUtf8(err.message);
        mongoc_cursor_destroy(cursor);
        mongoc_collection_destroy(c);
        return out;
    });
}
} // namespace

void TestMongoPeer::findIteratesWithGetMore() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    QList<Bson> docs;
    for (int i = 0; i < 250; ++i)
        docs.append(json(QStringLiteral(R"({"_id": %1, "k": %1})").arg(i).toUtf8().constData()));
    peer.setDocuments(QStringLiteral("shop"), QStringLiteral("items"), docs);
    ClientPtr client = makeClient(peer.uri());

    QString error;
    const QList<Bson> found = findAll(client.get(), "shop", "items", json(R"({"k": {"$gte": 100}})"),
                                      json(R"({"batchSize": 20})"), &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(found.size(), 150);
    QCOMPARE(num(found.first(), "k"), 100);
    QCOMPARE(num(found.last(), "k"), 249);
    // 20 in the first batch, then 130 in getMores of 20: 7 round trips, and the
    // last reply's cursor id 0 ends it without killCursors.
    const QList<Bson> getMores = peer.receivedCommands(QStringLiteral("getMore"));
    QCOMPARE(getMores.size(), 7);
    QCOMPARE(num(getMores.first(), "batchSize"), 20);
    QCOMPARE(str(getMores.first(), "collection"), QStringLiteral("items"));
    QVERIFY(peer.receivedCommands(QStringLiteral("killCursors")).isEmpty());

    // A cursor abandoned early is killed by the driver; the peer reports it killed.
    const int killsBefore = int(peer.receivedCommands(QStringLiteral("killCursors")).size());
    offThread([&] {
        mongoc_collection_t* c = mongoc_client_get_collection(client.get(), "shop", "items");
        bson_t f = BSON_INITIALIZER;
        const Bson o = json(R"({"batchSize": 5})");
        bson_t ov;
        o.view(&ov);
        mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(c, &f, &ov, nullptr);
        const bson_t* doc = nullptr;
        mongoc_cursor_next(cursor, &doc);
        mongoc_cursor_destroy(cursor);
        mongoc_collection_destroy(c);
        return 0;
    });
    QCOMPARE(peer.receivedCommands(QStringLiteral("killCursors")).size(), killsBefore + 1);
}

void TestMongoPeer::findFiltersSortsAndLimits() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    peer.setDocuments(QStringLiteral("shop"), QStringLiteral("orders"),
                      {json(R"({"_id": 1, "status": "new", "total": 5, "tags": ["a"]})"),
                       json(R"({"_id": 2, "status": "paid", "total": 50, "tags": ["a", "b"]})"),
                       json(R"({"_id": 3, "status": "paid", "total": 500, "tags": []})"),
                       json(R"({"_id": 4, "status": "paid", "total": 20.5, "tags": ["b"]})")});
    ClientPtr client = makeClient(peer.uri());
    QString error;
    QList<Bson> found =
        findAll(client.get(), "shop", "orders", json(R"({"status": "paid"})"),
                json(R"({"sort": {"total": -1}, "limit": 2, "projection": {"total": 1}})"), &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(found.size(), 2);
    QCOMPARE(num(found.at(0), "_id"), 3);
    QCOMPARE(num(found.at(1), "_id"), 2);
    QVERIFY(!has(found.at(0), "status")); // projected away
    // Array fields match on any element.
    found = findAll(client.get(), "shop", "orders", json(R"({"tags": "b"})"), json("{}"), &error);
    QCOMPARE(found.size(), 2);
    // Type bracketing: a number never compares greater than a string.
    found = findAll(client.get(), "shop", "orders", json(R"({"total": {"$gt": "a"}})"), json("{}"), &error);
    QCOMPARE(found.size(), 0);
    // The view applies its own pipeline.
    peer.createView(QStringLiteral("shop"), QStringLiteral("big"), QStringLiteral("orders"),
                    {json(R"({"$match": {"total": {"$gte": 50}}})")});
    found = findAll(client.get(), "shop", "big", json("{}"), json("{}"), &error);
    QCOMPARE(found.size(), 2);
}

void TestMongoPeer::changeStreamDeliversPushedEvents() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    StreamReader reader(client.get(), "shop", "orders",
                        json(R"({"pipeline": [{"$match": {"operationType": "insert"}}]})"),
                        json(R"({"maxAwaitTimeMS": 100, "fullDocument": "updateLookup", "batchSize": 50})"));
    QTRY_COMPARE(peer.openChangeStreamCount(), 1);

    const Bson t1 = peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"),
                                    json(R"({"operationType": "insert", "documentKey": {"_id": 1},
                                             "fullDocument": {"_id": 1, "total": 5}})"));
    peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"),
                    json(R"({"operationType": "update", "documentKey": {"_id": 1}})"));
    peer.pushChange(QStringLiteral("shop"), QStringLiteral("users"),
                    json(R"({"operationType": "insert", "documentKey": {"_id": 9}})"));
    const Bson t3 = peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"),
                                    json(R"({"operationType": "insert", "documentKey": {"_id": 2}})"));
    // The update is filtered by $match, the users event is outside the scope.
    QTRY_COMPARE(reader.eventCount(), 2);
    QTest::qWait(150);
    QCOMPARE(reader.eventCount(), 2);
    const QList<Bson> events = reader.events();
    QCOMPARE(sub(events.at(0), "_id"), t1);
    QCOMPARE(sub(events.at(1), "_id"), t3);
    QCOMPARE(str(events.at(0), "ns.db"), QStringLiteral("shop"));
    QCOMPARE(str(events.at(0), "ns.coll"), QStringLiteral("orders"));
    QCOMPARE(num(events.at(0), "fullDocument.total"), 5);
    QVERIFY(has(events.at(0), "clusterTime"));
    QVERIFY(!reader.hasError());

    const QList<Bson> aggregates = peer.receivedCommands(QStringLiteral("aggregate"));
    QCOMPARE(aggregates.size(), 1);
    QCOMPARE(str(aggregates.first(), "aggregate"), QStringLiteral("orders"));
    QCOMPARE(str(aggregates.first(), "pipeline.0.$changeStream.fullDocument"),
             QStringLiteral("updateLookup"));
    QCOMPARE(str(aggregates.first(), "pipeline.1.$match.operationType"), QStringLiteral("insert"));
    QCOMPARE(num(aggregates.first(), "cursor.batchSize"), 50);
    const QList<Bson> getMores = peer.receivedCommands(QStringLiteral("getMore"));
    QVERIFY(!getMores.isEmpty());
    QCOMPARE(num(getMores.first(), "maxTimeMS"), 100);

    reader.stop();
    // Destroying the stream kills its server cursor.
    QCOMPARE(peer.openChangeStreamCount(), 0);
    QVERIFY(!peer.receivedCommands(QStringLiteral("killCursors")).isEmpty());
}

void TestMongoPeer::changeStreamSeesDriverWrites() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    ClientPtr watcher = makeClient(peer.uri());
    ClientPtr writer = makeClient(peer.uri());
    StreamReader reader(watcher.get(), "shop", "orders", json("{}"),
                        json(R"({"maxAwaitTimeMS": 100, "fullDocument": "updateLookup"})"));
    QTRY_COMPARE(peer.openChangeStreamCount(), 1);

    const bool inserted = offThread([&] {
        mongoc_collection_t* c = mongoc_client_get_collection(writer.get(), "shop", "orders");
        const Bson doc = json(R"({"_id": 7, "status": "new"})");
        const Bson update = json(R"({"$set": {"status": "paid"}})");
        const Bson filter = json(R"({"_id": 7})");
        bson_t d, u, f;
        doc.view(&d);
        update.view(&u);
        filter.view(&f);
        bson_error_t error;
        bool ok = mongoc_collection_insert_one(c, &d, nullptr, nullptr, &error);
        ok = ok && mongoc_collection_update_one(c, &f, &u, nullptr, nullptr, &error);
        ok = ok && mongoc_collection_delete_one(c, &f, nullptr, nullptr, &error);
        mongoc_collection_destroy(c);
        return ok;
    });
    QVERIFY(inserted);
    QTRY_COMPARE(reader.eventCount(), 3);
    const QList<Bson> events = reader.events();
    QCOMPARE(str(events.at(0), "operationType"), QStringLiteral("insert"));
    QCOMPARE(str(events.at(0), "fullDocument.status"), QStringLiteral("new"));
    QCOMPARE(str(events.at(1), "operationType"), QStringLiteral("update"));
    QCOMPARE(str(events.at(1), "updateDescription.updatedFields.status"), QStringLiteral("paid"));
    // updateLookup: the update event carries the document as it is now.
    QCOMPARE(str(events.at(1), "fullDocument.status"), QStringLiteral("paid"));
    QCOMPARE(str(events.at(2), "operationType"), QStringLiteral("delete"));
    QCOMPARE(num(events.at(2), "documentKey._id"), 7);
    QVERIFY(peer.documents(QStringLiteral("shop"), QStringLiteral("orders")).isEmpty());
    // The insert travelled as an OP_MSG document sequence, merged into the body.
    const QList<Bson> inserts = peer.receivedCommands(QStringLiteral("insert"));
    QCOMPARE(inserts.size(), 1);
    QCOMPARE(num(inserts.first(), "documents.0._id"), 7);
}

void TestMongoPeer::changeStreamGetMoreWaitsForMaxTime() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    StreamReader reader(client.get(), "shop", "orders", json("{}"), json(R"({"maxAwaitTimeMS": 400})"));
    QTRY_COMPARE(peer.openChangeStreamCount(), 1);
    // With nothing to report, each getMore is held for maxTimeMS: about 2-3 in a
    // second, not hundreds.
    QTRY_VERIFY(!peer.receivedCommands(QStringLiteral("getMore")).isEmpty());
    const int before = int(peer.receivedCommands(QStringLiteral("getMore")).size());
    QTest::qWait(1000);
    const int during = int(peer.receivedCommands(QStringLiteral("getMore")).size()) - before;
    QVERIFY2(during >= 1 && during <= 4, qPrintable(QString::number(during)));
    // An event answers the parked getMore at once instead of at maxTimeMS.
    QElapsedTimer timer;
    timer.start();
    peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), json(R"({"operationType": "insert"})"));
    QTRY_COMPARE(reader.eventCount(), 1);
    QVERIFY2(timer.elapsed() < 300, qPrintable(QString::number(timer.elapsed())));
}

void TestMongoPeer::changeStreamResumesAfterDroppedConnection() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    StreamReader reader(client.get(), "shop", "orders", json("{}"), json(R"({"maxAwaitTimeMS": 100})"));
    QTRY_COMPARE(peer.openChangeStreamCount(), 1);
    const Bson a = peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"),
                                   json(R"({"operationType": "insert", "documentKey": {"_id": "a"}})"));
    QTRY_COMPARE(reader.eventCount(), 1);
    const int connectionsBefore = peer.totalConnections();

    peer.dropConnections();
    QTRY_VERIFY(peer.receivedCommands(QStringLiteral("aggregate")).size() == 2);
    const Bson b = peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"),
                                   json(R"({"operationType": "insert", "documentKey": {"_id": "b"}})"));
    QTRY_COMPARE(reader.eventCount(), 2);
    QVERIFY2(!reader.hasError(), qPrintable(reader.errorMessage()));
    QCOMPARE(sub(reader.events().at(1), "_id"), b);
    QVERIFY(peer.totalConnections() > connectionsBefore);

    // The resume aggregate continues after the last event seen: no loss, no repeat.
    const Bson resume = peer.receivedCommands(QStringLiteral("aggregate")).at(1);
    QCOMPARE(sub(resume, "pipeline.0.$changeStream.resumeAfter"), a);
    QVERIFY(!has(resume, "pipeline.0.$changeStream.startAfter"));
}

void TestMongoPeer::changeStreamResumesWithStartAfterBeforeFirstEvent() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    const Bson x = peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"),
                                   json(R"({"operationType": "insert"})"));
    ClientPtr client = makeClient(peer.uri());
    BsonBuilder opts;
    bson_append_int64(opts.get(), "maxAwaitTimeMS", -1, 100);
    tw::appendDocument(opts.get(), "startAfter", x);
    StreamReader reader(client.get(), "shop", "orders", json("{}"), opts.take());
    QTRY_COMPARE(peer.openChangeStreamCount(), 1);
    QTRY_VERIFY(!peer.receivedCommands(QStringLiteral("getMore")).isEmpty());
    peer.dropConnections();
    QTRY_COMPARE(peer.receivedCommands(QStringLiteral("aggregate")).size(), 2);
    // Nothing returned yet, so the spec says resume with startAfter (not resumeAfter).
    const Bson resume = peer.receivedCommands(QStringLiteral("aggregate")).at(1);
    QVERIFY(has(resume, "pipeline.0.$changeStream.startAfter"));
    QVERIFY(!has(resume, "pipeline.0.$changeStream.resumeAfter"));
    const Bson y = peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"),
                                   json(R"({"operationType": "insert"})"));
    QTRY_COMPARE(reader.eventCount(), 1);
    QCOMPARE(sub(reader.events().first(), "_id"), y);
}

void TestMongoPeer::changeStreamScopes_data() {
    QTest::addColumn<QByteArray>("db");
    QTest::addColumn<QByteArray>("coll");
    QTest::addColumn<QString>("expectedNs");
    QTest::addColumn<QStringList>("expectedEvents");
    QTest::newRow("collection") << QByteArray("shop") << QByteArray("orders") << QStringLiteral("shop.orders")
                                << QStringList{QStringLiteral("orders")};
    QTest::newRow("database") << QByteArray("shop") << QByteArray() << QStringLiteral("shop.$cmd.aggregate")
                              << QStringList{QStringLiteral("orders"), QStringLiteral("users")};
    QTest::newRow("deployment") << QByteArray() << QByteArray() << QStringLiteral("admin.$cmd.aggregate")
                                << QStringList{QStringLiteral("orders"), QStringLiteral("users"),
                                               QStringLiteral("leads")};
}

void TestMongoPeer::changeStreamScopes() {
    QFETCH(QByteArray, db);
    QFETCH(QByteArray, coll);
    QFETCH(QString, expectedNs);
    QFETCH(QStringList, expectedEvents);
    MongoPeer peer;
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    StreamReader reader(client.get(), db, coll, json("{}"), json(R"({"maxAwaitTimeMS": 100})"));
    QTRY_COMPARE(peer.openChangeStreamCount(), 1);
    peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), json(R"({"operationType": "insert"})"));
    peer.pushChange(QStringLiteral("shop"), QStringLiteral("users"), json(R"({"operationType": "insert"})"));
    peer.pushChange(QStringLiteral("crm"), QStringLiteral("leads"), json(R"({"operationType": "insert"})"));
    QTRY_COMPARE(reader.eventCount(), int(expectedEvents.size()));
    QTest::qWait(200);
    QStringList colls;
    for (const Bson& event : reader.events())
        colls.append(str(event, "ns.coll"));
    QCOMPARE(colls, expectedEvents);
    QVERIFY(!reader.hasError());
    // getMore names the collection part of the cursor's ns, as the driver derives it.
    const QList<Bson> getMores = peer.receivedCommands(QStringLiteral("getMore"));
    QVERIFY(!getMores.isEmpty());
    QCOMPARE(str(getMores.first(), "$db") + QLatin1Char('.') + str(getMores.first(), "collection"),
             expectedNs);
    const Bson aggregate = peer.receivedCommands(QStringLiteral("aggregate")).first();
    QCOMPARE(has(aggregate, "pipeline.0.$changeStream.allChangesForCluster"), db.isEmpty());
}

void TestMongoPeer::changeStreamStartsAtOperationTime() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    peer.pushChange(
        QStringLiteral("shop"), QStringLiteral("orders"),
        json(R"({"operationType": "insert", "clusterTime": {"$timestamp": {"t": 100, "i": 1}}})"));
    const Bson second = peer.pushChange(
        QStringLiteral("shop"), QStringLiteral("orders"),
        json(R"({"operationType": "insert", "clusterTime": {"$timestamp": {"t": 100, "i": 2}}})"));
    ClientPtr client = makeClient(peer.uri());
    BsonBuilder opts;
    bson_append_timestamp(opts.get(), "startAtOperationTime", -1, 100, 2);
    bson_append_int64(opts.get(), "maxAwaitTimeMS", -1, 100);
    StreamReader reader(client.get(), "shop", "orders", json("{}"), opts.take());
    QTRY_COMPARE(reader.eventCount(), 1);
    QTest::qWait(200);
    QCOMPARE(reader.eventCount(), 1);
    QCOMPARE(sub(reader.events().first(), "_id"), second);
}

void TestMongoPeer::closeConnectionFailpointIsANetworkError() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    QVERIFY(runCommand(client.get(), "admin", json(R"({"ping": 1})")).ok);
    QSignalSpy disconnected(&peer, &MongoPeer::clientDisconnected);
    peer.failNextCommand(QStringLiteral("ping"), json(R"({"closeConnection": true})"));
    const CommandResult result = runCommand(client.get(), "admin", json(R"({"ping": 1})"));
    QVERIFY(!result.ok);
    QCOMPARE(result.error.domain, quint32(MONGOC_ERROR_STREAM));
    QVERIFY(disconnected.count() >= 1);
    // The driver reconnects for the next command.
    QVERIFY(runCommand(client.get(), "admin", json(R"({"ping": 1})")).ok);
    QVERIFY(peer.totalConnections() >= 2);
}

void TestMongoPeer::changeStreamResumability_data() {
    QTest::addColumn<int>("wireVersion");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("codeName");
    QTest::addColumn<QStringList>("labels");
    QTest::addColumn<bool>("resumes");
    const QStringList resumable{QStringLiteral("ResumableChangeStreamError")};
    // From 4.4 (wire 9) only the server's label decides...
    QTest::newRow("6.0, labelled") << 17 << 6 << QStringLiteral("HostUnreachable") << resumable << true;
    QTest::newRow("6.0, no label") << 17 << 6 << QStringLiteral("HostUnreachable") << QStringList() << false;
    // ...before it, the driver's list of codes does.
    QTest::newRow("4.2, code in list")
        << 8 << 6 << QStringLiteral("HostUnreachable") << QStringList() << true;
    QTest::newRow("4.2, code not in list") << 8 << 2 << QStringLiteral("BadValue") << QStringList() << false;
    // libmongoc always resumes on CursorNotFound.
    QTest::newRow("6.0, CursorNotFound")
        << 17 << 43 << QStringLiteral("CursorNotFound") << QStringList() << true;
}

void TestMongoPeer::changeStreamResumability() {
    QFETCH(int, wireVersion);
    QFETCH(int, code);
    QFETCH(QString, codeName);
    QFETCH(QStringList, labels);
    QFETCH(bool, resumes);
    MongoPeer peer;
    peer.setMaxWireVersion(wireVersion);
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    StreamReader reader(client.get(), "shop", "orders", json("{}"), json(R"({"maxAwaitTimeMS": 100})"));
    QTRY_COMPARE(peer.openChangeStreamCount(), 1);
    const Bson seen = peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"),
                                      json(R"({"operationType": "insert"})"));
    QTRY_COMPARE(reader.eventCount(), 1);
    peer.failNextCommand(QStringLiteral("getMore"),
                         MongoPeer::errorDocument(code, codeName, QStringLiteral("injected"), labels));
    if (resumes) {
        QTRY_COMPARE(peer.receivedCommands(QStringLiteral("aggregate")).size(), 2);
        QCOMPARE(sub(peer.receivedCommands(QStringLiteral("aggregate")).at(1),
                     "pipeline.0.$changeStream.resumeAfter"),
                 seen);
        peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"),
                        json(R"({"operationType": "insert"})"));
        QTRY_COMPARE(reader.eventCount(), 2);
        QVERIFY(!reader.hasError());
    } else {
        QTRY_VERIFY(reader.hasError());
        QCOMPARE(reader.errorCode(), quint32(code));
        QCOMPARE(str(reader.errorReply(), "codeName"), codeName);
        QCOMPARE(peer.receivedCommands(QStringLiteral("aggregate")).size(), 1);
    }
}

void TestMongoPeer::changeStreamHistoryLostSurfaces_data() {
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("codeName");
    QTest::newRow("286 ChangeStreamHistoryLost") << 286 << QStringLiteral("ChangeStreamHistoryLost");
    QTest::newRow("260 InvalidResumeToken") << 260 << QStringLiteral("InvalidResumeToken");
    QTest::newRow("280 ChangeStreamFatalError") << 280 << QStringLiteral("ChangeStreamFatalError");
}

void TestMongoPeer::changeStreamHistoryLostSurfaces() {
    QFETCH(int, code);
    QFETCH(QString, codeName);
    MongoPeer peer;
    peer.setHistoryLostCode(code);
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    StreamReader reader(client.get(), "shop", "orders", json("{}"),
                        json(R"({"resumeAfter": {"_data": "00000000000000FF"}})"));
    QTRY_VERIFY(reader.hasError());
    QCOMPARE(reader.errorCode(), quint32(code));
    QCOMPARE(str(reader.errorReply(), "codeName"), codeName);
    QCOMPARE(peer.openChangeStreamCount(), 0);
    QCOMPARE(sub(peer.receivedCommands(QStringLiteral("aggregate")).first(),
                 "pipeline.0.$changeStream.resumeAfter"),
             json(R"({"_data": "00000000000000FF"})"));
}

void TestMongoPeer::changeStreamHistoryLostAfterForgetHistory() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    const Bson old = peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"),
                                     json(R"({"operationType": "insert"})"));
    ClientPtr client = makeClient(peer.uri());
    {
        // While the token is in the log the stream resumes after it.
        BsonBuilder opts;
        tw::appendDocument(opts.get(), "resumeAfter", old);
        bson_append_int64(opts.get(), "maxAwaitTimeMS", -1, 100);
        StreamReader reader(client.get(), "shop", "orders", json("{}"), opts.take());
        QTRY_COMPARE(peer.openChangeStreamCount(), 1);
        QVERIFY(!reader.hasError());
    }
    peer.forgetHistory();
    BsonBuilder opts;
    tw::appendDocument(opts.get(), "resumeAfter", old);
    StreamReader reader(client.get(), "shop", "orders", json("{}"), opts.take());
    QTRY_VERIFY(reader.hasError());
    QCOMPARE(reader.errorCode(), 286u);
}

void TestMongoPeer::changeStreamOnStandaloneFailsWith40573() {
    MongoPeer peer;
    peer.setReplicaSet(false);
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    StreamReader reader(client.get(), "shop", "orders", json("{}"), json("{}"));
    QTRY_VERIFY(reader.hasError());
    QCOMPARE(reader.errorCode(), 40573u);
    QVERIFY(reader.errorMessage().contains(QLatin1String("only supported on replica sets")));

    // A replica set that refuses them answers the same way.
    MongoPeer refusing;
    refusing.setChangeStreamsSupported(false);
    QVERIFY(refusing.listen());
    ClientPtr client2 = makeClient(refusing.uri());
    StreamReader reader2(client2.get(), "shop", "orders", json("{}"), json("{}"));
    QTRY_VERIFY(reader2.hasError());
    QCOMPARE(reader2.errorCode(), 40573u);
}

void TestMongoPeer::changeStreamRefusesShowExpandedEventsAsMongoDb50() {
    // MongoDB 5.0 parses $changeStream with its IDL parser, which refuses a field it
    // does not know with 40415; showExpandedEvents came with 6.0.
    const Bson aggregate = json(
        R"({"aggregate": "orders", "pipeline": [{"$changeStream": {"showExpandedEvents": true}}], "cursor": {}})");
    MongoPeer old;
    old.setMaxWireVersion(13);
    QVERIFY(old.listen());
    ClientPtr client = makeClient(old.uri());
    const CommandResult refused = runCommand(client.get(), "shop", aggregate);
    QVERIFY(!refused.ok);
    QCOMPARE(refused.error.code, 40415u);
    QCOMPARE(str(refused.reply, "codeName"), QStringLiteral("Location40415"));
    QCOMPARE(str(refused.reply, "errmsg"),
             QStringLiteral("BSON field '$changeStream.showExpandedEvents' is an unknown field."));
    QCOMPARE(old.openChangeStreamCount(), 0);
    // Without it the same server opens the stream.
    const CommandResult plain =
        runCommand(client.get(), "shop",
                   json(R"({"aggregate": "orders", "pipeline": [{"$changeStream": {}}], "cursor": {}})"));
    QVERIFY2(plain.ok, plain.error.message);

    MongoPeer current; // 6.0
    QVERIFY(current.listen());
    ClientPtr client2 = makeClient(current.uri());
    const CommandResult accepted = runCommand(client2.get(), "shop", aggregate);
    QVERIFY2(accepted.ok, accepted.error.message);
    QCOMPARE(current.openChangeStreamCount(), 1);
}

void TestMongoPeer::schemaCommandsLogTheExpandedEvents() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    const auto open = [&](bool expanded) {
        BsonBuilder b;
        bson_append_utf8(b.get(), "aggregate", -1, "a", -1);
        bson_t pipeline, stage, spec, cursor;
        bson_append_array_begin(b.get(), "pipeline", -1, &pipeline);
        bson_append_document_begin(&pipeline, "0", 1, &stage);
        bson_append_document_begin(&stage, "$changeStream", -1, &spec);
        if (expanded)
            bson_append_bool(&spec, "showExpandedEvents", -1, true);
        bson_append_document_end(&stage, &spec);
        bson_append_document_end(&pipeline, &stage);
        bson_append_array_end(b.get(), &pipeline);
        bson_append_document_begin(b.get(), "cursor", -1, &cursor);
        bson_append_document_end(b.get(), &cursor);
        const CommandResult result = runCommand(client.get(), "shop", b.take());
        return result.ok ? num(result.reply, "cursor.id") : qint64(-1);
    };
    const qint64 expanded = open(true);
    const qint64 plain = open(false);
    QVERIFY(expanded > 0 && plain > 0);

    const auto ok = [&](const char* db, const char* command) {
        const CommandResult result = runCommand(client.get(), db, json(command));
        if (!result.ok)
            qWarning("%s: %s", command, result.error.message);
        return result.ok;
    };
    QVERIFY(ok("shop", R"({"create": "a", "validator": {"n": {"$gte": 0}}})"));
    QVERIFY(ok("shop", R"({"createIndexes": "a", "indexes": [{"key": {"n": 1}, "name": "n_1"}]})"));
    QVERIFY(ok("shop", R"({"collMod": "a", "index": {"name": "n_1", "hidden": true}})"));
    QVERIFY(ok("shop", R"({"dropIndexes": "a", "index": "n_1"})"));
    QVERIFY(ok("admin", R"({"renameCollection": "shop.a", "to": "shop.b"})"));
    const CommandResult missing =
        runCommand(client.get(), "shop", json(R"({"dropIndexes": "b", "index": "x_1"})"));
    QVERIFY(!missing.ok);
    QCOMPARE(missing.error.code, 27u); // IndexNotFound

    const auto batch = [&](qint64 id) {
        BsonBuilder b;
        bson_append_int64(b.get(), "getMore", -1, id);
        bson_append_utf8(b.get(), "collection", -1, "a", -1);
        bson_append_int64(b.get(), "maxTimeMS", -1, 100);
        const CommandResult result = runCommand(client.get(), "shop", b.take());
        QList<Bson> events;
        bson_iter_t it;
        if (result.ok && lookup(result.reply, "cursor.nextBatch", &it))
            events = tw::test::peerbson::arrayDocuments(&it);
        return events;
    };
    const QList<Bson> events = batch(expanded);
    QStringList operations;
    for (const Bson& e : events)
        operations.append(str(e, "operationType"));
    QCOMPARE(operations, (QStringList{QStringLiteral("create"), QStringLiteral("createIndexes"),
                                      QStringLiteral("modify"), QStringLiteral("dropIndexes"),
                                      QStringLiteral("rename"), QStringLiteral("invalidate")}));
    // The shapes of MongoDB's documentation.
    QCOMPARE(str(events[0], "operationDescription.idIndex.name"), QStringLiteral("_id_"));
    QCOMPARE(num(events[0], "operationDescription.validator.n.$gte"), 0);
    QCOMPARE(str(events[1], "operationDescription.indexes.0.name"), QStringLiteral("n_1"));
    QCOMPARE(num(events[1], "operationDescription.indexes.0.v"), 2);
    QCOMPARE(num(events[1], "operationDescription.indexes.0.key.n"), 1);
    QCOMPARE(str(events[2], "operationDescription.index.name"), QStringLiteral("n_1"));
    bson_iter_t it;
    QVERIFY(lookup(events[2], "operationDescription.index.hidden", &it) && bson_iter_as_bool(&it));
    QVERIFY(lookup(events[2], "stateBeforeChange.indexOptions.hidden", &it) && !bson_iter_as_bool(&it));
    QCOMPARE(str(events[3], "operationDescription.indexes.0.name"), QStringLiteral("n_1"));
    QCOMPARE(str(events[4], "operationDescription.to.coll"), QStringLiteral("b"));
    QCOMPARE(str(events[4], "to.coll"), QStringLiteral("b"));
    for (int i = 0; i < 5; ++i) {
        QCOMPARE(str(events[i], "ns.db"), QStringLiteral("shop"));
        QCOMPARE(str(events[i], "ns.coll"), QStringLiteral("a"));
        QVERIFY(lookup(events[i], "collectionUUID", &it) && BSON_ITER_HOLDS_BINARY(&it));
        QVERIFY(has(events[i], "wallTime") && has(events[i], "clusterTime"));
    }

    // Without showExpandedEvents: only the rename, in its 5.0 shape.
    const QList<Bson> older = batch(plain);
    QCOMPARE(older.size(), 2);
    QCOMPARE(str(older[0], "operationType"), QStringLiteral("rename"));
    QCOMPARE(str(older[0], "to.coll"), QStringLiteral("b"));
    QVERIFY(!has(older[0], "operationDescription"));
    QVERIFY(!has(older[0], "collectionUUID"));
    QCOMPARE(str(older[1], "operationType"), QStringLiteral("invalidate"));
}

void TestMongoPeer::changeStreamInvalidatedByDrop() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    StreamReader reader(client.get(), "shop", "orders", json("{}"), json(R"({"maxAwaitTimeMS": 100})"));
    QTRY_COMPARE(peer.openChangeStreamCount(), 1);
    peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"), json(R"({"operationType": "drop"})"));
    QTRY_COMPARE(reader.eventCount(), 2);
    QCOMPARE(str(reader.events().at(0), "operationType"), QStringLiteral("drop"));
    QCOMPARE(str(reader.events().at(1), "operationType"), QStringLiteral("invalidate"));
    // The server closes an invalidated cursor.
    QCOMPARE(peer.openChangeStreamCount(), 0);
    QTRY_VERIFY(reader.isFinished());
    QVERIFY2(!reader.hasError(), qPrintable(reader.errorMessage()));
    QCOMPARE(peer.receivedCommands(QStringLiteral("aggregate")).size(), 1);

    // startAfter an invalidate token opens a new stream; resumeAfter is refused.
    const Bson invalidateToken = sub(reader.events().at(1), "_id");
    reader.stop();
    BsonBuilder resume;
    tw::appendDocument(resume.get(), "resumeAfter", invalidateToken);
    StreamReader refused(client.get(), "shop", "orders", json("{}"), resume.take());
    QTRY_VERIFY(refused.hasError());
    QCOMPARE(refused.errorCode(), 260u);
    refused.stop();
    BsonBuilder after;
    tw::appendDocument(after.get(), "startAfter", invalidateToken);
    bson_append_int64(after.get(), "maxAwaitTimeMS", -1, 100);
    StreamReader restarted(client.get(), "shop", "orders", json("{}"), after.take());
    QTRY_COMPARE(peer.openChangeStreamCount(), 1);
    const Bson next = peer.pushChange(QStringLiteral("shop"), QStringLiteral("orders"),
                                      json(R"({"operationType": "insert"})"));
    QTRY_COMPARE(restarted.eventCount(), 1);
    QCOMPARE(sub(restarted.events().first(), "_id"), next);
    QVERIFY(!restarted.hasError());
}

void TestMongoPeer::stalledPeerAnswersAfterStallEnds() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    ClientPtr client = makeClient(peer.uri());
    QVERIFY(runCommand(client.get(), "admin", json(R"({"ping": 1})")).ok);
    peer.stall(true);
    std::atomic<bool> done{false};
    std::thread worker([&] {
        bson_t reply;
        bson_error_t error;
        const Bson cmd = json(R"({"ping": 1})");
        bson_t c;
        cmd.view(&c);
        mongoc_client_command_simple(client.get(), "admin", &c, nullptr, &reply, &error);
        bson_destroy(&reply);
        done = true;
    });
    QTest::qWait(300);
    QVERIFY(!done);
    QCOMPARE(peer.receivedCommands(QStringLiteral("ping")).size(), 1);
    peer.stall(false);
    QTRY_VERIFY(done);
    worker.join();
    QCOMPARE(peer.receivedCommands(QStringLiteral("ping")).size(), 2);
}

void TestMongoPeer::rawOpMsgFramingAndChecksum() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    RawClient raw;
    QVERIFY(raw.connectTo(peer.port()));
    raw.send(opMsg(41, 1u /* checksumPresent */, json(R"({"ping": 1, "$db": "admin"})")));
    const auto reply = raw.read();
    QVERIFY(reply);
    QCOMPARE(get32(*reply, 0), reply->size());
    QCOMPARE(get32(*reply, 8), 41); // responseTo
    QCOMPARE(get32(*reply, 12), 2013);
    QCOMPARE(get32(*reply, 16), 0); // flagBits
    QCOMPARE(reply->at(20), char(0));
    QCOMPARE(num(opMsgBody(*reply), "ok"), 1);

    // Without $db the server refuses the command, as a real one does.
    raw.send(opMsg(42, 0, json(R"({"ping": 1})")));
    const auto noDb = raw.read();
    QVERIFY(noDb);
    QCOMPARE(num(opMsgBody(*noDb), "code"), 40571);

    // A wrong checksum is a broken connection, not a command.
    raw.send(opMsg(43, 1u, json(R"({"ping": 1, "$db": "admin"})"), {}, true));
    QVERIFY(raw.waitForDisconnect());
    QCOMPARE(peer.receivedCommands(QStringLiteral("ping")).size(), 2);
}

void TestMongoPeer::rawOpMsgMoreToComeGetsNoReply() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    RawClient raw;
    QVERIFY(raw.connectTo(peer.port()));
    // moreToCome (bit 1): an unacknowledged write; the server must not answer.
    raw.send(opMsg(7, 2u, json(R"({"insert": "c", "$db": "d", "documents": [{"_id": 1}]})")));
    QVERIFY(!raw.read(300));
    QCOMPARE(peer.documents(QStringLiteral("d"), QStringLiteral("c")).size(), 1);
    // The connection is still in step: the next request gets its own reply.
    raw.send(opMsg(8, 0, json(R"({"ping": 1, "$db": "admin"})")));
    const auto reply = raw.read();
    QVERIFY(reply);
    QCOMPARE(get32(*reply, 8), 8);
}

void TestMongoPeer::rawOpMsgDocumentSequencesAreMerged() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    RawClient raw;
    QVERIFY(raw.connectTo(peer.port()));
    raw.send(opMsg(9, 0, json(R"({"insert": "c", "$db": "d"})"),
                   {{"documents", {json(R"({"_id": 1})"), json(R"({"_id": 2})"), json(R"({"_id": 2})")}}}));
    const auto reply = raw.read();
    QVERIFY(reply);
    const Bson body = opMsgBody(*reply);
    QCOMPARE(num(body, "n"), 2);
    // The ordered insert stops at the duplicate key and reports it.
    QCOMPARE(num(body, "writeErrors.0.code"), 11000);
    QCOMPARE(num(body, "writeErrors.0.index"), 2);
    QCOMPARE(num(peer.receivedCommands(QStringLiteral("insert")).first(), "documents.1._id"), 2);
}

void TestMongoPeer::rawOpQueryHandshakeAndLegacyRejection() {
    MongoPeer peer;
    QVERIFY(peer.listen());
    RawClient raw;
    QVERIFY(raw.connectTo(peer.port()));
    raw.send(opQuery(5, "admin.$cmd", json(R"({"isMaster": 1, "helloOk": true})")));
    const auto reply = raw.read();
    QVERIFY(reply);
    QCOMPARE(get32(*reply, 8), 5);  // responseTo
    QCOMPARE(get32(*reply, 12), 1); // OP_REPLY
    QCOMPARE(get32(*reply, 32), 1); // numberReturned
    const qint32 docStart = 36;
    const Bson doc = Bson::fromRaw(reply->mid(docStart, get32(*reply, docStart)));
    bson_iter_t it;
    QVERIFY(lookup(doc, "ismaster", &it) && bson_iter_as_bool(&it));
    QVERIFY(lookup(doc, "helloOk", &it) && bson_iter_as_bool(&it));

    // Since MongoDB 5.1 only the handshake may use OP_QUERY.
    raw.send(opQuery(6, "admin.$cmd", json(R"({"ping": 1})")));
    const auto rejected = raw.read();
    QVERIFY(rejected);
    const Bson err = Bson::fromRaw(rejected->mid(docStart, get32(*rejected, docStart)));
    QCOMPARE(num(err, "code"), 352);
    QCOMPARE(str(err, "codeName"), QStringLiteral("UnsupportedOpQueryCommand"));
}

QTEST_GUILESS_MAIN(TestMongoPeer)
#include "tst_mongopeer.moc"

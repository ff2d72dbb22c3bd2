#pragma once

#include "model/Bson.h"

#include <QByteArrayView>
#include <QHash>
#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>

#include <map>
#include <memory>
#include <vector>

class QTcpServer;
class QTcpSocket;

namespace tw::test {

// A MongoDB server, as far as libmongoc can tell, for tests: it speaks the wire
// protocol (OP_QUERY/OP_REPLY for the legacy handshake, OP_MSG for everything
// else) on 127.0.0.1 and answers in the documented reply shapes and error codes.
// It keeps an in-memory store (namespace -> documents), a change log that backs
// `aggregate [{$changeStream: …}]` cursors, and records every command it receives
// so tests can assert what the code under test sent.
//
// Threading: the peer lives on the thread that created it (normally the test's
// main thread) and every method must be called from that thread. The driver under
// test blocks, so it runs on another thread while the test spins this thread's
// event loop (QTRY_*, QSignalSpy::wait, QTest::qWaitFor).
//
// URI: uri() returns "mongodb://127.0.0.1:PORT/?replicaSet=rs0" when presenting as
// a replica set, "mongodb://127.0.0.1:PORT/?directConnection=true" when
// standalone. Both always carry a query part so tests can append "&opt=value".
// libmongoc 1.23 also accepts "?directConnection=true&replicaSet=rs0" (a single
// topology that still checks the set name).
//
// Change streams: resume tokens are {_data: "<16 hex digits>"} (a position in the
// change log; an invalidate token has "01" appended). A cursor closed by an
// invalidate must not be advanced again: libmongoc would then resume with
// resumeAfter=<invalidate token>, which servers (and the peer) refuse with 260.
//
// What it does not do: authentication, compression (OP_COMPRESSED), exhaust
// replies, awaitable hello (no topologyVersion is sent, so drivers poll), sessions
// and transactions beyond accepting their fields, update operators other than
// $set/$unset/$inc on top-level fields, aggregation stages other than $match
// $sort $skip $limit $project $count and the countDocuments $group, and query
// operators outside $eq $ne $gt $gte $lt $lte $in $nin $exists $not $and $or $nor
// (unknown ones are treated as "matches" with a warning, where a real server
// would reject them). In a change stream pipeline only $match stages are applied.
class MongoPeer : public QObject {
    Q_OBJECT

public:
    explicit MongoPeer(QObject* parent = nullptr);
    ~MongoPeer() override;

    // Binds 127.0.0.1; port 0 picks a free one.
    bool listen(quint16 port = 0);
    quint16 port() const;
    QString hostAndPort() const; // "127.0.0.1:PORT", the name used in hello's hosts/me
    QString uri() const;

    // --- what kind of server it presents -------------------------------------
    // Replica set member (primary of `rs0`) by default; standalone otherwise. A
    // standalone never supports change streams, as a real one.
    void setReplicaSet(bool replicaSet);
    bool isReplicaSet() const { return m_replicaSet; }
    void setReplicaSetName(const QString& name) { m_setName = name; }
    QString replicaSetName() const { return m_setName; }
    // 17 = MongoDB 6.0 by default; buildInfo's version follows it.
    void setMaxWireVersion(int version) { m_maxWireVersion = version; }
    int maxWireVersion() const { return m_maxWireVersion; }
    // false makes `$changeStream` fail with 40573 even as a replica set, the way a
    // standalone answers.
    void setChangeStreamsSupported(bool supported) { m_changeStreamsSupported = supported; }
    bool changeStreamsSupported() const { return m_replicaSet && m_changeStreamsSupported; }
    // The error for a resume token that is not in the change log: 286
    // ChangeStreamHistoryLost (default, MongoDB >= 4.4), 280 ChangeStreamFatalError
    // (4.0-4.2) or 260 InvalidResumeToken.
    void setHistoryLostCode(int code) { m_historyLostCode = code; }
    // How long a change stream getMore without maxTimeMS waits for events. 1000 ms
    // is the server's default for awaitData cursors.
    void setDefaultAwaitTimeMS(int ms) { m_defaultAwaitMs = ms; }

    // --- stored data --------------------------------------------------------
    void setDocuments(const QString& db, const QString& coll, const QList<Bson>& documents);
    QList<Bson> documents(const QString& db, const QString& coll) const;
    void createCollection(const QString& db, const QString& coll);
    // A view: listCollections reports it as type "view"; find applies its $match stages.
    void createView(const QString& db, const QString& name, const QString& viewOn,
                    const QList<Bson>& pipeline = {});
    void dropAll();

    // --- change log ----------------------------------------------------------
    // Appends an event for db.coll (coll may be empty for database-level events
    // such as dropDatabase). `_id` (resume token {_data: "<16 hex digits>"}), `ns`,
    // `clusterTime` and `wallTime` are added when missing; the rest is delivered as
    // given. Open change stream cursors whose scope covers db.coll get it, waiting
    // getMores are answered at once. Returns the event's resume token.
    // A drop/rename of a watched collection (or dropDatabase of a watched
    // database) is followed by an invalidate event that closes the cursor.
    Bson pushChange(const QString& db, const QString& coll, const Bson& event);
    // Writes through insert/update/delete commands also produce change events
    // (insert, update or replace, delete), as on a replica set. On by default.
    void setWritesProduceChanges(bool on) { m_writesProduceChanges = on; }
    // The token of the newest position in the log ({_data: …}); also what a fresh
    // cursor reports as its postBatchResumeToken.
    Bson latestResumeToken() const;
    static Bson resumeTokenFor(qint64 position);
    // Simulates the oplog rolling over: every token issued so far stops being a
    // valid resume point, so resuming from it fails with historyLostCode.
    void forgetHistory();
    int changeLogSize() const;
    int openChangeStreamCount() const;

    // --- fault injection ------------------------------------------------------
    // The next `times` commands named `command` get `errorDoc` as their reply
    // (ok: 0 is added when missing). An errorDoc of {closeConnection: true} closes
    // the client's socket instead of replying, like the server's failCommand.
    void failNextCommand(const QString& command, const Bson& errorDoc, int times = 1);
    // {ok: 0, errmsg, code, codeName[, errorLabels]} in the server's shape.
    static Bson errorDocument(int code, const QString& codeName, const QString& errmsg,
                              const QStringList& errorLabels = {});
    // CRC-32C as OP_MSG's optional checksum uses it; public so raw-socket tests can
    // frame messages.
    static quint32 crc32c(QByteArrayView data);
    void dropConnections();
    // While stalled the peer reads nothing and answers nothing; bytes received
    // meanwhile are processed when the stall ends.
    void stall(bool stalled);
    bool isStalled() const { return m_stalled; }

    // --- observation ----------------------------------------------------------
    // Every command body received (OP_MSG document sequences merged in as arrays),
    // in order. `name` is compared case-insensitively (isMaster/ismaster); empty
    // returns all.
    QList<Bson> receivedCommands(const QString& name = {}) const;
    QStringList receivedCommandNames() const;
    void clearReceivedCommands();
    int connectionCount() const { return int(m_connections.size()); }
    int totalConnections() const { return m_totalConnections; }

Q_SIGNALS:
    void commandReceived(const QString& name);
    void clientConnected();
    void clientDisconnected();

private:
    struct Connection;
    struct Request;
    struct Cursor;
    struct PendingGetMore;
    struct LogEntry;
    struct Collection;

    void onNewConnection();
    void onReadyRead(Connection* connection);
    void onDisconnected(Connection* connection);
    void processInput(Connection* connection);
    bool processMessage(Connection* connection, const QByteArray& message);
    void dispatch(Connection* connection, const Request& request);
    void sendReply(Connection* connection, const Request& request, const Bson& reply);

    Bson handleHello(Connection* connection, const Request& request, bool legacyName);
    Bson handleBuildInfo() const;
    Bson handleListDatabases(const Request& request) const;
    Bson handleListCollections(const Request& request) const;
    Bson handleFind(const Request& request);
    Bson handleAggregate(const Request& request);
    Bson handleChangeStream(const Request& request, const QString& coll, const QList<Bson>& stages);
    bool handleGetMore(Connection* connection, const Request& request, Bson* reply);
    Bson handleKillCursors(const Request& request);
    Bson handleInsert(const Request& request);
    Bson handleUpdate(const Request& request);
    Bson handleDelete(const Request& request);
    Bson handleCount(const Request& request);

    Bson finishReply(bson_t* body) const; // adds ok and the replica set's cluster time
    void appendClusterTime(bson_t* body) const;
    Bson openFindCursor(const QString& ns, QList<Bson> docs, int batchSize, bool singleBatch);
    qint64 newCursorId();
    QList<Bson> runPipeline(QList<Bson> docs, const QList<Bson>& stages, QString* error) const;
    Bson changeStreamGetMoreReply(PendingGetMore* pending, bool force = false);
    Bson errorReply(int code, const QString& codeName, const QString& errmsg,
                    const QStringList& errorLabels = {}) const;
    QList<Bson> collectionDocuments(const QString& db, const QString& coll, QList<Bson>* pipeline) const;
    Bson cursorReply(const Cursor& cursor, const QList<Bson>& batch, bool first, qint64 id) const;
    QList<Bson> takeFindBatch(Cursor& cursor, int batchSize);
    QList<Bson> takeChangeBatch(Cursor& cursor, int batchSize);
    bool changeCursorHasEvents(const Cursor& cursor) const;
    void appendChange(const QString& db, const QString& coll, const Bson& event, const Bson& preImage,
                      const Bson& postImage);
    void wakeWaitingGetMores();
    void answerGetMore(PendingGetMore* pending, bool timedOut);
    void nextClusterTime(quint32* t, quint32* i);

    QTcpServer* m_server = nullptr; // owned (child)
    std::map<QTcpSocket*, std::unique_ptr<Connection>> m_connections;
    std::vector<std::unique_ptr<Connection>> m_closed; // disconnected, deleted on the next loop pass
    std::map<qint64, std::unique_ptr<Cursor>> m_cursors;
    QList<PendingGetMore*> m_pending; // owned; each also owns a timer

    bool m_replicaSet = true;
    bool m_changeStreamsSupported = true;
    bool m_writesProduceChanges = true;
    bool m_stalled = false;
    QString m_setName = QStringLiteral("rs0");
    int m_maxWireVersion = 17;
    int m_historyLostCode = 286;
    int m_defaultAwaitMs = 1000;
    int m_totalConnections = 0;
    int m_nextConnectionId = 1;
    qint32 m_nextRequestId = 1;

    QHash<QString, std::shared_ptr<Collection>> m_store; // "db.coll"
    QList<LogEntry> m_log;
    qint64 m_historyStart = 0; // oldest position still resumable
    qint64 m_lastPosition = 0; // position of the newest entry (or of the start)
    quint32 m_clusterSeconds = 0;
    quint32 m_clusterIncrement = 0;

    struct Failure {
        QString command;
        Bson reply;
        int remaining = 0;
    };
    QList<Failure> m_failures;
    QList<Bson> m_received;
    QStringList m_receivedNames;
};

} // namespace tw::test

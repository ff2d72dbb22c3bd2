#pragma once

#include "model/Bson.h"
#include "MongoPeerSettings.h"

#include <QByteArrayView>
#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>

#include <memory>

namespace tw::test {

class MongoPeerChangeStreams;
class MongoPeerCommands;
class MongoPeerCursors;
class MongoPeerReplies;
class MongoPeerSchema;
class MongoPeerStore;
class MongoPeerWire;
class MongoPeerWrites;

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
// This class is the tests' face of the peer; it owns the parts, one job each, and
// wires them together. Each part's header says what the peer does not implement
// in its area:
//   MongoPeerWire           sockets and message framing
//   MongoPeerCommands       command dispatch and failpoints, hello, listings, find
//   MongoPeerWrites         insert, update, delete
//   MongoPeerSchema         create, createIndexes, dropIndexes, collMod, drop,
//                           renameCollection, dropDatabase, shardCollection and
//                           their (expanded) change events
//   MongoPeerStore          documents per namespace and the change log
//   MongoPeerMatcher        query filters and aggregation stages
//   MongoPeerChangeStreams  $changeStream cursors, awaiting getMore, invalidate,
//                           history lost
//   MongoPeerResumeToken    the resume token format
//   MongoPeerCursors, MongoPeerReplies, MongoPeerSettings, MongoPeerBson: shared
//                           by the above
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
    bool isReplicaSet() const { return m_settings.replicaSet; }
    void setReplicaSetName(const QString& name) { m_settings.setName = name; }
    QString replicaSetName() const { return m_settings.setName; }
    // 17 = MongoDB 6.0 by default; buildInfo's version follows it. Below 17 (13 =
    // 5.0) a $changeStream with showExpandedEvents fails with 40415, as on 5.0.
    void setMaxWireVersion(int version) { m_settings.maxWireVersion = version; }
    int maxWireVersion() const { return m_settings.maxWireVersion; }
    // false makes `$changeStream` fail with 40573 even as a replica set, the way a
    // standalone answers.
    void setChangeStreamsSupported(bool supported) { m_settings.changeStreamsSupported = supported; }
    bool changeStreamsSupported() const { return m_settings.changeStreamsAvailable(); }
    // The error for a resume token that is not in the change log: 286
    // ChangeStreamHistoryLost (default, MongoDB >= 4.4), 280 ChangeStreamFatalError
    // (4.0-4.2) or 260 InvalidResumeToken.
    void setHistoryLostCode(int code) { m_settings.historyLostCode = code; }
    // How long a change stream getMore without maxTimeMS waits for events. 1000 ms
    // is the server's default for awaitData cursors.
    void setDefaultAwaitTimeMS(int ms) { m_settings.defaultAwaitMs = ms; }

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
    void setWritesProduceChanges(bool on) { m_settings.writesProduceChanges = on; }
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
    // the client's socket instead of replying, like the server's failCommand;
    // {brokenReply: "malformed" | "oversized" | "truncated"} sends a damaged reply
    // instead (see MongoPeerWire::sendBrokenReply).
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
    bool isStalled() const;

    // --- observation ----------------------------------------------------------
    // Every command body received (OP_MSG document sequences merged in as arrays),
    // in order. `name` is compared case-insensitively (isMaster/ismaster); empty
    // returns all.
    QList<Bson> receivedCommands(const QString& name = {}) const;
    QStringList receivedCommandNames() const;
    void clearReceivedCommands();
    int connectionCount() const;
    int totalConnections() const;

Q_SIGNALS:
    void commandReceived(const QString& name);
    void clientConnected();
    void clientDisconnected();

private:
    // The parts, each owned; declared in the order they depend on each other, so
    // that each is destroyed before what it refers to.
    MongoPeerSettings m_settings;
    std::unique_ptr<MongoPeerStore> m_store;
    std::unique_ptr<MongoPeerWire> m_wire;
    std::unique_ptr<MongoPeerReplies> m_replies;
    std::unique_ptr<MongoPeerCursors> m_cursors;
    std::unique_ptr<MongoPeerChangeStreams> m_changeStreams;
    std::unique_ptr<MongoPeerWrites> m_writes;
    std::unique_ptr<MongoPeerSchema> m_schema;
    std::unique_ptr<MongoPeerCommands> m_commands;

    QList<Bson> m_received;
    QStringList m_receivedNames;
};

} // namespace tw::test

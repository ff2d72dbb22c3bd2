#pragma once

#include "MongoPeerCursors.h"
#include "MongoPeerWire.h"

#include <QList>
#include <QObject>
#include <QString>

class QTimer;

namespace tw::test {

class MongoPeerReplies;
class MongoPeerStore;
struct MongoPeerSettings;

// The MongoDB test peer's change streams: `aggregate [{$changeStream: …}, …]` opens
// a cursor on the change log (MongoPeerStore) for a collection, a database or, with
// allChangesForCluster on admin, the whole deployment; getMore reads on from it,
// and without events waits (awaitData) until one arrives or maxTimeMS passes.
//
// Resume tokens are positions in the log (MongoPeerResumeToken). Resuming from a
// token the log no longer holds (or never issued) fails with the configured
// history-lost code (286 ChangeStreamHistoryLost by default); a getMore on a cursor
// whose position the log has forgotten fails with 286.
//
// Invalidate: a drop/rename of a watched collection (or dropDatabase of a watched
// database) is followed by an invalidate event, and the cursor is closed (id 0) in
// that same reply. A cursor closed by an invalidate must not be advanced again:
// libmongoc would then resume with resumeAfter=<invalidate token>, which servers
// (and the peer) refuse with 260; startAfter that token is allowed.
//
// In a change stream pipeline only $match stages are applied (MongoPeerMatcher);
// the other stages are accepted and ignored.
class MongoPeerChangeStreams : public QObject {
    Q_OBJECT

public:
    using Connection = MongoPeerWire::Connection;
    using Request = MongoPeerWire::Request;
    using Cursor = MongoPeerCursors::Cursor;

    // All must outlive this object.
    MongoPeerChangeStreams(const MongoPeerSettings& settings, const MongoPeerStore& store,
                           MongoPeerCursors& cursors, MongoPeerWire& wire, const MongoPeerReplies& replies,
                           QObject* parent = nullptr);
    ~MongoPeerChangeStreams() override;

    // `stages` is the aggregate's pipeline, `$changeStream` first; coll is empty
    // for a database or deployment stream. Returns the first reply (or an error).
    Bson open(const Request& request, const QString& coll, const QList<Bson>& stages);
    // A getMore on a change stream cursor. Returns false when the request was
    // parked; it is answered later on `connection` (which then reads on).
    bool getMore(Connection* connection, const Request& request, Cursor& cursor, int batchSize, Bson* reply);
    int openCount() const;

    // Answers parked getMores whose cursor has something to say (called after each
    // change, and after killCursors).
    void wakeWaitingGetMores();
    // Forgets the getMores parked on a connection that closed.
    void dropWaiting(Connection* connection);
    // Answers what fell due while the peer was stalled.
    void stallEnded();

private:
    struct PendingGetMore {
        Connection* connection = nullptr;
        Request request;
        qint64 cursorId = 0;
        int batchSize = 0;
        bool timedOut = false;
        QTimer* timer = nullptr; // owned by the change streams (child); deleted with this entry
    };

    bool hasEvents(const Cursor& cursor) const;
    QList<Bson> takeBatch(Cursor& cursor, int batchSize);
    Bson getMoreReply(PendingGetMore* pending, bool force = false);
    void answerGetMore(PendingGetMore* pending, bool timedOut);

    const MongoPeerSettings& m_settings;
    const MongoPeerStore& m_store;
    MongoPeerCursors& m_cursors;
    MongoPeerWire& m_wire;
    const MongoPeerReplies& m_replies;
    QList<PendingGetMore*> m_pending; // owned; each also owns a timer
};

} // namespace tw::test

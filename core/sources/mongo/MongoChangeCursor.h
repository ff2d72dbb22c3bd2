#pragma once

#include "model/Bson.h"
#include "model/Namespace.h"

#include <QString>

struct _mongoc_client_t;
struct _mongoc_client_session_t;

namespace tw {

// One change stream cursor, driven by hand: `aggregate` with a `$changeStream` stage
// we build ourselves, `getMore` with maxTimeMS, `killCursors` on close, all on one
// selected server and in one explicit session (a server ties a cursor to the session
// that opened it). libmongoc 1.23's mongoc_change_stream_t cannot put
// showExpandedEvents into the stage, so it keeps only what it does well here: the
// connection, authentication, TLS, server selection and the pool.
//
// Like the driver's change stream it resumes once by itself: a resumable getMore
// error (see classifyStreamError) reopens at once from the cursor's own resume point
// with resumeAfter (startAfter while nothing was returned yet). A second failure is
// reported. The resume point is the `_id` of the last event returned, or the
// batch's postBatchResumeToken once the batch is used up.
//
// Used on one thread; the client is the caller's and must outlive the cursor.
class MongoChangeCursor {
public:
    struct Options {
        Namespace ns; // a collection, a database, or empty: the whole deployment
        Bson match;   // a $match stage after $changeStream; absent: none
        QString fullDocument = QStringLiteral("default");
        QString fullDocumentBeforeChange = QStringLiteral("off");
        bool showExpandedEvents = false;
        int batchSize = 0; // 0: the server's
        int maxAwaitMs = 500;
        Bson startAfter;        // absent: from now
        quint32 serverId = 0;   // the server selected for the cursor (MongoConnection)
        int maxWireVersion = 0; // decides which errors are resumable
    };

    explicit MongoChangeCursor(_mongoc_client_t* client);
    ~MongoChangeCursor(); // close()
    MongoChangeCursor(const MongoChangeCursor&) = delete;
    MongoChangeCursor& operator=(const MongoChangeCursor&) = delete;

    // Sends the aggregate. False on error: error() then holds it.
    bool open(const Options& options);
    // The next event, valid until the next call. False when the batch ran out and a
    // getMore brought nothing within maxAwaitMs, when the server closed the cursor
    // (after an invalidate; isClosed()), or on an error (hasError()).
    bool next(const bson_t** event);
    bool isClosed() const { return m_cursorId == 0 && m_batchDone; }
    bool hasError() const { return m_hasError; }
    // True once after the cursor resumed by itself from a resumable error, with
    // that error's message: the stream went on, but the state should say it broke.
    bool takeResume(QString* message);
    // The error and the server's reply (null or empty when it sent none).
    const bson_error_t& error() const { return m_error; }
    const bson_t* errorReply() const { return m_hasError ? &m_reply : nullptr; }
    // Where a stream opened startAfter it would carry on; null before the first reply.
    const bson_t* resumeToken();
    // Kills the server cursor (when it is still open and its connection was sound)
    // and ends the session.
    void close();

private:
    bool aggregate(const Bson& token, bool startAfter);
    bool getMore();
    bool run(const char* db, const bson_t* command, bool read);
    bool takeReply(const char* batchKey);
    bool takeFromBatch(const bson_t** event);
    bool resume();
    Bson currentToken() const;

    _mongoc_client_t* m_client = nullptr;          // the caller's
    _mongoc_client_session_t* m_session = nullptr; // owned; null where the server has no sessions
    Options m_options;
    QByteArray m_db;         // where getMore and killCursors go
    QByteArray m_collection; // the cursor's collection ("$cmd.aggregate" for a database)
    qint64 m_cursorId = 0;
    bson_t m_reply;        // the last reply; the batch and the event view point into it
    bson_iter_t m_batch{}; // on the batch array of m_reply
    bool m_batchDone = true;
    bool m_hasError = false;
    bool m_returnedAny = false; // an event was returned since open(): a resume uses resumeAfter
    bool m_resumed = false;     // the one resume of this failure is spent
    QString m_resumedAfter;     // the error of a resume not yet taken by takeResume()
    bool m_atEvent = false;     // the resume point is the `_id` of m_event
    bson_error_t m_error{};
    bson_t m_event{};      // a view on the event last returned
    Bson m_postBatchToken; // postBatchResumeToken of the last reply
    Bson m_lastEventToken; // `_id` of the last event of an earlier batch
    Bson m_tokenCopy;      // what resumeToken()'s view shows
    bson_t m_tokenView{};
};

} // namespace tw

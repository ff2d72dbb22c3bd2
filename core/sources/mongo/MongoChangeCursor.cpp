#include "MongoChangeCursor.h"

#include "MongoConnection.h"
#include "MongoErrors.h"

#include <mongoc/mongoc.h>

#include <algorithm>
#include <cstring>

namespace tw {

namespace {

void appendUtf8(bson_t* doc, const char* key, const QString& value) {
    const QByteArray v = value.toUtf8();
    bson_append_utf8(doc, key, -1, v.constData(), int(v.size()));
}

} // namespace

MongoChangeCursor::MongoChangeCursor(mongoc_client_t* client)
    : m_client(client) {
    bson_init(&m_reply);
}

MongoChangeCursor::~MongoChangeCursor() {
    close();
    bson_destroy(&m_reply);
}

bool MongoChangeCursor::open(const Options& options) {
    m_options = options;
    m_hasError = false;
    m_returnedAny = false;
    m_resumed = false;
    if (!m_session) {
        // A cursor belongs to the session that opened it: every getMore and the
        // killCursors must carry the same lsid, which implicit sessions do not promise.
        bson_error_t error;
        m_session = mongoc_client_start_session(m_client, nullptr, &error);
        if (!m_session) // a server without sessions: the cursor then needs none
            qCDebug(lcMongo, "no session for the change stream: %s", error.message);
    }
    return aggregate(options.startAfter, true);
}

bool MongoChangeCursor::run(const char* db, const bson_t* command, bool read) {
    BsonBuilder opts;
    bson_append_int32(opts.get(), "serverId", -1, int32_t(m_options.serverId));
    bson_error_t error;
    if (m_session && !mongoc_client_session_append(m_session, opts.get(), &error)) {
        m_error = error;
        m_hasError = true;
        return false;
    }
    bson_destroy(&m_reply); // the old batch goes: nothing may point into it now
    m_batchDone = true;
    m_atEvent = false;
    // The aggregate is a retryable read (libmongoc retries it once on a network
    // error); getMore and killCursors are sent as they are.
    const bool ok = read ? mongoc_client_read_command_with_opts(m_client, db, command, nullptr, opts.get(),
                                                                &m_reply, &m_error)
                         : mongoc_client_command_with_opts(m_client, db, command, nullptr, opts.get(),
                                                           &m_reply, &m_error);
    if (!ok) {
        m_hasError = true;
        m_cursorId = 0; // the connection failed or the cursor is gone: nothing to kill
    }
    return ok;
}

bool MongoChangeCursor::aggregate(const Bson& token, bool startAfter) {
    const Options& o = m_options;
    const bool deployment = o.ns.isDeployment();
    const QByteArray db = deployment ? QByteArrayLiteral("admin") : o.ns.db.toUtf8();
    BsonBuilder command;
    if (o.ns.coll.isEmpty())
        bson_append_int32(command.get(), "aggregate", -1, 1);
    else
        appendUtf8(command.get(), "aggregate", o.ns.coll);

    bson_t pipeline, stage, spec;
    bson_append_array_begin(command.get(), "pipeline", -1, &pipeline);
    bson_append_document_begin(&pipeline, "0", 1, &stage);
    bson_append_document_begin(&stage, "$changeStream", -1, &spec);
    if (!o.fullDocument.isEmpty() && o.fullDocument != QLatin1String("default"))
        appendUtf8(&spec, "fullDocument", o.fullDocument);
    if (!o.fullDocumentBeforeChange.isEmpty() && o.fullDocumentBeforeChange != QLatin1String("off"))
        appendUtf8(&spec, "fullDocumentBeforeChange", o.fullDocumentBeforeChange);
    if (o.showExpandedEvents)
        bson_append_bool(&spec, "showExpandedEvents", -1, true);
    if (deployment)
        bson_append_bool(&spec, "allChangesForCluster", -1, true);
    bson_t tokenView;
    if (token.view(&tokenView))
        bson_append_document(&spec, startAfter ? "startAfter" : "resumeAfter", -1, &tokenView);
    bson_append_document_end(&stage, &spec);
    bson_append_document_end(&pipeline, &stage);
    bson_t match;
    if (o.match.view(&match) && !bson_empty(&match)) {
        bson_append_document_begin(&pipeline, "1", 1, &stage);
        bson_append_document(&stage, "$match", -1, &match);
        bson_append_document_end(&pipeline, &stage);
    }
    bson_append_array_end(command.get(), &pipeline);
    bson_t cursor;
    bson_append_document_begin(command.get(), "cursor", -1, &cursor);
    if (o.batchSize > 0)
        bson_append_int32(&cursor, "batchSize", -1, o.batchSize);
    bson_append_document_end(command.get(), &cursor);

    m_db = db;
    m_collection = o.ns.coll.isEmpty() ? QByteArrayLiteral("$cmd.aggregate") : o.ns.coll.toUtf8();
    return run(db.constData(), command.get(), true) && takeReply("firstBatch");
}

bool MongoChangeCursor::getMore() {
    if (m_atEvent)
        m_lastEventToken = currentToken(); // the reply it lives in is about to go
    BsonBuilder command;
    bson_append_int64(command.get(), "getMore", -1, m_cursorId);
    bson_append_utf8(command.get(), "collection", -1, m_collection.constData(), int(m_collection.size()));
    if (m_options.batchSize > 0)
        bson_append_int32(command.get(), "batchSize", -1, m_options.batchSize);
    bson_append_int64(command.get(), "maxTimeMS", -1, std::max(1, m_options.maxAwaitMs));
    return run(m_db.constData(), command.get(), false) && takeReply("nextBatch");
}

bool MongoChangeCursor::takeReply(const char* batchKey) {
    bson_iter_t it, cursor;
    if (!bson_iter_init_find(&it, &m_reply, "cursor") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
        !bson_iter_recurse(&it, &cursor)) {
        // Not the server's answer to the command but a damaged reply: a protocol
        // error, which the stream survives by resuming.
        bson_set_error(&m_error, MONGOC_ERROR_PROTOCOL, MONGOC_ERROR_PROTOCOL_INVALID_REPLY,
                       "the server's change stream reply has no cursor");
        m_hasError = true;
        m_cursorId = 0;
        return false;
    }
    bool haveBatch = false;
    m_postBatchToken = Bson();
    while (bson_iter_next(&cursor)) {
        const char* key = bson_iter_key(&cursor);
        if (!strcmp(key, "id")) {
            m_cursorId = bson_iter_as_int64(&cursor);
        } else if (!strcmp(key, "ns") && BSON_ITER_HOLDS_UTF8(&cursor)) {
            // "db.coll", "db.$cmd.aggregate" for a database or the deployment
            const char* ns = bson_iter_utf8(&cursor, nullptr);
            if (const char* dot = strchr(ns, '.'))
                m_collection = QByteArray(dot + 1);
        } else if (!strcmp(key, batchKey) && BSON_ITER_HOLDS_ARRAY(&cursor)) {
            haveBatch = bson_iter_recurse(&cursor, &m_batch);
        } else if (!strcmp(key, "postBatchResumeToken")) {
            m_postBatchToken = copyDocument(&cursor);
        }
    }
    m_batchDone = !haveBatch;
    return true;
}

bool MongoChangeCursor::takeFromBatch(const bson_t** event) {
    while (!m_batchDone && bson_iter_next(&m_batch)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&m_batch) || !iterView(&m_batch, &m_event))
            continue;
        m_atEvent = true;
        m_returnedAny = true;
        *event = &m_event;
        return true;
    }
    if (!m_batchDone) {
        m_batchDone = true;
        // Past the batch the server's position is the resume point, beyond events the
        // $match dropped; servers before 4.0.7 send none.
        if (!m_postBatchToken.isAbsent())
            m_atEvent = false;
    }
    return false;
}

bool MongoChangeCursor::next(const bson_t** event) {
    bool fetched = false; // at most one getMore per call: it is what waits maxTimeMS
    while (!m_hasError) {
        if (takeFromBatch(event))
            return true;
        if (m_cursorId == 0 || fetched)
            return false; // closed by the server (invalidate), or nothing within maxTimeMS
        if (getMore()) {
            fetched = true;
            m_resumed = false; // the stream moves again: a later failure gets its own resume
        } else if (!resume()) {
            return false;
        }
    }
    return false;
}

bool MongoChangeCursor::resume() {
    if (m_resumed ||
        classifyStreamError(m_error, &m_reply, m_options.maxWireVersion).kind != StreamErrorKind::Resumable)
        return false;
    m_resumed = true; // once per failure: a getMore that succeeds allows the next one
    qCDebug(lcMongo, "resuming the change stream once: %s", m_error.message);
    const QString after = classifyStreamError(m_error, &m_reply, m_options.maxWireVersion).message;
    const Bson token = currentToken();
    m_hasError = false;
    m_cursorId = 0;
    // A stream opened startAfter keeps it until its first event (the token may be an
    // invalidate's, which resumeAfter refuses); after that resumeAfter, as the spec says.
    const bool startAfter = !m_returnedAny && !m_options.startAfter.isAbsent();
    if (!aggregate(token.isAbsent() ? m_options.startAfter : token, startAfter))
        return false;
    m_resumedAfter = after;
    return true;
}

bool MongoChangeCursor::takeResume(QString* message) {
    if (m_resumedAfter.isEmpty())
        return false;
    *message = m_resumedAfter;
    m_resumedAfter.clear();
    return true;
}

Bson MongoChangeCursor::currentToken() const {
    if (m_atEvent) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, &m_event, "_id"))
            return copyDocument(&it);
    }
    return m_postBatchToken.isAbsent() ? m_lastEventToken : m_postBatchToken;
}

const bson_t* MongoChangeCursor::resumeToken() {
    m_tokenCopy = currentToken();
    return m_tokenCopy.view(&m_tokenView) ? &m_tokenView : nullptr;
}

void MongoChangeCursor::close() {
    if (m_cursorId != 0 && !m_hasError) {
        BsonBuilder command;
        bson_append_utf8(command.get(), "killCursors", -1, m_collection.constData(),
                         int(m_collection.size()));
        bson_t ids;
        bson_append_array_begin(command.get(), "cursors", -1, &ids);
        bson_append_int64(&ids, "0", 1, m_cursorId);
        bson_append_array_end(command.get(), &ids);
        if (!run(m_db.constData(), command.get(), false))
            qCDebug(lcMongo, "killCursors failed: %s", m_error.message);
    }
    m_cursorId = 0;
    m_batchDone = true;
    m_atEvent = false;
    if (m_session)
        mongoc_client_session_destroy(m_session);
    m_session = nullptr;
}

} // namespace tw

#include "MongoWatch.h"

#include "ChangeEventMapper.h"
#include "MongoCatalog.h"
#include "MongoConnection.h"
#include "MongoErrors.h"
#include "MongoPoller.h"
#include "MongoPushDown.h"
#include "MongoResumeTokens.h"

#include <QDateTime>
#include <QElapsedTimer>

#include <mongoc/mongoc.h>

#include <algorithm>

namespace tw {

namespace {

// Whether two option sets open the same stream, the $match aside (compared as the
// filter it becomes, not as the readers it comes from).
bool sameOptions(const WatchOptions& a, const WatchOptions& b) {
    return a.fullDocument == b.fullDocument && a.fullDocumentBeforeChange == b.fullDocumentBeforeChange &&
           a.showExpandedEvents == b.showExpandedEvents && a.batchSize == b.batchSize &&
           a.maxAwaitTimeMs == b.maxAwaitTimeMs && a.pollField == b.pollField;
}

} // namespace

MongoWatch::MongoWatch(const Context& context, const Namespace& ns, const WatchOptions& options)
    : m_context(context)
    , m_ns(ns)
    , m_key(keyOf(ns))
    , m_options(options)
    , m_match(MongoPushDown::matchOf(ns, options)) {}

MongoWatch::~MongoWatch() {
    close();
}

qint64 MongoWatch::nowMs() {
    return QDateTime::currentMSecsSinceEpoch();
}

QString MongoWatch::describe(const Namespace& ns) {
    if (ns.isDeployment())
        return QStringLiteral("the whole deployment");
    if (ns.isDatabase())
        return QStringLiteral("database %1").arg(ns.db);
    return ns.toString();
}

bool MongoWatch::setOptions(const WatchOptions& options) {
    const Bson match = MongoPushDown::matchOf(m_ns, options);
    const bool same = sameOptions(m_options, options) && match == m_match;
    const bool pollFieldChanged = m_options.pollField != options.pollField;
    m_options = options;
    if (same)
        return false;
    m_match = match;
    if (m_mode == Mode::Streaming || m_mode == Mode::Backoff || m_mode == Mode::Failed) {
        // Reopen from the token of the last event handed over, not from the
        // position the old stream reported past it: events the old $match dropped
        // but the new one keeps are then read too, and none is read twice.
        closeStream();
        if (!m_lastEventToken.isAbsent() && !(m_context.tokens->value(m_key) == m_lastEventToken))
            m_context.tokens->insert(m_key, m_lastEventToken);
        m_mode = Mode::Opening;
        m_dueMs = 0;
    } else if (m_mode == Mode::Polling && pollFieldChanged) {
        for (auto& entry : m_pollers)
            entry.second->clear(m_context.host->pendingBatch().checkpoint);
        m_pollers.clear();
        m_context.host->flushPendingBatch();
        m_dueMs = 0;
    }
    return true;
}

void MongoWatch::step(qint64 deadlineMs) {
    switch (m_mode) {
    case Mode::Streaming:
        drain(deadlineMs);
        break;
    case Mode::Opening:
    case Mode::Backoff:
        if (nowMs() >= m_dueMs) {
            openStream();
            if (m_mode == Mode::Streaming)
                drain(deadlineMs);
        }
        break;
    case Mode::Polling:
        if (nowMs() >= m_dueMs)
            poll();
        break;
    case Mode::Failed:
        break;
    }
}

void MongoWatch::release() {
    close();
    for (auto& entry : m_pollers)
        entry.second->clear(m_context.host->pendingBatch().checkpoint);
    m_pollers.clear();
}

void MongoWatch::close() {
    closeStream();
    releaseClient();
}

void MongoWatch::releaseClient() {
    m_context.connection->pushClient(m_client);
}

void MongoWatch::closeStream() {
    if (m_stream)
        mongoc_change_stream_destroy(m_stream); // kills the server cursor
    m_stream = nullptr;
    if (m_collection)
        mongoc_collection_destroy(m_collection);
    m_collection = nullptr;
    if (m_database)
        mongoc_database_destroy(m_database);
    m_database = nullptr;
}

void MongoWatch::openStream() {
    MongoConnection& connection = *m_context.connection;
    QString why;
    if (!connection.open(&why)) {
        enterBackoff(QStringLiteral("Cannot connect to %1: %2").arg(connection.redactedUri(), why), true);
        return;
    }
    if (!m_client)
        m_client = connection.popClient();

    // The wire version decides which errors are resumable (below 9: a list of codes).
    // Selecting a server is also where an unreachable deployment shows, within
    // serverSelectionTimeoutMS.
    bson_error_t error;
    if (!connection.selectServer(m_client, &error)) {
        handleError(QStringLiteral("connecting for"), error, nullptr);
        return;
    }

    BsonBuilder pipeline;
    bson_t stages;
    bson_append_array_begin(pipeline.get(), "pipeline", 8, &stages);
    bson_t match;
    if (m_match.view(&match) && !bson_empty(&match)) {
        bson_t stage;
        bson_append_document_begin(&stages, "0", 1, &stage);
        bson_append_document(&stage, "$match", 6, &match);
        bson_append_document_end(&stages, &stage);
    }
    bson_append_array_end(pipeline.get(), &stages);

    BsonBuilder opts;
    const WatchOptions& o = m_options;
    if (!o.fullDocument.isEmpty() && o.fullDocument != QLatin1String("default")) {
        const QByteArray v = o.fullDocument.toUtf8();
        bson_append_utf8(opts.get(), "fullDocument", -1, v.constData(), int(v.size()));
    }
    if (!o.fullDocumentBeforeChange.isEmpty() && o.fullDocumentBeforeChange != QLatin1String("off")) {
        const QByteArray v = o.fullDocumentBeforeChange.toUtf8();
        bson_append_utf8(opts.get(), "fullDocumentBeforeChange", -1, v.constData(), int(v.size()));
    }
#if MONGOC_CHECK_VERSION(1, 24, 0)
    if (o.showExpandedEvents)
        bson_append_bool(opts.get(), "showExpandedEvents", -1, true);
#else
    // libmongoc 1.23 knows no showExpandedEvents and would put it at the top of the
    // aggregate command, where a server rejects it (40415): DDL events beyond drop,
    // rename and dropDatabase need a newer driver. See the note in
    // MongoSource::updateStatus().
#endif
    if (o.batchSize > 0)
        bson_append_int32(opts.get(), "batchSize", -1, o.batchSize);
    bson_append_int64(opts.get(), "maxAwaitTimeMS", -1, std::clamp(o.maxAwaitTimeMs, 1, kMaxAwaitMs));
    const Bson token = m_context.tokens->value(m_key);
    bson_t tokenView;
    if (token.view(&tokenView))
        bson_append_document(opts.get(), "startAfter", -1, &tokenView); // survives an invalidate

    const QByteArray db = m_ns.db.toUtf8();
    if (m_ns.isDeployment()) {
        m_stream = mongoc_client_watch(m_client, pipeline.get(), opts.get());
    } else if (m_ns.isDatabase()) {
        m_database = mongoc_client_get_database(m_client, db.constData());
        m_stream = mongoc_database_watch(m_database, pipeline.get(), opts.get());
    } else {
        const QByteArray coll = m_ns.coll.toUtf8();
        m_collection = mongoc_client_get_collection(m_client, db.constData(), coll.constData());
        m_stream = mongoc_collection_watch(m_collection, pipeline.get(), opts.get());
    }
    const bson_t* reply = nullptr;
    if (mongoc_change_stream_error_document(m_stream, &error, &reply)) {
        handleError(QStringLiteral("opening the change stream on"), error, reply);
        return;
    }
    if (m_opened && !m_fatal && m_attempts > 0)
        m_context.host->streamReconnected();
    m_mode = Mode::Streaming;
    m_fatal = false;
    const bool firstOpen = !m_opened;
    m_opened = true;
    if (firstOpen)
        m_context.host->watchOpened(m_ns);
    if (!m_invalidated && m_reason.endsWith(QLatin1String("; retrying")))
        m_reason.clear();
    m_invalidated = false;
    if (token.isAbsent()) {
        // Starting from now: make the position durable before any event, so a restart
        // resumes here rather than at a later "now".
        if (const bson_t* start = mongoc_change_stream_get_resume_token(m_stream))
            m_context.tokens->insert(m_key, Bson::fromBsonT(start), true);
    }
}

void MongoWatch::drain(qint64 deadlineMs) {
    ChangeBatch& pending = m_context.host->pendingBatch();
    int taken = 0;
    const bson_t* doc = nullptr;
    while (!isStopRequested()) {
        if (!mongoc_change_stream_next(m_stream, &doc)) {
            bson_error_t error;
            const bson_t* reply = nullptr;
            if (mongoc_change_stream_error_document(m_stream, &error, &reply)) {
                handleError(QStringLiteral("reading the change stream of"), error, reply);
                return;
            }
            m_attempts = 0;
            if (m_invalidated) {
                // The server closed the cursor after invalidate. Reopening with
                // startAfter the invalidate token picks up the collection when it is
                // created again.
                closeStream();
                m_mode = Mode::Opening;
                m_dueMs = 0;
                return;
            }
            // An empty batch after maxAwaitTimeMS: persist the position the server
            // reached (postBatchResumeToken) so a filtered-out stretch is not re-read.
            if (const bson_t* position = mongoc_change_stream_get_resume_token(m_stream)) {
                const Bson token = Bson::fromBsonT(position);
                if (!(token == m_context.tokens->value(m_key)))
                    m_context.tokens->insert(m_key, token);
            }
            return;
        }
        m_attempts = 0;
        ChangeEvent event;
        QString error;
        if (!m_context.mapper->map(doc, &event, &error)) {
            qCWarning(lcMongo).noquote() << "skipping an event of" << describe(m_ns) << ":" << error;
            continue;
        }
        if (event.operation() == Operation::Invalidate) {
            m_invalidated = true;
            if (event.ns().db.isEmpty())
                event.setNs(m_ns);
            m_reason =
                m_ns.isDatabase()
                    ? QStringLiteral("database %1 was dropped (invalidate); watching for it to come back")
                          .arg(m_ns.db)
                    : QStringLiteral("%1 was dropped or renamed (invalidate); watching for it to come back")
                          .arg(m_ns.toString());
            event.setReason(m_reason);
        } else if (!m_reason.isEmpty()) {
            m_reason.clear(); // events flow again
        }
        if (!event.resumeToken().isAbsent()) {
            m_lastEventToken = event.resumeToken();
            m_context.tokens->insert(m_key, event.resumeToken());
        }
        pending.events.append(event);
        if (pending.events.size() >= kBatchEvents)
            m_context.host->flushPendingBatch();
        if (++taken >= kBatchEvents || nowMs() >= deadlineMs)
            return;
    }
}

void MongoWatch::handleError(const QString& during, const bson_error_t& error, const bson_t* reply) {
    const MongoConnection& connection = *m_context.connection;
    const StreamError e = classifyStreamError(error, reply, connection.maxWireVersion());
    const QString message = connection.redact(e.message);
    const QString uri = connection.redactedUri();
    const bool hadToken = m_context.tokens->contains(m_key);
    closeStream();
    qCInfo(lcMongo).noquote() << during << describe(m_ns) << "failed:" << message;
    switch (e.kind) {
    case StreamErrorKind::Resumable:
        enterBackoff(
            QStringLiteral("%1 %2 on %3 failed: %4; retrying").arg(during, describe(m_ns), uri, message));
        break;
    case StreamErrorKind::HistoryLost:
        if (!hadToken) {
            // History cannot be lost for a stream that starts now: something else is
            // wrong; retrying slowly avoids a storm.
            enterBackoff(
                QStringLiteral("%1 %2 on %3 failed: %4; retrying").arg(during, describe(m_ns), uri, message),
                true);
            break;
        }
        m_context.host->pendingBatch().events.append(ChangeEvent::makeGap(
            m_context.sourceId, m_ns,
            QStringLiteral(
                "change stream history lost (%1): changes to %2 before now may be missing; re-read it")
                .arg(message, describe(m_ns))));
        m_context.tokens->remove(m_key);
        m_mode = Mode::Opening;
        m_dueMs = 0;
        m_reason = QStringLiteral("history lost at %1; restarted from now")
                       .arg(QDateTime::currentDateTime().toString(Qt::ISODate));
        break;
    case StreamErrorKind::Unsupported:
        enterPolling(message);
        break;
    case StreamErrorKind::Invalid:
        m_mode = Mode::Failed;
        m_reason = QStringLiteral("cannot watch %1: %2").arg(describe(m_ns), message);
        releaseClient();
        m_context.host->watchInvalid(
            m_ns, QStringLiteral("Cannot watch %1 on %2: %3. Check the watch options and the pipeline.")
                      .arg(describe(m_ns), uri, message));
        break;
    case StreamErrorKind::Fatal:
        enterBackoff(QStringLiteral("%1 %2 on %3 failed: %4").arg(during, describe(m_ns), uri, message),
                     true);
        break;
    }
}

void MongoWatch::enterBackoff(const QString& reason, bool fatal) {
    closeStream();
    ++m_attempts;
    // A non-transient error (authentication, TLS) goes straight to the slowest retry.
    const MongoConnection& connection = *m_context.connection;
    const int delay = fatal ? connection.backoffDelayMs(64) : connection.backoffDelayMs(m_attempts);
    m_mode = Mode::Backoff;
    m_fatal = fatal;
    m_dueMs = nowMs() + delay;
    m_reason = reason;
}

void MongoWatch::enterPolling(const QString& why) {
    closeStream();
    m_mode = Mode::Polling;
    m_dueMs = 0;
    m_fatal = false;
    m_attempts = 0;
    m_reason = QStringLiteral("polling %1: change streams are not available (%2)").arg(describe(m_ns), why);
}

void MongoWatch::poll() {
    MongoConnection& connection = *m_context.connection;
    if (!connection.isOpen())
        return;
    if (!m_client)
        m_client = connection.popClient();
    ChangeBatch& pending = m_context.host->pendingBatch();
    QString error;
    const QList<Namespace> targets = MongoCatalog::pollTargets(m_client, m_ns, &error);
    if (!error.isEmpty()) {
        ++m_attempts;
        m_dueMs = nowMs() + connection.backoffDelayMs(m_attempts);
        m_reason = QStringLiteral("polling %1: %2; retrying").arg(describe(m_ns), connection.redact(error));
        return;
    }
    // A collection that left a database-wide poll was dropped.
    for (auto it = m_pollers.begin(); it != m_pollers.end();) {
        if (targets.contains(it->second->ns())) {
            ++it;
            continue;
        }
        ChangeEvent drop;
        drop.setSourceId(m_context.sourceId);
        drop.setNs(it->second->ns());
        drop.setOperation(Operation::Drop);
        drop.setWallTimeMs(nowMs());
        pending.events.append(drop);
        it->second->clear(pending.checkpoint);
        it = m_pollers.erase(it);
    }
    int interval = 60000;
    for (const Namespace& ns : targets) {
        if (isStopRequested())
            return;
        auto& poller = m_pollers[ns.toString()];
        if (!poller) {
            poller = std::make_unique<MongoPoller>(m_context.sourceId, ns, m_options.pollField);
            poller->restore(m_context.restore->state);
        }
        const QString failure = [&] {
            const MongoPoller::ScanKind kind = poller->nextScanKind();
            BsonBuilder filter, opts;
            poller->scanQuery(kind, filter.get(), opts.get());
            const QByteArray db = ns.db.toUtf8(), coll = ns.coll.toUtf8();
            mongoc_collection_t* collection =
                mongoc_client_get_collection(m_client, db.constData(), coll.constData());
            QElapsedTimer timer;
            timer.start();
            poller->beginScan(kind);
            mongoc_cursor_t* cursor =
                mongoc_collection_find_with_opts(collection, filter.get(), opts.get(), nullptr);
            const bson_t* doc = nullptr;
            bool aborted = false;
            while (mongoc_cursor_next(cursor, &doc)) {
                poller->addDocument(doc, pending);
                if (pending.events.size() + pending.checkpoint.stateUpserts.size() >= kBatchEvents)
                    m_context.host->flushPendingBatch();
                if (isStopRequested()) {
                    aborted = true;
                    break;
                }
            }
            bson_error_t err;
            QString message;
            if (!aborted && mongoc_cursor_error(cursor, &err)) {
                message = QString::fromUtf8(err.message);
                aborted = true;
            }
            mongoc_cursor_destroy(cursor);
            mongoc_collection_destroy(collection);
            if (aborted)
                poller->abortScan();
            else
                poller->endScan(pending, timer.elapsed());
            return message;
        }();
        if (!failure.isEmpty()) {
            ++m_attempts;
            m_dueMs = nowMs() + connection.backoffDelayMs(m_attempts);
            m_reason =
                QStringLiteral("polling %1: %2; retrying").arg(describe(ns), connection.redact(failure));
            return;
        }
        interval = std::min(interval, poller->intervalMs());
    }
    if (m_attempts > 0 && m_reason.endsWith(QLatin1String("; retrying")))
        m_reason = QStringLiteral("polling %1: change streams are not available").arg(describe(m_ns));
    m_attempts = 0;
    if (!m_opened)
        m_context.host->watchOpened(m_ns); // the first snapshot is the baseline
    m_opened = true;
    m_dueMs = nowMs() + (targets.isEmpty() ? 1000 : interval);
}

} // namespace tw

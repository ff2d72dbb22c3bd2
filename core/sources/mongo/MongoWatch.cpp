#include "MongoWatch.h"

#include "ChangeEventMapper.h"
#include "MongoCatalog.h"
#include "MongoChangeCursor.h"
#include "MongoConnection.h"
#include "MongoErrors.h"
#include "MongoPoller.h"
#include "MongoPushDown.h"
#include "MongoResumeTokens.h"

#include <QDateTime>
#include <QElapsedTimer>

#include <mongoc/mongoc.h>

#include <algorithm>
#include <cstring>

namespace tw {

namespace {

// Whether two option sets open the same stream, the $match aside (compared as the
// filter it becomes, not as the readers it comes from).
bool sameOptions(const WatchOptions& a, const WatchOptions& b) {
    return a.fullDocument == b.fullDocument && a.fullDocumentBeforeChange == b.fullDocumentBeforeChange &&
           a.showExpandedEvents == b.showExpandedEvents && a.batchSize == b.batchSize &&
           a.maxAwaitTimeMs == b.maxAwaitTimeMs && a.pollField == b.pollField;
}

// MongoDB 6.0 (wire version 17) is the first to send the expanded change events
// (create, createIndexes, modify, …) and to accept showExpandedEvents.
constexpr int kExpandedEventsWireVersion = 17;

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
    m_cursor.reset(); // kills the server cursor
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
    MongoChangeCursor::Options o;
    if (!connection.selectServer(m_client, &error, &o.serverId)) {
        handleError(QStringLiteral("connecting for"), error, nullptr);
        return;
    }
    o.ns = m_ns;
    o.match = m_match;
    o.fullDocument = m_options.fullDocument;
    o.fullDocumentBeforeChange = m_options.fullDocumentBeforeChange;
    o.batchSize = m_options.batchSize;
    o.maxAwaitMs = std::clamp(m_options.maxAwaitTimeMs, 1, kMaxAwaitMs);
    o.maxWireVersion = connection.maxWireVersion();
    const Bson token = m_context.tokens->value(m_key);
    o.startAfter = token; // startAfter survives an invalidate
    m_expandedEventsNote.clear();
    if (m_options.showExpandedEvents) {
        const QString without = QStringLiteral(
            "no DDL events (create, createIndexes, modify, …); drop, rename and dropDatabase are reported");
        if (m_expandedRefused)
            m_expandedEventsNote =
                QStringLiteral("%1: the server refused showExpandedEvents: %2").arg(describe(m_ns), without);
        else if (o.maxWireVersion < kExpandedEventsWireVersion)
            m_expandedEventsNote =
                QStringLiteral("%1: the server (wire version %2) is older than MongoDB 6.0: %3")
                    .arg(describe(m_ns))
                    .arg(o.maxWireVersion)
                    .arg(without);
        else
            o.showExpandedEvents = true;
    }

    m_cursor = std::make_unique<MongoChangeCursor>(m_client);
    if (!m_cursor->open(o)) {
        const bson_error_t failure = m_cursor->error();
        const int code = int(failure.code);
        if (o.showExpandedEvents && failure.domain == MONGOC_ERROR_SERVER && code == 40415 &&
            strstr(failure.message, "showExpandedEvents")) {
            // A server that reports 6.0's wire version yet does not know the field (an
            // emulation, say): carry on without DDL events rather than fail the watch.
            m_expandedRefused = true;
            closeStream();
            m_dueMs = 0;
            openStream();
            return;
        }
        handleError(QStringLiteral("opening the change stream on"), failure, m_cursor->errorReply());
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
        if (const bson_t* start = m_cursor->resumeToken())
            m_context.tokens->insert(m_key, Bson::fromBsonT(start), true);
    }
}

void MongoWatch::drain(qint64 deadlineMs) {
    ChangeBatch& pending = m_context.host->pendingBatch();
    int taken = 0;
    const bson_t* doc = nullptr;
    while (!isStopRequested()) {
        const bool more = m_cursor->next(&doc);
        QString resumedAfter;
        if (m_cursor->takeResume(&resumedAfter)) {
            qCInfo(lcMongo).noquote()
                << "the change stream of" << describe(m_ns) << "resumed after:" << resumedAfter;
            m_lastInterruptionMs = nowMs();
            m_lastInterruption = resumedAfter;
            m_context.host->streamReconnected();
        }
        if (!more) {
            if (m_cursor->hasError()) {
                const bson_error_t error = m_cursor->error();
                handleError(QStringLiteral("reading the change stream of"), error, m_cursor->errorReply());
                return;
            }
            m_attempts = 0;
            if (m_invalidated || m_cursor->isClosed()) {
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
            if (const bson_t* position = m_cursor->resumeToken()) {
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
            // Skipped, but never in silence: consumers get a gap in its place.
            qCWarning(lcMongo).noquote() << "skipping an event of" << describe(m_ns) << ":" << error;
            event =
                ChangeEvent::makeGap(m_context.sourceId, m_ns,
                                     QStringLiteral("an event of %1 could not be read (%2) and was skipped")
                                         .arg(describe(m_ns), error));
            // Past it for good: a restart resumes after the event, not before it.
            bson_iter_t id;
            if (bson_iter_init_find(&id, doc, "_id") && BSON_ITER_HOLDS_DOCUMENT(&id)) {
                m_lastEventToken = copyDocument(&id);
                m_context.tokens->insert(m_key, m_lastEventToken);
            }
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
    m_lastInterruptionMs = nowMs();
    m_lastInterruption = message;
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

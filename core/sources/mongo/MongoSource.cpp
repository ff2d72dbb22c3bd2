#include "MongoSource.h"

#include "ChangeEventMapper.h"
#include "MongoErrors.h"
#include "MongoPoller.h"
#include "sources/SourceUri.h"

#include <QDateTime>
#include <QElapsedTimer>
#include <QLoggingCategory>
#include <QRandomGenerator>
#include <QTimer>
#include <QUrl>

#include <mongoc/mongoc.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <thread>

Q_LOGGING_CATEGORY(lcMongo, "tidewatch.source.mongo")

namespace tw {

namespace {

// A batch holds at most 1 000 events (the journal's group commit is sized for it) and
// a slice of work ends after 20 ms, the batching period of the design.
constexpr int kBatchEvents = 1000;
constexpr qint64 kSliceMs = 20;
// stop() must return within a second and can only run between slices; a slice blocks
// at most one getMore, so the await is clamped below that.
constexpr int kMaxAwaitMs = 800;
// An idle stream's position (postBatchResumeToken) is persisted at most this often:
// each checkpoint is a journal transaction.
constexpr qint64 kIdleCheckpointMs = 5000;
// Defaults applied when the URI does not set them, so no single driver call blocks
// the source's thread much longer than a second. A selection that times out is
// retried by the backoff while the pool's monitor keeps connecting in the background,
// so a slow first handshake costs one retry, not a failure.
constexpr int kServerSelectionTimeoutMs = 900;
constexpr int kSocketTimeoutMs = 5000;

qint64 nowMs() {
    return QDateTime::currentMSecsSinceEpoch();
}

void logHandler(mongoc_log_level_t level, const char* domain, const char* message, void*) {
    // libmongoc writes to stderr by default; route it through Qt logging instead.
    if (level <= MONGOC_LOG_LEVEL_ERROR)
        qCWarning(lcMongo, "%s: %s", domain, message);
    else if (level <= MONGOC_LOG_LEVEL_WARNING)
        qCInfo(lcMongo, "%s: %s", domain, message);
    else
        qCDebug(lcMongo, "%s: %s", domain, message);
}

void ensureDriver() {
    static std::once_flag once;
    std::call_once(once, [] {
        mongoc_init(); // never cleaned up: other sources may still be tearing down their pools
        mongoc_log_set_handler(logHandler, nullptr);
    });
}

// The password of scheme://user:password@host, percent-encoded as written.
QString passwordOf(const QString& uri) {
    return SourceUri(uri).encodedPassword();
}

// A driver message never shows the password, even if it quotes the URI.
QString redactMessage(const QString& message, const QString& uri) {
    QString out = message;
    const QString password = passwordOf(uri);
    if (password.size() >= 1) {
        out.replace(password, QStringLiteral("****"));
        const QString decoded = QUrl::fromPercentEncoding(password.toUtf8());
        if (!decoded.isEmpty())
            out.replace(decoded, QStringLiteral("****"));
    }
    return out;
}

bool sameOptions(const WatchOptions& a, const WatchOptions& b) {
    return a.fullDocument == b.fullDocument && a.fullDocumentBeforeChange == b.fullDocumentBeforeChange &&
           a.showExpandedEvents == b.showExpandedEvents && a.batchSize == b.batchSize &&
           a.maxAwaitTimeMs == b.maxAwaitTimeMs && a.match == b.match && a.pollField == b.pollField;
}

// Field names only Tidewatch puts into the event document: a server-side $match on
// them would drop everything. Descends through $and/$or/$nor/$not; paths inside
// $elemMatch are relative to an array element and cannot name them.
bool namesLocalField(const bson_t* query, bool isArray = false) {
    bson_iter_t it;
    if (!bson_iter_init(&it, query))
        return false;
    while (bson_iter_next(&it)) {
        const char* key = bson_iter_key(&it);
        const bool isOperator = key[0] == '$';
        if (!isArray && !isOperator) {
            const char* dot = strchr(key, '.');
            const size_t len = dot ? size_t(dot - key) : strlen(key);
            for (const char* local : {"seq", "source", "reason"})
                if (len == strlen(local) && !strncmp(key, local, len))
                    return true;
        }
        if ((isArray || isOperator) && (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it))) {
            uint32_t len = 0;
            const uint8_t* data = nullptr;
            const bool array = BSON_ITER_HOLDS_ARRAY(&it);
            if (array)
                bson_iter_array(&it, &len, &data);
            else
                bson_iter_document(&it, &len, &data);
            bson_t child;
            if (bson_init_static(&child, data, len) && namesLocalField(&child, array))
                return true;
        }
    }
    return false;
}

} // namespace

struct MongoSource::Scope {
    enum class Mode { Opening, Streaming, Backoff, Polling, Failed };

    Namespace ns;
    QString key;
    WatchOptions options;
    Mode mode = Mode::Opening;
    qint64 dueMs = 0; // Opening/Backoff: next attempt; Polling: next poll
    int attempts = 0; // consecutive failures, for the backoff
    bool fatal = false;
    bool invalidated = false; // saw invalidate: reopen after it with startAfter
    bool opened = false;      // has streamed or polled at least once
    Bson lastEventToken;      // `_id` of the last event handed over (not a postBatchResumeToken)
    QString reason;           // shown in the status when not simply watching

    mongoc_client_t* client = nullptr; // popped from the pool; pushed back on release
    mongoc_database_t* database = nullptr;
    mongoc_collection_t* collection = nullptr;
    mongoc_change_stream_t* stream = nullptr;

    std::map<QString, std::unique_ptr<MongoPoller>> pollers; // by "db.coll"
};

MongoSource* MongoSource::create(const QString& id, const QString& uri, QString* error) {
    ensureDriver();
    bson_error_t err;
    mongoc_uri_t* parsed = mongoc_uri_new_with_error(uri.toUtf8().constData(), &err);
    if (!parsed) {
        if (error)
            *error = QStringLiteral("Cannot use the MongoDB URI \"%1\": %2. Check its syntax: "
                                    "mongodb://[user:password@]host[:port][/?options] or mongodb+srv://host.")
                         .arg(redactUri(uri), redactMessage(QString::fromUtf8(err.message), uri));
        return nullptr;
    }
    if (!mongoc_uri_has_option(parsed, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(parsed, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                       kServerSelectionTimeoutMs);
    if (!mongoc_uri_has_option(parsed, MONGOC_URI_SOCKETTIMEOUTMS))
        mongoc_uri_set_option_as_int32(parsed, MONGOC_URI_SOCKETTIMEOUTMS, kSocketTimeoutMs);
    if (!mongoc_uri_has_option(parsed, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(parsed, "tidewatch");
    return new MongoSource(id, uri, parsed);
}

MongoSource::MongoSource(const QString& id, const QString& uri, mongoc_uri_t* parsed)
    : Source(id)
    , m_uri(uri)
    , m_redactedUri(redactUri(uri))
    , m_parsedUri(parsed)
    , m_mapper(std::make_unique<ChangeEventMapper>(id)) {}

MongoSource::~MongoSource() {
    if (m_pool || !m_scopes.isEmpty())
        stop();
    mongoc_uri_destroy(m_parsedUri);
}

void MongoSource::setBackoff(int initialMs, int maxMs, double jitter) {
    m_backoffInitialMs = std::max(1, initialMs);
    m_backoffMaxMs = std::max(m_backoffInitialMs, maxMs);
    m_jitter = std::clamp(jitter, 0.0, 0.9);
}

int MongoSource::backoffDelayMs(int attempt) const {
    // attempt 1 -> initial, doubling to the cap; jitter spreads reconnects of many
    // sources after a shared outage.
    double delay = m_backoffInitialMs;
    for (int i = 1; i < attempt && delay < m_backoffMaxMs; ++i)
        delay *= 2;
    delay = std::min<double>(delay, m_backoffMaxMs);
    const double factor = 1.0 + m_jitter * (QRandomGenerator::global()->generateDouble() * 2.0 - 1.0);
    return std::max(1, int(delay * factor));
}

QString MongoSource::describe(const Namespace& ns) const {
    if (ns.isDeployment())
        return QStringLiteral("the whole deployment");
    if (ns.isDatabase())
        return QStringLiteral("database %1").arg(ns.db);
    return ns.toString();
}

QByteArray MongoSource::encodeTokens(const QMap<QString, Bson>& tokens) {
    BsonBuilder b;
    for (auto it = tokens.cbegin(); it != tokens.cend(); ++it) {
        if (it.value().isAbsent())
            continue;
        const QByteArray key = it.key().toUtf8();
        bson_t token;
        if (it.value().view(&token))
            bson_append_document(b.get(), key.constData(), int(key.size()), &token);
    }
    return b.take().raw();
}

QMap<QString, Bson> MongoSource::decodeTokens(const QByteArray& token) {
    QMap<QString, Bson> out;
    bson_t doc;
    bson_iter_t it;
    if (token.size() < 5 ||
        !bson_init_static(&doc, reinterpret_cast<const uint8_t*>(token.constData()), size_t(token.size())) ||
        !bson_validate(&doc, BSON_VALIDATE_NONE, nullptr) || !bson_iter_init(&it, &doc))
        return out; // not ours (or corrupt): start from now
    while (bson_iter_next(&it)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&it))
            continue;
        uint32_t len = 0;
        const uint8_t* data = nullptr;
        bson_iter_document(&it, &len, &data);
        out.insert(QString::fromUtf8(bson_iter_key(&it)),
                   Bson::fromRaw(QByteArray(reinterpret_cast<const char*>(data), qsizetype(len))));
    }
    return out;
}

Bson MongoSource::unionMatch(const QList<Bson>& filters) {
    QList<Bson> distinct;
    for (const Bson& filter : filters) {
        bson_t view;
        if (!filter.view(&view) || bson_empty(&view) || namesLocalField(&view))
            return {}; // someone wants everything, or something the server cannot see
        if (!distinct.contains(filter))
            distinct.append(filter);
    }
    if (distinct.isEmpty())
        return {};
    if (distinct.size() == 1)
        return distinct.first();
    BsonBuilder b;
    bson_t array;
    bson_append_array_begin(b.get(), "$or", 3, &array);
    for (int i = 0; i < distinct.size(); ++i) {
        const QByteArray index = QByteArray::number(i);
        appendDocument(&array, index.constData(), distinct.at(i));
    }
    bson_append_array_end(b.get(), &array);
    return b.take();
}

void MongoSource::start(const SourceRestore& restore) {
    m_restore = restore;
    m_tokens = decodeTokens(restore.token);
    m_started = true;
    m_stopRequested.store(false);
    if (!m_timer) {
        m_timer = new QTimer(this);
        m_timer->setSingleShot(true);
        connect(m_timer, &QTimer::timeout, this, &MongoSource::tick);
    }
    bson_error_t err;
    m_pool = mongoc_client_pool_new_with_error(m_parsedUri, &err);
    if (!m_pool) {
        // e.g. a mongodb+srv:// name without SRV records: watches retry slowly.
        setStatus(SourceStatus::State::Error,
                  QStringLiteral("Cannot connect to %1: %2")
                      .arg(m_redactedUri, redactMessage(QString::fromUtf8(err.message), m_uri)));
        return;
    }
    mongoc_client_pool_set_error_api(m_pool, MONGOC_ERROR_API_VERSION_2);
    updateStatus();
}

void MongoSource::watch(const Namespace& ns, const WatchOptions& options) {
    if (!m_started) {
        Q_EMIT watchFailed(id(), ns, QStringLiteral("The source %1 is not started.").arg(id()));
        return;
    }
    if (ns.db.isEmpty() && !ns.coll.isEmpty()) {
        Q_EMIT watchFailed(
            id(), ns,
            QStringLiteral("\"%1\" names no database: use db.collection, db, or nothing for the "
                           "whole deployment.")
                .arg(ns.coll));
        return;
    }
    const QString key = scopeKey(ns);
    const auto found = m_scopes.constFind(key);
    if (found != m_scopes.constEnd()) {
        Scope& scope = **found;
        if (sameOptions(scope.options, options))
            return;
        const bool pollFieldChanged = scope.options.pollField != options.pollField;
        scope.options = options;
        if (scope.mode == Scope::Mode::Streaming || scope.mode == Scope::Mode::Backoff ||
            scope.mode == Scope::Mode::Failed) {
            // Reopen from the token of the last event handed over, not from the
            // position the old stream reported past it: events the old $match dropped
            // but the new one keeps are then read too, and none is read twice.
            closeStream(scope);
            if (!scope.lastEventToken.isAbsent() && !(m_tokens.value(key) == scope.lastEventToken)) {
                m_tokens.insert(key, scope.lastEventToken);
                m_tokensDirty = true;
            }
            scope.mode = Scope::Mode::Opening;
            scope.dueMs = 0;
        } else if (scope.mode == Scope::Mode::Polling && pollFieldChanged) {
            for (auto& entry : scope.pollers)
                entry.second->clear(m_pending.checkpoint);
            scope.pollers.clear();
            flush();
            scope.dueMs = 0;
        }
        schedule();
        return;
    }
    auto scope = std::make_shared<Scope>();
    scope->ns = ns;
    scope->key = key;
    scope->options = options;
    m_scopes.insert(key, scope);
    updateStatus();
    schedule();
}

void MongoSource::unwatch(const Namespace& ns) {
    const QString key = scopeKey(ns);
    const std::shared_ptr<Scope> scope = m_scopes.take(key);
    if (!scope)
        return;
    closeStream(*scope);
    releaseClient(*scope);
    for (auto& entry : scope->pollers)
        entry.second->clear(m_pending.checkpoint);
    scope->pollers.clear();
    // An explicit unwatch forgets the position: a later watch starts from now.
    if (m_tokens.remove(key))
        m_tokensDirty = true;
    flush(true);
    updateStatus();
    schedule();
}

void MongoSource::stop() {
    m_stopRequested.store(true);
    if (m_timer)
        m_timer->stop();
    flush(true);
    for (const auto& scope : std::as_const(m_scopes)) {
        closeStream(*scope);
        releaseClient(*scope);
    }
    m_scopes.clear();
    if (m_pool) {
        // Destroying a pool joins its monitor threads, which may sit in a connect to
        // an unreachable host for connectTimeoutMS (10 s by default): done off this
        // thread so stop() keeps its one-second promise. Every client is back.
        mongoc_client_pool_t* pool = m_pool;
        m_pool = nullptr;
        std::thread([pool] { mongoc_client_pool_destroy(pool); }).detach();
    }
    m_started = false;
    setStatus(SourceStatus::State::Stopped);
}

void MongoSource::releaseClient(Scope& scope) {
    if (scope.client && m_pool)
        mongoc_client_pool_push(m_pool, scope.client);
    scope.client = nullptr;
}

void MongoSource::closeStream(Scope& scope) {
    if (scope.stream)
        mongoc_change_stream_destroy(scope.stream); // kills the server cursor
    scope.stream = nullptr;
    if (scope.collection)
        mongoc_collection_destroy(scope.collection);
    scope.collection = nullptr;
    if (scope.database)
        mongoc_database_destroy(scope.database);
    scope.database = nullptr;
}

void MongoSource::schedule() {
    if (!m_timer || m_stopRequested.load(std::memory_order_relaxed))
        return;
    bool busy = false;
    qint64 next = -1;
    for (const auto& scope : std::as_const(m_scopes)) {
        switch (scope->mode) {
        case Scope::Mode::Streaming:
            busy = true;
            break;
        case Scope::Mode::Opening:
        case Scope::Mode::Backoff:
        case Scope::Mode::Polling:
            next = next < 0 ? scope->dueMs : std::min(next, scope->dueMs);
            break;
        case Scope::Mode::Failed:
            break;
        }
    }
    if (busy)
        m_timer->start(0); // the getMore itself paces the loop (maxAwaitTimeMS)
    else if (next >= 0)
        m_timer->start(int(std::clamp<qint64>(next - nowMs(), 0, 24 * 3600 * 1000)));
    else
        m_timer->stop();
}

void MongoSource::tick() {
    if (m_stopRequested.load(std::memory_order_relaxed) || !m_started)
        return;
    const qint64 deadline = nowMs() + kSliceMs;
    // A copy: a handler may remove a scope (an invalid watch) while we iterate.
    const QList<std::shared_ptr<Scope>> scopes = m_scopes.values();
    const int n = int(scopes.size());
    for (int k = 0; k < n; ++k) {
        const std::shared_ptr<Scope>& scope = scopes.at((m_roundRobin + k) % n);
        if (m_scopes.value(scope->key) != scope)
            continue;
        switch (scope->mode) {
        case Scope::Mode::Streaming:
            drain(*scope, deadline);
            break;
        case Scope::Mode::Opening:
        case Scope::Mode::Backoff:
            if (nowMs() >= scope->dueMs) {
                openStream(*scope);
                if (scope->mode == Scope::Mode::Streaming)
                    drain(*scope, deadline);
            }
            break;
        case Scope::Mode::Polling:
            if (nowMs() >= scope->dueMs)
                poll(*scope);
            break;
        case Scope::Mode::Failed:
            break;
        }
        if (m_stopRequested.load(std::memory_order_relaxed))
            break;
        if (nowMs() >= deadline) {
            // The rest get the next slice first, so one busy stream cannot starve them.
            m_roundRobin = (m_roundRobin + k + 1) % n;
            break;
        }
    }
    flush();
    updateStatus();
    schedule();
}

void MongoSource::openStream(Scope& scope) {
    bson_error_t error;
    if (!m_pool) {
        m_pool = mongoc_client_pool_new_with_error(m_parsedUri, &error);
        if (!m_pool) {
            enterBackoff(scope,
                         QStringLiteral("Cannot connect to %1: %2")
                             .arg(m_redactedUri, redactMessage(QString::fromUtf8(error.message), m_uri)),
                         true);
            return;
        }
        mongoc_client_pool_set_error_api(m_pool, MONGOC_ERROR_API_VERSION_2);
    }
    if (!scope.client)
        scope.client = mongoc_client_pool_pop(m_pool);

    // The wire version decides which errors are resumable (below 9: a list of codes).
    // Selecting a server is also where an unreachable deployment shows, within
    // serverSelectionTimeoutMS.
    mongoc_server_description_t* server = mongoc_client_select_server(scope.client, false, nullptr, &error);
    if (!server) {
        handleError(scope, QStringLiteral("connecting for"), error, nullptr);
        return;
    }
    bson_iter_t it;
    const bson_t* hello = mongoc_server_description_hello_response(server);
    if (hello && bson_iter_init_find(&it, hello, "maxWireVersion") && BSON_ITER_HOLDS_INT(&it))
        m_maxWireVersion = int(bson_iter_as_int64(&it));
    mongoc_server_description_destroy(server);

    BsonBuilder pipeline;
    bson_t stages;
    bson_append_array_begin(pipeline.get(), "pipeline", 8, &stages);
    bson_t match;
    if (scope.options.match.view(&match) && !bson_empty(&match)) {
        bson_t stage;
        bson_append_document_begin(&stages, "0", 1, &stage);
        bson_append_document(&stage, "$match", 6, &match);
        bson_append_document_end(&stages, &stage);
    }
    bson_append_array_end(pipeline.get(), &stages);

    BsonBuilder opts;
    const WatchOptions& o = scope.options;
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
    // rename and dropDatabase need a newer driver. See the note in updateStatus().
#endif
    if (o.batchSize > 0)
        bson_append_int32(opts.get(), "batchSize", -1, o.batchSize);
    bson_append_int64(opts.get(), "maxAwaitTimeMS", -1, std::clamp(o.maxAwaitTimeMs, 1, kMaxAwaitMs));
    const Bson token = m_tokens.value(scope.key);
    bson_t tokenView;
    if (token.view(&tokenView))
        bson_append_document(opts.get(), "startAfter", -1, &tokenView); // survives an invalidate

    const QByteArray db = scope.ns.db.toUtf8();
    if (scope.ns.isDeployment()) {
        scope.stream = mongoc_client_watch(scope.client, pipeline.get(), opts.get());
    } else if (scope.ns.isDatabase()) {
        scope.database = mongoc_client_get_database(scope.client, db.constData());
        scope.stream = mongoc_database_watch(scope.database, pipeline.get(), opts.get());
    } else {
        const QByteArray coll = scope.ns.coll.toUtf8();
        scope.collection = mongoc_client_get_collection(scope.client, db.constData(), coll.constData());
        scope.stream = mongoc_collection_watch(scope.collection, pipeline.get(), opts.get());
    }
    const bson_t* reply = nullptr;
    if (mongoc_change_stream_error_document(scope.stream, &error, &reply)) {
        handleError(scope, QStringLiteral("opening the change stream on"), error, reply);
        return;
    }
    if (scope.opened && !scope.fatal && scope.attempts > 0)
        ++m_status.reconnects;
    scope.mode = Scope::Mode::Streaming;
    scope.fatal = false;
    const bool firstOpen = !scope.opened;
    scope.opened = true;
    if (firstOpen)
        Q_EMIT watchReady(id(), scope.ns);
    if (!scope.invalidated && scope.reason.endsWith(QLatin1String("; retrying")))
        scope.reason.clear();
    scope.invalidated = false;
    if (token.isAbsent()) {
        // Starting from now: make the position durable before any event, so a restart
        // resumes here rather than at a later "now".
        if (const bson_t* start = mongoc_change_stream_get_resume_token(scope.stream)) {
            m_tokens.insert(scope.key, Bson::fromBsonT(start));
            m_tokensDirty = true;
            m_lastTokenFlushMs = 0;
        }
    }
}

void MongoSource::drain(Scope& scope, qint64 deadlineMs) {
    int taken = 0;
    const bson_t* doc = nullptr;
    while (!m_stopRequested.load(std::memory_order_relaxed)) {
        if (!mongoc_change_stream_next(scope.stream, &doc)) {
            bson_error_t error;
            const bson_t* reply = nullptr;
            if (mongoc_change_stream_error_document(scope.stream, &error, &reply)) {
                handleError(scope, QStringLiteral("reading the change stream of"), error, reply);
                return;
            }
            scope.attempts = 0;
            if (scope.invalidated) {
                // The server closed the cursor after invalidate. Reopening with
                // startAfter the invalidate token picks up the collection when it is
                // created again.
                closeStream(scope);
                scope.mode = Scope::Mode::Opening;
                scope.dueMs = 0;
                return;
            }
            // An empty batch after maxAwaitTimeMS: persist the position the server
            // reached (postBatchResumeToken) so a filtered-out stretch is not re-read.
            if (const bson_t* position = mongoc_change_stream_get_resume_token(scope.stream)) {
                const Bson token = Bson::fromBsonT(position);
                if (!(token == m_tokens.value(scope.key))) {
                    m_tokens.insert(scope.key, token);
                    m_tokensDirty = true;
                }
            }
            return;
        }
        scope.attempts = 0;
        ChangeEvent event;
        QString error;
        if (!m_mapper->map(doc, &event, &error)) {
            qCWarning(lcMongo).noquote() << "skipping an event of" << describe(scope.ns) << ":" << error;
            continue;
        }
        if (event.operation() == Operation::Invalidate) {
            scope.invalidated = true;
            if (event.ns().db.isEmpty())
                event.setNs(scope.ns);
            scope.reason =
                scope.ns.isDatabase()
                    ? QStringLiteral("database %1 was dropped (invalidate); watching for it to come back")
                          .arg(scope.ns.db)
                    : QStringLiteral("%1 was dropped or renamed (invalidate); watching for it to come back")
                          .arg(scope.ns.toString());
            event.setReason(scope.reason);
        } else if (!scope.reason.isEmpty()) {
            scope.reason.clear(); // events flow again
        }
        if (!event.resumeToken().isAbsent()) {
            scope.lastEventToken = event.resumeToken();
            m_tokens.insert(scope.key, event.resumeToken());
            m_tokensDirty = true;
        }
        m_pending.events.append(event);
        if (m_pending.events.size() >= kBatchEvents)
            flush();
        if (++taken >= kBatchEvents || nowMs() >= deadlineMs)
            return;
    }
}

void MongoSource::handleError(Scope& scope, const QString& during, const bson_error_t& error,
                              const bson_t* reply) {
    const StreamError e = classifyStreamError(error, reply, m_maxWireVersion);
    const QString message = redactMessage(e.message, m_uri);
    const bool hadToken = !m_tokens.value(scope.key).isAbsent();
    closeStream(scope);
    qCInfo(lcMongo).noquote() << during << describe(scope.ns) << "failed:" << message;
    switch (e.kind) {
    case StreamErrorKind::Resumable:
        enterBackoff(scope, QStringLiteral("%1 %2 on %3 failed: %4; retrying")
                                .arg(during, describe(scope.ns), m_redactedUri, message));
        break;
    case StreamErrorKind::HistoryLost:
        if (!hadToken) {
            // History cannot be lost for a stream that starts now: something else is
            // wrong; retrying slowly avoids a storm.
            enterBackoff(scope,
                         QStringLiteral("%1 %2 on %3 failed: %4; retrying")
                             .arg(during, describe(scope.ns), m_redactedUri, message),
                         true);
            break;
        }
        m_pending.events.append(ChangeEvent::makeGap(
            id(), scope.ns,
            QStringLiteral(
                "change stream history lost (%1): changes to %2 before now may be missing; re-read it")
                .arg(message, describe(scope.ns))));
        m_tokens.remove(scope.key);
        m_tokensDirty = true;
        scope.mode = Scope::Mode::Opening;
        scope.dueMs = 0;
        scope.reason = QStringLiteral("history lost at %1; restarted from now")
                           .arg(QDateTime::currentDateTime().toString(Qt::ISODate));
        break;
    case StreamErrorKind::Unsupported:
        enterPolling(scope, message);
        break;
    case StreamErrorKind::Invalid:
        scope.mode = Scope::Mode::Failed;
        scope.reason = QStringLiteral("cannot watch %1: %2").arg(describe(scope.ns), message);
        releaseClient(scope);
        Q_EMIT watchFailed(
            id(), scope.ns,
            QStringLiteral("Cannot watch %1 on %2: %3. Check the watch options and the pipeline.")
                .arg(describe(scope.ns), m_redactedUri, message));
        break;
    case StreamErrorKind::Fatal:
        enterBackoff(
            scope,
            QStringLiteral("%1 %2 on %3 failed: %4").arg(during, describe(scope.ns), m_redactedUri, message),
            true);
        break;
    }
}

void MongoSource::enterBackoff(Scope& scope, const QString& reason, bool fatal) {
    closeStream(scope);
    ++scope.attempts;
    // A non-transient error (authentication, TLS) goes straight to the slowest retry.
    const int delay = fatal ? backoffDelayMs(64) : backoffDelayMs(scope.attempts);
    scope.mode = Scope::Mode::Backoff;
    scope.fatal = fatal;
    scope.dueMs = nowMs() + delay;
    scope.reason = reason;
}

void MongoSource::enterPolling(Scope& scope, const QString& why) {
    closeStream(scope);
    scope.mode = Scope::Mode::Polling;
    scope.dueMs = 0;
    scope.fatal = false;
    scope.attempts = 0;
    scope.reason =
        QStringLiteral("polling %1: change streams are not available (%2)").arg(describe(scope.ns), why);
}

QList<Namespace> MongoSource::pollTargets(Scope& scope, QString* error) {
    if (!scope.ns.coll.isEmpty())
        return {scope.ns};
    QStringList databases;
    bson_error_t err;
    if (scope.ns.isDeployment()) {
        char** names = mongoc_client_get_database_names_with_opts(scope.client, nullptr, &err);
        if (!names) {
            *error = QString::fromUtf8(err.message);
            return {};
        }
        for (char** name = names; *name; ++name) {
            const QString db = QString::fromUtf8(*name);
            if (db != QLatin1String("admin") && db != QLatin1String("config") && db != QLatin1String("local"))
                databases.append(db);
        }
        bson_strfreev(names);
    } else {
        databases.append(scope.ns.db);
    }
    QList<Namespace> targets;
    for (const QString& db : std::as_const(databases)) {
        mongoc_database_t* database = mongoc_client_get_database(scope.client, db.toUtf8().constData());
        BsonBuilder opts;
        bson_append_bool(opts.get(), "nameOnly", -1, true);
        bson_t filter;
        bson_append_document_begin(opts.get(), "filter", -1, &filter);
        bson_append_utf8(&filter, "type", -1, "collection", -1);
        bson_append_document_end(opts.get(), &filter);
        mongoc_cursor_t* cursor = mongoc_database_find_collections_with_opts(database, opts.get());
        const bson_t* doc = nullptr;
        bson_iter_t it;
        while (mongoc_cursor_next(cursor, &doc))
            if (bson_iter_init_find(&it, doc, "name") && BSON_ITER_HOLDS_UTF8(&it)) {
                const QString name = QString::fromUtf8(bson_iter_utf8(&it, nullptr));
                if (!name.startsWith(QLatin1String("system.")))
                    targets.append(Namespace{db, name});
            }
        if (mongoc_cursor_error(cursor, &err))
            *error = QString::fromUtf8(err.message);
        mongoc_cursor_destroy(cursor);
        mongoc_database_destroy(database);
        if (!error->isEmpty())
            return {};
    }
    return targets;
}

void MongoSource::poll(Scope& scope) {
    if (!m_pool)
        return;
    if (!scope.client)
        scope.client = mongoc_client_pool_pop(m_pool);
    QString error;
    const QList<Namespace> targets = pollTargets(scope, &error);
    if (!error.isEmpty()) {
        ++scope.attempts;
        scope.dueMs = nowMs() + backoffDelayMs(scope.attempts);
        scope.reason =
            QStringLiteral("polling %1: %2; retrying").arg(describe(scope.ns), redactMessage(error, m_uri));
        return;
    }
    // A collection that left a database-wide poll was dropped.
    for (auto it = scope.pollers.begin(); it != scope.pollers.end();) {
        if (targets.contains(it->second->ns())) {
            ++it;
            continue;
        }
        ChangeEvent drop;
        drop.setSourceId(id());
        drop.setNs(it->second->ns());
        drop.setOperation(Operation::Drop);
        drop.setWallTimeMs(nowMs());
        m_pending.events.append(drop);
        it->second->clear(m_pending.checkpoint);
        it = scope.pollers.erase(it);
    }
    int interval = 60000;
    for (const Namespace& ns : targets) {
        if (m_stopRequested.load(std::memory_order_relaxed))
            return;
        auto& poller = scope.pollers[ns.toString()];
        if (!poller) {
            poller = std::make_unique<MongoPoller>(id(), ns, scope.options.pollField);
            poller->restore(m_restore.state);
        }
        const QString failure = [&] {
            const MongoPoller::ScanKind kind = poller->nextScanKind();
            BsonBuilder filter, opts;
            poller->scanQuery(kind, filter.get(), opts.get());
            const QByteArray db = ns.db.toUtf8(), coll = ns.coll.toUtf8();
            mongoc_collection_t* collection =
                mongoc_client_get_collection(scope.client, db.constData(), coll.constData());
            QElapsedTimer timer;
            timer.start();
            poller->beginScan(kind);
            mongoc_cursor_t* cursor =
                mongoc_collection_find_with_opts(collection, filter.get(), opts.get(), nullptr);
            const bson_t* doc = nullptr;
            bool aborted = false;
            while (mongoc_cursor_next(cursor, &doc)) {
                poller->addDocument(doc, m_pending);
                if (m_pending.events.size() + m_pending.checkpoint.stateUpserts.size() >= kBatchEvents)
                    flush();
                if (m_stopRequested.load(std::memory_order_relaxed)) {
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
                poller->endScan(m_pending, timer.elapsed());
            return message;
        }();
        if (!failure.isEmpty()) {
            ++scope.attempts;
            scope.dueMs = nowMs() + backoffDelayMs(scope.attempts);
            scope.reason =
                QStringLiteral("polling %1: %2; retrying").arg(describe(ns), redactMessage(failure, m_uri));
            return;
        }
        interval = std::min(interval, poller->intervalMs());
    }
    if (scope.attempts > 0 && scope.reason.endsWith(QLatin1String("; retrying")))
        scope.reason = QStringLiteral("polling %1: change streams are not available").arg(describe(scope.ns));
    scope.attempts = 0;
    if (!scope.opened)
        Q_EMIT watchReady(id(), scope.ns); // the first snapshot is the baseline
    scope.opened = true;
    scope.dueMs = nowMs() + (targets.isEmpty() ? 1000 : interval);
}

void MongoSource::flush(bool checkpointOnly) {
    const bool hasData = !m_pending.events.isEmpty() || !m_pending.checkpoint.isEmpty();
    const qint64 now = nowMs();
    const bool tokenDue =
        m_tokensDirty && (hasData || checkpointOnly || now - m_lastTokenFlushMs >= kIdleCheckpointMs);
    if (!hasData && !tokenDue)
        return;
    if (m_tokensDirty) {
        m_pending.checkpoint.token = encodeTokens(m_tokens);
        m_tokensDirty = false;
        m_lastTokenFlushMs = now;
    }
    m_pending.sourceId = id();
    if (!m_pending.events.isEmpty())
        m_status.lastEventMs = now;
    publishBatch(m_pending);
    m_pending = ChangeBatch();
}

void MongoSource::updateStatus() {
    if (!m_started)
        return;
    const Scope* backoff = nullptr;
    const Scope* error = nullptr;
    QStringList polling, notes;
    bool connecting = false;
    for (const auto& scope : std::as_const(m_scopes)) {
        switch (scope->mode) {
        case Scope::Mode::Backoff:
            if (scope->fatal && (!error || scope->dueMs < error->dueMs))
                error = scope.get();
            else if (!scope->fatal && (!backoff || scope->dueMs < backoff->dueMs))
                backoff = scope.get();
            break;
        case Scope::Mode::Polling:
            polling.append(scope->reason);
            break;
        case Scope::Mode::Opening:
            if (!scope->opened)
                connecting = true;
            if (!scope->reason.isEmpty())
                notes.append(scope->reason);
            break;
        case Scope::Mode::Streaming:
        case Scope::Mode::Failed:
            if (!scope->reason.isEmpty())
                notes.append(scope->reason);
            break;
        }
#if !MONGOC_CHECK_VERSION(1, 24, 0)
        if (scope->options.showExpandedEvents)
            notes.append(
                QStringLiteral("%1: DDL events (createIndexes, create, modify, …) need libmongoc 1.24 or "
                               "newer, this build has %2; drop, rename and dropDatabase are reported")
                    .arg(describe(scope->ns), QStringLiteral(MONGOC_VERSION_S)));
#endif
    }
    const QString separator = QStringLiteral("; ");
    if (error)
        setStatus(SourceStatus::State::Error, error->reason, QDateTime::fromMSecsSinceEpoch(error->dueMs));
    else if (backoff)
        setStatus(SourceStatus::State::Backoff, backoff->reason,
                  QDateTime::fromMSecsSinceEpoch(backoff->dueMs));
    else if (!polling.isEmpty())
        setStatus(SourceStatus::State::Polling, polling.join(separator));
    else if (connecting)
        setStatus(SourceStatus::State::Connecting, QStringLiteral("connecting to %1").arg(m_redactedUri));
    else
        setStatus(SourceStatus::State::Watching, notes.join(separator));
}

void MongoSource::listNamespaces(const QString& db) {
    QList<NamespaceInfo> result;
    if (!m_pool) {
        Q_EMIT namespacesListed(
            id(), db, result,
            QStringLiteral("Not connected to %1: start the source first.").arg(m_redactedUri));
        return;
    }
    QString error;
    bson_error_t err;
    mongoc_client_t* client = mongoc_client_pool_pop(m_pool);
    if (db.isEmpty()) {
        char** names = mongoc_client_get_database_names_with_opts(client, nullptr, &err);
        if (!names) {
            error = QStringLiteral("Cannot list the databases of %1: %2")
                        .arg(m_redactedUri, redactMessage(QString::fromUtf8(err.message), m_uri));
        } else {
            for (char** name = names; *name; ++name) {
                const QString n = QString::fromUtf8(*name);
                const bool system = n == QLatin1String("admin") || n == QLatin1String("config") ||
                                    n == QLatin1String("local");
                result.append(
                    {Namespace{n, {}}, system ? QStringLiteral("system") : QStringLiteral("database")});
            }
            bson_strfreev(names);
        }
    } else {
        const QByteArray name = db.toUtf8();
        mongoc_database_t* database = mongoc_client_get_database(client, name.constData());
        BsonBuilder opts;
        bson_append_bool(opts.get(), "nameOnly", -1, true);
        mongoc_cursor_t* cursor = mongoc_database_find_collections_with_opts(database, opts.get());
        const bson_t* doc = nullptr;
        while (mongoc_cursor_next(cursor, &doc)) {
            bson_iter_t it;
            QString coll, type;
            if (bson_iter_init_find(&it, doc, "name") && BSON_ITER_HOLDS_UTF8(&it))
                coll = QString::fromUtf8(bson_iter_utf8(&it, nullptr));
            if (bson_iter_init_find(&it, doc, "type") && BSON_ITER_HOLDS_UTF8(&it))
                type = QString::fromUtf8(bson_iter_utf8(&it, nullptr));
            if (coll.isEmpty())
                continue;
            QString kind = QStringLiteral("collection");
            if (coll.startsWith(QLatin1String("system.")))
                kind = QStringLiteral("system");
            else if (type == QLatin1String("view"))
                kind = QStringLiteral("view");
            result.append({Namespace{db, coll}, kind});
        }
        if (mongoc_cursor_error(cursor, &err))
            error = QStringLiteral("Cannot list the collections of %1 on %2: %3")
                        .arg(db, m_redactedUri, redactMessage(QString::fromUtf8(err.message), m_uri));
        mongoc_cursor_destroy(cursor);
        mongoc_database_destroy(database);
    }
    mongoc_client_pool_push(m_pool, client);
    std::sort(result.begin(), result.end(), [](const NamespaceInfo& a, const NamespaceInfo& b) {
        return a.ns.toString() < b.ns.toString();
    });
    Q_EMIT namespacesListed(id(), db, result, error);
}

} // namespace tw

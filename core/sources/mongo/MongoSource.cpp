#include "MongoSource.h"

#include "ChangeEventMapper.h"
#include "MongoCatalog.h"
#include "MongoConnection.h"
#include "MongoPushDown.h"

#include <QDateTime>
#include <QTimer>

#include <mongoc/mongoc.h>

#include <algorithm>

namespace tw {

namespace {
// How long a stream that broke and resumed says so in the status.
constexpr qint64 kInterruptionNoteMs = 60 * 1000;
} // namespace

MongoSource* MongoSource::create(const QString& id, const QString& uri, QString* error) {
    std::unique_ptr<MongoConnection> connection = MongoConnection::create(uri, error);
    if (!connection)
        return nullptr;
    return new MongoSource(id, std::move(connection));
}

MongoSource::MongoSource(const QString& id, std::unique_ptr<MongoConnection> connection)
    : Source(id)
    , m_connection(std::move(connection))
    , m_mapper(std::make_unique<ChangeEventMapper>(id)) {}

MongoSource::~MongoSource() {
    if (m_connection->isOpen() || !m_scopes.isEmpty())
        stop();
}

Bson MongoSource::unionMatch(const QList<Bson>& filters) {
    return MongoPushDown::unionMatch(filters);
}

QByteArray MongoSource::encodeTokens(const QMap<QString, Bson>& tokens) {
    return MongoResumeTokens::encode(tokens);
}

QMap<QString, Bson> MongoSource::decodeTokens(const QByteArray& token) {
    return MongoResumeTokens::decode(token);
}

void MongoSource::setBackoff(int initialMs, int maxMs, double jitter) {
    m_connection->setBackoff(initialMs, maxMs, jitter);
}

void MongoSource::start(const SourceRestore& restore) {
    m_restore = restore;
    m_tokens.restore(restore.token);
    m_started = true;
    m_hasDeclared = false;
    m_stopRequested.store(false);
    if (!m_timer) {
        m_timer = new QTimer(this);
        m_timer->setSingleShot(true);
        connect(m_timer, &QTimer::timeout, this, &MongoSource::tick);
    }
    QString error;
    if (!m_connection->open(&error)) {
        // e.g. a mongodb+srv:// name without SRV records: watches retry slowly.
        setStatus(SourceStatus::State::Error,
                  QStringLiteral("Cannot connect to %1: %2").arg(m_connection->redactedUri(), error));
        return;
    }
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
        if ((*found)->setOptions(options)) {
            declareReading();
            schedule();
        }
        return;
    }
    const MongoWatch::Context context{id(),       m_connection.get(), &m_tokens, m_mapper.get(),
                                      &m_restore, &m_stopRequested,   this};
    m_scopes.insert(key, std::make_shared<MongoWatch>(context, ns, options));
    declareReading();
    updateStatus();
    schedule();
}

void MongoSource::unwatch(const Namespace& ns) {
    const QString key = scopeKey(ns);
    const std::shared_ptr<MongoWatch> scope = m_scopes.take(key);
    if (!scope)
        return;
    scope->release();
    // An explicit unwatch forgets the position: a later watch starts from now.
    m_tokens.remove(key);
    // The scope is no longer read: a period left running with it would make every
    // replay overlapping it from now on a gap notice. No scopes left covers everything.
    declareReading();
    flush(true);
    updateStatus();
    schedule();
}

void MongoSource::stop() {
    m_stopRequested.store(true);
    if (m_timer)
        m_timer->stop();
    flush(true);
    for (const auto& scope : std::as_const(m_scopes))
        scope->close();
    m_scopes.clear();
    m_connection->close(); // every client is back
    m_started = false;
    setStatus(SourceStatus::State::Stopped);
}

void MongoSource::watchOpened(const Namespace& ns) {
    Q_EMIT watchReady(id(), ns);
}

void MongoSource::watchInvalid(const Namespace& ns, const QString& message) {
    Q_EMIT watchFailed(id(), ns, message);
}

void MongoSource::schedule() {
    if (!m_timer || m_stopRequested.load(std::memory_order_relaxed))
        return;
    bool busy = false;
    qint64 next = -1;
    for (const auto& scope : std::as_const(m_scopes)) {
        switch (scope->mode()) {
        case MongoWatch::Mode::Streaming:
            busy = true;
            break;
        case MongoWatch::Mode::Opening:
        case MongoWatch::Mode::Backoff:
        case MongoWatch::Mode::Polling:
            next = next < 0 ? scope->dueMs() : std::min(next, scope->dueMs());
            break;
        case MongoWatch::Mode::Failed:
            break;
        }
    }
    if (busy)
        m_timer->start(0); // the getMore itself paces the loop (maxAwaitTimeMS)
    else if (next >= 0)
        m_timer->start(int(std::clamp<qint64>(next - MongoWatch::nowMs(), 0, 24 * 3600 * 1000)));
    else
        m_timer->stop();
}

void MongoSource::tick() {
    if (m_stopRequested.load(std::memory_order_relaxed) || !m_started)
        return;
    const qint64 deadline = MongoWatch::nowMs() + MongoWatch::kSliceMs;
    // A copy: a handler may remove a scope (an invalid watch) while we iterate.
    const QList<std::shared_ptr<MongoWatch>> scopes = m_scopes.values();
    const int n = int(scopes.size());
    for (int k = 0; k < n; ++k) {
        const std::shared_ptr<MongoWatch>& scope = scopes.at((m_roundRobin + k) % n);
        if (m_scopes.value(scope->key()) != scope)
            continue;
        scope->step(deadline);
        if (m_stopRequested.load(std::memory_order_relaxed))
            break;
        if (MongoWatch::nowMs() >= deadline) {
            // The rest get the next slice first, so one busy stream cannot starve them.
            m_roundRobin = (m_roundRobin + k + 1) % n;
            break;
        }
    }
    flush();
    updateStatus();
    schedule();
}

void MongoSource::declareReading() {
    QList<ScopeReading> scopes;
    for (const auto& scope : std::as_const(m_scopes)) {
        const WatchOptions& options = scope->options();
        ScopeReading reading{scope->ns(), {}};
        // No $match reads the scope whole. So does an explicit one, for coverage: it is
        // the filter the user chose for the watch, so the journal never holds more of it
        // for any subscription; only a $match pushed down from the readers narrows.
        if (options.match.isAbsent() && !MongoPushDown::matchOf(scope->ns(), options).isAbsent())
            reading.readers = options.readers;
        scopes.append(reading);
    }
    if (m_hasDeclared && scopes == m_declared)
        return;
    m_hasDeclared = true;
    m_declared = scopes;
    // The reopened streams hand over their first events after the ones pending now.
    m_pending.narrowings.append(SourceNarrowing{int(m_pending.events.size()), SourceReading::toJson(scopes)});
}

void MongoSource::flush(bool checkpointOnly) {
    const bool hasData =
        !m_pending.events.isEmpty() || !m_pending.checkpoint.isEmpty() || !m_pending.narrowings.isEmpty();
    const qint64 now = MongoWatch::nowMs();
    const bool tokenDue = m_tokens.isDue(hasData, checkpointOnly, now);
    if (!hasData && !tokenDue)
        return;
    if (m_tokens.isDirty())
        m_pending.checkpoint.token = m_tokens.take(now);
    m_pending.sourceId = id();
    if (!m_pending.events.isEmpty())
        m_status.lastEventMs = now;
    publishBatch(m_pending);
    m_pending = ChangeBatch();
}

void MongoSource::updateStatus() {
    if (!m_started)
        return;
    const MongoWatch* backoff = nullptr;
    const MongoWatch* error = nullptr;
    QStringList polling, notes;
    bool connecting = false;
    const qint64 now = MongoWatch::nowMs();
    for (const auto& scope : std::as_const(m_scopes)) {
        // A stream that broke and resumed says so for a minute, even when the
        // resume took no time at all.
        if (scope->mode() == MongoWatch::Mode::Streaming && scope->lastInterruptionMs() > 0 &&
            now - scope->lastInterruptionMs() < kInterruptionNoteMs)
            notes.append(QStringLiteral("%1 resumed at %2 after: %3")
                             .arg(MongoWatch::describe(scope->ns()),
                                  QDateTime::fromMSecsSinceEpoch(scope->lastInterruptionMs())
                                      .toString(QStringLiteral("HH:mm:ss")),
                                  scope->lastInterruption()));
        switch (scope->mode()) {
        case MongoWatch::Mode::Backoff:
            if (scope->isFatal() && (!error || scope->dueMs() < error->dueMs()))
                error = scope.get();
            else if (!scope->isFatal() && (!backoff || scope->dueMs() < backoff->dueMs()))
                backoff = scope.get();
            break;
        case MongoWatch::Mode::Polling:
            polling.append(scope->reason());
            break;
        case MongoWatch::Mode::Opening:
            if (!scope->hasOpened())
                connecting = true;
            if (!scope->reason().isEmpty())
                notes.append(scope->reason());
            break;
        case MongoWatch::Mode::Streaming:
        case MongoWatch::Mode::Failed:
            if (!scope->reason().isEmpty())
                notes.append(scope->reason());
            break;
        }
        if (!scope->expandedEventsNote().isEmpty())
            notes.append(scope->expandedEventsNote());
    }
    const QString separator = QStringLiteral("; ");
    const QString uri = m_connection->redactedUri();
    if (error)
        setStatus(SourceStatus::State::Error, error->reason(),
                  QDateTime::fromMSecsSinceEpoch(error->dueMs()));
    else if (backoff)
        setStatus(SourceStatus::State::Backoff, backoff->reason(),
                  QDateTime::fromMSecsSinceEpoch(backoff->dueMs()));
    else if (!polling.isEmpty())
        setStatus(SourceStatus::State::Polling, polling.join(separator));
    else if (connecting)
        setStatus(SourceStatus::State::Connecting, QStringLiteral("connecting to %1").arg(uri));
    else
        setStatus(SourceStatus::State::Watching, notes.join(separator));
}

void MongoSource::listNamespaces(const QString& db) {
    if (!m_connection->isOpen()) {
        Q_EMIT namespacesListed(
            id(), db, {},
            QStringLiteral("Not connected to %1: start the source first.").arg(m_connection->redactedUri()));
        return;
    }
    QString error;
    mongoc_client_t* client = m_connection->popClient();
    const QList<NamespaceInfo> result = MongoCatalog::list(client, db, *m_connection, &error);
    m_connection->pushClient(client);
    Q_EMIT namespacesListed(id(), db, result, error);
}

} // namespace tw

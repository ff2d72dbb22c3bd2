#include "Engine.h"

#include "threads/Threads.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <QLockFile>
#include <QLoggingCategory>
#include <QRandomGenerator>
#include <QTimer>

Q_LOGGING_CATEGORY(lcEngine, "tidewatch.engine")

namespace tw {

void registerMetaTypes() {
    qRegisterMetaType<ChangeEvent>();
    qRegisterMetaType<ChangeBatch>();
    qRegisterMetaType<CommittedBatch>();
    qRegisterMetaType<SourceRestore>();
    qRegisterMetaType<SourceStatus>();
    qRegisterMetaType<NamespaceInfo>();
    qRegisterMetaType<QList<NamespaceInfo>>();
    qRegisterMetaType<WatchOptions>();
    qRegisterMetaType<Namespace>();
    qRegisterMetaType<Subscription>();
    qRegisterMetaType<Bson>();
}

Engine::Engine(const Options& options)
    : m_options(options) {
    registerMetaTypes();
    m_thread.setObjectName(QStringLiteral("tidewatch-engine"));
}

Engine::~Engine() {
    stop();
}

bool Engine::start(QString* error, StartError* code) {
    if (code)
        *code = StartError::None;
    if (m_thread.isRunning())
        return true;
    // One writer per journal: two engines appending to one file would interleave
    // sequence ids.
    // The data folder does not exist on a first run.
    QDir().mkpath(QFileInfo(m_options.journalPath).absolutePath());
    m_lock = std::make_unique<QLockFile>(m_options.journalPath + QStringLiteral(".lock"));
    m_lock->setStaleLockTime(0);
    if (!m_lock->tryLock(100)) {
        qint64 pid = 0;
        QString host, app;
        const bool inUse =
            m_lock->error() == QLockFile::LockFailedError && m_lock->getLockInfo(&pid, &host, &app);
        if (error) {
            if (inUse)
                *error =
                    QStringLiteral("The journal %1 is in use by another Tidewatch (process %2). Close it, or "
                                   "pass --journal FILE to use another journal.")
                        .arg(m_options.journalPath)
                        .arg(pid);
            else
                *error =
                    QStringLiteral("Cannot create %1.lock: check that the folder exists and is writable, or "
                                   "pass --journal FILE to put the journal elsewhere.")
                        .arg(m_options.journalPath);
        }
        if (code)
            *code = inUse ? StartError::JournalInUse : StartError::LockUnavailable;
        m_lock.reset();
        return false;
    }
    if (!m_journal.open(m_options.journalPath, error)) {
        if (code) {
            switch (m_journal.lastError()) {
            case Journal::Error::NotAJournal:
                *code = StartError::NotAJournal;
                break;
            case Journal::Error::Corrupt:
                *code = StartError::Corrupt;
                break;
            case Journal::Error::NewerVersion:
                *code = StartError::NewerVersion;
                break;
            case Journal::Error::None:
            case Journal::Error::CannotOpen:
            case Journal::Error::Io:
            case Journal::Error::SeqNotIncreasing:
            case Journal::Error::DiskFull:
                *code = StartError::JournalUnreadable;
                break;
            }
        }
        m_lock.reset();
        return false;
    }
    SubscriptionList stored;
    for (const StoredSubscription& row : m_journal.subscriptions()) {
        QString problem;
        Subscription sub = Subscription::fromJson(row.spec, &problem);
        if (problem.isEmpty())
            stored.append(sub);
        else
            qCWarning(lcEngine).noquote()
                << "ignoring a stored" << QStringLiteral("subscription %1: %2").arg(row.id, problem);
    }
    {
        QMutexLocker lock(&m_mutex);
        for (const Subscription& sub : stored) {
            m_subscriptions.insert(sub.id, sub);
            m_subscriptionOrder.append(sub.id);
            m_index.insert(sub);
        }
    }
    m_lastSeq.store(m_journal.lastSeq(), std::memory_order_release);
    m_codec = m_journal.codec();
    m_journalId = m_journal.id();

    moveToThread(&m_thread);
    // Queued before the thread starts: starting it orders the set-up before everything
    // the thread does, which ThreadSanitizer can see (a post to a running thread is
    // ordered only through QtCore's own mutex).
    QMetaObject::invokeMethod(
        this,
        [this] {
            m_pruneTimer = new QTimer(this);
            connect(m_pruneTimer, &QTimer::timeout, this, &Engine::prune);
            m_pruneTimer->start(m_options.pruneIntervalMs);
            m_retryTimer = new QTimer(this);
            m_retryTimer->setSingleShot(true);
            connect(m_retryTimer, &QTimer::timeout, this, &Engine::flush);
            prune();
        },
        Qt::QueuedConnection);
    startThread(&m_thread);
    return true;
}

void Engine::stop() {
    if (!m_thread.isRunning())
        return;
    QMetaObject::invokeMethod(this, &Engine::shutdownOnThread, Qt::QueuedConnection);
    m_thread.wait();
    // Back to the thread that owns the Engine object, so it can be deleted there.
    m_lock.reset();
}

void Engine::shutdownOnThread() {
    QList<SourceEntry> entries;
    {
        QMutexLocker lock(&m_mutex);
        entries = m_sources.values();
        m_sources.clear();
    }
    stopSources(entries);
    m_watches.clear();
    publishWatchedScopes();
    QCoreApplication::sendPostedEvents(this, QEvent::MetaCall);
    flush();
    m_journal.checkpoint();
    m_journal.close();
    delete m_pruneTimer;
    m_pruneTimer = nullptr;
    delete m_retryTimer;
    m_retryTimer = nullptr;
    moveToThread(QCoreApplication::instance() ? QCoreApplication::instance()->thread() : nullptr);
    m_thread.quit();
}

void Engine::watch(const QString& sourceId, const Namespace& ns, const WatchOptions& options) {
    // Through the engine thread, so the watch reaches the source after its start().
    QMetaObject::invokeMethod(
        this,
        [this, sourceId, ns, options] {
            {
                QMutexLocker lock(&m_mutex);
                if (!m_sources.contains(sourceId)) {
                    lock.unlock();
                    Q_EMIT watchFailed(sourceId, ns, QStringLiteral("No source named \"%1\".").arg(sourceId));
                    return;
                }
            }
            QList<WatchRecord>& records = m_watches[sourceId];
            auto it = std::find_if(records.begin(), records.end(),
                                   [&](const WatchRecord& r) { return r.ns == ns; });
            if (it == records.end())
                it = records.insert(records.end(), WatchRecord{ns, options, {}});
            else
                it->options = options;
            publishWatchedScopes();
            sendWatch(sourceId, *it, true);
        },
        Qt::QueuedConnection);
}

void Engine::sendWatch(const QString& sourceId, WatchRecord& record, bool force) {
    WatchOptions options = record.options;
    // An explicit match wins: the source would not read the readers.
    if (options.match.isAbsent())
        options.readers = pushDownFor(sourceId, record.ns);
    if (!force && options.readers == record.sentReaders)
        return;
    record.sentReaders = options.readers;
    QMutexLocker lock(&m_mutex);
    const auto it = m_sources.constFind(sourceId);
    if (it == m_sources.constEnd() || !it->source || !it->started)
        return; // startFromCheckpoint() sends every watch once the source has started
    Source* source = it->source;
    const Namespace ns = record.ns;
    QMetaObject::invokeMethod(
        source, [source, ns, options] { source->watch(ns, options); }, Qt::QueuedConnection);
}

QList<WatchOptions::Reader> Engine::pushDownFor(const QString& sourceId, const Namespace& scope) const {
    QList<WatchOptions::Reader> readers;
    bool anySource = false; // a gateway's events keep their upstream source ids
    {
        QMutexLocker lock(&m_mutex);
        anySource = m_sources.value(sourceId).relaysSourceIds;
    }
    const QList<Subscription> all = m_index.all();
    for (const Subscription& sub : all) {
        QList<Namespace> visible; // the parts of `scope` this subscription sees
        if (sub.namespaces.isEmpty())
            visible.append(scope);
        for (const SourceNamespace& sn : sub.namespaces) {
            if (!anySource && !sn.sourceId.isEmpty() && sn.sourceId != sourceId)
                continue;
            if (sn.ns.contains(scope))
                visible.append(scope);
            else if (scope.contains(sn.ns))
                visible.append(sn.ns);
        }
        for (const Namespace& part : std::as_const(visible)) {
            const WatchOptions::Reader reader{part, sub.filter.query(), sub.filter.matchesEverything(),
                                              sub.changes == Subscription::Changes::Schema};
            if (!readers.contains(reader))
                readers.append(reader);
        }
    }
    // Nobody subscribed: an empty list, and the source narrows nothing. Everything is
    // journaled, so a subscription made later can replay it.
    return readers;
}

void Engine::refreshPushDown() {
    for (auto it = m_watches.begin(); it != m_watches.end(); ++it)
        for (WatchRecord& record : it.value())
            sendWatch(it.key(), record, false);
}

void Engine::unwatch(const QString& sourceId, const Namespace& ns) {
    QMetaObject::invokeMethod(
        this,
        [this, sourceId, ns] {
            QList<WatchRecord>& records = m_watches[sourceId];
            records.erase(std::remove_if(records.begin(), records.end(),
                                         [&](const WatchRecord& r) { return r.ns == ns; }),
                          records.end());
            publishWatchedScopes();
            QMutexLocker lock(&m_mutex);
            const auto it = m_sources.find(sourceId);
            if (it == m_sources.end() || !it->source)
                return;
            if (!it->started) {
                // Ahead of its start() it would be dropped, and what the source restores
                // of that watch kept: sent once it has started (startFromCheckpoint).
                it->unwatchedBeforeStart.append(ns);
                return;
            }
            Source* source = it->source;
            QMetaObject::invokeMethod(
                source, [source, ns] { source->unwatch(ns); }, Qt::QueuedConnection);
        },
        Qt::QueuedConnection);
}

void Engine::listNamespaces(const QString& sourceId, const QString& db) {
    QMetaObject::invokeMethod(
        this,
        [this, sourceId, db] {
            QMutexLocker lock(&m_mutex);
            const auto it = m_sources.constFind(sourceId);
            if (it == m_sources.constEnd()) {
                lock.unlock();
                Q_EMIT namespacesListed(sourceId, db, {},
                                        QStringLiteral("No source named \"%1\".").arg(sourceId));
                return;
            }
            if (!it->source) {
                lock.unlock();
                Q_EMIT namespacesListed(sourceId, db, {}, pausedReason(sourceId));
                return;
            }
            Source* source = it->source;
            QMetaObject::invokeMethod(
                source, [source, db] { source->listNamespaces(db); }, Qt::QueuedConnection);
        },
        Qt::QueuedConnection);
}

void Engine::onWatchFailed(const QString& sourceId, const Namespace& ns, const QString& error) {
    // A failed watch reads nothing: it leaves the snapshot, so the HTTP API does not
    // open a stream for it that would never carry an event.
    const auto it = m_watches.find(sourceId);
    if (it != m_watches.end()) {
        it->erase(std::remove_if(it->begin(), it->end(), [&](const WatchRecord& r) { return r.ns == ns; }),
                  it->end());
        publishWatchedScopes();
    }
    Q_EMIT watchFailed(sourceId, ns, error);
}

void Engine::publishWatchedScopes() {
    QList<SourceNamespace> scopes;
    for (auto it = m_watches.cbegin(); it != m_watches.cend(); ++it)
        for (const WatchRecord& record : it.value())
            scopes.append(SourceNamespace{it.key(), record.ns});
    QMutexLocker lock(&m_mutex);
    m_watchedScopes = std::move(scopes);
}

QList<SourceNamespace> Engine::watchedScopes() const {
    QMutexLocker lock(&m_mutex);
    return m_watchedScopes;
}

Subscription Engine::addSubscription(Subscription subscription) {
    if (subscription.id.isEmpty())
        subscription.id = QStringLiteral("s") + QString::number(QRandomGenerator::global()->generate64(), 36);
    if (!subscription.created.isValid())
        subscription.created = QDateTime::currentDateTimeUtc();
    {
        QMutexLocker lock(&m_mutex);
        if (!m_subscriptions.contains(subscription.id))
            m_subscriptionOrder.append(subscription.id);
        m_subscriptions.insert(subscription.id, subscription);
    }
    QMetaObject::invokeMethod(
        this,
        [this, subscription] {
            m_index.remove(subscription.id);
            m_index.insert(subscription);
            refreshPushDown();
            if (subscription.persistent) {
                QString error;
                if (!m_journal.saveSubscription({subscription.id, subscription.toJson()}, &error))
                    Q_EMIT journalFailed(error);
            }
            Q_EMIT subscriptionsChanged();
        },
        Qt::QueuedConnection);
    return subscription;
}

bool Engine::removeSubscription(const QString& id) {
    {
        QMutexLocker lock(&m_mutex);
        if (!m_subscriptions.remove(id))
            return false;
        m_subscriptionOrder.removeAll(id);
    }
    QMetaObject::invokeMethod(
        this,
        [this, id] {
            m_index.remove(id);
            m_journal.removeSubscription(id);
            refreshPushDown();
            Q_EMIT subscriptionsChanged();
        },
        Qt::QueuedConnection);
    return true;
}

SubscriptionList Engine::subscriptions() const {
    QMutexLocker lock(&m_mutex);
    SubscriptionList list;
    for (const QString& id : m_subscriptionOrder)
        list.append(m_subscriptions.value(id));
    return list;
}

std::optional<Subscription> Engine::subscription(const QString& id) const {
    QMutexLocker lock(&m_mutex);
    const auto it = m_subscriptions.constFind(id);
    if (it == m_subscriptions.constEnd())
        return std::nullopt;
    return *it;
}

void Engine::submit(const ChangeBatch& batch) {
    for (const ChangeEvent& event : batch.events)
        event.prepare(m_codec.get());
    QMetaObject::invokeMethod(
        this, [this, batch] { onBatchReady(batch); }, Qt::QueuedConnection);
}

void Engine::onBatchReady(const ChangeBatch& batch) {
    if (m_paused.contains(batch.sourceId))
        return; // handed over while pausing: it starts again from what the journal holds
    m_pending.append(batch);
    m_pendingEvents += batch.events.size();
    if (!m_journalStatus.isOk()) {
        {
            QMutexLocker lock(&m_mutex);
            m_journalStatus.pendingEvents = m_pendingEvents;
        }
        pauseSourcesForBacklog();
    }
    if (!m_flushScheduled) {
        m_flushScheduled = true;
        // Queued behind every batch already waiting: they all share one transaction.
        QMetaObject::invokeMethod(this, &Engine::flush, Qt::QueuedConnection);
    }
}

void Engine::flush() {
    m_flushScheduled = false;
    if (m_pending.isEmpty() || !m_journal.isOpen()) {
        if (!m_paused.isEmpty() && m_journal.isOpen() && m_journalStatus.isOk())
            resumePausedSources(); // one whose restart failed, tried again each second
        return;
    }
    // Whole batches (each commits with its checkpoint) up to about kMaxEventsPerCommit
    // events: a flood is committed in steps, so subscribers see events sooner and the
    // journal's WAL folder copies one step back while the next is written.
    QList<ChangeBatch> batches;
    qsizetype events = 0;
    qsizetype taken = 0;
    while (taken < m_pending.size() && (taken == 0 || events < kMaxEventsPerCommit))
        events += m_pending.at(taken++).events.size();
    if (taken == m_pending.size()) {
        batches.swap(m_pending);
    } else {
        batches = m_pending.first(taken);
        m_pending.remove(0, taken);
    }
    QString error;
    if (!m_journal.append(batches, &error) && m_journal.lastError() == Journal::Error::SeqNotIncreasing) {
        // A batch that keeps its seqs (a gateway's) repeated seqs the journal holds:
        // the same batch would be refused for ever and hold up every other source. Its
        // events at or below what precedes them are dropped, said, and the rest commits.
        dropSeqsAlreadyTaken(batches);
        qsizetype kept = 0;
        for (const ChangeBatch& batch : std::as_const(batches))
            kept += batch.events.size();
        m_pendingEvents -= events - kept;
        events = kept;
        if (m_journal.append(batches, &error))
            error.clear();
    }
    if (!error.isEmpty()) {
        // Keep everything, oldest first, and try again in a second (or with the next
        // batch): a disk that fills is freed by someone else, and nothing tells us when.
        batches.append(m_pending);
        m_pending = std::move(batches);
        noteJournalFailed(error);
        if (m_retryTimer)
            m_retryTimer->start(1000);
        pauseSourcesForBacklog(); // what arrived before the journal failed counts too
        return;
    }
    m_pendingEvents -= events;
    noteJournalWorks();
    if (!m_paused.isEmpty())
        resumePausedSources();
    CommittedBatch out;
    QHash<QString, QByteArray> tokens;
    bool narrowed = false;
    for (const ChangeBatch& batch : std::as_const(batches)) {
        narrowed = narrowed || !batch.narrowings.isEmpty();
        if (!batch.checkpoint.token.isEmpty())
            tokens.insert(batch.sourceId, batch.checkpoint.token);
        for (const ChangeEvent& event : batch.events) {
            out.events.append(event);
            const QStringList ids = m_index.route(event);
            for (const QString& id : ids)
                out.bySubscription[id].append(event);
        }
    }
    if (!m_pending.isEmpty() && !m_flushScheduled) {
        m_flushScheduled = true;
        QMetaObject::invokeMethod(this, &Engine::flush, Qt::QueuedConnection);
    }
    out.lastSeq = m_journal.lastSeq();
    m_lastSeq.store(out.lastSeq, std::memory_order_release);
    m_eventsCommitted.fetch_add(out.events.size(), std::memory_order_relaxed);
    m_commits.fetch_add(1, std::memory_order_relaxed);
    if (!tokens.isEmpty()) {
        QMutexLocker lock(&m_mutex);
        for (auto it = tokens.cbegin(); it != tokens.cend(); ++it) {
            const auto entry = m_sources.constFind(it.key());
            if (entry == m_sources.constEnd() || !entry->source)
                continue;
            Source* source = entry->source;
            const QByteArray token = it.value();
            QMetaObject::invokeMethod(
                source, [source, token] { source->checkpointCommitted(token); }, Qt::QueuedConnection);
        }
    }
    if (narrowed)
        Q_EMIT coverageChanged();
    if (!out.events.isEmpty())
        Q_EMIT committed(out);
}

void Engine::prune() {
    const qint64 removed = m_journal.prune(m_options.retention, QDateTime::currentMSecsSinceEpoch());
    if (removed > 0)
        qCInfo(lcEngine) << "retention removed" << removed << "events through seq"
                         << m_journal.prunedThrough();
}

} // namespace tw

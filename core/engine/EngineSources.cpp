// Engine: its sources, each on a thread of its own (adding, starting, stopping and
// removing them), and the snapshots of them the other threads read.
#include "Engine.h"

#include "sources/SourceFactory.h"
#include "sources/SourceReading.h"
#include "threads/Threads.h"

#include <algorithm>
#include <QCoreApplication>
#include <QLoggingCategory>
#include <QTimer>

Q_DECLARE_LOGGING_CATEGORY(lcEngine)

namespace tw {

namespace {
// A checkpoint the journal could not read is asked for again after this long: long
// enough not to spin on a locked or failing disk, short next to a source's backoff.
constexpr int kCheckpointRetryMs = 1000;
} // namespace

void Engine::stopSources(const QList<SourceEntry>& entries) {
    // Stop them in parallel, then wait: each stop() returns within a second.
    for (const SourceEntry& entry : entries) {
        Source* source = entry.source;
        QThread* thread = entry.thread;
        if (!source)
            continue; // paused for the journal's backlog: nothing runs
        QMetaObject::invokeMethod(
            source,
            [source, thread] {
                source->stop();
                thread->quit();
            },
            Qt::QueuedConnection);
    }
    for (const SourceEntry& entry : entries) {
        if (!entry.source)
            continue;
        entry.thread->wait();
        // Batches the source emitted before stopping are queued to us: commit them.
        QCoreApplication::sendPostedEvents(this, QEvent::MetaCall);
        delete entry.source;
        delete entry.thread;
    }
}

bool Engine::addSource(const QString& id, const QString& uri, QString* error) {
    if (!m_thread.isRunning()) {
        if (error)
            *error = QStringLiteral("The engine is not running.");
        return false;
    }
    {
        QMutexLocker lock(&m_mutex);
        if (m_sources.contains(id)) {
            if (error)
                *error = QStringLiteral("A source named \"%1\" exists already; pick another name.").arg(id);
            return false;
        }
    }
    SourceEntry entry;
    if (!launchSource(id, uri, &entry, error))
        return false;
    Source* source = entry.source;
    {
        QMutexLocker lock(&m_mutex);
        m_sources.insert(id, entry);
    }
    QMetaObject::invokeMethod(
        this, [this, source, id] { startFromCheckpoint(id, source); }, Qt::QueuedConnection);
    return true;
}

void Engine::startFromCheckpoint(const QString& id, Source* source) {
    QString error;
    SourceRestore restore = m_journal.restore(id, &error);
    if (error.isEmpty()) {
        QList<Namespace> unwatched;
        {
            QMutexLocker lock(&m_mutex);
            const auto it = m_sources.find(id);
            if (it == m_sources.end() || it->source != source)
                return; // removed, or paused and started again, meanwhile
            it->started = true;
            unwatched = std::exchange(it->unwatchedBeforeStart, {});
        }
        QMetaObject::invokeMethod(
            source,
            // Moved, not copied: the token's bytes then belong to the source's thread
            // alone once posted, and are freed there (not here, after the source read
            // them, through a reference count released inside QtCore).
            [source, restore = std::move(restore), unwatched] {
                source->start(restore);
                for (const Namespace& ns : unwatched)
                    source->unwatch(ns);
            },
            Qt::QueuedConnection);
        // Watches wait for the start (sendWatch): a watch that reached a source before
        // its start, while the checkpoint could not be read, was dropped.
        const auto watches = m_watches.find(id);
        if (watches != m_watches.end())
            for (WatchRecord& record : *watches)
                sendWatch(id, record, true);
        return;
    }
    // Started without its checkpoint, the source would begin at the upstream's present
    // and skip what changed since the last commit. It waits, says why, and asks again.
    SourceStatus status;
    {
        QMutexLocker lock(&m_mutex);
        const auto it = m_sources.find(id);
        if (it == m_sources.end() || it->source != source)
            return; // removed, or paused and started again, meanwhile
        it->status.state = SourceStatus::State::Backoff;
        it->status.reason = error + QStringLiteral("; the source waits for it and asks again every second");
        it->status.nextRetry = QDateTime::currentDateTimeUtc().addMSecs(kCheckpointRetryMs);
        status = it->status;
    }
    qCWarning(lcEngine).noquote() << status.reason;
    Q_EMIT sourceStatusChanged(id, status);
    QTimer::singleShot(kCheckpointRetryMs, this, [this, id, source] {
        QMutexLocker lock(&m_mutex);
        const auto it = m_sources.constFind(id);
        const bool same = it != m_sources.constEnd() && it->source == source;
        lock.unlock();
        if (same)
            startFromCheckpoint(id, source);
    });
}

bool Engine::launchSource(const QString& id, const QString& uri, SourceEntry* entry, QString* error) {
    Source* source = SourceFactory::create(id, uri, error);
    if (!source)
        return false;
    auto* thread = new QThread;
    thread->setObjectName(QStringLiteral("tidewatch-source-") + id);
    source->setBodyCodec(m_codec); // before the move: the source's thread only reads it
    source->setJournalId(m_journalId);
    source->moveToThread(thread);
    connect(source, &Source::batchReady, this, &Engine::onBatchReady, Qt::QueuedConnection);
    connect(
        source, &Source::statusChanged, this,
        [this, source](const QString& sourceId, const SourceStatus& status) {
            {
                QMutexLocker lock(&m_mutex);
                auto it = m_sources.find(sourceId);
                // Not a source paused for the journal's backlog, saying it stopped.
                if (it == m_sources.end() || it->source != source)
                    return;
                it->status = status;
            }
            Q_EMIT sourceStatusChanged(sourceId, status);
        },
        Qt::QueuedConnection);
    connect(source, &Source::namespacesListed, this, &Engine::namespacesListed, Qt::QueuedConnection);
    connect(source, &Source::watchFailed, this, &Engine::onWatchFailed, Qt::QueuedConnection);
    connect(source, &Source::watchReady, this, &Engine::watchReady, Qt::QueuedConnection);
    entry->uri = Source::redactUri(uri);
    entry->fullUri = uri;
    entry->source = source;
    entry->thread = thread;
    entry->status = source->status();
    entry->relaysSourceIds = source->relaysSourceIds();
    startThread(thread);
    return true;
}

void Engine::removeSource(const QString& id, bool releaseServerState) {
    QMetaObject::invokeMethod(
        this,
        [this, id, releaseServerState] {
            if (m_pausing) {
                // Delivered by a pause's stopSources(): done once that has finished.
                m_deferredRemovals.append({id, releaseServerState});
                return;
            }
            removeSourceNow(id, releaseServerState);
        },
        Qt::QueuedConnection);
}

void Engine::removeSourceNow(const QString& id, bool releaseServerState) {
    SourceEntry entry;
    {
        QMutexLocker lock(&m_mutex);
        if (!m_sources.contains(id)) {
            lock.unlock();
            Q_EMIT sourceRemoved(id); // free already: a waiter need not wait
            return;
        }
        entry = m_sources.take(id);
    }
    m_watches.remove(id);
    publishWatchedScopes();
    if (releaseServerState && !entry.source) {
        // Paused for the journal's backlog: a source of its own, started from the
        // journal's checkpoint so it knows what it keeps on the server (a slot named
        // after the journal, or an older one it adopted), releases it. What it reads
        // meanwhile is dropped (it is in m_paused).
        // Started here, not through startFromCheckpoint(): the entry has left m_sources.
        QString error;
        SourceRestore restore = m_journal.restore(id, &error);
        if (error.isEmpty() && launchSource(id, entry.fullUri, &entry, &error)) {
            m_paused.insert(id);
            Source* source = entry.source;
            QMetaObject::invokeMethod(
                source, [source, restore = std::move(restore)] { source->start(restore); },
                Qt::QueuedConnection);
        } else {
            qCWarning(lcEngine).noquote()
                << "source" << id << "cannot release what it keeps on the server:" << error;
        }
    }
    if (releaseServerState && entry.source) {
        // Queued to the source's thread ahead of stopSources()' stop().
        Source* source = entry.source;
        QMetaObject::invokeMethod(
            source, [source] { source->releaseServerState(); }, Qt::QueuedConnection);
    }
    stopSources({entry});
    m_paused.remove(id);
    // Its first narrowing may still wait in m_pending, uncommitted.
    const bool narrowed = m_journal.hasNarrowings(id) ||
                          std::any_of(m_pending.cbegin(), m_pending.cend(), [&id](const ChangeBatch& batch) {
                              return batch.sourceId == id && !batch.narrowings.isEmpty();
                          });
    if (m_journal.isOpen() && narrowed) {
        // A narrowing source's last period would otherwise run on for ever, and every
        // replay or poll from before the head would be told its events may be missing.
        // Once it is gone it reads nothing, which leaves nothing out: the period ends.
        ChangeBatch closing;
        closing.sourceId = id;
        closing.narrowings.append(SourceNarrowing{0, SourceReading::toJson({})});
        onBatchReady(closing);
    }
    Q_EMIT sourceRemoved(id);
}

QStringList Engine::sourceIds() const {
    QMutexLocker lock(&m_mutex);
    QStringList ids = m_sources.keys();
    ids.sort();
    return ids;
}

QHash<QString, SourceStatus> Engine::sourceStatuses() const {
    QMutexLocker lock(&m_mutex);
    QHash<QString, SourceStatus> result;
    for (auto it = m_sources.cbegin(); it != m_sources.cend(); ++it)
        result.insert(it.key(), it->status);
    return result;
}

QString Engine::sourceUri(const QString& id) const {
    QMutexLocker lock(&m_mutex);
    return m_sources.value(id).uri;
}

} // namespace tw

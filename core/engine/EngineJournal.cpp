// Engine: the journal's failure path (a full disk, an I/O error), its status, and the
// sources paused while too much waits for it.
#include "Engine.h"

#include <algorithm>
#include <QDateTime>
#include <QLoggingCategory>
#include <utility>

Q_DECLARE_LOGGING_CATEGORY(lcEngine)

namespace tw {

QString JournalStatus::stateName() const {
    switch (state) {
    case State::Ok:
        return QStringLiteral("ok");
    case State::DiskFull:
        return QStringLiteral("full");
    case State::Failing:
        return QStringLiteral("failing");
    }
    return {};
}

JournalStatus Engine::journalStatus() const {
    QMutexLocker lock(&m_mutex);
    return m_journalStatus;
}

void Engine::setJournalPageLimit(qint64 extraPages) {
    QMetaObject::invokeMethod(
        this, [this, extraPages] { m_journal.setPageLimit(extraPages); }, Qt::QueuedConnection);
}

void Engine::dropSeqsAlreadyTaken(QList<ChangeBatch>& batches) {
    qint64 seq = m_journal.lastSeq();
    for (ChangeBatch& batch : batches) {
        if (!batch.keepSeqs) {
            seq += batch.events.size();
            continue;
        }
        const qsizetype before = batch.events.size();
        QList<bool> kept(before, false);
        for (qsizetype i = 0; i < before; ++i) {
            kept[i] = batch.events[i].seq() > seq;
            if (kept[i])
                seq = batch.events[i].seq();
        }
        // A narrowing stays between the same events it stood between.
        for (SourceNarrowing& n : batch.narrowings)
            n.atEvent =
                int(std::count(kept.cbegin(), kept.cbegin() + std::min<qsizetype>(n.atEvent, before), true));
        qsizetype index = 0;
        batch.events.removeIf([&kept, &index](const ChangeEvent&) { return !kept[index++]; });
        if (batch.events.size() != before)
            qCWarning(lcEngine).noquote()
                << QStringLiteral(
                       "source %1: %2 events carry seqs this journal already holds (through %3) and "
                       "are not stored; a gateway needs a journal of its own")
                       .arg(batch.sourceId)
                       .arg(before - batch.events.size())
                       .arg(m_journal.lastSeq());
    }
}

void Engine::noteJournalFailed(const QString& error) {
    const qint64 waiting = m_pendingEvents;
    const JournalStatus::State state = m_journal.lastError() == Journal::Error::DiskFull
                                           ? JournalStatus::State::DiskFull
                                           : JournalStatus::State::Failing;
    bool changed = false;
    {
        QMutexLocker lock(&m_mutex);
        changed = m_journalStatus.state != state || m_journalStatus.reason != error;
        if (m_journalStatus.isOk())
            m_journalStatus.sinceMs = QDateTime::currentMSecsSinceEpoch();
        m_journalStatus.state = state;
        m_journalStatus.reason = error;
        m_journalStatus.pendingEvents = waiting;
    }
    if (!changed)
        return;
    qCWarning(lcEngine).noquote() << "journal:" << error << "(retrying;" << waiting << "events waiting)";
    Q_EMIT journalFailed(error);
}

void Engine::noteJournalWorks() {
    // Read without the lock: only this thread writes it.
    if (m_journalStatus.isOk())
        return;
    {
        QMutexLocker lock(&m_mutex);
        m_journalStatus = JournalStatus();
    }
    qCInfo(lcEngine) << "journal: writing again; what waited is committed";
    Q_EMIT journalRecovered();
}

QString Engine::pausedReason(const QString& sourceId) const {
    return QStringLiteral("source %1 is paused while the journal cannot be written and more than %2 events "
                          "wait for it; it starts again from what the journal holds once they are stored")
        .arg(sourceId)
        .arg(m_options.maxPendingEvents);
}

void Engine::pauseSourcesForBacklog() {
    // Re-entered from stopSources(), which delivers what the stopping sources queued.
    if (m_pausing || m_pendingEvents <= m_options.maxPendingEvents)
        return;
    m_pausing = true;
    // Each source with batches waiting stops. What it handed over stays and commits
    // first; what it queues while stopping is dropped (onBatchReady) and read again
    // after its restart, which resumes from the checkpoint of the last batch stored.
    QList<SourceEntry> stopping;
    QList<QPair<QString, SourceStatus>> statuses;
    {
        QMutexLocker lock(&m_mutex);
        for (const ChangeBatch& batch : std::as_const(m_pending)) {
            auto it = m_sources.find(batch.sourceId);
            if (it == m_sources.end() || !it->source || m_paused.contains(batch.sourceId))
                continue;
            stopping.append(*it);
            m_paused.insert(batch.sourceId);
            it->source = nullptr; // its last statuses are ignored from here on
            it->thread = nullptr;
            it->status.state = SourceStatus::State::Backoff;
            it->status.reason = pausedReason(batch.sourceId);
            it->status.nextRetry = QDateTime();
            statuses.append({batch.sourceId, it->status});
        }
    }
    stopSources(stopping);
    for (const auto& [id, status] : std::as_const(statuses)) {
        qCWarning(lcEngine).noquote() << status.reason;
        Q_EMIT sourceStatusChanged(id, status);
    }
    m_pausing = false;
    const QList<QPair<QString, bool>> removals = std::exchange(m_deferredRemovals, {});
    for (const auto& [id, release] : removals)
        removeSourceNow(id, release);
    // The journal may have taken the backlog while the sources stopped.
    if (m_journalStatus.isOk() && !m_paused.isEmpty())
        resumePausedSources();
}

void Engine::resumePausedSources() {
    if (m_pausing || m_pendingEvents > m_options.maxPendingEvents / 2)
        return;
    const QSet<QString> paused = m_paused;
    for (const QString& id : paused) {
        // Only once all it handed over is stored: the checkpoint it starts from must be
        // that of its last batch, or it would hand some over twice.
        if (std::any_of(m_pending.cbegin(), m_pending.cend(),
                        [&id](const ChangeBatch& batch) { return batch.sourceId == id; }))
            continue;
        QString uri;
        {
            QMutexLocker lock(&m_mutex);
            const auto it = m_sources.constFind(id);
            if (it == m_sources.constEnd() || it->source) {
                m_paused.remove(id); // removed meanwhile
                continue;
            }
            uri = it->fullUri;
        }
        SourceEntry entry;
        QString error;
        if (!launchSource(id, uri, &entry, &error)) {
            // Kept paused, and tried again every second (Engine::flush, by the retry timer).
            SourceStatus status;
            status.state = SourceStatus::State::Error;
            status.reason = QStringLiteral("source %1 cannot start again after the journal's outage: %2; "
                                           "Tidewatch tries again every second")
                                .arg(id, error);
            bool changed = false;
            {
                QMutexLocker lock(&m_mutex);
                const auto it = m_sources.find(id);
                changed = it != m_sources.end() && it->status.reason != status.reason;
                if (changed)
                    it->status = status;
            }
            if (changed) {
                qCWarning(lcEngine).noquote() << status.reason;
                Q_EMIT sourceStatusChanged(id, status);
            }
            if (m_retryTimer && !m_retryTimer->isActive())
                m_retryTimer->start(1000);
            continue;
        }
        m_paused.remove(id);
        {
            QMutexLocker lock(&m_mutex);
            const auto it = m_sources.find(id);
            entry.uri = it->uri;
            *it = entry;
        }
        startFromCheckpoint(id, entry.source);
        qCInfo(lcEngine).noquote() << "source" << id << "starts again from the journal's checkpoint";
    }
}

} // namespace tw

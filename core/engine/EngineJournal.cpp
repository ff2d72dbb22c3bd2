// Engine: the journal's failure path (a full disk, an I/O error) and its status.
#include "Engine.h"

#include <QDateTime>
#include <QLoggingCategory>

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
        batch.events.removeIf([&seq](const ChangeEvent& event) {
            if (event.seq() <= seq)
                return true;
            seq = event.seq();
            return false;
        });
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
    qint64 waiting = 0;
    for (const ChangeBatch& batch : std::as_const(m_pending))
        waiting += batch.events.size();
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

} // namespace tw

#include "Replay.h"

#include "engine/CoverageLog.h"

namespace tw {

Replay::Replay(JournalReader* reader, Matcher match, qint64 after)
    : m_reader(reader)
    , m_match(std::move(match))
    , m_cursor(std::max<qint64>(0, after)) {}

Replay::Matcher Replay::matching(const Subscription& subscription) {
    return [subscription](const ChangeEvent& event) { return subscription.matches(event); };
}

namespace {

QString coverageReason(qint64 from, qint64 through) {
    return QStringLiteral("events %1 to %2 may be missing for this subscription: its source then read only "
                          "what the subscriptions of that time wanted")
        .arg(from)
        .arg(through);
}

} // namespace

Replay::Gap Replay::coverageNotice(qint64 cursor, qint64 from, qint64 through) {
    GapPosition position;
    position.requested = cursor;
    position.firstAvailable = cursor + 1;
    position.resumeAfter = cursor;
    return Gap{ChangeEvent::makeGap(QString(), Namespace(), coverageReason(from, through), position), cursor};
}

void Replay::limitToCoverage(const Subscription& subscription) {
    m_coverageError.clear();
    qint64 head = 0;
    const QList<JournalReader::Narrowing> narrowings = m_reader->narrowings(&m_coverageError, &head);
    if (m_coverageError.isEmpty())
        m_coveredAfter = CoverageLog::coveredAfter(narrowings, subscription, head);
}

Replay::Chunk Replay::next(int limit) {
    Chunk chunk;
    if (!m_coverageError.isEmpty()) {
        chunk.error = m_coverageError;
        return chunk;
    }
    // Before the coverage began the journal may lack events the subscription could match,
    // but every event it holds is still read: a notice says what may be missing, once.
    const bool notice = owesCoverageNotice(m_cursor);
    const JournalReader::Result r = m_reader->readAfter(m_cursor, limit, m_match);
    if (!r.error.isEmpty()) {
        chunk.error = r.error;
        return chunk;
    }
    if (r.gap) {
        GapPosition position;
        position.requested = m_cursor;
        position.firstAvailable = r.firstAvailable;
        QString reason =
            QStringLiteral("events after %1 were removed by retention; the first still stored is %2")
                .arg(m_cursor)
                .arg(r.firstAvailable);
        if (notice && r.firstAvailable <= m_coveredAfter)
            reason += QStringLiteral("; ") + coverageReason(r.firstAvailable, m_coveredAfter);
        chunk.gap =
            Gap{ChangeEvent::makeGap(QString(), Namespace(), reason, position), position.firstAvailable - 1};
    } else if (notice) {
        chunk.gap = coverageNotice(m_cursor, m_cursor + 1, m_coveredAfter);
    }
    m_coverageNoticed = m_coverageNoticed || notice;
    chunk.events = r.events;
    // Without more to read, every row up to the head of this snapshot was looked at.
    m_cursor = r.hasMore ? r.scannedThrough : std::max(r.scannedThrough, r.lastSeq);
    m_atHead = !r.hasMore;
    return chunk;
}

void Replay::rewindTo(qint64 seq) {
    m_cursor = seq;
    m_atHead = false;
}

std::optional<Replay::Gap> Replay::skipUnknownCursor() {
    const qint64 head = m_reader->lastSeq();
    if (m_cursor <= head)
        return std::nullopt;
    const JournalReader::Result first = m_reader->readAfter(0, 1);
    GapPosition position;
    position.requested = m_cursor;
    position.firstAvailable = first.events.isEmpty() ? head + 1 : first.events.first().seq();
    position.resumeAfter = head;
    Gap gap{ChangeEvent::makeGap(
                QString(), Namespace(),
                QStringLiteral("event id %1 is unknown: the newest is %2").arg(m_cursor).arg(head), position),
            head};
    m_cursor = head;
    m_atHead = true;
    return gap;
}

} // namespace tw

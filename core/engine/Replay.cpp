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

void Replay::limitToCoverage(const Subscription& subscription) {
    m_coverageError.clear();
    const QList<JournalReader::Narrowing> narrowings = m_reader->narrowings(&m_coverageError);
    if (m_coverageError.isEmpty())
        m_coveredAfter = CoverageLog::coveredAfter(narrowings, subscription, m_reader->lastSeq());
}

Replay::Chunk Replay::next(int limit) {
    Chunk chunk;
    if (!m_coverageError.isEmpty()) {
        chunk.error = m_coverageError;
        return chunk;
    }
    // Before the coverage began the journal may lack matching events: read after it.
    const bool uncovered = m_cursor < m_coveredAfter;
    const JournalReader::Result r = m_reader->readAfter(std::max(m_cursor, m_coveredAfter), limit, m_match);
    if (!r.error.isEmpty()) {
        chunk.error = r.error;
        return chunk;
    }
    if (r.gap || uncovered) {
        GapPosition position;
        position.requested = m_cursor;
        position.firstAvailable = r.gap ? r.firstAvailable : m_coveredAfter + 1;
        const QString reason =
            r.gap ? QStringLiteral("events after %1 were removed by retention; the first still stored is %2")
                        .arg(m_cursor)
                        .arg(r.firstAvailable)
                  : QStringLiteral("events %1 to %2 may be missing for this subscription: its source then "
                                   "read only what the subscriptions of that time wanted")
                        .arg(m_cursor + 1)
                        .arg(m_coveredAfter);
        chunk.gap =
            Gap{ChangeEvent::makeGap(QString(), Namespace(), reason, position), position.firstAvailable - 1};
    }
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

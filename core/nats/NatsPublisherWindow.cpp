// NatsPublisher: reading the journal after the last acknowledged seq, publishing one
// window of asynchronous messages while the next is read ahead, and committing what
// JetStream acknowledged.
#include "NatsPublisherNats.h"

#include "engine/Engine.h"
#include "nats/NatsHandOff.h"

#include <algorithm>

namespace tw {

using namespace natspublisher;

ChangeEventList NatsPublisher::take(qint64 from, int limit, QString* why) {
    ChangeEventList events;
    qint64 head = 0;
    {
        std::lock_guard lock(m_mutex);
        while (!m_buffer.empty() && m_buffer.front().seq() < from)
            m_buffer.pop_front();
        if (!m_buffer.empty() && m_buffer.front().seq() == from) {
            // Consecutive seqs only: a window never jumps over a hole.
            qint64 expected = from;
            while (!m_buffer.empty() && events.size() < limit && m_buffer.front().seq() == expected) {
                events.append(m_buffer.front());
                m_buffer.pop_front();
                ++expected;
            }
            return events;
        }
        head = std::max(m_head, m_engine->lastCommittedSeq());
    }
    if (head < from)
        return events;
    // Behind the buffer (the publisher was away, or the buffer was full): the journal
    // has every event in between.
    const JournalReader::Result r = m_reader.readAfter(from - 1, limit);
    if (!r.error.isEmpty()) {
        *why = QStringLiteral("cannot read the journal: %1").arg(r.error);
        return events;
    }
    if (r.gap) {
        GapPosition position;
        position.requested = from - 1;
        position.firstAvailable = r.firstAvailable;
        position.resumeAfter = r.firstAvailable - 1;
        ChangeEvent gap = ChangeEvent::makeGap(
            QString(), {},
            QStringLiteral("events %1 to %2 were removed from the journal by retention before they were "
                           "published")
                .arg(from)
                .arg(r.firstAvailable - 1),
            position);
        // The gap stands in for the last lost seq, so the stream stays in seq order.
        gap.finalize(r.firstAvailable - 1);
        events.append(gap);
    }
    events.append(r.events);
    return events;
}

void NatsPublisher::prefetch(qint64 from) {
    QString why;
    Prepared next;
    next.events = take(from, m_options.window, &why);
    if (!why.isEmpty())
        return; // the next window reads again, and says why
    next.json.reserve(next.events.size());
    for (const ChangeEvent& e : std::as_const(next.events))
        next.json.append(e.toJson());
    m_prefetched = std::move(next);
}

bool NatsPublisher::publishWindow(QString* why) {
    {
        std::unique_lock lock(m_mutex);
        // At most a second asleep, so the acknowledged seq is committed when idle.
        m_wake.wait_for(lock, std::chrono::seconds(1), [this] {
            return m_stopping.load() || m_head >= m_next || m_engine->lastCommittedSeq() >= m_next;
        });
    }
    if (m_stopping)
        return false;
    ChangeEventList events;
    QList<QByteArray> rendered;
    if (!m_prefetched.events.isEmpty() && m_prefetched.events.constFirst().seq() == m_next) {
        events = std::move(m_prefetched.events);
        rendered = std::move(m_prefetched.json);
        // What was committed while the last window was acknowledged goes in this one
        // too, rather than waiting for the next (rendered in the loop below).
        // On an error the prefetched part stays whole, and the rest is read again (and its
        // error reported) by the next window.
        QString topUpError;
        if (events.size() < m_options.window) {
            ChangeEventList more =
                take(events.constLast().seq() + 1, m_options.window - int(events.size()), &topUpError);
            if (topUpError.isEmpty())
                events.append(more);
        }
    } else {
        events = take(m_next, m_options.window, why);
    }
    m_prefetched = {};
    if (events.isEmpty()) {
        storeCheckpoint(false);
        return why->isEmpty();
    }
    {
        std::vector<qint64> seqs;
        seqs.reserve(size_t(events.size()));
        for (const ChangeEvent& e : std::as_const(events))
            seqs.push_back(e.seq());
        std::lock_guard lock(m_mutex);
        m_window.open(m_generation, std::move(seqs));
    }
    // Seqs sent as a stub in place of the event: counted once acknowledged.
    std::vector<qint64> stubs;
    natsStatus s = NATS_OK;
    // A message over the server's max_payload or the stream's max_msg_size would be
    // refused on every try. Its stub goes in its place before it is sent: the server
    // stores the messages after a refused one, so a stub sent after the refusal
    // would come behind them, out of seq order.
    const qint64 payloadLimit = natsConnection_GetMaxPayload(m_nats->connection);
    for (qsizetype i = 0; i < events.size(); ++i) {
        ChangeEvent& event = events[i];
        // Rendered once: an event read back from the journal carries no JSON, and
        // toJson() renders it at every call (the size check and the message made two,
        // which was most of the publisher's CPU when catching up from the journal).
        QByteArray json = i < rendered.size() ? rendered.at(i) : event.toJson();
        const int bytes = int(json.size());
        const qint64 size = bytes + NatsEventMessage::headerBytes(event, m_journalId);
        QString refusal;
        if (m_rejectedSeq != 0 && event.seq() == m_rejectedSeq)
            refusal = m_rejectedWhy;
        else if (payloadLimit > 0 && size > payloadLimit)
            refusal = QStringLiteral("larger than the server's max_payload (%1 bytes)").arg(payloadLimit);
        else if (m_streamMaxMessageBytes > 0 && size > m_streamMaxMessageBytes)
            refusal = QStringLiteral("larger than stream %1's max_msg_size (%2 bytes)")
                          .arg(m_options.stream)
                          .arg(m_streamMaxMessageBytes);
        if (!refusal.isEmpty()) {
            qCWarning(lcNats).noquote() << "event" << event.seq() << "cannot be published:" << refusal
                                        << "- publishing a stub in its place";
            event = NatsEventMessage::rejectionStub(event, bytes, refusal);
            json = event.toJson();
            stubs.push_back(event.seq());
        }
        s = NatsEventMessage::publishAsync(m_nats->js, event, json, m_journalId);
        if (s != NATS_OK)
            break;
    }
    // The next window is read from the journal and rendered while this one is
    // acknowledged, which overlaps the two when catching up.
    if (s == NATS_OK && !m_stopping)
        prefetch(events.constLast().seq() + 1);
    jsPubOptions wait;
    jsPubOptions_Init(&wait);
    wait.MaxWait = kAckWaitMs;
    const natsStatus complete = s == NATS_OK ? js_PublishAsyncComplete(m_nats->js, &wait) : s;
    if (complete != NATS_OK) {
        // What was not acknowledged is resent after the resync; acknowledgements that
        // still arrive for it are dropped with it.
        natsMsgList pending{};
        if (js_PublishAsyncGetPendingList(&pending, m_nats->js) == NATS_OK)
            natsMsgList_Destroy(&pending);
    }
    qint64 ackedThrough = 0;
    qint64 ackedCount = 0;
    qint64 rejectedAt = 0;
    QString failure;
    {
        std::unique_lock lock(m_mutex);
        // libnats may count a message as acknowledged before our handler has run for
        // it. Every answer is waited for, failures too: the window may be opened
        // again on this connection for the same seqs.
        if (complete == NATS_OK)
            m_acked.wait_for(lock, std::chrono::seconds(2), [this] { return m_window.isComplete(); });
        const size_t i = m_window.ackedPrefix();
        ackedCount = qint64(i);
        if (i > 0)
            ackedThrough = m_window.seqAt(i - 1);
        if (i < m_window.size()) {
            failure = m_window.error().isEmpty() ? natsclient::statusText(complete) : m_window.error();
            if (m_window.isRejectionAt(i) && m_window.isComplete())
                rejectedAt = m_window.seqAt(i);
        }
        m_window.clear();
        if (ackedThrough > 0) {
            m_status.ackedSeq = std::max(m_status.ackedSeq, ackedThrough);
            m_status.published += ackedCount;
            for (const ChangeEvent& e : std::as_const(events))
                if (e.operation() == Operation::Gap && e.seq() <= ackedThrough && e.sourceId().isEmpty())
                    ++m_status.gaps;
            for (const qint64 stub : stubs)
                if (stub <= ackedThrough)
                    ++m_status.rejected;
            while (!m_commitTimes.empty() && m_commitTimes.front().first <= m_status.ackedSeq)
                m_commitTimes.pop_front();
        }
    }
    if (ackedThrough > 0)
        m_next = ackedThrough + 1;
    if (m_rejectedSeq != 0 && m_rejectedSeq < m_next)
        m_rejectedSeq = 0; // its stub is stored
    storeCheckpoint(false);
    if (rejectedAt != 0 && std::find(stubs.cbegin(), stubs.cend(), rejectedAt) == stubs.cend()) {
        // JetStream refused this message itself for a reason not checked before
        // sending (the stream's limits changed since the resync, say): sent again it
        // would be refused again, and the publisher would stall on it for ever. The
        // next window sends a stub in its place, with the reason, and goes on; what
        // followed it in this window is sent again too, and JetStream drops the copies
        // it already stored by their Nats-Msg-Id (so the stub comes after them).
        qCWarning(lcNats).noquote() << "JetStream refused event" << rejectedAt << ":" << failure
                                    << "- publishing a stub in its place";
        m_rejectedSeq = rejectedAt;
        m_rejectedWhy = failure;
        return true;
    }
    if (!failure.isEmpty()) {
        *why = QStringLiteral("JetStream did not acknowledge seq %1: %2").arg(m_next).arg(failure);
        return false;
    }
    return true;
}

void NatsPublisher::acknowledged(quint64 generation, qint64 seq, bool ok, bool rejected,
                                 const QString& error) {
    std::lock_guard lock(m_mutex);
    if (m_window.answer(generation, seq, ok, rejected, error))
        m_acked.notify_one();
}

void NatsPublisher::storeCheckpoint(bool force) {
    qint64 acked = 0;
    {
        std::lock_guard lock(m_mutex);
        acked = m_status.ackedSeq;
    }
    if (acked <= m_storedSeq || (!force && nowMs() - m_storedAtMs < kCheckpointEveryMs))
        return;
    ChangeBatch batch;
    batch.sourceId = checkpointSource();
    batch.checkpoint.token = QByteArray::number(acked);
    // Through the engine's thread, which submit() posts from: see NatsHandOff.
    NatsHandOff::post(m_engine, [engine = m_engine, batch] { engine->submit(batch); });
    m_storedSeq = acked;
    m_storedAtMs = nowMs();
}

} // namespace tw

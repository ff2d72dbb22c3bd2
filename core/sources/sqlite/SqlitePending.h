#pragma once

#include "model/ChangeBatch.h"

#include <QElapsedTimer>

#include <functional>

namespace tw {

// What a scan of an SQLite source found and has not sent yet, and when to send it.
// Diff and capture mode both fill it; the source says where a batch goes.
class SqlitePending {
public:
    static constexpr int kBatchEvents = 1000;
    static constexpr int kFlushAfterMs = 3;
    using Publish = std::function<void(const ChangeBatch&)>;

    SqlitePending(const QString& sourceId, Publish publish)
        : m_publish(std::move(publish)) {
        batch.sourceId = sourceId;
    }

    ChangeBatch batch;
    QElapsedTimer sinceFlush; // started by scan(), restarted by flush()

    const QString& sourceId() const { return batch.sourceId; }
    int events() const { return int(batch.events.size()); }
    // A full batch, or events held for kFlushAfterMs: a scan of a large table takes
    // tens of milliseconds, and a change found early in it need not wait for the end.
    // Each partial batch carries the row state of its own events, so a restart after
    // it resumes correctly.
    bool due() const {
        return events() >= kBatchEvents ||
               (!batch.events.isEmpty() && sinceFlush.isValid() && sinceFlush.elapsed() >= kFlushAfterMs);
    }
    // Sends the batch on and starts the next; an empty one only when `force`.
    void flush(bool force) {
        if (!force && batch.events.isEmpty() && batch.checkpoint.isEmpty())
            return;
        m_publish(batch);
        batch.events.clear();
        batch.checkpoint = SourceCheckpoint();
        if (sinceFlush.isValid())
            sinceFlush.restart();
    }
    void flushIfDue() {
        if (due())
            flush(false);
    }

private:
    Publish m_publish;
};

} // namespace tw

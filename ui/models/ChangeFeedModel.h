#pragma once

#include "model/ChangeEvent.h"

#include <QAbstractTableModel>
#include <QElapsedTimer>
#include <QHash>
#include <QIcon>
#include <QPalette>
#include <QTimer>

namespace tw::ui {

// The rows of one live feed. Built for thousands of events per second, after
// Wireshark's packet list: events handed in by append() wait in a pending list and
// are flushed at most every flushIntervalMs() (default 100 ms, so ≤ 10 Hz) with ONE
// beginInsertRows per flush; rows live in a bounded ring (capacity()), and when it is
// full the oldest rows leave with ONE beginRemoveRows per flush and are counted in
// evictedCount(). Display text is built lazily in data() and kept in a small cache
// that is dropped all at once when the display generation changes (palette, clear).
//
// Paused, the model keeps recording: events wait in the pending list (bounded by the
// capacity too) and appear on resume.
class ChangeFeedModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { TimeColumn, OperationColumn, NamespaceColumn, KeyColumn, SummaryColumn, ColumnCount };
    enum Role { EventRole = Qt::UserRole + 1, SeqRole, OperationRole };

    explicit ChangeFeedModel(QObject* parent = nullptr);

    int capacity() const { return m_capacity; }
    void setCapacity(int rows); // resets the model
    int flushIntervalMs() const { return m_flushTimer.interval(); }
    void setFlushIntervalMs(int ms) { m_flushTimer.setInterval(ms); }

    // Queues events; cheap, no model signal. A flush follows within flushIntervalMs().
    void append(const ChangeEventList& events);
    // Moves the pending events into the rows now (the timer calls it; tests and the
    // benchmark call it directly). Does nothing while paused.
    void flush();

    bool isPaused() const { return m_paused; }
    void setPaused(bool paused);
    void clear();

    int pendingCount() const { return int(m_pending.size()); }
    qint64 evictedCount() const { return m_evicted; }
    qint64 receivedCount() const { return m_received; }
    qint64 flushCount() const { return m_flushes; }
    qint64 lastFlushNs() const { return m_lastFlushNs; }

    ChangeEvent eventAt(int row) const;
    // Oldest first. Copies are reference-count increments, so a snapshot of 250 000
    // rows is one allocation of pointers.
    ChangeEventList events() const;
    ChangeEventList lastEvents(int count) const;

    void setPalette(const QPalette& palette);
    // The mark of a schema change in the Operation column (Icons::forOperation; the
    // model does not load resources itself).
    void setSchemaIcon(const QIcon& icon) { m_schemaIcon = icon; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

Q_SIGNALS:
    void flushed(int inserted, int removed);
    void pausedChanged(bool paused);
    void countsChanged(); // pending, evicted or received moved

private:
    struct RowText {
        QString time, operation, ns, key, summary;
    };
    const ChangeEvent& at(int row) const { return m_ring[(m_head + row) % m_ring.size()]; }
    const RowText& rowText(int row) const;

    QList<ChangeEvent> m_ring; // grows to m_capacity, then wraps
    int m_head = 0;            // ring index of row 0
    int m_size = 0;
    int m_capacity = 250000;
    qint64 m_firstAbsolute = 0; // absolute number of row 0 since the last clear: the cache key

    ChangeEventList m_pending;
    QTimer m_flushTimer;
    bool m_paused = false;
    qint64 m_evicted = 0;
    qint64 m_received = 0;
    qint64 m_flushes = 0;
    qint64 m_lastFlushNs = 0;
    QElapsedTimer m_countsClock;

    QPalette m_palette;
    QIcon m_schemaIcon;
    // Bounded display cache keyed by absolute row; cleared wholesale instead of evicted
    // entry by entry (a screenful is ~50 rows, so 4 096 covers fast scrolling).
    mutable QHash<qint64, RowText> m_textCache;
    static constexpr int kTextCacheLimit = 4096;
};

} // namespace tw::ui

#include "ChangeFeedModel.h"

#include "EventFormat.h"

#include <QFont>
#include <QGuiApplication>

namespace tw::ui {

namespace {

// ChangeEvent's default constructor allocates; the free slots of the ring all share
// this one instead.
const ChangeEvent& emptyEvent() {
    static const ChangeEvent empty;
    return empty;
}

} // namespace

ChangeFeedModel::ChangeFeedModel(QObject* parent)
    : QAbstractTableModel(parent)
    , m_palette(QGuiApplication::palette()) {
    // One array of pointers for the whole ring (2 MB at 250 000 rows): growing it
    // would copy every event handle, a multi-millisecond stall at the top end.
    m_ring.reserve(m_capacity);
    m_flushTimer.setSingleShot(true);
    m_flushTimer.setInterval(100);
    connect(&m_flushTimer, &QTimer::timeout, this, &ChangeFeedModel::flush);
}

void ChangeFeedModel::setCapacity(int rows) {
    rows = std::max(1, rows);
    if (rows == m_capacity)
        return;
    beginResetModel();
    const ChangeEventList kept = lastEvents(rows);
    m_evicted += m_size - kept.size();
    m_ring = kept;
    m_ring.reserve(rows);
    m_head = 0;
    m_size = int(kept.size());
    m_capacity = rows;
    m_firstAbsolute += 1 << 30; // any value not used by a previous row: the cache starts over
    m_textCache.clear();
    endResetModel();
    Q_EMIT countsChanged();
}

void ChangeFeedModel::append(const ChangeEventList& events) {
    if (events.isEmpty())
        return;
    m_pending.append(events);
    m_received += events.size();
    // Never hold more than the ring can show: the surplus would be evicted at the next
    // flush anyway. Trimmed in chunks so a long pause costs amortised O(1) per event.
    if (m_pending.size() > qsizetype(m_capacity) * 2) {
        const qsizetype surplus = m_pending.size() - m_capacity;
        m_pending.remove(0, surplus);
        m_evicted += surplus;
    }
    if (!m_paused && !m_flushTimer.isActive())
        m_flushTimer.start();
    // Counts are shown in labels: announce them with the flush, or while paused (when
    // there is no flush) at most 4 times a second, never once per incoming batch.
    if (m_paused && (!m_countsClock.isValid() || m_countsClock.elapsed() >= 250)) {
        m_countsClock.start();
        Q_EMIT countsChanged();
    }
}

void ChangeFeedModel::flush() {
    m_flushTimer.stop();
    if (m_paused || m_pending.isEmpty())
        return;
    QElapsedTimer clock;
    clock.start();

    ChangeEventList incoming;
    incoming.swap(m_pending);
    if (incoming.size() > m_capacity) {
        const qsizetype surplus = incoming.size() - m_capacity;
        incoming.remove(0, surplus);
        m_evicted += surplus;
    }
    const int n = int(incoming.size());
    const int overflow = std::max(0, m_size + n - m_capacity);
    // Invariant: until the ring has its full size it is a plain list (head 0, no free
    // slot), so it only needs its full size once rows start leaving.
    if (overflow > 0 && m_ring.size() < m_capacity)
        m_ring.insert(m_ring.size(), m_capacity - m_ring.size(), emptyEvent());
    if (overflow > 0) {
        beginRemoveRows({}, 0, overflow - 1);
        for (int i = 0; i < overflow; ++i)
            m_ring[(m_head + i) % m_ring.size()] = emptyEvent(); // release the event now
        m_head = (m_head + overflow) % int(m_ring.size());
        m_size -= overflow;
        m_firstAbsolute += overflow;
        m_evicted += overflow;
        endRemoveRows();
    }
    beginInsertRows({}, m_size, m_size + n - 1);
    if (m_ring.size() < m_capacity) {
        m_ring.append(incoming);
    } else {
        for (int i = 0; i < n; ++i)
            m_ring[(m_head + m_size + i) % m_ring.size()] = incoming.at(i);
    }
    m_size += n;
    endInsertRows();
    if (m_textCache.size() > kTextCacheLimit)
        m_textCache.clear();

    ++m_flushes;
    m_lastFlushNs = clock.nsecsElapsed();
    Q_EMIT flushed(n, overflow);
    Q_EMIT countsChanged();
}

void ChangeFeedModel::setPaused(bool paused) {
    if (paused == m_paused)
        return;
    m_paused = paused;
    if (!m_paused && !m_pending.isEmpty())
        m_flushTimer.start(0);
    Q_EMIT pausedChanged(m_paused);
}

void ChangeFeedModel::clear() {
    beginResetModel();
    m_ring.clear();
    m_head = 0;
    m_size = 0;
    m_pending.clear();
    m_evicted = 0;
    m_received = 0;
    m_firstAbsolute = 0;
    m_textCache.clear();
    endResetModel();
    Q_EMIT countsChanged();
}

ChangeEvent ChangeFeedModel::eventAt(int row) const {
    if (row < 0 || row >= m_size)
        return {};
    return at(row);
}

ChangeEventList ChangeFeedModel::events() const {
    return lastEvents(m_size);
}

ChangeEventList ChangeFeedModel::lastEvents(int count) const {
    count = std::clamp(count, 0, m_size);
    ChangeEventList out;
    out.reserve(count);
    for (int row = m_size - count; row < m_size; ++row)
        out.append(at(row));
    return out;
}

void ChangeFeedModel::setPalette(const QPalette& palette) {
    m_palette = palette;
    if (m_size > 0)
        Q_EMIT dataChanged(index(0, 0), index(m_size - 1, ColumnCount - 1), {Qt::ForegroundRole});
}

int ChangeFeedModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : m_size;
}

int ChangeFeedModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : ColumnCount;
}

const ChangeFeedModel::RowText& ChangeFeedModel::rowText(int row) const {
    const qint64 key = m_firstAbsolute + row;
    auto it = m_textCache.find(key);
    if (it == m_textCache.end()) {
        const ChangeEvent& e = at(row);
        it = m_textCache.insert(key, RowText{EventFormat::timeText(e), EventFormat::operationText(e),
                                             EventFormat::namespaceText(e), EventFormat::keyText(e),
                                             EventFormat::summaryText(e)});
    }
    return *it;
}

QVariant ChangeFeedModel::data(const QModelIndex& index, int role) const {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const int row = index.row();
    switch (role) {
    case Qt::DisplayRole:
    case Qt::ToolTipRole: {
        const RowText& text = rowText(row);
        switch (index.column()) {
        case TimeColumn:
            return text.time;
        case OperationColumn:
            return text.operation;
        case NamespaceColumn:
            return text.ns;
        case KeyColumn:
            return text.key;
        case SummaryColumn:
            return text.summary;
        }
        return {};
    }
    case Qt::ForegroundRole:
        // Gaps and schema changes are coloured across the row: they are rare, and a
        // reader must not miss one among thousands of data changes.
        if (index.column() == OperationColumn || at(row).operation() == Operation::Gap ||
            (index.column() != TimeColumn && isSchemaOperation(at(row).operation())))
            return EventFormat::operationColor(at(row).operation(), m_palette);
        if (index.column() == TimeColumn)
            return m_palette.color(QPalette::Disabled, QPalette::Text);
        return {};
    case Qt::DecorationRole:
        if (index.column() == OperationColumn)
            return isSchemaOperation(at(row).operation()) ? m_schemaIcon : QIcon();
        return {};
    case Qt::FontRole:
        if (index.column() == OperationColumn) {
            static const QFont bold = [] {
                QFont font;
                font.setBold(true);
                return font;
            }();
            return bold;
        }
        return {};
    case EventRole:
        return QVariant::fromValue(at(row));
    case SeqRole:
        return at(row).seq();
    case OperationRole:
        return int(at(row).operation());
    }
    return {};
}

QVariant ChangeFeedModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case TimeColumn:
        return tr("Time");
    case OperationColumn:
        return tr("Operation");
    case NamespaceColumn:
        return tr("Namespace");
    case KeyColumn:
        return tr("Key");
    case SummaryColumn:
        return tr("Changes");
    }
    return {};
}

} // namespace tw::ui

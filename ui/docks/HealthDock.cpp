#include "HealthDock.h"

#include "widgets/Icons.h"
#include "widgets/SparklineDelegate.h"

#include <QDateTime>
#include <QHeaderView>
#include <QLabel>
#include <QLocale>
#include <QTreeWidget>
#include <QVBoxLayout>

namespace tw::ui {

namespace {

enum Column {
    SourceColumn,
    StateColumn,
    LastEventColumn,
    LagColumn,
    RateColumn,
    ReconnectsColumn,
    SlotLagColumn,
    ErrorColumn
};

QString ago(qint64 ms) {
    if (ms <= 0)
        return QObject::tr("never");
    const qint64 seconds = (QDateTime::currentMSecsSinceEpoch() - ms) / 1000;
    if (seconds < 1)
        return QObject::tr("just now");
    if (seconds < 60)
        return QObject::tr("%1 s ago").arg(seconds);
    if (seconds < 3600)
        return QObject::tr("%1 min ago").arg(seconds / 60);
    return QDateTime::fromMSecsSinceEpoch(ms).toString(QStringLiteral("yyyy-MM-dd HH:mm"));
}

QString bytes(qint64 n) {
    if (n < 0)
        return QStringLiteral("—");
    return QLocale().formattedDataSize(n, 1, QLocale::DataSizeTraditionalFormat);
}

QString duration(qint64 ms) {
    if (ms < 0)
        return QStringLiteral("—");
    if (ms < 1000)
        return QObject::tr("%1 ms").arg(ms);
    return QObject::tr("%1 s").arg(QLocale().toString(ms / 1000.0, 'f', 1));
}

} // namespace

HealthDock::HealthDock(QWidget* parent)
    : QDockWidget(tr("Health"), parent) {
    setObjectName(QStringLiteral("HealthDock"));
    auto* body = new QWidget(this);
    auto* layout = new QVBoxLayout(body);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    m_tree = new QTreeWidget(body);
    m_tree->setRootIsDecorated(false);
    m_tree->setUniformRowHeights(true);
    m_tree->setFrameShape(QFrame::NoFrame);
    m_tree->setHeaderLabels({tr("Source"), tr("State"), tr("Last event"), tr("Lag"), tr("Events/s"),
                             tr("Reconnects"), tr("Slot lag"), tr("Last error")});
    m_tree->setItemDelegateForColumn(RateColumn, new SparklineDelegate(m_tree));
    QHeaderView* header = m_tree->header();
    header->resizeSection(SourceColumn, 80);
    header->resizeSection(StateColumn, 95);
    header->resizeSection(LastEventColumn, 80);
    header->resizeSection(LagColumn, 55);
    header->resizeSection(RateColumn, 150);
    header->resizeSection(ReconnectsColumn, 75);
    header->resizeSection(SlotLagColumn, 70);
    header->setMinimumSectionSize(40);
    header->setStretchLastSection(true);
    layout->addWidget(m_tree, 1);
    m_summary = new QLabel(body);
    m_summary->setContentsMargins(8, 3, 8, 3);
    m_summary->setForegroundRole(QPalette::PlaceholderText);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(m_summary);
    setWidget(body);

    m_tick.setInterval(1000);
    connect(&m_tick, &QTimer::timeout, this, &HealthDock::tick);
    m_tick.start();
}

QTreeWidgetItem* HealthDock::item(const QString& id) const {
    for (int i = 0; i < m_tree->topLevelItemCount(); ++i)
        if (m_tree->topLevelItem(i)->text(SourceColumn) == id)
            return m_tree->topLevelItem(i);
    return nullptr;
}

void HealthDock::addSource(const QString& id) {
    if (m_rows.contains(id))
        return;
    Row row;
    row.samples = QList<int>(kSamples, 0);
    m_rows.insert(id, row);
    auto* it = new QTreeWidgetItem(m_tree);
    it->setText(SourceColumn, id);
    refresh(id);
}

void HealthDock::removeSource(const QString& id) {
    m_rows.remove(id);
    delete item(id);
}

void HealthDock::clearSources() {
    m_rows.clear();
    m_tree->clear();
}

void HealthDock::setStatus(const QString& id, const SourceStatus& status) {
    addSource(id);
    Row& row = m_rows[id];
    row.status = status;
    if ((status.state == SourceStatus::State::Error || status.state == SourceStatus::State::Backoff) &&
        !status.reason.isEmpty()) {
        row.lastError = status.reason;
        row.lastErrorAt = QDateTime::currentDateTime();
    }
    refresh(id);
}

void HealthDock::setLastError(const QString& id, const QString& message) {
    addSource(id);
    Row& row = m_rows[id];
    row.lastError = message;
    row.lastErrorAt = QDateTime::currentDateTime();
    refresh(id);
}

void HealthDock::recordBatch(const CommittedBatch& batch) {
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    QHash<QString, qint64> newest;
    for (const ChangeEvent& e : batch.events) {
        auto it = m_rows.find(e.sourceId());
        if (it == m_rows.end())
            continue;
        ++it->currentSecond;
        newest[e.sourceId()] = std::max(newest.value(e.sourceId()), e.wallTimeMs());
    }
    for (auto it = newest.cbegin(); it != newest.cend(); ++it) {
        Row& row = m_rows[it.key()];
        row.lastReceivedMs = now;
        if (it.value() > 0) {
            row.lastEventMs = it.value();
            row.lagMs = std::max<qint64>(0, now - it.value());
        }
    }
}

void HealthDock::setSummary(const QString& text) {
    m_summary->setText(text);
}

void HealthDock::tick() {
    for (auto it = m_rows.begin(); it != m_rows.end(); ++it) {
        it->samples.append(it->currentSecond);
        if (it->samples.size() > kSamples)
            it->samples.removeFirst();
        it->currentSecond = 0;
        refresh(it.key());
    }
}

void HealthDock::refresh(const QString& id) {
    QTreeWidgetItem* it = item(id);
    if (!it)
        return;
    const Row& row = m_rows[id];
    it->setIcon(StateColumn, Icons::forState(row.status.state));
    it->setText(StateColumn, row.status.stateName());
    it->setToolTip(StateColumn, row.status.reason);
    it->setText(LastEventColumn, ago(row.lastEventMs > 0 ? row.lastEventMs : row.status.lastEventMs));
    it->setText(LagColumn, duration(row.lagMs));
    it->setToolTip(LagColumn,
                   tr("Time from the change in the database to its arrival here, for the newest event"));
    const int latest = row.samples.isEmpty() ? 0 : row.samples.constLast();
    it->setText(RateColumn, tr("%1/s").arg(latest));
    it->setData(RateColumn, SparklineDelegate::Role, QVariant::fromValue(row.samples));
    it->setText(ReconnectsColumn, QString::number(row.status.reconnects));
    // Only a source with a replication slot knows this; the others show a dash.
    it->setText(SlotLagColumn, bytes(row.status.lagBytes));
    it->setToolTip(SlotLagColumn,
                   row.status.slotName.isEmpty()
                       ? QString()
                       : tr("WAL that replication slot \"%1\" keeps on the server until Tidewatch "
                            "confirms it")
                             .arg(row.status.slotName));
    it->setToolTip(SourceColumn,
                   row.status.slotName.isEmpty()
                       ? QString()
                       : tr("%1: replication slot and publication \"%2\"").arg(id, row.status.slotName));
    it->setText(ErrorColumn, row.lastError.isEmpty()
                                 ? QStringLiteral("—")
                                 : QStringLiteral("%1  %2").arg(
                                       row.lastErrorAt.toString(QStringLiteral("HH:mm:ss")), row.lastError));
    it->setToolTip(ErrorColumn, row.lastError);
}

} // namespace tw::ui

#pragma once

#include "model/ChangeBatch.h"
#include "sources/Source.h"

#include <QDockWidget>
#include <QHash>
#include <QTimer>

class QLabel;
class QTreeWidget;
class QTreeWidgetItem;

namespace tw::ui {

// Health per source: state, last event, lag (database wall time → committed and
// received here), an events/s sparkline over the last minute, reconnects and the
// last error. A one-second tick rolls the rates and ages the times.
class HealthDock : public QDockWidget {
    Q_OBJECT
public:
    explicit HealthDock(QWidget* parent = nullptr);

    void addSource(const QString& id);
    void removeSource(const QString& id);
    void clearSources();
    void setStatus(const QString& id, const SourceStatus& status);
    void setLastError(const QString& id, const QString& message);
    void recordBatch(const CommittedBatch& batch);
    void setSummary(const QString& text);

    QTreeWidget* tree() const { return m_tree; }
    // Events counted for `id` in the current (unfinished) second and the samples.
    QList<int> samples(const QString& id) const { return m_rows.value(id).samples; }

private:
    struct Row {
        SourceStatus status;
        QList<int> samples; // events per second, oldest first, at most kSamples
        int currentSecond = 0;
        qint64 lastEventMs = 0; // wall time of the newest event (database clock)
        qint64 lastReceivedMs = 0;
        qint64 lagMs = -1;
        QString lastError;
        QDateTime lastErrorAt;
    };
    static constexpr int kSamples = 60;
    QTreeWidgetItem* item(const QString& id) const;
    void tick();
    void refresh(const QString& id);

    QTreeWidget* m_tree = nullptr; // child
    QLabel* m_summary = nullptr;   // child
    QHash<QString, Row> m_rows;
    QTimer m_tick;
};

} // namespace tw::ui

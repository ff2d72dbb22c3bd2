#pragma once

#include "engine/Subscription.h"
#include "model/ChangeBatch.h"

#include <QDockWidget>
#include <QHash>

class QLineEdit;
class QTabWidget;

namespace tw::ui {

class ChangeFeedModel;
class FeedView;

// Live Feed: one tab per subscription, each with its own ChangeFeedModel fed from
// the engine's committed batches (CommittedBatch::bySubscription), plus the quick
// search line. Pause applies to every feed: what is being looked at stays still.
class LiveFeedDock : public QDockWidget {
    Q_OBJECT
public:
    explicit LiveFeedDock(QWidget* parent = nullptr);

    void setSubscriptions(const SubscriptionList& subscriptions);
    void dispatch(const CommittedBatch& batch);
    void setCapacity(int rows);

    QString currentSubscriptionId() const;
    void setCurrentSubscription(const QString& id);
    FeedView* currentFeed() const;
    FeedView* feed(const QString& subscriptionId) const;
    ChangeFeedModel* model(const QString& subscriptionId) const;
    int feedCount() const;

    bool isPaused() const { return m_paused; }
    void setPaused(bool paused);
    void clearCurrent();
    void focusSearch();
    QLineEdit* searchEdit() const { return m_search; }

Q_SIGNALS:
    void currentEventChanged(const tw::ChangeEvent& event);
    void currentSubscriptionChanged(const QString& id);
    void pausedChanged(bool paused);

private:
    QTabWidget* m_tabs = nullptr;              // child; owns the FeedViews
    QLineEdit* m_search = nullptr;             // child
    QHash<QString, ChangeFeedModel*> m_models; // children of this dock
    int m_capacity = 250000;
    bool m_paused = false;
};

} // namespace tw::ui

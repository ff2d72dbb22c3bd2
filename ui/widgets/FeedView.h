#pragma once

#include "model/ChangeEvent.h"

#include <QWidget>

class QLabel;
#include <QTableView>
class QToolButton;

namespace tw::ui {

class ChangeFeedModel;
class FeedSearchProxy;

// One subscription's live feed: the table, a status line (rows, events waiting while
// paused, rows that left the ring) and tail-follow. The view follows new rows only
// when the user is already at the bottom; scrolled up, the rows they look at stay put
// even while old rows leave the top of the ring.
class FeedView : public QWidget {
    Q_OBJECT
public:
    // `model` is not owned (the dock owns the models, one per subscription).
    explicit FeedView(ChangeFeedModel* model, QWidget* parent = nullptr);
    ~FeedView() override;

    ChangeFeedModel* model() const { return m_model; }
    QTableView* view() const { return m_view; }

    void setSearchText(const QString& text);
    QString searchText() const;

    ChangeEvent currentEvent() const;
    ChangeEventList selectedEvents() const; // in row order
    bool isFollowingTail() const { return m_follow; }
    // Selects the newest row, or the newest update among the last 200 rows when there
    // is one, so a screenshot shows the detail dock in use.
    void selectRecentEvent();

Q_SIGNALS:
    void currentEventChanged(const tw::ChangeEvent& event);
    void resumeRequested();

private:
    void attachModel(QAbstractItemModel* model);
    void updateStatusLine();
    void onAboutToInsert();
    void onInserted();
    void onAboutToRemove(const QModelIndex& parent, int first, int last);
    void onRemoved();

    ChangeFeedModel* m_model;           // not owned
    FeedSearchProxy* m_proxy = nullptr; // child
    QTableView* m_view = nullptr;       // child
    QLabel* m_status = nullptr;         // child
    QWidget* m_pausedBar = nullptr;     // child
    QLabel* m_pausedLabel = nullptr;    // child of m_pausedBar
    bool m_follow = true;
    int m_scrollBeforeRemoval = -1;
    int m_rowsRemoved = 0;
};

} // namespace tw::ui

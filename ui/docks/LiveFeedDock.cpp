#include "LiveFeedDock.h"

#include "models/ChangeFeedModel.h"
#include "widgets/FeedView.h"
#include "widgets/Icons.h"

#include <QHBoxLayout>
#include <QLineEdit>
#include <QTabBar>
#include <QTabWidget>
#include <QVBoxLayout>

namespace tw::ui {

LiveFeedDock::LiveFeedDock(QWidget* parent)
    : QDockWidget(tr("Live Feed"), parent) {
    setObjectName(QStringLiteral("LiveFeedDock"));
    auto* body = new QWidget(this);
    auto* layout = new QVBoxLayout(body);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);

    m_tabs = new QTabWidget(body);
    m_tabs->setDocumentMode(true);
    m_tabs->setMovable(true);
    m_search = new QLineEdit(m_tabs);
    m_search->setPlaceholderText(tr("Search this feed (Ctrl+F)"));
    m_search->setClearButtonEnabled(true);
    m_search->addAction(Icons::get(QStringLiteral("search")), QLineEdit::LeadingPosition);
    m_search->setMinimumWidth(220);
    auto* corner = new QWidget(m_tabs);
    auto* cornerLayout = new QHBoxLayout(corner);
    cornerLayout->setContentsMargins(4, 2, 4, 2);
    cornerLayout->addWidget(m_search);
    m_tabs->setCornerWidget(corner, Qt::TopRightCorner);
    layout->addWidget(m_tabs, 1);

    setWidget(body);

    connect(m_search, &QLineEdit::textChanged, this, [this](const QString& text) {
        if (FeedView* view = currentFeed())
            view->setSearchText(text);
    });
    connect(m_tabs, &QTabWidget::currentChanged, this, [this] {
        FeedView* view = currentFeed();
        if (!view)
            return;
        const QSignalBlocker blocker(m_search);
        m_search->setText(view->searchText());
        Q_EMIT currentSubscriptionChanged(currentSubscriptionId());
        Q_EMIT currentEventChanged(view->currentEvent());
    });
}

void LiveFeedDock::setSubscriptions(const SubscriptionList& subscriptions) {
    QSet<QString> wanted;
    for (const Subscription& s : subscriptions) {
        wanted.insert(s.id);
        const QString title = s.name.isEmpty() ? s.id : s.name;
        if (FeedView* existing = feed(s.id)) {
            m_tabs->setTabText(m_tabs->indexOf(existing), title);
            continue;
        }
        auto* model = new ChangeFeedModel(this);
        model->setCapacity(m_capacity);
        model->setPaused(m_paused);
        model->setSchemaIcon(Icons::forOperation(Operation::Ddl));
        m_models.insert(s.id, model);
        auto* view = new FeedView(model, m_tabs);
        view->setProperty("subscriptionId", s.id);
        connect(view, &FeedView::currentEventChanged, this, [this, view](const ChangeEvent& e) {
            if (view == currentFeed())
                Q_EMIT currentEventChanged(e);
        });
        connect(view, &FeedView::resumeRequested, this, [this] { setPaused(false); });
        m_tabs->addTab(view, Icons::get(QStringLiteral("subscription")), title);
    }
    for (auto it = m_models.begin(); it != m_models.end();) {
        if (wanted.contains(it.key())) {
            ++it;
            continue;
        }
        FeedView* view = feed(it.key());
        m_tabs->removeTab(m_tabs->indexOf(view));
        delete view;
        delete it.value();
        it = m_models.erase(it);
    }
}

void LiveFeedDock::dispatch(const CommittedBatch& batch) {
    for (auto it = batch.bySubscription.cbegin(); it != batch.bySubscription.cend(); ++it)
        if (ChangeFeedModel* model = m_models.value(it.key()))
            model->append(it.value());
}

void LiveFeedDock::setCapacity(int rows) {
    m_capacity = rows;
    for (ChangeFeedModel* model : std::as_const(m_models))
        model->setCapacity(rows);
}

QString LiveFeedDock::currentSubscriptionId() const {
    FeedView* view = currentFeed();
    return view ? view->property("subscriptionId").toString() : QString();
}

void LiveFeedDock::setCurrentSubscription(const QString& id) {
    if (FeedView* view = feed(id))
        m_tabs->setCurrentWidget(view);
}

FeedView* LiveFeedDock::currentFeed() const {
    return qobject_cast<FeedView*>(m_tabs->currentWidget());
}

FeedView* LiveFeedDock::feed(const QString& subscriptionId) const {
    for (int i = 0; i < m_tabs->count(); ++i)
        if (m_tabs->widget(i)->property("subscriptionId").toString() == subscriptionId)
            return qobject_cast<FeedView*>(m_tabs->widget(i));
    return nullptr;
}

ChangeFeedModel* LiveFeedDock::model(const QString& subscriptionId) const {
    return m_models.value(subscriptionId);
}

int LiveFeedDock::feedCount() const {
    return m_tabs->count();
}

void LiveFeedDock::setPaused(bool paused) {
    if (paused == m_paused)
        return;
    m_paused = paused;
    for (ChangeFeedModel* model : std::as_const(m_models))
        model->setPaused(paused);
    Q_EMIT pausedChanged(paused);
}

void LiveFeedDock::clearCurrent() {
    if (FeedView* view = currentFeed())
        view->model()->clear();
}

void LiveFeedDock::focusSearch() {
    m_search->setFocus(Qt::ShortcutFocusReason);
    m_search->selectAll();
}

} // namespace tw::ui

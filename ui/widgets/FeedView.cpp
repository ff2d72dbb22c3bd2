#include "FeedView.h"

#include "models/ChangeFeedModel.h"
#include "models/FeedSearchProxy.h"

#include <QFontMetrics>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLocale>
#include <QPushButton>
#include <QScrollBar>
#include <QTableView>
#include <QVBoxLayout>

namespace tw::ui {

FeedView::FeedView(ChangeFeedModel* model, QWidget* parent)
    : QWidget(parent)
    , m_model(model) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);

    m_pausedBar = new QWidget(this);
    m_pausedBar->setAutoFillBackground(true);
    m_pausedBar->setBackgroundRole(QPalette::ToolTipBase);
    auto* pausedLayout = new QHBoxLayout(m_pausedBar);
    pausedLayout->setContentsMargins(8, 3, 4, 3);
    m_pausedLabel = new QLabel(m_pausedBar);
    m_pausedLabel->setForegroundRole(QPalette::ToolTipText);
    auto* resume = new QPushButton(tr("Resume"), m_pausedBar);
    resume->setFlat(true);
    connect(resume, &QPushButton::clicked, this, &FeedView::resumeRequested);
    pausedLayout->addWidget(m_pausedLabel, 1);
    pausedLayout->addWidget(resume);
    m_pausedBar->hide();
    layout->addWidget(m_pausedBar);

    // A table, not a tree: QTreeView keeps an item per row and lays all of them out
    // again when rows leave the front of a full ring (p99 flush stall 26 ms at 250 000
    // rows); a table with fixed row heights does not look at rows it does not show.
    m_view = new QTableView(this);
    m_view->verticalHeader()->hide();
    m_view->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    m_view->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 4);
    m_view->setShowGrid(false);
    m_view->setWordWrap(false);
    m_view->setCornerButtonEnabled(false);
    m_view->horizontalHeader()->setHighlightSections(false);
    m_view->horizontalHeader()->setDefaultAlignment(Qt::AlignLeft | Qt::AlignVCenter);
    m_view->setAlternatingRowColors(true);
    m_view->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_view->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_view->setVerticalScrollMode(QAbstractItemView::ScrollPerItem); // scroll value == top row
    m_view->setTextElideMode(Qt::ElideRight);
    m_view->setFrameShape(QFrame::NoFrame);
    layout->addWidget(m_view, 1);

    m_status = new QLabel(this);
    m_status->setContentsMargins(8, 2, 8, 2);
    m_status->setForegroundRole(QPalette::PlaceholderText);
    layout->addWidget(m_status);

    m_proxy = new FeedSearchProxy(this);
    m_proxy->setFeed(m_model);

    connect(m_model, &QAbstractItemModel::rowsAboutToBeInserted, this, &FeedView::onAboutToInsert);
    connect(m_model, &QAbstractItemModel::rowsInserted, this, &FeedView::onInserted);
    connect(m_model, &QAbstractItemModel::rowsAboutToBeRemoved, this, &FeedView::onAboutToRemove);
    connect(m_model, &QAbstractItemModel::rowsRemoved, this, &FeedView::onRemoved);
    connect(m_model, &ChangeFeedModel::countsChanged, this, &FeedView::updateStatusLine);
    connect(m_model, &ChangeFeedModel::pausedChanged, this, &FeedView::updateStatusLine);
    connect(m_model, &QAbstractItemModel::modelReset, this, &FeedView::updateStatusLine);

    // The view updates its scroll range after the insert, in a posted layout pass, so
    // following the tail means following the range.
    connect(m_view->verticalScrollBar(), &QScrollBar::rangeChanged, this, [this](int, int max) {
        if (m_follow)
            m_view->verticalScrollBar()->setValue(max);
    });

    attachModel(m_model);
    QHeaderView* header = m_view->horizontalHeader();
    header->setStretchLastSection(true);
    header->resizeSection(ChangeFeedModel::TimeColumn, 96);
    // Wide enough for the longest operation a source reports ("createIndexes") after
    // the schema icon, in the feed's bold operation font.
    QFont bold = m_view->font();
    bold.setBold(true);
    const QFontMetrics metrics(bold);
    header->resizeSection(ChangeFeedModel::OperationColumn,
                          std::max(84, metrics.horizontalAdvance(QStringLiteral("createIndexes")) + 44));
    header->resizeSection(ChangeFeedModel::NamespaceColumn, 170);
    header->resizeSection(ChangeFeedModel::KeyColumn, 70);
    updateStatusLine();
}

FeedView::~FeedView() {
    // ~QWidget hides the children after this object is gone; the table then updates its
    // scroll range, which must not reach the tail-follow slot any more.
    disconnect(m_view->verticalScrollBar(), nullptr, this, nullptr);
    disconnect(m_model, nullptr, this, nullptr);
}

void FeedView::attachModel(QAbstractItemModel* model) {
    m_view->setModel(model);
    // setModel() replaces the selection model; the old one is deleted with the view's
    // children only at the end, so connect the new one each time.
    connect(m_view->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this] { Q_EMIT currentEventChanged(currentEvent()); });
}

void FeedView::setSearchText(const QString& text) {
    const bool wasSearching = m_view->model() == m_proxy;
    m_proxy->setSearchText(text);
    // The proxy costs O(rows) on every eviction, so it only sits between the model and
    // the view while there is something to search for.
    if (text.isEmpty() && wasSearching)
        attachModel(m_model);
    else if (!text.isEmpty() && !wasSearching)
        attachModel(m_proxy);
    if (m_follow)
        m_view->scrollToBottom();
    updateStatusLine();
}

QString FeedView::searchText() const {
    return m_proxy->searchText();
}

ChangeEvent FeedView::currentEvent() const {
    const QModelIndex index = m_view->currentIndex();
    if (!index.isValid())
        return {};
    return index.data(ChangeFeedModel::EventRole).value<ChangeEvent>();
}

ChangeEventList FeedView::selectedEvents() const {
    QModelIndexList rows = m_view->selectionModel()->selectedRows();
    std::sort(rows.begin(), rows.end(),
              [](const QModelIndex& a, const QModelIndex& b) { return a.row() < b.row(); });
    ChangeEventList out;
    out.reserve(rows.size());
    for (const QModelIndex& index : std::as_const(rows))
        out.append(index.data(ChangeFeedModel::EventRole).value<ChangeEvent>());
    return out;
}

void FeedView::onAboutToInsert() {
    const QScrollBar* bar = m_view->verticalScrollBar();
    m_follow = bar->value() >= bar->maximum() - 1;
}

void FeedView::onInserted() {
    if (m_follow)
        m_view->scrollToBottom();
}

void FeedView::onAboutToRemove(const QModelIndex& parent, int first, int last) {
    if (parent.isValid() || first != 0 || m_view->model() != m_model)
        return;
    const QScrollBar* bar = m_view->verticalScrollBar();
    m_follow = bar->value() >= bar->maximum() - 1;
    m_scrollBeforeRemoval = bar->value();
    m_rowsRemoved = last - first + 1;
}

void FeedView::onRemoved() {
    if (m_scrollBeforeRemoval < 0)
        return;
    // Keep the rows the reader is looking at where they are.
    if (!m_follow)
        m_view->verticalScrollBar()->setValue(std::max(0, m_scrollBeforeRemoval - m_rowsRemoved));
    m_scrollBeforeRemoval = -1;
}

void FeedView::updateStatusLine() {
    const QLocale locale;
    QString text;
    if (m_view->model() == m_proxy)
        text = tr("%1 of %2 rows match “%3”")
                   .arg(locale.toString(m_proxy->rowCount()), locale.toString(m_model->rowCount()),
                        m_proxy->searchText());
    else
        text = tr("%1 rows").arg(locale.toString(m_model->rowCount()));
    if (m_model->evictedCount() > 0)
        text += tr("  ·  %1 older events left the view (it keeps the last %2; the journal keeps them all)")
                    .arg(locale.toString(m_model->evictedCount()), locale.toString(m_model->capacity()));
    m_status->setText(text);

    m_pausedBar->setVisible(m_model->isPaused());
    if (m_model->isPaused())
        m_pausedLabel->setText(tr("Paused — %1 new events are being recorded and will appear on resume.")
                                   .arg(locale.toString(m_model->pendingCount())));
}

void FeedView::selectRecentEvent() {
    if (m_model->rowCount() == 0)
        return;
    int row = m_model->rowCount() - 1;
    for (int r = m_model->rowCount() - 1; r >= std::max(0, m_model->rowCount() - 200); --r) {
        if (m_model->eventAt(r).operation() == Operation::Update) {
            row = r;
            break;
        }
    }
    const QModelIndex index = m_view->model()->index(row, 0);
    m_view->setCurrentIndex(index);
    m_view->scrollTo(index);
}

} // namespace tw::ui

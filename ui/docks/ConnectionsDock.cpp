#include "ConnectionsDock.h"

#include "widgets/Icons.h"

#include <QDateTime>
#include <QHeaderView>
#include <QMenu>
#include <QToolBar>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <utility>

namespace tw::ui {

namespace {

constexpr int KindRole = Qt::UserRole + 1;
constexpr int IdRole = Qt::UserRole + 2;
constexpr int DbRole = Qt::UserRole + 3;
constexpr int CollRole = Qt::UserRole + 4;
constexpr int LoadedRole = Qt::UserRole + 5;

QString statusText(const SourceStatus& status) {
    switch (status.state) {
    case SourceStatus::State::Backoff: {
        const qint64 ms =
            status.nextRetry.isValid() ? QDateTime::currentDateTimeUtc().msecsTo(status.nextRetry) : 0;
        const qint64 seconds = ms > 0 ? (ms + 999) / 1000 : 0;
        return seconds > 0 ? QObject::tr("retry in %1 s").arg(seconds) : QObject::tr("retrying…");
    }
    case SourceStatus::State::Error:
        return QObject::tr("error");
    case SourceStatus::State::Polling:
        return QObject::tr("polling");
    case SourceStatus::State::Watching:
        return QObject::tr("watching");
    case SourceStatus::State::Connecting:
        return QObject::tr("connecting…");
    case SourceStatus::State::Stopped:
        return QObject::tr("stopped");
    }
    return {};
}

} // namespace

ConnectionsDock::ConnectionsDock(QWidget* parent)
    : QDockWidget(tr("Connections & Collections"), parent) {
    setObjectName(QStringLiteral("ConnectionsDock"));
    auto* body = new QWidget(this);
    auto* layout = new QVBoxLayout(body);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);

    auto* bar = new QToolBar(body);
    bar->setIconSize(QSize(16, 16));
    bar->addAction(Icons::get(QStringLiteral("add")), tr("Add Connection…"), this,
                   &ConnectionsDock::addRequested);
    auto* edit = bar->addAction(Icons::get(QStringLiteral("edit")), tr("Edit Connection…"), this, [this] {
        if (!currentConnectionId().isEmpty())
            Q_EMIT editRequested(currentConnectionId());
    });
    auto* remove =
        bar->addAction(Icons::get(QStringLiteral("remove")), tr("Remove Connection"), this, [this] {
            if (!currentConnectionId().isEmpty())
                Q_EMIT removeRequested(currentConnectionId());
        });
    bar->addAction(Icons::get(QStringLiteral("refresh")), tr("Reload Collections"), this, [this] {
        const QString id = currentConnectionId();
        QTreeWidgetItem* item = connectionItem(id);
        if (!item)
            return;
        // Collapse-and-reload: the lazy loader runs again on expand.
        qDeleteAll(item->takeChildren());
        item->setData(0, LoadedRole, false);
        item->setChildIndicatorPolicy(QTreeWidgetItem::ShowIndicator);
        item->setExpanded(false);
        item->setExpanded(true);
    });
    layout->addWidget(bar);

    m_tree = new QTreeWidget(body);
    m_tree->setColumnCount(2);
    m_tree->setHeaderLabels({tr("Name"), tr("State")});
    // Names are never cut short; the state word (also shown by the icon) takes what is left.
    m_tree->header()->setStretchLastSection(true);
    m_tree->header()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
    m_tree->setHeaderHidden(true);
    m_tree->setContextMenuPolicy(Qt::CustomContextMenu);
    m_tree->setFrameShape(QFrame::NoFrame);
    m_tree->setUniformRowHeights(true);
    // Room for a typical collection name and the state word without a scroll bar.
    m_tree->setMinimumWidth(
        m_tree->fontMetrics().horizontalAdvance(QStringLiteral("notifications  watching")) + 130);
    layout->addWidget(m_tree, 1);
    setWidget(body);

    connect(m_tree, &QTreeWidget::itemExpanded, this, &ConnectionsDock::onExpanded);
    connect(m_tree, &QTreeWidget::itemChanged, this, &ConnectionsDock::onChanged);
    connect(m_tree, &QTreeWidget::customContextMenuRequested, this, &ConnectionsDock::showContextMenu);
    connect(m_tree, &QTreeWidget::itemDoubleClicked, this, [this](QTreeWidgetItem* item) {
        if (item->data(0, KindRole).toInt() == ConnectionItem)
            Q_EMIT editRequested(item->data(0, IdRole).toString());
    });
    connect(m_tree, &QTreeWidget::currentItemChanged, this, [this, edit, remove] {
        const bool any = !currentConnectionId().isEmpty();
        edit->setEnabled(any);
        remove->setEnabled(any);
    });
    edit->setEnabled(false);
    remove->setEnabled(false);

    m_countdown.setInterval(1000);
    connect(&m_countdown, &QTimer::timeout, this, &ConnectionsDock::refreshStatusText);
    // 250 ms: a migration renaming fifty tables reloads the list once, and a person
    // still sees the new table at once.
    m_reload.setSingleShot(true);
    m_reload.setInterval(250);
    connect(&m_reload, &QTimer::timeout, this, [this] {
        for (const auto& [id, db] : std::exchange(m_stale, {})) {
            QTreeWidgetItem* connection = connectionItem(id);
            QTreeWidgetItem* parent = connection && !db.isEmpty() ? databaseItem(connection, db) : connection;
            if (parent && parent->data(0, LoadedRole).toBool())
                Q_EMIT namespacesRequested(id, db);
        }
    });
}

void ConnectionsDock::noteCommitted(const CommittedBatch& batch) {
    for (const ChangeEvent& e : batch.events) {
        const Operation op = e.operation();
        if (op == Operation::Drop || op == Operation::Rename ||
            (op == Operation::Ddl && e.operationType() == "create"))
            m_stale.insert({e.sourceId(), e.ns().db});
        else if (op == Operation::DropDatabase)
            m_stale.insert({e.sourceId(), QString()});
    }
    if (!m_stale.isEmpty() && !m_reload.isActive())
        m_reload.start();
}

QTreeWidgetItem* ConnectionsDock::connectionItem(const QString& id) const {
    for (int i = 0; i < m_tree->topLevelItemCount(); ++i)
        if (m_tree->topLevelItem(i)->data(0, IdRole).toString() == id)
            return m_tree->topLevelItem(i);
    return nullptr;
}

QTreeWidgetItem* ConnectionsDock::databaseItem(QTreeWidgetItem* connection, const QString& db) const {
    for (int i = 0; i < connection->childCount(); ++i) {
        QTreeWidgetItem* child = connection->child(i);
        if (child->data(0, KindRole).toInt() == DatabaseItem && child->data(0, DbRole).toString() == db)
            return child;
    }
    return nullptr;
}

void ConnectionsDock::addConnection(const ConnectionSpec& spec) {
    m_specs.insert(spec.id, spec);
    QSet<QString>& watched = m_watched[spec.id];
    for (const Namespace& ns : spec.watches)
        watched.insert(ns.toString());
    auto* item = new QTreeWidgetItem(m_tree);
    item->setData(0, KindRole, ConnectionItem);
    item->setData(0, IdRole, spec.id);
    item->setChildIndicatorPolicy(QTreeWidgetItem::ShowIndicator);
    updateConnection(spec);
    setStatus(spec.id, m_statuses.value(spec.id));
}

void ConnectionsDock::updateConnection(const ConnectionSpec& spec) {
    m_specs.insert(spec.id, spec);
    QTreeWidgetItem* item = connectionItem(spec.id);
    if (!item)
        return;
    const QString shownUri = Source::redactUri(spec.uriWithPassword());
    item->setText(0, spec.demo ? tr("%1 (demo)").arg(spec.id) : spec.id);
    item->setToolTip(0, shownUri);
}

void ConnectionsDock::removeConnection(const QString& id) {
    delete connectionItem(id);
    m_specs.remove(id);
    m_statuses.remove(id);
    m_watched.remove(id);
}

void ConnectionsDock::clearConnections() {
    m_tree->clear();
    m_specs.clear();
    m_statuses.clear();
    m_watched.clear();
}

void ConnectionsDock::setStatus(const QString& id, const SourceStatus& status) {
    m_statuses.insert(id, status);
    QTreeWidgetItem* item = connectionItem(id);
    if (!item)
        return;
    item->setIcon(0, Icons::forState(status.state));
    item->setText(1, statusText(status));
    const QString uri = Source::redactUri(m_specs.value(id).uriWithPassword());
    const QString tip = status.reason.isEmpty() ? uri : uri + QStringLiteral("\n\n") + status.reason;
    item->setToolTip(0, tip);
    item->setToolTip(1, tip);
    item->setForeground(1, status.state == SourceStatus::State::Error
                               ? QBrush(QColor(0xcf, 0x22, 0x2e))
                               : m_tree->palette().brush(QPalette::Disabled, QPalette::Text));
    bool anyBackoff = false;
    for (const SourceStatus& s : std::as_const(m_statuses))
        anyBackoff = anyBackoff || s.state == SourceStatus::State::Backoff;
    if (anyBackoff && !m_countdown.isActive())
        m_countdown.start();
    else if (!anyBackoff)
        m_countdown.stop();
}

void ConnectionsDock::refreshStatusText() {
    for (auto it = m_statuses.cbegin(); it != m_statuses.cend(); ++it)
        if (QTreeWidgetItem* item = connectionItem(it.key()))
            item->setText(1, statusText(*it));
}

void ConnectionsDock::expandConnection(const QString& id) {
    if (QTreeWidgetItem* item = connectionItem(id))
        item->setExpanded(true);
}

void ConnectionsDock::onExpanded(QTreeWidgetItem* item) {
    const int kind = item->data(0, KindRole).toInt();
    if ((kind != ConnectionItem && kind != DatabaseItem) || item->data(0, LoadedRole).toBool())
        return;
    item->setData(0, LoadedRole, true);
    const QSignalBlocker blocker(m_tree);
    auto* placeholder = new QTreeWidgetItem(item, {tr("Loading…")});
    placeholder->setData(0, KindRole, PlaceholderItem);
    placeholder->setForeground(0, m_tree->palette().brush(QPalette::Disabled, QPalette::Text));
    Q_EMIT namespacesRequested(item->data(0, IdRole).toString(),
                               kind == DatabaseItem ? item->data(0, DbRole).toString() : QString());
}

void ConnectionsDock::setNamespaces(const QString& id, const QString& db,
                                    const QList<NamespaceInfo>& namespaces, const QString& error) {
    QTreeWidgetItem* connection = connectionItem(id);
    if (!connection)
        return;
    QTreeWidgetItem* parent = db.isEmpty() ? connection : databaseItem(connection, db);
    if (!parent)
        return;
    m_updating = true;
    QSignalBlocker blocker(m_tree);
    qDeleteAll(parent->takeChildren());
    if (!error.isEmpty()) {
        auto* item = new QTreeWidgetItem(parent, {error});
        item->setData(0, KindRole, PlaceholderItem);
        item->setIcon(0, Icons::get(QStringLiteral("state-error")));
        item->setToolTip(0, error);
        parent->setData(0, LoadedRole, false); // try again on the next expand
    }
    const QSet<QString> watched = m_watched.value(id);
    QList<QTreeWidgetItem*> toExpand;
    for (const NamespaceInfo& info : namespaces) {
        auto* item = new QTreeWidgetItem(parent);
        item->setData(0, IdRole, id);
        item->setData(0, DbRole, info.ns.db);
        if (info.ns.coll.isEmpty()) {
            item->setData(0, KindRole, DatabaseItem);
            item->setText(0, info.ns.db);
            item->setIcon(0, Icons::get(QStringLiteral("database")));
            item->setChildIndicatorPolicy(QTreeWidgetItem::ShowIndicator);
            // Ticking a database watches all of it, collections created later too.
            item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
            item->setCheckState(0, watched.contains(info.ns.db) ? Qt::Checked : Qt::Unchecked);
            item->setToolTip(0, tr("Tick to watch all of %1, including collections and tables created later")
                                    .arg(info.ns.db));
            // Open databases that hold watched collections, so ticks are visible.
            for (const QString& ns : watched)
                if (Namespace::fromString(ns).db == info.ns.db)
                    toExpand.append(item);
        } else {
            item->setData(0, KindRole, CollectionItem);
            item->setData(0, CollRole, info.ns.coll);
            item->setText(0, info.ns.coll);
            item->setIcon(0, Icons::get(info.kind == QLatin1String("view") ? QStringLiteral("view")
                                                                           : QStringLiteral("collection")));
            if (info.kind != QLatin1String("system")) {
                item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
                item->setCheckState(0, watched.contains(info.ns.toString()) ? Qt::Checked : Qt::Unchecked);
            } else {
                item->setForeground(0, m_tree->palette().brush(QPalette::Disabled, QPalette::Text));
            }
            if (info.kind != QLatin1String("collection") && info.kind != QLatin1String("table"))
                item->setText(1, info.kind);
            item->setForeground(1, m_tree->palette().brush(QPalette::Disabled, QPalette::Text));
        }
    }
    if (namespaces.isEmpty() && error.isEmpty()) {
        auto* item = new QTreeWidgetItem(parent, {db.isEmpty() ? tr("no databases") : tr("no collections")});
        item->setData(0, KindRole, PlaceholderItem);
        item->setForeground(0, m_tree->palette().brush(QPalette::Disabled, QPalette::Text));
    }
    m_updating = false;
    blocker.unblock();
    for (QTreeWidgetItem* item : std::as_const(toExpand))
        item->setExpanded(true); // emits itemExpanded → lazy load
}

void ConnectionsDock::setWatched(const QString& id, const Namespace& ns, bool watched) {
    if (watched)
        m_watched[id].insert(ns.toString());
    else
        m_watched[id].remove(ns.toString());
    QTreeWidgetItem* connection = connectionItem(id);
    QTreeWidgetItem* db = connection ? databaseItem(connection, ns.db) : nullptr;
    if (!db)
        return;
    const QSignalBlocker blocker(m_tree);
    if (ns.coll.isEmpty())
        db->setCheckState(0, watched ? Qt::Checked : Qt::Unchecked);
    for (int i = 0; i < db->childCount() && !ns.coll.isEmpty(); ++i)
        if (db->child(i)->data(0, CollRole).toString() == ns.coll)
            db->child(i)->setCheckState(0, watched ? Qt::Checked : Qt::Unchecked);
}

void ConnectionsDock::onChanged(QTreeWidgetItem* item, int column) {
    const int kind = item->data(0, KindRole).toInt();
    if (m_updating || column != 0 || (kind != CollectionItem && kind != DatabaseItem))
        return;
    const QString id = item->data(0, IdRole).toString();
    const Namespace ns{item->data(0, DbRole).toString(),
                       kind == DatabaseItem ? QString() : item->data(0, CollRole).toString()};
    const bool watch = item->checkState(0) == Qt::Checked;
    if (watch == m_watched.value(id).contains(ns.toString()))
        return;
    if (watch)
        m_watched[id].insert(ns.toString());
    else
        m_watched[id].remove(ns.toString());
    Q_EMIT watchToggled(id, ns, watch);
}

QString ConnectionsDock::currentConnectionId() const {
    QTreeWidgetItem* item = m_tree->currentItem();
    while (item && item->parent())
        item = item->parent();
    return item ? item->data(0, IdRole).toString() : QString();
}

void ConnectionsDock::showContextMenu(const QPoint& pos) {
    QMenu menu(this);
    const QString id = currentConnectionId();
    menu.addAction(Icons::get(QStringLiteral("add")), tr("Add Connection…"), this,
                   &ConnectionsDock::addRequested);
    if (!id.isEmpty()) {
        menu.addAction(Icons::get(QStringLiteral("edit")), tr("Edit “%1”…").arg(id), this,
                       [this, id] { Q_EMIT editRequested(id); });
        menu.addAction(Icons::get(QStringLiteral("remove")), tr("Remove “%1”").arg(id), this,
                       [this, id] { Q_EMIT removeRequested(id); });
    }
    menu.exec(m_tree->viewport()->mapToGlobal(pos));
}

} // namespace tw::ui

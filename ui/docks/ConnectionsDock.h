#pragma once

#include "model/ChangeBatch.h"
#include "sources/Source.h"
#include "Workspace.h"

#include <QDockWidget>
#include <QHash>
#include <QSet>
#include <QTimer>

class QTreeWidget;
class QTreeWidgetItem;

namespace tw::ui {

// Connections & Collections: one top-level item per connection with its state (and a
// live countdown while backing off), databases and collections below it loaded
// lazily when expanded, a check box per collection to watch it. The dock only
// shows and asks; the main window talks to the engine.
class ConnectionsDock : public QDockWidget {
    Q_OBJECT
public:
    explicit ConnectionsDock(QWidget* parent = nullptr);

    void addConnection(const ConnectionSpec& spec);
    void updateConnection(const ConnectionSpec& spec);
    void removeConnection(const QString& id);
    void clearConnections();
    void setStatus(const QString& id, const SourceStatus& status);
    void setNamespaces(const QString& id, const QString& db, const QList<NamespaceInfo>& namespaces,
                       const QString& error);
    void setWatched(const QString& id, const Namespace& ns, bool watched);
    void expandConnection(const QString& id);
    // Reloads the listings a committed create, drop, rename or dropDatabase changed
    // (those already loaded; once per quarter second, however many events).
    void noteCommitted(const tw::CommittedBatch& batch);

    QString currentConnectionId() const;
    QTreeWidget* tree() const { return m_tree; }

Q_SIGNALS:
    void addRequested();
    void editRequested(const QString& id);
    void removeRequested(const QString& id);
    void namespacesRequested(const QString& id, const QString& db);
    void watchToggled(const QString& id, const tw::Namespace& ns, bool watch);

private:
    enum ItemKind { ConnectionItem = 1, DatabaseItem, CollectionItem, PlaceholderItem };
    QTreeWidgetItem* connectionItem(const QString& id) const;
    QTreeWidgetItem* databaseItem(QTreeWidgetItem* connection, const QString& db) const;
    void onExpanded(QTreeWidgetItem* item);
    void onChanged(QTreeWidgetItem* item, int column);
    void refreshStatusText();
    void showContextMenu(const QPoint& pos);

    QTreeWidget* m_tree; // child
    QHash<QString, ConnectionSpec> m_specs;
    QHash<QString, SourceStatus> m_statuses;
    QHash<QString, QSet<QString>> m_watched; // id → namespaces as text
    QTimer m_countdown;                      // ticks once a second while a source backs off
    QTimer m_reload;                         // single shot: reloads m_stale
    QSet<QPair<QString, QString>> m_stale;   // (connection, db; "" for its database list)
    bool m_updating = false;
};

} // namespace tw::ui

#pragma once

#include "app/CommandLine.h"
#include "model/ChangeBatch.h"
#include "sources/Source.h"
#include "Workspace.h"

#include <memory>
#include <QHash>
#include <QMainWindow>
#include <QTimer>

class QLabel;

namespace tw {
class DemoWriter;
class Engine;
} // namespace tw

namespace tw::ui {

class ConnectionsDock;
class EventDetailDock;
class FiltersDock;
class HealthDock;
class LiveFeedDock;
class SseDock;

// The desktop application: docks around the engine. It owns the Engine (its own
// thread), the demo writer when the demo runs, and the workspace (connections,
// watches, subscriptions, layout). Engine signals reach it queued; the docks only
// display and ask, this class acts.
class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(const AppOptions& options, QWidget* parent = nullptr);
    ~MainWindow() override; // stops the demo writer and the engine (journal checkpointed)

    // Opens the journal and the workspace (--workspace, else the last one, else the
    // demo). On failure returns false with a message; nothing is started then.
    bool start(QString* error);

    Engine* engine() const { return m_engine.get(); }
    LiveFeedDock* liveFeed() const { return m_feedDock; }
    FiltersDock* filters() const { return m_filtersDock; }
    EventDetailDock* eventDetail() const { return m_detailDock; }
    ConnectionsDock* connections() const { return m_connectionsDock; }
    HealthDock* health() const { return m_healthDock; }
    SseDock* sse() const { return m_sseDock; }
    QList<QDockWidget*> docks() const;

    QByteArray defaultState() const { return m_defaultState; }
    void resetLayout();
    // Recent committed events of every subscription (for the filter preview).
    ChangeEventList recentEvents() const { return m_recent; }

    QString workspacePath() const { return m_workspacePath; }
    Workspace currentWorkspace() const;
    bool saveWorkspace(const QString& path, QString* error = nullptr);
    bool openWorkspace(const QString& path, QString* error = nullptr);

    // Selects the newest row of the current feed (an update when there is one), so a
    // screenshot shows the detail dock in use.
    void selectRecentEvent();

protected:
    void closeEvent(QCloseEvent* event) override;
    void showEvent(QShowEvent* event) override;
    void changeEvent(QEvent* event) override;

private:
    void createActions();
    void createDocks();
    void applyDefaultLayout();
    void sizeDefaultDocks();
    void applyWorkspace(const Workspace& workspace, bool restoreLayout);
    void removeAllConnections();
    Workspace demoWorkspace() const;
    bool bringUp(ConnectionSpec spec, QString* error);
    void addConnection();
    void editConnection(const QString& id);
    void removeConnection(const QString& id);
    void setWatched(const QString& id, const Namespace& ns, bool watch);
    void newSubscription();
    void applySubscription(const Subscription& subscription);
    void deleteSubscription(const QString& id);
    void refreshSubscriptions();
    void refreshKnownNamespaces();
    void exportEvents(bool selectedOnly);
    void updateStatusBar();

    void onCommitted(const tw::CommittedBatch& batch);
    void onSourceStatus(const QString& id, const tw::SourceStatus& status);
    void onNamespacesListed(const QString& id, const QString& db, const QList<tw::NamespaceInfo>& namespaces,
                            const QString& error);
    void onWatchFailed(const QString& id, const tw::Namespace& ns, const QString& error);
    void onJournalFailed(const QString& error);

    AppOptions m_options;
    std::unique_ptr<Engine> m_engine;
    std::unique_ptr<DemoWriter> m_demo;
    QList<ConnectionSpec> m_connections;
    QString m_workspacePath;
    QByteArray m_defaultState; // saved before the user's layout is restored: Reset Layout
    ChangeEventList m_recent;
    qint64 m_eventsThisSecond = 0;
    qint64 m_eventsLastSecond = 0;
    QString m_journalError;
    QTimer m_statusTimer;
    bool m_shownOnce = false;
    bool m_userLayoutRestored = false;

    ConnectionsDock* m_connectionsDock = nullptr; // docks and widgets: children
    LiveFeedDock* m_feedDock = nullptr;
    FiltersDock* m_filtersDock = nullptr;
    EventDetailDock* m_detailDock = nullptr;
    HealthDock* m_healthDock = nullptr;
    SseDock* m_sseDock = nullptr;
    QLabel* m_statusSources = nullptr;
    QLabel* m_statusRate = nullptr;
    QLabel* m_statusSeq = nullptr;
    QLabel* m_statusSse = nullptr;
    QAction* m_pauseAction = nullptr;
    QMenu* m_viewMenu = nullptr;
};

} // namespace tw::ui

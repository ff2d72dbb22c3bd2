#pragma once

#include "CommandLine.h"
#include "engine/Engine.h"
#include "model/ChangeBatch.h"
#include "sources/Source.h"
#include "Workspace.h"

#include <memory>
#include <QHash>
#include <QMainWindow>

class QTimer;

namespace tw {
class AppSession;
} // namespace tw

namespace tw::ui {

class ConnectionActions;
class ConnectionsDock;
class EventDetailDock;
class FiltersDock;
class HealthDock;
class LiveFeedDock;
class SessionStatusBar;
class PublishDock;
class SseDock;

// The desktop front end: docks, actions and layout around one application session,
// which it owns (the session owns the engine, the SSE server and the demo writer).
// The docks only display and ask; this class asks the session and shows what its
// signals say.
class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(const AppOptions& options, QWidget* parent = nullptr);
    ~MainWindow() override; // stops the session (journal checkpointed)

    // Opens the journal and the workspace (--workspace, else the last one, else the
    // demo). On failure returns false with a message and, when the journal is what
    // failed, `code`; nothing is started then.
    bool start(QString* error, Engine::StartError* code = nullptr);

    AppSession* session() const { return m_session.get(); }
    Engine* engine() const; // the session's
    LiveFeedDock* liveFeed() const { return m_feedDock; }
    FiltersDock* filters() const { return m_filtersDock; }
    EventDetailDock* eventDetail() const { return m_detailDock; }
    ConnectionsDock* connections() const { return m_connectionsDock; }
    HealthDock* health() const { return m_healthDock; }
    SseDock* sse() const { return m_sseDock; }
    PublishDock* publish() const { return m_publishDock; }
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
    void setWatched(const QString& id, const Namespace& ns, bool watch);
    void newSubscription();
    void applySubscription(const Subscription& subscription);
    void deleteSubscription(const QString& id);
    void refreshSubscriptions();
    void refreshKnownNamespaces();
    void exportEvents(bool selectedOnly);
    void updateStatusBar();

    void onConnectionAdded(const tw::ConnectionSpec& spec);
    void onConnectionRemoved(const QString& id);
    void onConnectionFailed(const QString& id, const QString& error);
    void onCommitted(const tw::CommittedBatch& batch);
    void onSourceStatus(const QString& id, const tw::SourceStatus& status);
    void onWatchFailed(const QString& id, const tw::Namespace& ns, const QString& error);
    void onJournalFailed(const QString& error);

    AppOptions m_options;
    std::unique_ptr<AppSession> m_session;
    ConnectionActions* m_connectionActions = nullptr; // owned (child)
    QString m_workspacePath;
    QByteArray m_defaultState; // saved before the user's layout is restored: Reset Layout
    ChangeEventList m_recent;
    bool m_shownOnce = false;
    bool m_userLayoutRestored = false;

    ConnectionsDock* m_connectionsDock = nullptr; // docks and widgets: children
    LiveFeedDock* m_feedDock = nullptr;
    FiltersDock* m_filtersDock = nullptr;
    EventDetailDock* m_detailDock = nullptr;
    HealthDock* m_healthDock = nullptr;
    SseDock* m_sseDock = nullptr;
    PublishDock* m_publishDock = nullptr;
    SessionStatusBar* m_statusBar = nullptr;
    // Commits refresh the journal's line soon after they land, not only at the bar's
    // once-a-second tick: else the feed shows seqs the line has not reached yet.
    QTimer* m_commitRefresh = nullptr;
    QAction* m_pauseAction = nullptr;
    QMenu* m_viewMenu = nullptr;
};

} // namespace tw::ui

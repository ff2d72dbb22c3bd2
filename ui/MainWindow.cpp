#include "MainWindow.h"

#include "AppSession.h"
#include "config/Settings.h"
#include "dialogs/ConnectionActions.h"
#include "dialogs/FeedExportDialog.h"
#include "docks/ConnectionsDock.h"
#include "docks/EventDetailDock.h"
#include "docks/FiltersDock.h"
#include "docks/HealthDock.h"
#include "docks/LiveFeedDock.h"
#include "docks/PublishDock.h"
#include "docks/SseDock.h"
#include "engine/Engine.h"
#include "models/ChangeFeedModel.h"
#include "widgets/FeedView.h"
#include "widgets/FilterEditor.h"
#include "widgets/Icons.h"
#include "widgets/SessionStatusBar.h"

#include <QCloseEvent>
#include <QDir>
#include <QFileDialog>
#include <QLocale>
#include <QMenuBar>
#include <QMessageBox>
#include <QStatusBar>
#include <QTimer>
#include <QToolBar>

namespace tw::ui {

namespace {

constexpr int kRecentEvents = 5000; // what the filter preview tries a filter on

AppSession::Options sessionOptionsFor(const AppOptions& options) {
    AppSession::Options o;
    o.journalPath = options.journal;
    // --demo-rate wins; otherwise the settings' rate (20 is the option's default).
    o.demoRate = options.demoRate != 20.0 ? options.demoRate : 0;
    return o;
}

} // namespace

MainWindow::MainWindow(const AppOptions& options, QWidget* parent)
    : QMainWindow(parent)
    , m_options(options) {
    Icons::ensureResources();
    setWindowTitle(QStringLiteral("Tidewatch"));
    setWindowIcon(QIcon(QStringLiteral(":/tidewatch/icon.svg")));
    setDockOptions(QMainWindow::AnimatedDocks | QMainWindow::AllowNestedDocks |
                   QMainWindow::AllowTabbedDocks | QMainWindow::GroupedDragging);
    setDocumentMode(true);

    m_session = std::make_unique<AppSession>(sessionOptionsFor(options));
    m_connectionActions = new ConnectionActions(m_session.get(), this);

    createDocks();
    createActions();
    applyDefaultLayout();

    m_statusBar = new SessionStatusBar(m_session.get(), this);
    setStatusBar(m_statusBar);
    connect(m_statusBar, &SessionStatusBar::ticked, this, &MainWindow::updateStatusBar);
    m_commitRefresh = new QTimer(this);
    m_commitRefresh->setSingleShot(true);
    m_commitRefresh->setInterval(50);
    connect(m_commitRefresh, &QTimer::timeout, this, &MainWindow::updateStatusBar);
    connect(m_session.get(), &AppSession::committed, this, [this] {
        if (!m_commitRefresh->isActive())
            m_commitRefresh->start();
    });
    updateStatusBar();
}

MainWindow::~MainWindow() {
    // The window is going: what the session still says while it stops is for nobody.
    m_session->disconnect(this);
    m_session->stop();
}

Engine* MainWindow::engine() const {
    return m_session->engine();
}

void MainWindow::createDocks() {
    m_connectionsDock = new ConnectionsDock(this);
    m_feedDock = new LiveFeedDock(this);
    m_filtersDock = new FiltersDock(this);
    m_detailDock = new EventDetailDock(this);
    m_healthDock = new HealthDock(this);
    m_sseDock = new SseDock(m_session.get(), this);
    m_publishDock = new PublishDock(m_session.get(), this);
    m_feedDock->setCapacity(Settings().intValue(Settings::Key::UiFeedRowCap));

    // The main window is all docks: the central widget is a hidden placeholder, so
    // every view can be moved, floated and tabbed, Live Feed included.
    auto* central = new QWidget(this);
    central->setMaximumSize(0, 0);
    setCentralWidget(central);
    central->hide();

    m_filtersDock->setRecentEventsFunction([this] { return m_recent; });

    connect(m_connectionsDock, &ConnectionsDock::addRequested, m_connectionActions, &ConnectionActions::add);
    connect(m_connectionsDock, &ConnectionsDock::editRequested, m_connectionActions,
            &ConnectionActions::edit);
    connect(m_connectionsDock, &ConnectionsDock::removeRequested, m_connectionActions,
            &ConnectionActions::remove);
    connect(m_connectionsDock, &ConnectionsDock::watchToggled, this, &MainWindow::setWatched);
    connect(m_connectionsDock, &ConnectionsDock::namespacesRequested, m_session.get(),
            &AppSession::listNamespaces);

    connect(m_feedDock, &LiveFeedDock::currentEventChanged, m_detailDock, &EventDetailDock::setEvent);
    connect(m_feedDock, &LiveFeedDock::currentSubscriptionChanged, this, [this](const QString& id) {
        m_filtersDock->setCurrentSubscription(id);
        const auto s = m_session->subscription(id);
        m_sseDock->setCurrentSubscription(id, s ? s->name : id);
    });
    connect(m_filtersDock, &FiltersDock::currentSubscriptionChanged, m_feedDock,
            &LiveFeedDock::setCurrentSubscription);
    connect(m_filtersDock, &FiltersDock::applyRequested, this, &MainWindow::applySubscription);
    connect(m_filtersDock, &FiltersDock::newSubscriptionRequested, this, &MainWindow::newSubscription);
    connect(m_filtersDock, &FiltersDock::deleteRequested, this, &MainWindow::deleteSubscription);
    connect(m_sseDock, &SseDock::runningChanged, this, &MainWindow::updateStatusBar);

    // Session → GUI: the session re-emits the engine's signals on this thread.
    AppSession* session = m_session.get();
    connect(session, &AppSession::committed, this, &MainWindow::onCommitted);
    connect(session, &AppSession::sourceStatusChanged, this, &MainWindow::onSourceStatus);
    connect(session, &AppSession::namespacesListed, m_connectionsDock, &ConnectionsDock::setNamespaces);
    connect(session, &AppSession::committed, m_connectionsDock, &ConnectionsDock::noteCommitted);
    connect(session, &AppSession::watchFailed, this, &MainWindow::onWatchFailed);
    connect(session, &AppSession::watchChanged, m_connectionsDock, &ConnectionsDock::setWatched);
    connect(session, &AppSession::journalFailed, this, &MainWindow::onJournalFailed);
    connect(session, &AppSession::subscriptionsChanged, this, &MainWindow::refreshSubscriptions);
    connect(session, &AppSession::connectionAdded, this, &MainWindow::onConnectionAdded);
    connect(session, &AppSession::connectionRemoved, this, &MainWindow::onConnectionRemoved);
    connect(session, &AppSession::connectionFailed, this, &MainWindow::onConnectionFailed);
    connect(session, &AppSession::passwordNotStored, this, [this](const QString& id, const QString& message) {
        statusBar()->showMessage(tr("The password of %1 is kept for this session only: %2").arg(id, message),
                                 10000);
    });
}

QList<QDockWidget*> MainWindow::docks() const {
    return {m_connectionsDock, m_feedDock, m_detailDock, m_filtersDock,
            m_healthDock,      m_sseDock,  m_publishDock};
}

void MainWindow::createActions() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&New Workspace"), this, [this] {
        m_session->setWorkspacePath({}); // the old file keeps its connections
        m_session->removeAllConnections();
        for (const Subscription& s : m_session->subscriptions())
            m_session->removeSubscription(s.id);
        m_workspacePath.clear();
        refreshSubscriptions();
        refreshKnownNamespaces();
        updateStatusBar();
    });
    file->addAction(
        Icons::get(QStringLiteral("open")), tr("&Open Workspace…"), QKeySequence::Open, this, [this] {
            const QString path =
                QFileDialog::getOpenFileName(this, tr("Open Workspace"), QFileInfo(m_workspacePath).path(),
                                             tr("Tidewatch workspaces (*.json)"));
            QString error;
            if (!path.isEmpty() && !openWorkspace(path, &error))
                QMessageBox::warning(this, tr("Open Workspace"), error);
        });
    file->addAction(
        Icons::get(QStringLiteral("save")), tr("&Save Workspace"), QKeySequence::Save, this, [this] {
            QString error;
            const QString path = m_workspacePath.isEmpty() ? Workspace::defaultPath() : m_workspacePath;
            if (!saveWorkspace(path, &error))
                QMessageBox::warning(this, tr("Save Workspace"), error);
            else
                statusBar()->showMessage(tr("Workspace saved to %1").arg(QDir::toNativeSeparators(path)),
                                         4000);
        });
    file->addAction(tr("Save Workspace &As…"), QKeySequence::SaveAs, this, [this] {
        const QString path = QFileDialog::getSaveFileName(this, tr("Save Workspace As"), m_workspacePath,
                                                          tr("Tidewatch workspaces (*.json)"));
        QString error;
        if (!path.isEmpty() && !saveWorkspace(path, &error))
            QMessageBox::warning(this, tr("Save Workspace"), error);
    });
    file->addSeparator();
    auto* exportFeed =
        file->addAction(Icons::get(QStringLiteral("export")), tr("&Export Feed…"),
                        QKeySequence(Qt::CTRL | Qt::Key_E), this, [this] { exportEvents(false); });
    file->addAction(tr("Export Selected &Rows…"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_E), this,
                    [this] { exportEvents(true); });
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    QMenu* connection = menuBar()->addMenu(tr("&Connection"));
    auto* addConnectionAction = connection->addAction(
        Icons::get(QStringLiteral("add")), tr("&Add Connection…"),
        QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_N), m_connectionActions, &ConnectionActions::add);

    QMenu* feed = menuBar()->addMenu(tr("F&eed"));
    m_pauseAction = feed->addAction(Icons::get(QStringLiteral("pause")), tr("&Pause"));
    m_pauseAction->setCheckable(true);
    m_pauseAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_P));
    m_pauseAction->setToolTip(tr("Pause the feeds; events keep being recorded (Ctrl+P)"));
    connect(m_pauseAction, &QAction::toggled, m_feedDock, &LiveFeedDock::setPaused);
    connect(m_feedDock, &LiveFeedDock::pausedChanged, this, [this](bool paused) {
        const QSignalBlocker blocker(m_pauseAction);
        m_pauseAction->setChecked(paused);
        m_pauseAction->setText(paused ? tr("Resume") : tr("Pause"));
        m_pauseAction->setIcon(Icons::get(paused ? QStringLiteral("play") : QStringLiteral("pause")));
    });
    auto* clear =
        feed->addAction(Icons::get(QStringLiteral("clear")), tr("&Clear"), QKeySequence(Qt::CTRL | Qt::Key_L),
                        m_feedDock, &LiveFeedDock::clearCurrent);
    clear->setToolTip(tr("Clear the current feed (Ctrl+L); the journal keeps everything"));
    auto* find =
        feed->addAction(Icons::get(QStringLiteral("search")), tr("&Find…"), QKeySequence::Find, this, [this] {
            m_feedDock->show();
            m_feedDock->raise();
            m_feedDock->focusSearch();
        });
    feed->addSeparator();
    auto* newSub = feed->addAction(Icons::get(QStringLiteral("subscription")), tr("&New Subscription"),
                                   QKeySequence(Qt::CTRL | Qt::Key_N), this, &MainWindow::newSubscription);
    newSub->setToolTip(tr("New subscription (Ctrl+N)"));

    m_viewMenu = menuBar()->addMenu(tr("&View"));
    // Dock titles show '&' as is; menu texts would take it for a mnemonic.
    m_connectionsDock->toggleViewAction()->setText(tr("Connections && Collections"));
    for (QDockWidget* dock : docks())
        m_viewMenu->addAction(dock->toggleViewAction());
    m_viewMenu->addSeparator();
    m_viewMenu->addAction(Icons::get(QStringLiteral("layout")), tr("&Reset Layout"), this,
                          &MainWindow::resetLayout);

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About Tidewatch"), this, [this] {
        QMessageBox::about(
            this, tr("About Tidewatch"),
            tr("<h3>Tidewatch %1</h3><p>Watch databases change, live: MongoDB change streams, "
               "PostgreSQL and SQLite, filtered and shared over Server-Sent Events.</p>"
               "<p>Journal: %2</p>")
                .arg(QStringLiteral(TIDEWATCH_VERSION), QDir::toNativeSeparators(m_session->journalPath())));
    });

    QToolBar* bar = addToolBar(tr("Main"));
    bar->setObjectName(QStringLiteral("MainToolBar"));
    bar->setMovable(false);
    bar->setIconSize(QSize(18, 18));
    bar->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    bar->addAction(addConnectionAction);
    bar->addSeparator();
    bar->addAction(m_pauseAction);
    bar->addAction(clear);
    bar->addAction(find);
    bar->addSeparator();
    bar->addAction(newSub);
    bar->addAction(exportFeed);
}

void MainWindow::applyDefaultLayout() {
    // Everything lives in the left and right areas (the central widget is hidden): a
    // bottom area would take all the height the hidden centre gives up.
    addDockWidget(Qt::LeftDockWidgetArea, m_connectionsDock);
    splitDockWidget(m_connectionsDock, m_feedDock, Qt::Horizontal);
    splitDockWidget(m_feedDock, m_healthDock, Qt::Vertical);
    tabifyDockWidget(m_healthDock, m_sseDock);
    tabifyDockWidget(m_sseDock, m_publishDock);
    addDockWidget(Qt::RightDockWidgetArea, m_detailDock);
    tabifyDockWidget(m_detailDock, m_filtersDock);
    m_detailDock->raise();
    m_healthDock->raise();
    for (QDockWidget* dock : docks()) {
        dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable |
                          QDockWidget::DockWidgetClosable);
        dock->show();
    }
    resize(1440, 900);
    sizeDefaultDocks();
    // The default state is taken before anything of the user's is restored, so Reset
    // Layout has something to go back to.
    m_defaultState = saveState();
}

void MainWindow::resetLayout() {
    for (QDockWidget* dock : docks()) {
        dock->setFloating(false);
        dock->show();
    }
    restoreState(m_defaultState);
    m_detailDock->raise();
    m_healthDock->raise();
    sizeDefaultDocks();
}

void MainWindow::sizeDefaultDocks() {
    // Proportions, not the pixels of the state saved before the first show: the feed
    // gets what the side columns do not need.
    const int side = std::clamp(width() / 5, 240, 320);
    const int detail = std::clamp(width() / 3, 360, 520);
    resizeDocks({m_connectionsDock, m_feedDock, m_detailDock},
                {side, std::max(300, width() - side - detail), detail}, Qt::Horizontal);
    const int health = std::clamp(height() / 5, 140, 240);
    resizeDocks({m_feedDock, m_healthDock}, {std::max(200, height() - health), health}, Qt::Vertical);
}

void MainWindow::showEvent(QShowEvent* event) {
    QMainWindow::showEvent(event);
    // Dock sizes only stick once the window has its real size.
    if (!m_shownOnce && !m_userLayoutRestored)
        QTimer::singleShot(0, this, &MainWindow::sizeDefaultDocks);
    m_shownOnce = true;
}

bool MainWindow::start(QString* error, Engine::StartError* code) {
    if (!m_session->start(error, code))
        return false;

    Settings settings;
    Workspace workspace;
    QString message;
    QString path = m_options.workspace;
    if (path.isEmpty() && !m_options.demo) {
        path = settings.stringValue(Settings::Key::UiLastWorkspace);
        if (!path.isEmpty() && !QFileInfo::exists(path))
            path.clear();
    }
    bool loaded = false;
    if (!path.isEmpty()) {
        loaded = Workspace::load(path, &workspace, &message);
        if (!loaded) {
            if (!m_options.workspace.isEmpty()) {
                if (error)
                    *error = message;
                return false;
            }
            statusBar()->showMessage(tr("Could not reopen the last workspace: %1").arg(message), 10000);
        }
    }
    if (loaded) {
        m_workspacePath = path;
    } else {
        // First run, or --demo: the demo, already watched, so the feed moves at once.
        workspace = AppSession::demoWorkspace();
        m_workspacePath = m_options.demo ? QString() : Workspace::defaultPath();
    }
    // The window layout is the person's, not the workspace's, unless the workspace has one.
    if (workspace.windowState.isEmpty() && m_options.screenshot.isEmpty()) {
        workspace.windowState = settings.value(Settings::Key::UiState).toByteArray();
        workspace.geometry = settings.value(Settings::Key::UiGeometry).toByteArray();
    }
    applyWorkspace(workspace, m_options.screenshot.isEmpty());

    if (settings.boolValue(Settings::Key::SseEnabled) && m_options.screenshot.isEmpty()) {
        QString sseError;
        if (!m_sseDock->startServer(&sseError))
            statusBar()->showMessage(tr("SSE server not started: %1").arg(sseError), 10000);
    }
    if (settings.boolValue(Settings::Key::NatsPublish) && m_options.screenshot.isEmpty()) {
        QString publishError;
        if (!m_publishDock->startPublishing(&publishError))
            statusBar()->showMessage(tr("Not publishing to NATS: %1").arg(publishError), 10000);
    }
    return true;
}

void MainWindow::applyWorkspace(const Workspace& workspace, bool restoreLayout) {
    // Changes made anywhere (HTTP too) are saved to the window's workspace as they happen.
    m_session->setWorkspacePath(m_options.screenshot.isEmpty() ? m_workspacePath : QString());
    m_session->applyWorkspace(workspace);
    refreshSubscriptions();
    refreshKnownNamespaces();
    if (!workspace.currentSubscription.isEmpty())
        m_feedDock->setCurrentSubscription(workspace.currentSubscription);
    if (restoreLayout) {
        if (!workspace.geometry.isEmpty())
            restoreGeometry(workspace.geometry);
        if (!workspace.windowState.isEmpty())
            m_userLayoutRestored = restoreState(workspace.windowState);
    }
    updateStatusBar();
}

Workspace MainWindow::currentWorkspace() const {
    Workspace w = m_session->workspace();
    w.currentSubscription = m_feedDock->currentSubscriptionId();
    w.windowState = saveState();
    w.geometry = saveGeometry();
    return w;
}

bool MainWindow::saveWorkspace(const QString& path, QString* error) {
    if (!currentWorkspace().save(path, error))
        return false;
    m_workspacePath = path;
    m_session->setWorkspacePath(path);
    Settings().setValue(Settings::Key::UiLastWorkspace, path);
    updateStatusBar();
    return true;
}

bool MainWindow::openWorkspace(const QString& path, QString* error) {
    Workspace workspace;
    if (!Workspace::load(path, &workspace, error))
        return false;
    // The session brings up a connection whose id is still being removed once the
    // id is free, so the new workspace can be applied at once.
    m_session->setWorkspacePath({}); // the old file keeps its connections
    m_session->removeAllConnections();
    // The previous workspace's subscriptions go; the new one brings its own.
    for (const Subscription& s : m_session->subscriptions())
        if (s.persistent)
            m_session->removeSubscription(s.id);
    m_workspacePath = path;
    Settings().setValue(Settings::Key::UiLastWorkspace, path);
    applyWorkspace(workspace, true);
    return true;
}

void MainWindow::setWatched(const QString& id, const Namespace& ns, bool watch) {
    if (watch)
        m_session->watch(id, ns);
    else
        m_session->unwatch(id, ns);
    refreshKnownNamespaces();
}

void MainWindow::newSubscription() {
    Subscription s;
    const int n = int(m_session->subscriptions().size()) + 1;
    s.name = tr("Subscription %1").arg(n);
    s = m_session->addSubscription(s);
    refreshSubscriptions();
    m_feedDock->setCurrentSubscription(s.id);
    m_filtersDock->setCurrentSubscription(s.id);
    m_filtersDock->show();
    m_filtersDock->raise();
    m_filtersDock->editor()->setFocus();
}

void MainWindow::applySubscription(const Subscription& subscription) {
    m_session->addSubscription(subscription);
    refreshSubscriptions();
    if (ChangeFeedModel* model = m_feedDock->model(subscription.id))
        model->clear(); // the rows shown so far were chosen by the old filter
    statusBar()->showMessage(tr("Applied “%1”").arg(subscription.name), 3000);
}

void MainWindow::deleteSubscription(const QString& id) {
    const auto s = m_session->subscription(id);
    if (!s)
        return;
    if (QMessageBox::question(this, tr("Delete Subscription"),
                              tr("Delete “%1”? SSE clients of it will be disconnected.").arg(s->name)) !=
        QMessageBox::Yes)
        return;
    m_session->removeSubscription(id);
    refreshSubscriptions();
}

void MainWindow::refreshSubscriptions() {
    const SubscriptionList all = m_session->subscriptions();
    SubscriptionList shown;
    for (const Subscription& s : all)
        if (s.persistent)
            shown.append(s);
    m_feedDock->setSubscriptions(shown);
    m_filtersDock->setSubscriptions(shown);
    const QString current = m_feedDock->currentSubscriptionId();
    m_filtersDock->setCurrentSubscription(current);
    const auto s = m_session->subscription(current);
    m_sseDock->setCurrentSubscription(current, s ? s->name : current);
}

void MainWindow::refreshKnownNamespaces() {
    QList<SourceNamespace> known;
    for (const ConnectionSpec& c : m_session->connections())
        for (const Namespace& ns : c.watches)
            known.append(SourceNamespace{c.id, ns});
    m_filtersDock->setKnownNamespaces(known);
}

void MainWindow::onConnectionAdded(const ConnectionSpec& spec) {
    m_connectionsDock->addConnection(spec);
    // One still waiting for its password has nothing to show yet.
    if (!spec.hasPassword || !spec.password.isEmpty())
        m_connectionsDock->expandConnection(spec.id);
    m_healthDock->addSource(spec.id);
    refreshKnownNamespaces();
    updateStatusBar();
}

void MainWindow::onConnectionRemoved(const QString& id) {
    m_connectionsDock->removeConnection(id);
    m_healthDock->removeSource(id);
    refreshKnownNamespaces();
    updateStatusBar();
}

void MainWindow::onConnectionFailed(const QString& id, const QString& error) {
    m_healthDock->setLastError(id, error);
    statusBar()->showMessage(tr("%1: %2").arg(id, error), 10000);
}

void MainWindow::onCommitted(const CommittedBatch& batch) {
    m_feedDock->dispatch(batch);
    m_healthDock->recordBatch(batch);
    m_recent.append(batch.events);
    if (m_recent.size() > 2 * kRecentEvents)
        m_recent.remove(0, m_recent.size() - kRecentEvents);
}

void MainWindow::onSourceStatus(const QString& id, const SourceStatus& status) {
    m_connectionsDock->setStatus(id, status);
    m_healthDock->setStatus(id, status);
    updateStatusBar();
}

void MainWindow::onWatchFailed(const QString& id, const Namespace& ns, const QString& error) {
    m_healthDock->setLastError(id, error);
    m_connectionsDock->setWatched(id, ns, false);
    statusBar()->showMessage(tr("Cannot watch %1 on %2: %3").arg(ns.toString(), id, error), 10000);
}

void MainWindow::onJournalFailed(const QString& error) {
    // The Health summary reads the engine's journal status, until writing works again.
    updateStatusBar();
    statusBar()->showMessage(tr("Journal: %1 (retrying)").arg(error), 10000);
}

void MainWindow::updateStatusBar() {
    if (!m_statusBar)
        return;
    m_statusBar->refresh();
    const Engine* engine = m_session->engine();
    const QLocale locale;
    const JournalStatus journal = engine->journalStatus();
    if (!journal.isOk())
        m_healthDock->setSummary(
            tr("<span style='color:#cf222e'>Journal: %1 — %2 events waiting; nothing accepted "
               "is dropped.</span>")
                .arg(journal.reason.toHtmlEscaped(), locale.toString(journal.pendingEvents)));
    else
        m_healthDock->setSummary(tr("Journal %1 · last seq %2 · %3 events committed this session")
                                     .arg(QDir::toNativeSeparators(engine->journalPath()),
                                          locale.toString(engine->lastCommittedSeq()),
                                          locale.toString(engine->eventsCommitted())));
    QString title = QStringLiteral("Tidewatch");
    if (!m_workspacePath.isEmpty())
        title = QFileInfo(m_workspacePath).completeBaseName() + QStringLiteral(" — Tidewatch");
    else if (m_options.demo)
        title = tr("Demo — Tidewatch");
    setWindowTitle(title);
}

void MainWindow::exportEvents(bool selectedOnly) {
    FeedView* view = m_feedDock->currentFeed();
    if (!view)
        return;
    const ChangeEventList events = selectedOnly ? view->selectedEvents() : view->model()->events();
    // Exported in the shape the feed's subscription gives its consumers.
    const std::optional<Subscription> subscription =
        m_session->subscription(m_feedDock->currentSubscriptionId());
    FeedExportDialog::run(
        events, selectedOnly, this,
        [this](const QString& message) { statusBar()->showMessage(message, 6000); },
        subscription ? subscription->shape() : EventShape());
}

void MainWindow::selectRecentEvent() {
    if (FeedView* view = m_feedDock->currentFeed())
        view->selectRecentEvent();
}

void MainWindow::closeEvent(QCloseEvent* event) {
    Settings settings;
    settings.setValue(Settings::Key::UiState, saveState());
    settings.setValue(Settings::Key::UiGeometry, saveGeometry());
    if (!m_workspacePath.isEmpty() && m_options.screenshot.isEmpty()) {
        QString error;
        if (!saveWorkspace(m_workspacePath, &error))
            qWarning("tidewatch: %s", qPrintable(error));
    }
    event->accept();
}

void MainWindow::changeEvent(QEvent* event) {
    if (event->type() == QEvent::PaletteChange && m_feedDock) {
        // Light/dark switch of the system: operation colours are picked per palette.
        for (const Subscription& s : m_session->subscriptions())
            if (ChangeFeedModel* model = m_feedDock->model(s.id))
                model->setPalette(palette());
    }
    QMainWindow::changeEvent(event);
}

} // namespace tw::ui

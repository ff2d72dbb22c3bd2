#include "MainWindow.h"

#include "app/Settings.h"
#include "demo/DemoWriter.h"
#include "dialogs/ConnectionDialog.h"
#include "docks/ConnectionsDock.h"
#include "docks/EventDetailDock.h"
#include "docks/FiltersDock.h"
#include "docks/HealthDock.h"
#include "docks/LiveFeedDock.h"
#include "docks/SseDock.h"
#include "engine/Engine.h"
#include "http/SseServer.h"
#include "Keychain.h"
#include "models/ChangeFeedModel.h"
#include "models/FeedExporter.h"
#include "sources/SourceUri.h"
#include "widgets/FeedView.h"
#include "widgets/FilterEditor.h"
#include "widgets/Icons.h"

#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QElapsedTimer>
#include <QFileDialog>
#include <QLabel>
#include <QLocale>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressDialog>
#include <QSaveFile>
#include <QStatusBar>
#include <QThread>
#include <QToolBar>
#include <QTreeView>

namespace tw::ui {

namespace {

constexpr int kRecentEvents = 5000; // what the filter preview tries a filter on

QString journalPathFor(const AppOptions& options) {
    return options.journal.isEmpty() ? defaultJournalPath() : options.journal;
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

    Engine::Options engineOptions;
    engineOptions.journalPath = journalPathFor(options);
    Settings settings;
    engineOptions.retention.maxAgeSeconds = settings.int64Value(Settings::Key::RetentionMaxAgeSeconds);
    engineOptions.retention.maxBytes = settings.int64Value(Settings::Key::RetentionMaxBytes);
    m_engine = std::make_unique<Engine>(engineOptions);

    createDocks();
    createActions();
    applyDefaultLayout();

    m_statusSources = new QLabel(this);
    m_statusRate = new QLabel(this);
    m_statusSeq = new QLabel(this);
    m_statusSse = new QLabel(this);
    statusBar()->addWidget(m_statusSources, 1);
    statusBar()->addPermanentWidget(m_statusRate);
    statusBar()->addPermanentWidget(m_statusSeq);
    statusBar()->addPermanentWidget(m_statusSse);
    m_statusTimer.setInterval(1000);
    connect(&m_statusTimer, &QTimer::timeout, this, [this] {
        m_eventsLastSecond = m_eventsThisSecond;
        m_eventsThisSecond = 0;
        updateStatusBar();
    });
    m_statusTimer.start();
    updateStatusBar();
}

MainWindow::~MainWindow() {
    if (m_demo)
        m_demo->requestStop();
    m_demo.reset();
    // The SSE server must stop before the engine it listens to.
    delete m_sseDock;
    m_sseDock = nullptr;
    if (m_engine)
        m_engine->stop();
}

void MainWindow::createDocks() {
    m_connectionsDock = new ConnectionsDock(this);
    m_feedDock = new LiveFeedDock(this);
    m_filtersDock = new FiltersDock(this);
    m_detailDock = new EventDetailDock(this);
    m_healthDock = new HealthDock(this);
    m_sseDock = new SseDock(m_engine.get(), this);
    m_feedDock->setCapacity(Settings().intValue(Settings::Key::UiFeedRowCap));

    // The main window is all docks: the central widget is a hidden placeholder, so
    // every view can be moved, floated and tabbed, Live Feed included.
    auto* central = new QWidget(this);
    central->setMaximumSize(0, 0);
    setCentralWidget(central);
    central->hide();

    m_filtersDock->setRecentEventsFunction([this] { return m_recent; });

    connect(m_connectionsDock, &ConnectionsDock::addRequested, this, &MainWindow::addConnection);
    connect(m_connectionsDock, &ConnectionsDock::editRequested, this, &MainWindow::editConnection);
    connect(m_connectionsDock, &ConnectionsDock::removeRequested, this, &MainWindow::removeConnection);
    connect(m_connectionsDock, &ConnectionsDock::watchToggled, this, &MainWindow::setWatched);
    connect(m_connectionsDock, &ConnectionsDock::namespacesRequested, this,
            [this](const QString& id, const QString& db) { m_engine->listNamespaces(id, db); });

    connect(m_feedDock, &LiveFeedDock::currentEventChanged, m_detailDock, &EventDetailDock::setEvent);
    connect(m_feedDock, &LiveFeedDock::currentSubscriptionChanged, this, [this](const QString& id) {
        m_filtersDock->setCurrentSubscription(id);
        const auto s = m_engine->subscription(id);
        m_sseDock->setCurrentSubscription(id, s ? s->name : id);
    });
    connect(m_filtersDock, &FiltersDock::currentSubscriptionChanged, m_feedDock,
            &LiveFeedDock::setCurrentSubscription);
    connect(m_filtersDock, &FiltersDock::applyRequested, this, &MainWindow::applySubscription);
    connect(m_filtersDock, &FiltersDock::newSubscriptionRequested, this, &MainWindow::newSubscription);
    connect(m_filtersDock, &FiltersDock::deleteRequested, this, &MainWindow::deleteSubscription);
    connect(m_sseDock, &SseDock::runningChanged, this, &MainWindow::updateStatusBar);

    // Engine → GUI: every signal is emitted on the engine thread.
    Engine* engine = m_engine.get();
    connect(engine, &Engine::committed, this, &MainWindow::onCommitted, Qt::QueuedConnection);
    connect(engine, &Engine::sourceStatusChanged, this, &MainWindow::onSourceStatus, Qt::QueuedConnection);
    connect(engine, &Engine::namespacesListed, this, &MainWindow::onNamespacesListed, Qt::QueuedConnection);
    connect(engine, &Engine::watchFailed, this, &MainWindow::onWatchFailed, Qt::QueuedConnection);
    connect(engine, &Engine::journalFailed, this, &MainWindow::onJournalFailed, Qt::QueuedConnection);
    connect(engine, &Engine::subscriptionsChanged, this, &MainWindow::refreshSubscriptions,
            Qt::QueuedConnection);
}

QList<QDockWidget*> MainWindow::docks() const {
    return {m_connectionsDock, m_feedDock, m_detailDock, m_filtersDock, m_healthDock, m_sseDock};
}

void MainWindow::createActions() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&New Workspace"), this, [this] {
        removeAllConnections();
        for (const Subscription& s : m_engine->subscriptions())
            m_engine->removeSubscription(s.id);
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
        QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_N), this, &MainWindow::addConnection);

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
                .arg(QStringLiteral(TIDEWATCH_VERSION), QDir::toNativeSeparators(m_engine->journalPath())));
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

bool MainWindow::start(QString* error) {
    const QString journalPath = journalPathFor(m_options);
    QDir().mkpath(QFileInfo(journalPath).absolutePath());
    if (!m_engine->start(error))
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
        workspace = demoWorkspace();
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
    return true;
}

Workspace MainWindow::demoWorkspace() const {
    Workspace w;
    ConnectionSpec demo;
    demo.id = QStringLiteral("demo");
    demo.uri = QStringLiteral("sqlite:") + QDir(defaultDataDir()).filePath(QStringLiteral("demo.sqlite"));
    demo.demo = true;
    demo.watches = {Namespace{QStringLiteral("main"), QStringLiteral("orders")},
                    Namespace{QStringLiteral("main"), QStringLiteral("customers")},
                    Namespace{QStringLiteral("main"), QStringLiteral("notifications")}};
    w.connections.append(demo);

    Subscription all;
    all.id = QStringLiteral("all");
    all.name = tr("All changes");
    w.subscriptions.append(all);

    Subscription paid;
    paid.id = QStringLiteral("paid-orders");
    paid.name = tr("Paid orders");
    paid.namespaces = {
        SourceNamespace{QStringLiteral("demo"), Namespace{QStringLiteral("main"), QStringLiteral("orders")}}};
    paid.filter = Filter::compile(R"({"updateDescription.updatedFields.status": "paid"})");
    w.subscriptions.append(paid);
    w.currentSubscription = all.id;
    return w;
}

void MainWindow::applyWorkspace(const Workspace& workspace, bool restoreLayout) {
    for (const ConnectionSpec& spec : workspace.connections) {
        QString error;
        if (!bringUp(spec, &error)) {
            m_healthDock->setLastError(spec.id, error);
            statusBar()->showMessage(tr("%1: %2").arg(spec.id, error), 10000);
        }
    }
    for (const Subscription& s : workspace.subscriptions)
        m_engine->addSubscription(s);
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

bool MainWindow::bringUp(ConnectionSpec spec, QString* error) {
    if (spec.demo) {
        const QString path = SourceUri(spec.uri).sqlitePath();
        if (!DemoWriter::ensureDatabase(path, error))
            return false;
    }
    // A stored password comes from the keychain first; the source starts when it is there.
    if (spec.hasPassword && spec.password.isEmpty()) {
        m_connections.append(spec);
        m_connectionsDock->addConnection(spec);
        m_healthDock->addSource(spec.id);
        SourceStatus waiting;
        waiting.state = SourceStatus::State::Connecting;
        waiting.reason = tr("Reading the password from the keychain…");
        onSourceStatus(spec.id, waiting);
        Keychain::readPassword(
            spec.id, this, [this, id = spec.id](const QString& password, const QString& message) {
                auto it = std::find_if(m_connections.begin(), m_connections.end(),
                                       [&](const ConnectionSpec& c) { return c.id == id; });
                if (it == m_connections.end())
                    return;
                if (!message.isEmpty()) {
                    SourceStatus failed;
                    failed.state = SourceStatus::State::Error;
                    failed.reason =
                        tr("The password is not in the keychain (%1). Edit the connection to enter it.")
                            .arg(message);
                    onSourceStatus(id, failed);
                    return;
                }
                it->password = password;
                QString error;
                if (!m_engine->addSource(id, it->uriWithPassword(), &error)) {
                    SourceStatus failed;
                    failed.state = SourceStatus::State::Error;
                    failed.reason = error;
                    onSourceStatus(id, failed);
                    return;
                }
                WatchOptions options;
                options.captureMode = it->captureMode;
                for (const Namespace& ns : std::as_const(it->watches))
                    m_engine->watch(id, ns, options);
            });
        return true;
    }
    if (!m_engine->addSource(spec.id, spec.uriWithPassword(), error))
        return false;
    WatchOptions options;
    options.captureMode = spec.captureMode;
    for (const Namespace& ns : std::as_const(spec.watches))
        m_engine->watch(spec.id, ns, options);
    m_connections.append(spec);
    m_connectionsDock->addConnection(spec);
    m_connectionsDock->expandConnection(spec.id);
    m_healthDock->addSource(spec.id);
    if (spec.demo && !m_demo) {
        m_demo = std::make_unique<DemoWriter>(SourceUri(spec.uri).sqlitePath());
        const double rate = m_options.demoRate != 20.0 ? m_options.demoRate
                                                       : Settings().value(Settings::Key::DemoRate).toDouble();
        m_demo->setRate(rate);
        m_demo->start();
    }
    return true;
}

void MainWindow::removeAllConnections() {
    const QList<ConnectionSpec> all = m_connections;
    for (const ConnectionSpec& spec : all)
        m_engine->removeSource(spec.id);
    m_connections.clear();
    m_connectionsDock->clearConnections();
    m_healthDock->clearSources();
    if (m_demo) {
        m_demo->requestStop();
        m_demo.reset();
    }
}

Workspace MainWindow::currentWorkspace() const {
    Workspace w;
    w.connections = m_connections;
    for (const Subscription& s : m_engine->subscriptions())
        if (s.persistent)
            w.subscriptions.append(s);
    w.currentSubscription = m_feedDock->currentSubscriptionId();
    w.windowState = saveState();
    w.geometry = saveGeometry();
    return w;
}

bool MainWindow::saveWorkspace(const QString& path, QString* error) {
    if (!currentWorkspace().save(path, error))
        return false;
    m_workspacePath = path;
    Settings().setValue(Settings::Key::UiLastWorkspace, path);
    updateStatusBar();
    return true;
}

bool MainWindow::openWorkspace(const QString& path, QString* error) {
    Workspace workspace;
    if (!Workspace::load(path, &workspace, error))
        return false;
    removeAllConnections();
    // The previous workspace's subscriptions go; the new one brings its own.
    for (const Subscription& s : m_engine->subscriptions())
        if (s.persistent)
            m_engine->removeSubscription(s.id);
    // Removal is queued on the engine thread; wait until the ids are free again.
    QElapsedTimer clock;
    clock.start();
    while (!m_engine->sourceIds().isEmpty() && clock.elapsed() < 3000)
        QThread::msleep(10);
    m_workspacePath = path;
    Settings().setValue(Settings::Key::UiLastWorkspace, path);
    applyWorkspace(workspace, true);
    return true;
}

void MainWindow::addConnection() {
    QStringList ids;
    for (const ConnectionSpec& c : std::as_const(m_connections))
        ids.append(c.id);
    ConnectionDialog dialog(ids, this);
    dialog.setCommitFunction([this](const ConnectionSpec& spec, QString* error) {
        if (!bringUp(spec, error))
            return false;
        if (!spec.password.isEmpty())
            Keychain::writePassword(
                spec.id, spec.password, this, [this, id = spec.id](const QString& message) {
                    if (!message.isEmpty())
                        statusBar()->showMessage(
                            tr("The password of %1 is kept for this session only: %2").arg(id, message),
                            10000);
                });
        return true;
    });
    dialog.exec();
}

void MainWindow::editConnection(const QString& id) {
    auto it = std::find_if(m_connections.begin(), m_connections.end(),
                           [&](const ConnectionSpec& c) { return c.id == id; });
    if (it == m_connections.end())
        return;
    const ConnectionSpec original = *it;
    ConnectionDialog dialog({}, this);
    dialog.setConnection(original);
    dialog.setCommitFunction([this, original](const ConnectionSpec& spec, QString* error) {
        removeConnection(original.id);
        QElapsedTimer clock;
        clock.start();
        // Engine::removeSource is queued; the id is free once the source has stopped
        // (each source stops within a second).
        while (m_engine->sourceIds().contains(original.id) && clock.elapsed() < 3000)
            QThread::msleep(10);
        ConnectionSpec updated = spec;
        updated.watches = original.watches;
        updated.demo = original.demo && updated.uri == original.uri;
        if (!bringUp(updated, error)) {
            QString ignored;
            bringUp(original, &ignored); // put the old one back
            return false;
        }
        if (!spec.password.isEmpty() && spec.password != original.password)
            Keychain::writePassword(spec.id, spec.password, this);
        refreshKnownNamespaces();
        return true;
    });
    dialog.exec();
}

void MainWindow::removeConnection(const QString& id) {
    m_engine->removeSource(id);
    m_connections.erase(std::remove_if(m_connections.begin(), m_connections.end(),
                                       [&](const ConnectionSpec& c) { return c.id == id; }),
                        m_connections.end());
    m_connectionsDock->removeConnection(id);
    m_healthDock->removeSource(id);
    if (id == QLatin1String("demo") && m_demo) {
        m_demo->requestStop();
        m_demo.reset();
    }
    refreshKnownNamespaces();
}

void MainWindow::setWatched(const QString& id, const Namespace& ns, bool watch) {
    auto it = std::find_if(m_connections.begin(), m_connections.end(),
                           [&](const ConnectionSpec& c) { return c.id == id; });
    if (it == m_connections.end())
        return;
    if (watch) {
        if (!it->watches.contains(ns))
            it->watches.append(ns);
        WatchOptions options;
        options.captureMode = it->captureMode;
        m_engine->watch(id, ns, options);
    } else {
        it->watches.removeAll(ns);
        m_engine->unwatch(id, ns);
    }
    refreshKnownNamespaces();
}

void MainWindow::newSubscription() {
    Subscription s;
    const int n = int(m_engine->subscriptions().size()) + 1;
    s.name = tr("Subscription %1").arg(n);
    s = m_engine->addSubscription(s);
    refreshSubscriptions();
    m_feedDock->setCurrentSubscription(s.id);
    m_filtersDock->setCurrentSubscription(s.id);
    m_filtersDock->show();
    m_filtersDock->raise();
    m_filtersDock->editor()->setFocus();
}

void MainWindow::applySubscription(const Subscription& subscription) {
    m_engine->addSubscription(subscription);
    refreshSubscriptions();
    if (ChangeFeedModel* model = m_feedDock->model(subscription.id))
        model->clear(); // the rows shown so far were chosen by the old filter
    statusBar()->showMessage(tr("Applied “%1”").arg(subscription.name), 3000);
}

void MainWindow::deleteSubscription(const QString& id) {
    const auto s = m_engine->subscription(id);
    if (!s)
        return;
    if (QMessageBox::question(this, tr("Delete Subscription"),
                              tr("Delete “%1”? SSE clients of it will be disconnected.").arg(s->name)) !=
        QMessageBox::Yes)
        return;
    m_engine->removeSubscription(id);
    refreshSubscriptions();
}

void MainWindow::refreshSubscriptions() {
    const SubscriptionList all = m_engine->subscriptions();
    SubscriptionList shown;
    for (const Subscription& s : all)
        if (s.persistent)
            shown.append(s);
    m_feedDock->setSubscriptions(shown);
    m_filtersDock->setSubscriptions(shown);
    const QString current = m_feedDock->currentSubscriptionId();
    m_filtersDock->setCurrentSubscription(current);
    const auto s = m_engine->subscription(current);
    m_sseDock->setCurrentSubscription(current, s ? s->name : current);
}

void MainWindow::refreshKnownNamespaces() {
    QList<SourceNamespace> known;
    for (const ConnectionSpec& c : std::as_const(m_connections))
        for (const Namespace& ns : c.watches)
            known.append(SourceNamespace{c.id, ns});
    m_filtersDock->setKnownNamespaces(known);
}

void MainWindow::onCommitted(const CommittedBatch& batch) {
    m_feedDock->dispatch(batch);
    m_healthDock->recordBatch(batch);
    m_eventsThisSecond += batch.events.size();
    m_recent.append(batch.events);
    if (m_recent.size() > 2 * kRecentEvents)
        m_recent.remove(0, m_recent.size() - kRecentEvents);
}

void MainWindow::onSourceStatus(const QString& id, const SourceStatus& status) {
    m_connectionsDock->setStatus(id, status);
    m_healthDock->setStatus(id, status);
    updateStatusBar();
}

void MainWindow::onNamespacesListed(const QString& id, const QString& db,
                                    const QList<NamespaceInfo>& namespaces, const QString& error) {
    m_connectionsDock->setNamespaces(id, db, namespaces, error);
}

void MainWindow::onWatchFailed(const QString& id, const Namespace& ns, const QString& error) {
    m_healthDock->setLastError(id, error);
    m_connectionsDock->setWatched(id, ns, false);
    auto it = std::find_if(m_connections.begin(), m_connections.end(),
                           [&](const ConnectionSpec& c) { return c.id == id; });
    if (it != m_connections.end())
        it->watches.removeAll(ns);
    statusBar()->showMessage(tr("Cannot watch %1 on %2: %3").arg(ns.toString(), id, error), 10000);
}

void MainWindow::onJournalFailed(const QString& error) {
    m_journalError = error;
    m_healthDock->setSummary(
        tr("<span style='color:#cf222e'>Journal write failed: %1 — retrying; nothing accepted "
           "is dropped.</span>")
            .arg(error.toHtmlEscaped()));
    statusBar()->showMessage(tr("Journal: %1 (retrying)").arg(error), 10000);
}

void MainWindow::updateStatusBar() {
    if (!m_statusSources)
        return;
    const QHash<QString, SourceStatus> statuses = m_engine->sourceStatuses();
    QStringList parts;
    for (const ConnectionSpec& c : std::as_const(m_connections))
        parts.append(QStringLiteral("%1: %2").arg(c.id, statuses.value(c.id).stateName()));
    m_statusSources->setText(parts.isEmpty() ? tr("No connections — Connection → Add Connection…")
                                             : parts.join(QStringLiteral("   ")));
    const QLocale locale;
    m_statusRate->setText(tr("%1 events/s").arg(locale.toString(m_eventsLastSecond)));
    m_statusSeq->setText(tr("journal seq %1").arg(locale.toString(m_engine->lastCommittedSeq())));
    m_statusSeq->setToolTip(QDir::toNativeSeparators(m_engine->journalPath()));
    const bool serving = m_sseDock && m_sseDock->isRunning();
    m_statusSse->setText(serving ? tr("SSE %1").arg(m_sseDock->server()->baseUrl().toString())
                                 : tr("SSE off"));
    if (m_journalError.isEmpty())
        m_healthDock->setSummary(tr("Journal %1 · last seq %2 · %3 events committed this session")
                                     .arg(QDir::toNativeSeparators(m_engine->journalPath()),
                                          locale.toString(m_engine->lastCommittedSeq()),
                                          locale.toString(m_engine->eventsCommitted())));
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
    if (events.isEmpty()) {
        QMessageBox::information(this, tr("Export"),
                                 selectedOnly ? tr("Select rows in the feed first.")
                                              : tr("The feed is empty."));
        return;
    }
    QString selectedFilter;
    QString path =
        QFileDialog::getSaveFileName(this, tr("Export %1 Events").arg(events.size()),
                                     QDir::home().filePath(QStringLiteral("tidewatch-export.ndjson")),
                                     tr("NDJSON (*.ndjson *.jsonl);;CSV (*.csv)"), &selectedFilter);
    if (path.isEmpty())
        return;
    if (selectedFilter.startsWith(QLatin1String("CSV")) && QFileInfo(path).suffix().isEmpty())
        path += QStringLiteral(".csv");
    const FeedExporter::Format format = FeedExporter::formatForPath(path);

    auto progress = std::make_shared<std::atomic<qint64>>(0);
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    auto error = std::make_shared<QString>();
    auto ok = std::make_shared<bool>(false);
    // The worker owns the file from open to commit; the GUI only polls `progress`.
    QThread* worker = QThread::create([=] {
        QSaveFile file(path);
        if (!file.open(QIODevice::WriteOnly)) {
            *error = file.errorString();
            return;
        }
        *ok = FeedExporter::write(events, format, &file, progress.get(), cancel.get(), error.get()) &&
              file.commit();
        if (!*ok && error->isEmpty())
            *error = file.errorString();
    });
    auto* dialog = new QProgressDialog(tr("Exporting %1 events…").arg(events.size()), tr("Cancel"), 0,
                                       int(events.size()), this);
    dialog->setWindowModality(Qt::WindowModal);
    dialog->setMinimumDuration(300); // short exports finish without a flash of a dialog
    auto* poll = new QTimer(dialog);
    connect(poll, &QTimer::timeout, dialog, [dialog, progress] { dialog->setValue(int(progress->load())); });
    connect(dialog, &QProgressDialog::canceled, dialog, [cancel] { cancel->store(true); });
    connect(worker, &QThread::finished, this, [=, this] {
        poll->stop();
        dialog->deleteLater();
        worker->deleteLater();
        if (*ok)
            statusBar()->showMessage(tr("Exported %1 events to %2").arg(events.size()).arg(path), 6000);
        else if (!cancel->load())
            QMessageBox::warning(this, tr("Export"), tr("Export to %1 failed: %2").arg(path, *error));
    });
    poll->start(100);
    worker->start();
}

void MainWindow::selectRecentEvent() {
    FeedView* view = m_feedDock->currentFeed();
    if (!view || view->model()->rowCount() == 0)
        return;
    ChangeFeedModel* model = view->model();
    int row = model->rowCount() - 1;
    for (int r = model->rowCount() - 1; r >= std::max(0, model->rowCount() - 200); --r) {
        if (model->eventAt(r).operation() == Operation::Update) {
            row = r;
            break;
        }
    }
    const QModelIndex index = view->view()->model()->index(row, 0);
    view->view()->setCurrentIndex(index);
    view->view()->scrollTo(index);
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
        for (const Subscription& s : m_engine->subscriptions())
            if (ChangeFeedModel* model = m_feedDock->model(s.id))
                model->setPalette(palette());
    }
    QMainWindow::changeEvent(event);
}

} // namespace tw::ui

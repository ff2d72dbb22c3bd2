// The main window on the demo: rows arrive, the dock layout persists and Reset
// Layout restores the default, the workspace is written without passwords and
// reopened.
#include "AppSession.h"
#include "config/DataDir.h"
#include "config/Settings.h"
#include "demo/DemoWriter.h"
#include "docks/ConnectionsDock.h"
#include "docks/EventDetailDock.h"
#include "docks/FiltersDock.h"
#include "docks/HealthDock.h"
#include "docks/LiveFeedDock.h"
#include "docks/PublishDock.h"
#include "engine/Engine.h"
#include "http/SourceControl.h"
#include "MainWindow.h"
#include "models/ChangeFeedModel.h"
#include "nats/NatsPublisher.h"
#include "NatsServer.h"
#include "NatsStreamClient.h"
#include "TestUtil.h"
#include "widgets/FeedView.h"
#include "Workspace.h"

#include <QCheckBox>
#include <QDockWidget>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>
#include <QTreeWidget>

using namespace tw;
using namespace tw::ui;

class tst_UiMainWindow : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void init();
    void smokeDemoRowsArrive();
    void tickedDatabaseFollowsTablesInTheTree();
    void dockStateSavedAndRestored();
    void resetLayoutRestoresDefault();
    void workspaceReopened();
    void watchChangedOverTheControlShowsInTheTreeAndIsSaved();
    void publishDockPublishesAndGoesOnAtTheNextStart();

private:
    AppOptions options(bool demo) const;
    QTemporaryDir m_dir;
    int m_run = 0;
};

void tst_UiMainWindow::initTestCase() {
    QVERIFY(m_dir.isValid());
}

void tst_UiMainWindow::init() {
    // A fresh data dir per test: settings, demo database, workspace.
    ++m_run;
    const QString dataDir = m_dir.filePath(QStringLiteral("data%1").arg(m_run));
    QDir().mkpath(dataDir);
    qputenv("TIDEWATCH_DATA_DIR", dataDir.toLocal8Bit());
}

AppOptions tst_UiMainWindow::options(bool demo) const {
    AppOptions o;
    o.demo = demo;
    o.demoRate = 50;
    o.journal = QDir(defaultDataDir()).filePath(QStringLiteral("journal.sqlite"));
    return o;
}

void tst_UiMainWindow::smokeDemoRowsArrive() {
    MainWindow window(options(true));
    QString error;
    QVERIFY2(window.start(&error), qPrintable(error));
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QCOMPARE(window.liveFeed()->feedCount(), 2);
    ChangeFeedModel* all = window.liveFeed()->model(QStringLiteral("all"));
    QVERIFY(all);
    QTRY_VERIFY_WITH_TIMEOUT(all->rowCount() > 10, 15000);
    QVERIFY(all->flushCount() < all->rowCount()); // batched, not one insert per event

    // The tree shows the watched tables ticked.
    QTRY_VERIFY_WITH_TIMEOUT(!window.connections()
                                  ->tree()
                                  ->findItems(QStringLiteral("orders"), Qt::MatchExactly | Qt::MatchRecursive)
                                  .isEmpty(),
                             5000);
    const QTreeWidgetItem* orders =
        window.connections()
            ->tree()
            ->findItems(QStringLiteral("orders"), Qt::MatchExactly | Qt::MatchRecursive)
            .first();
    QCOMPARE(orders->checkState(0), Qt::Checked);

    // Selecting a row fills the detail dock.
    FeedView* feed = window.liveFeed()->currentFeed();
    feed->view()->setCurrentIndex(feed->view()->model()->index(0, 0));
    QVERIFY(window.eventDetail()->jsonText().contains(QStringLiteral("\"operationType\"")));

    // Pause holds the rows still while events keep arriving.
    window.liveFeed()->setPaused(true);
    QTest::qWait(150);
    const int frozen = all->rowCount();
    QTRY_VERIFY_WITH_TIMEOUT(all->pendingCount() > 0, 5000);
    QCOMPARE(all->rowCount(), frozen);
    window.liveFeed()->setPaused(false);
    QTRY_VERIFY(all->rowCount() > frozen);

    // The filter preview sees the recent events.
    window.filters()->updatePreview();
    QVERIFY2(window.filters()->previewText().contains(QStringLiteral("of the last")),
             qPrintable(window.filters()->previewText()));
}

// Ticking the demo's "main" watches the whole file; a table another process creates
// then appears in the tree, and a rename replaces it there.
void tst_UiMainWindow::tickedDatabaseFollowsTablesInTheTree() {
    MainWindow window(options(true));
    QString error;
    QVERIFY2(window.start(&error), qPrintable(error));
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QTreeWidget* tree = window.connections()->tree();
    const auto find = [tree](const QString& text) {
        const QList<QTreeWidgetItem*> items = tree->findItems(text, Qt::MatchExactly | Qt::MatchRecursive);
        return items.isEmpty() ? nullptr : items.first();
    };
    QTRY_VERIFY_WITH_TIMEOUT(find(QStringLiteral("orders")), 10000);
    QTreeWidgetItem* main = find(QStringLiteral("main"));
    QVERIFY(main);
    QVERIFY(main->flags() & Qt::ItemIsUserCheckable);
    main->setCheckState(0, Qt::Checked);
    // The demo writer commits all the time: wait for the file's lock rather than fail.
    const QString demo = DemoWriter::defaultPath();
    QCOMPARE(tw::test::runSqlite3(demo, QStringLiteral("PRAGMA busy_timeout=10000; CREATE TABLE audit(x)")),
             QString());
    QTRY_VERIFY_WITH_TIMEOUT(find(QStringLiteral("audit")), 10000);
    QCOMPARE(tw::test::runSqlite3(demo, QStringLiteral("PRAGMA busy_timeout=10000; "
                                                       "ALTER TABLE audit RENAME TO audit_log")),
             QString());
    QTRY_VERIFY_WITH_TIMEOUT(find(QStringLiteral("audit_log")), 10000);
    QVERIFY(!find(QStringLiteral("audit")));
    QCOMPARE(find(QStringLiteral("main"))->checkState(0), Qt::Checked);
}

void tst_UiMainWindow::dockStateSavedAndRestored() {
    QByteArray saved;
    {
        MainWindow window(options(true));
        QString error;
        QVERIFY2(window.start(&error), qPrintable(error));
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        window.health()->hide();
        window.filters()->raise();
        window.removeDockWidget(window.connections());
        window.addDockWidget(Qt::RightDockWidgetArea, window.connections());
        window.connections()->show();
        saved = window.saveState();
        window.close(); // writes the state to the settings
    }
    QCOMPARE(Settings().value(Settings::Key::UiState).toByteArray(), saved);
    AppOptions o = options(false); // no --demo: the layout comes from the settings
    MainWindow window(o);
    QString error;
    QVERIFY2(window.start(&error), qPrintable(error));
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QVERIFY(window.health()->isHidden());
    QCOMPARE(window.dockWidgetArea(window.connections()), Qt::RightDockWidgetArea);
    QVERIFY(!window.liveFeed()->isHidden());
}

void tst_UiMainWindow::resetLayoutRestoresDefault() {
    MainWindow window(options(true));
    QString error;
    QVERIFY2(window.start(&error), qPrintable(error));
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QCOMPARE(window.dockWidgetArea(window.connections()), Qt::LeftDockWidgetArea);
    window.health()->hide();
    window.eventDetail()->setFloating(true);
    window.removeDockWidget(window.connections());
    window.addDockWidget(Qt::RightDockWidgetArea, window.connections());
    window.connections()->show();
    window.resetLayout();
    QVERIFY(!window.health()->isHidden());
    QVERIFY(!window.eventDetail()->isFloating());
    QCOMPARE(window.dockWidgetArea(window.connections()), Qt::LeftDockWidgetArea);
    QCOMPARE(window.dockWidgetArea(window.eventDetail()), Qt::RightDockWidgetArea);
    for (QDockWidget* dock : window.docks())
        QVERIFY2(!dock->isHidden(), qPrintable(dock->objectName()));
}

void tst_UiMainWindow::workspaceReopened() {
    const QString path = QDir(defaultDataDir()).filePath(QStringLiteral("mine.json"));
    {
        MainWindow window(options(false)); // first run: the demo, saved as the default workspace
        QString error;
        QVERIFY2(window.start(&error), qPrintable(error));
        QCOMPARE(window.workspacePath(), Workspace::defaultPath());
        window.filters()->setCurrentSubscription(QStringLiteral("paid-orders"));
        QVERIFY2(window.saveWorkspace(path, &error), qPrintable(error));
        window.close();
    }
    QCOMPARE(Settings().stringValue(Settings::Key::UiLastWorkspace), path);
    Workspace w;
    QString error;
    QVERIFY2(Workspace::load(path, &w, &error), qPrintable(error));
    QCOMPARE(w.connections.size(), 1);
    QCOMPARE(w.connections.at(0).watches.size(), 3);
    QVERIFY(w.subscriptions.size() >= 2);

    MainWindow window(options(false)); // reopens the last workspace
    QVERIFY2(window.start(&error), qPrintable(error));
    QCOMPARE(window.workspacePath(), path);
    QCOMPARE(window.engine()->sourceIds(), QStringList{QStringLiteral("demo")});
    QVERIFY(window.liveFeed()->feedCount() >= 2);
}

void tst_UiMainWindow::watchChangedOverTheControlShowsInTheTreeAndIsSaved() {
    // The control is what the HTTP API and the MCP front end call.
    MainWindow window(options(false));
    QString error;
    QVERIFY2(window.start(&error), qPrintable(error));
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    window.connections()->expandConnection(QStringLiteral("demo"));
    const auto customers = [&]() -> QTreeWidgetItem* {
        const QList<QTreeWidgetItem*> found = window.connections()->tree()->findItems(
            QStringLiteral("customers"), Qt::MatchExactly | Qt::MatchRecursive);
        return found.isEmpty() ? nullptr : found.first();
    };
    QTRY_VERIFY_WITH_TIMEOUT(customers() != nullptr, 15000);
    QCOMPARE(customers()->checkState(0), Qt::Checked);

    SourceControl* control = window.session()->control();
    int status = 0;
    control->unwatch(QStringLiteral("demo"), QStringLiteral("main.customers"), this,
                     [&](const ControlReply& reply) { status = reply.status; });
    QTRY_COMPARE_WITH_TIMEOUT(status, 204, 10000);
    QCOMPARE(customers()->checkState(0), Qt::Unchecked);
    Workspace saved;
    QVERIFY2(Workspace::load(window.workspacePath(), &saved, &error), qPrintable(error));
    QCOMPARE(saved.connections.size(), 1);
    QVERIFY(!saved.connections.first().watches.contains(
        Namespace{QStringLiteral("main"), QStringLiteral("customers")}));

    status = 0;
    control->watch(QStringLiteral("demo"), QStringLiteral("main.customers"), {}, this,
                   [&](const ControlReply& reply) { status = reply.status; });
    QTRY_COMPARE_WITH_TIMEOUT(status, 201, 30000);
    QCOMPARE(customers()->checkState(0), Qt::Checked);
    QVERIFY2(Workspace::load(window.workspacePath(), &saved, &error), qPrintable(error));
    QVERIFY(saved.connections.first().watches.contains(
        Namespace{QStringLiteral("main"), QStringLiteral("customers")}));
}

QTEST_MAIN(tst_UiMainWindow)
void tst_UiMainWindow::publishDockPublishesAndGoesOnAtTheNextStart() {
    testsupport::NatsServer nats;
    const QString natsError = nats.start();
    QVERIFY2(natsError.isEmpty(), qPrintable(natsError));
    qint64 acked = 0;
    {
        MainWindow window(options(true));
        QString error;
        QVERIFY2(window.start(&error), qPrintable(error));
        PublishDock* dock = window.publish();
        QVERIFY(!dock->isPublishing());
        auto* url = dock->findChild<QLineEdit*>(QStringLiteral("publishUrl"));
        auto* toggle = dock->findChild<QPushButton*>(QStringLiteral("publishToggle"));
        auto* shownError = dock->findChild<QLabel*>(QStringLiteral("publishError"));
        auto* memory = dock->findChild<QCheckBox*>(QStringLiteral("publishMemory"));
        QVERIFY(url && toggle && shownError && memory);
        QVERIFY(!memory->isChecked()); // files unless asked

        // A URL of another kind: said, and nothing starts.
        url->setText(QStringLiteral("http://127.0.0.1:%1").arg(nats.port()));
        toggle->click();
        QVERIFY(!dock->isPublishing());
        QVERIFY(!shownError->isHidden());
        QVERIFY2(shownError->text().contains(QLatin1String("nats://")), qPrintable(shownError->text()));

        url->setText(nats.url());
        memory->setChecked(true);
        toggle->click();
        QVERIFY(dock->isPublishing());
        QVERIFY(!memory->isEnabled());
        QVERIFY(shownError->isHidden());
        NatsPublisher* publisher = window.session()->publisher();
        QVERIFY(publisher);
        // The demo writes: JetStream acknowledges its events, and the dock says so.
        QTRY_VERIFY_WITH_TIMEOUT(publisher->status().ackedSeq > 5, 20000);
        QTRY_VERIFY_WITH_TIMEOUT(dock->stateText().startsWith(QLatin1String("Publishing")), 5000);
        QVERIFY(Settings().boolValue(Settings::Key::NatsPublish));
        QCOMPARE(Settings().stringValue(Settings::Key::NatsUrl), nats.url());
        QVERIFY(Settings().boolValue(Settings::Key::NatsMemoryStorage));
        QCOMPARE(testsupport::NatsStreamClient(nats.url()).storage(), QStringLiteral("memory"));
        acked = publisher->status().ackedSeq;
    }
    // The next start publishes again, on from where the last one stopped.
    MainWindow window(options(true));
    QString error;
    QVERIFY2(window.start(&error), qPrintable(error));
    PublishDock* dock = window.publish();
    QVERIFY(dock->isPublishing());
    QVERIFY(dock->findChild<QCheckBox*>(QStringLiteral("publishMemory"))->isChecked());
    NatsPublisher* publisher = window.session()->publisher();
    QTRY_VERIFY_WITH_TIMEOUT(publisher->status().ackedSeq > acked, 20000);

    dock->findChild<QPushButton*>(QStringLiteral("publishToggle"))->click();
    QVERIFY(!dock->isPublishing());
    QVERIFY(!window.session()->publisher());
    QCOMPARE(dock->stateText(), QStringLiteral("Not publishing."));
    QVERIFY(!Settings().boolValue(Settings::Key::NatsPublish));
}

#include "tst_ui_mainwindow.moc"

#include "AppSession.h"

#include "config/DataDir.h"
#include "config/Settings.h"
#include "demo/DemoWriter.h"
#include "http/SseServer.h"
#include "Keychain.h"
#include "SessionControl.h"
#include "sources/Source.h"
#include "sources/SourceFactory.h"
#include "sources/SourceUri.h"
#include "SseToken.h"
#include "WatchOptionsJson.h"

#include <QCoreApplication>
#include <QFileInfo>

namespace tw {

AppSession::AppSession(const Options& options, QObject* parent)
    : QObject(parent)
    , m_options(options) {
    if (m_options.journalPath.isEmpty())
        m_options.journalPath = defaultJournalPath();
    Engine::Options engineOptions;
    engineOptions.journalPath = m_options.journalPath;
    const Settings settings;
    engineOptions.retention.maxAgeSeconds = settings.int64Value(Settings::Key::RetentionMaxAgeSeconds);
    engineOptions.retention.maxBytes = settings.int64Value(Settings::Key::RetentionMaxBytes);
    m_engine = std::make_unique<Engine>(engineOptions);
    m_sse = new SseServer(m_engine.get(), this);

    // Engine → session: every engine signal is emitted on the engine thread.
    Engine* engine = m_engine.get();
    connect(engine, &Engine::committed, this, &AppSession::committed, Qt::QueuedConnection);
    connect(engine, &Engine::sourceStatusChanged, this, &AppSession::sourceStatusChanged,
            Qt::QueuedConnection);
    connect(engine, &Engine::namespacesListed, this, &AppSession::namespacesListed, Qt::QueuedConnection);
    connect(engine, &Engine::watchReady, this, &AppSession::watchReady, Qt::QueuedConnection);
    connect(engine, &Engine::watchFailed, this, &AppSession::onWatchFailed, Qt::QueuedConnection);
    connect(engine, &Engine::journalFailed, this, &AppSession::journalFailed, Qt::QueuedConnection);
    connect(engine, &Engine::subscriptionsChanged, this, &AppSession::subscriptionsChanged,
            Qt::QueuedConnection);
    connect(engine, &Engine::sourceRemoved, this, &AppSession::onSourceRemoved, Qt::QueuedConnection);

    connect(m_sse, &SseServer::started, this, &AppSession::sseStarted);
    connect(m_sse, &SseServer::stopped, this, &AppSession::sseStopped);
    connect(m_sse, &SseServer::clientsChanged, this, &AppSession::sseClientsChanged);
    // After the connections above: its handlers see the session's state as updated.
    m_control = std::make_unique<SessionControl>(this);
}

AppSession::~AppSession() {
    stop();
}

SourceControl* AppSession::control() const {
    return m_control.get();
}

bool AppSession::moveJournalAside(QString* movedTo, QString* error) {
    return Journal::moveAside(m_options.journalPath, movedTo, error);
}

bool AppSession::start(QString* error, Engine::StartError* code) {
    return m_engine->start(error, code);
}

void AppSession::stop() {
    m_ssePending = false;
    // Before the engine: the server's thread reads from it until it has stopped.
    m_sse->stop();
    stopDemo();
    stopPublisher(); // commits the last acknowledged seq through the engine
    if (m_engine->isRunning()) {
        m_engine->stop();
        // What the engine committed while stopping is on its way to us as queued
        // calls: deliver it now, so a front end has every committed event.
        QCoreApplication::sendPostedEvents(this, QEvent::MetaCall);
    }
}

// --- connections ---------------------------------------------------------------------

QList<ConnectionSpec>::iterator AppSession::find(const QString& id) {
    return std::find_if(m_connections.begin(), m_connections.end(),
                        [&](const ConnectionSpec& c) { return c.id == id; });
}

QList<AppSession::PendingAdd>::iterator AppSession::findWaiting(const QString& id) {
    return std::find_if(m_waitingAdd.begin(), m_waitingAdd.end(),
                        [&](const PendingAdd& p) { return p.spec.id == id; });
}

QList<ConnectionSpec> AppSession::connections() const {
    QList<ConnectionSpec> all = m_connections;
    for (const PendingAdd& pending : m_waitingAdd)
        all.append(pending.spec);
    return all;
}

std::optional<ConnectionSpec> AppSession::connection(const QString& id) const {
    for (const ConnectionSpec& c : m_connections)
        if (c.id == id)
            return c;
    for (const PendingAdd& pending : m_waitingAdd)
        if (pending.spec.id == id)
            return pending.spec;
    return std::nullopt;
}

bool AppSession::isTaken(const QString& id, QString* error) const {
    for (const ConnectionSpec& c : m_connections) {
        if (c.id == id) {
            if (error)
                *error = tr("A connection named \"%1\" exists already; pick another name.").arg(id);
            return true;
        }
    }
    for (const PendingAdd& pending : m_waitingAdd) {
        if (pending.spec.id == id) {
            if (error)
                *error = tr("A connection named \"%1\" is already waiting to come up (its old source is "
                            "still stopping); edit that one, or pick another name.")
                             .arg(id);
            return true;
        }
    }
    return false;
}

bool AppSession::checkAtOnce(const ConnectionSpec& spec, QString* error) const {
    // The demo database is created when the connection comes up.
    if (spec.demo)
        return true;
    // Creating a source only parses its URI (and, for SQLite, reads the file's first
    // bytes, as adding it to the engine does); it is never started, so it opens no
    // connection and needs no thread.
    std::unique_ptr<Source> probe(SourceFactory::create(spec.id, spec.uriWithPassword(), error));
    return probe != nullptr;
}

bool AppSession::addConnection(const ConnectionSpec& spec, QString* error) {
    if (isTaken(spec.id, error))
        return false;
    if (m_removing.contains(spec.id)) {
        if (!checkAtOnce(spec, error))
            return false;
        m_waitingAdd.append(PendingAdd{spec.id, spec, true, std::nullopt});
        connectionsChanged();
        return true;
    }
    if (!bringUp(spec, true, error))
        return false;
    connectionsChanged();
    return true;
}

bool AppSession::bringUp(const ConnectionSpec& spec, bool storePassword, QString* error) {
    if (isTaken(spec.id, error))
        return false;
    if (spec.demo) {
        const QString path = SourceUri(spec.uri).sqlitePath();
        if (!DemoWriter::ensureDatabase(path, error))
            return false;
    }
    // A stored password comes from the keychain first; the source starts when it is there.
    if (spec.hasPassword && spec.password.isEmpty()) {
        m_connections.append(spec);
        Q_EMIT connectionAdded(spec);
        SourceStatus waiting;
        waiting.state = SourceStatus::State::Connecting;
        waiting.reason = tr("Reading the password from the keychain…");
        Q_EMIT sourceStatusChanged(spec.id, waiting);
        Keychain::read(
            Keychain::connectionKey(spec.id), this,
            [this, id = spec.id](Keychain::Status status, const QString& password, const QString& message) {
                onPasswordRead(id, password,
                               status == Keychain::Status::Ok
                                   ? QString()
                                   : (message.isEmpty() ? tr("not found") : message));
            });
        return true;
    }
    if (!m_engine->addSource(spec.id, spec.uriWithPassword(), error))
        return false;
    watchAll(spec);
    m_connections.append(spec);
    Q_EMIT connectionAdded(spec);
    if (spec.demo && !m_demo)
        startDemo(SourceUri(spec.uri).sqlitePath());
    if (storePassword && !spec.password.isEmpty())
        Keychain::write(Keychain::connectionKey(spec.id), spec.password, this,
                        [this, id = spec.id](Keychain::Status status, const QString& message) {
                            if (status != Keychain::Status::Ok)
                                Q_EMIT passwordNotStored(id, message);
                        });
    return true;
}

void AppSession::onPasswordRead(const QString& id, const QString& password, const QString& message) {
    const auto it = find(id);
    if (it == m_connections.end())
        return;
    if (!message.isEmpty()) {
        SourceStatus failed;
        failed.state = SourceStatus::State::Error;
        failed.reason =
            tr("The password is not in the keychain (%1). Edit the connection to enter it.").arg(message);
        Q_EMIT sourceStatusChanged(id, failed);
        return;
    }
    it->password = password;
    QString error;
    if (!m_engine->addSource(id, it->uriWithPassword(), &error)) {
        SourceStatus failed;
        failed.state = SourceStatus::State::Error;
        failed.reason = error;
        Q_EMIT sourceStatusChanged(id, failed);
        return;
    }
    watchAll(*it);
}

void AppSession::watchAll(const ConnectionSpec& spec) {
    for (const Namespace& ns : spec.watches)
        m_engine->watch(spec.id, ns, optionsFor(spec, ns));
}

WatchOptions AppSession::optionsFor(const ConnectionSpec& spec, const Namespace& ns) {
    WatchOptions base;
    base.captureMode = spec.captureMode;
    WatchOptions options = base;
    QString error;
    // Checked when they were set; a hand-edited workspace with a bad one gets the defaults.
    if (!WatchOptionsJson::read(spec.watchOptions.value(ns.toString()), base, &options, &error)) {
        qWarning().noquote() << "connection" << spec.id << "watch" << ns.toString() << ":" << error;
        return base;
    }
    return options;
}

void AppSession::connectionsChanged() {
    if (m_applyingWorkspace)
        return;
    QString error;
    if (!saveWorkspace(&error))
        qWarning().noquote() << "cannot save the workspace:" << error;
}

bool AppSession::saveWorkspace(QString* error) const {
    if (m_workspacePath.isEmpty())
        return true;
    Workspace w = workspace();
    Workspace stored;
    if (QFileInfo::exists(m_workspacePath) && Workspace::load(m_workspacePath, &stored, nullptr)) {
        w.currentSubscription = stored.currentSubscription;
        w.windowState = stored.windowState;
        w.geometry = stored.geometry;
    }
    return w.save(m_workspacePath, error);
}

void AppSession::removeConnection(const QString& id, bool releaseServerState) {
    const auto waiting = findWaiting(id);
    if (waiting != m_waitingAdd.end())
        m_waitingAdd.erase(waiting); // its old source is being removed already
    const auto it = find(id);
    if (it == m_connections.end())
        return;
    m_connections.erase(it);
    m_removing.insert(id);
    m_engine->removeSource(id, releaseServerState);
    if (id == QLatin1String("demo"))
        stopDemo();
    connectionsChanged();
}

void AppSession::removeAllConnections() {
    const QList<ConnectionSpec> all = connections(); // those waiting to come up too
    for (const ConnectionSpec& spec : all)
        removeConnection(spec.id);
}

bool AppSession::replaceConnection(const QString& id, const ConnectionSpec& spec, QString* error) {
    const std::optional<ConnectionSpec> original = connection(id);
    if (!original) {
        if (error)
            *error = tr("There is no connection named \"%1\" any more.").arg(id);
        return false;
    }
    ConnectionSpec updated = spec;
    updated.watches = original->watches;
    updated.demo = original->demo && updated.uri == original->uri;
    if (updated.id != id && isTaken(updated.id, error))
        return false;
    // Before the old source goes: the dialog shows these and the connection stays.
    if (!checkAtOnce(updated, error))
        return false;
    const bool newPassword = !spec.password.isEmpty() && spec.password != original->password;
    const auto waiting = findWaiting(id);
    if (waiting != m_waitingAdd.end()) {
        // Edited again before it came up: what comes up changes, what comes back does not.
        waiting->spec = updated;
        waiting->storePassword = waiting->storePassword || newPassword;
        return true;
    }
    removeConnection(id);
    m_waitingAdd.append(PendingAdd{id, updated, newPassword, original});
    connectionsChanged();
    return true;
}

void AppSession::onSourceRemoved(const QString& id) {
    if (!m_removing.remove(id))
        return; // not ours to report
    Q_EMIT connectionRemoved(id);
    const auto it = std::find_if(m_waitingAdd.begin(), m_waitingAdd.end(),
                                 [&](const PendingAdd& p) { return p.waitsFor == id; });
    if (it == m_waitingAdd.end())
        return;
    const PendingAdd pending = *it;
    m_waitingAdd.erase(it);
    QString error;
    if (bringUp(pending.spec, pending.storePassword, &error))
        return;
    if (pending.fallback) {
        QString ignored;
        bringUp(*pending.fallback, false, &ignored); // put the old one back
    }
    connectionsChanged();
    Q_EMIT connectionFailed(pending.spec.id, error);
}

void AppSession::watch(const QString& id, const Namespace& ns, const std::optional<QJsonObject>& options) {
    const auto setOptions = [&](ConnectionSpec& spec) {
        if (!options)
            return;
        if (options->isEmpty())
            spec.watchOptions.remove(ns.toString());
        else
            spec.watchOptions.insert(ns.toString(), *options);
    };
    const auto waiting = findWaiting(id);
    if (waiting != m_waitingAdd.end()) {
        if (!waiting->spec.watches.contains(ns))
            waiting->spec.watches.append(ns); // watched once it comes up
        setOptions(waiting->spec);
        connectionsChanged();
        Q_EMIT watchChanged(id, ns, true);
        return;
    }
    const auto it = find(id);
    if (it == m_connections.end())
        return;
    if (!it->watches.contains(ns))
        it->watches.append(ns);
    setOptions(*it);
    m_engine->watch(id, ns, optionsFor(*it, ns));
    connectionsChanged();
    Q_EMIT watchChanged(id, ns, true);
}

void AppSession::unwatch(const QString& id, const Namespace& ns) {
    const auto waiting = findWaiting(id);
    if (waiting != m_waitingAdd.end()) {
        waiting->spec.watches.removeAll(ns);
        waiting->spec.watchOptions.remove(ns.toString());
        connectionsChanged();
        Q_EMIT watchChanged(id, ns, false);
        return;
    }
    const auto it = find(id);
    if (it == m_connections.end())
        return;
    it->watches.removeAll(ns);
    it->watchOptions.remove(ns.toString());
    m_engine->unwatch(id, ns);
    connectionsChanged();
    Q_EMIT watchChanged(id, ns, false);
}

void AppSession::onWatchFailed(const QString& id, const Namespace& ns, const QString& error) {
    const auto it = find(id);
    if (it != m_connections.end() && it->watches.removeAll(ns) > 0) {
        it->watchOptions.remove(ns.toString());
        connectionsChanged();
        Q_EMIT watchChanged(id, ns, false);
    }
    Q_EMIT watchFailed(id, ns, error);
}

void AppSession::listNamespaces(const QString& id, const QString& db) {
    m_engine->listNamespaces(id, db);
}

// --- subscriptions and workspace ---------------------------------------------------------

Subscription AppSession::addSubscription(const Subscription& subscription) {
    return m_engine->addSubscription(subscription);
}

bool AppSession::removeSubscription(const QString& id) {
    return m_engine->removeSubscription(id);
}

SubscriptionList AppSession::subscriptions() const {
    return m_engine->subscriptions();
}

std::optional<Subscription> AppSession::subscription(const QString& id) const {
    return m_engine->subscription(id);
}

Workspace AppSession::workspace() const {
    Workspace w;
    w.connections = connections();
    for (const Subscription& s : m_engine->subscriptions())
        if (s.persistent)
            w.subscriptions.append(s);
    return w;
}

void AppSession::applyWorkspace(const Workspace& workspace) {
    m_applyingWorkspace = true;
    for (const ConnectionSpec& spec : workspace.connections) {
        QString error;
        if (!addConnection(spec, &error))
            Q_EMIT connectionFailed(spec.id, error);
    }
    for (const Subscription& s : workspace.subscriptions)
        m_engine->addSubscription(s);
    m_applyingWorkspace = false;
}

ConnectionSpec AppSession::demoConnection() {
    ConnectionSpec demo;
    demo.id = QStringLiteral("demo");
    demo.uri = QStringLiteral("sqlite:") + DemoWriter::defaultPath();
    demo.demo = true;
    demo.watches = {Namespace{QStringLiteral("main"), QStringLiteral("orders")},
                    Namespace{QStringLiteral("main"), QStringLiteral("customers")},
                    Namespace{QStringLiteral("main"), QStringLiteral("notifications")}};
    return demo;
}

Workspace AppSession::demoWorkspace() {
    Workspace w;
    w.connections.append(demoConnection());

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

// --- SSE -------------------------------------------------------------------------------------

bool AppSession::isSseRunning() const {
    return m_sse->isRunning();
}

bool AppSession::startSse(const QString& address, quint16 port, QString* error) {
    QHostAddress host;
    if (!host.setAddress(address)) {
        if (error)
            *error = tr("\"%1\" is not an IP address (use e.g. 127.0.0.1 or 0.0.0.0).").arg(address);
        return false;
    }
    m_sseAddress = host;
    m_ssePort = port;
    loadSseToken();
    if (!m_tokenLoaded) {
        m_ssePending = true; // started by the token's arrival
        return true;
    }
    return startSseNow(error);
}

bool AppSession::startSseNow(QString* error) {
    m_ssePending = false;
    // The one place settings become server options.
    SseServer::Options options;
    options.address = m_sseAddress;
    options.port = m_ssePort;
    options.token = m_token;
    const Settings settings;
    options.corsOrigins = settings.value(Settings::Key::SseCorsOrigins).toStringList();
    options.maxPendingBytes = settings.int64Value(Settings::Key::SseMaxPendingBytes);
    options.keepAliveMs = settings.intValue(Settings::Key::SseKeepAliveMs);
    options.replayCacheBytes = settings.int64Value(Settings::Key::SseReplayCacheBytes);
    options.control = m_control.get();
    options.refuseUnwatched = true; // the session knows what its sources watch
    // The publisher may start or stop while the server runs: read it through the view.
    options.publisherHealth = [view = m_publisherView] {
        QMutexLocker lock(&view->mutex);
        return view->publisher ? view->publisher->healthJson() : QJsonObject();
    };
    options.publisherMetrics = [view = m_publisherView] {
        QMutexLocker lock(&view->mutex);
        return view->publisher ? view->publisher->metricsText() : QByteArray();
    };
    return m_sse->start(options, error);
}

void AppSession::stopSse() {
    m_ssePending = false;
    m_sse->stop();
}

void AppSession::loadSseToken() {
    if (m_tokenLoaded || m_tokenLoading)
        return;
    m_tokenLoading = true;
    loadOrCreateToken(this, [this](const QString& token, const QString& where) {
        m_tokenLoading = false;
        m_tokenLoaded = true;
        m_token = token;
        m_tokenWhere = where;
        Q_EMIT sseTokenLoaded(token, where);
        if (m_ssePending) {
            QString error;
            if (!startSseNow(&error))
                Q_EMIT sseFailed(error);
        }
    });
}

// --- NATS ------------------------------------------------------------------------------------

bool AppSession::startPublisher(const NatsPublisher::Options& options, QString* error) {
    if (m_publisher)
        return true;
    auto publisher = std::make_unique<NatsPublisher>(m_engine.get(), options);
    if (!publisher->start(error))
        return false;
    m_publisher = std::move(publisher);
    QMutexLocker lock(&m_publisherView->mutex);
    m_publisherView->publisher = m_publisher.get();
    return true;
}

void AppSession::stopPublisher() {
    if (!m_publisher)
        return;
    {
        QMutexLocker lock(&m_publisherView->mutex);
        m_publisherView->publisher = nullptr;
    }
    m_publisher->stop();
    m_stoppedPublishers.push_back(std::move(m_publisher));
}

// --- demo ------------------------------------------------------------------------------------

void AppSession::startDemo(const QString& path) {
    m_demo = std::make_unique<DemoWriter>(path);
    m_demo->setRate(m_options.demoRate > 0 ? m_options.demoRate
                                           : Settings().value(Settings::Key::DemoRate).toDouble());
    m_demo->start();
}

void AppSession::stopDemo() {
    if (!m_demo)
        return;
    m_demo->requestStop();
    m_demo.reset(); // joins the writer's thread
}

} // namespace tw

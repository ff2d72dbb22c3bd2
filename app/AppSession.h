#pragma once

#include "engine/Engine.h"
#include "nats/NatsPublisher.h"
#include "Workspace.h"

#include <memory>
#include <optional>
#include <QHostAddress>
#include <QJsonObject>
#include <QMutex>
#include <QObject>
#include <QSet>
#include <QUrl>
#include <vector>

namespace tw {

class DemoWriter;
class SessionControl;
class SourceControl;
class SseServer;

// One application session, shared by every front end (the window, headless, MCP):
// it owns the Engine (its own thread), the SSE server (its own HTTP thread) and the
// demo writer, keeps the connections and brings each up (its password from the
// keychain), and is the one place that turns settings into SSE server options.
//
// Front ends ask it to act and show what its signals say. Every signal is emitted on
// the session's thread (the engine's are re-emitted after a queued hop), so a front
// end on that thread connects to them directly.
class AppSession : public QObject {
    Q_OBJECT
public:
    struct Options {
        QString journalPath; // empty: defaultJournalPath()
        double demoRate = 0; // demo writer changes per second; 0: Settings::Key::DemoRate
    };

    explicit AppSession(const Options& options, QObject* parent = nullptr);
    ~AppSession() override; // stop()

    // --- life ------------------------------------------------------------------
    // Renames the journal (and its -wal/-shm) to <path>.broken-<time> so that start()
    // creates a fresh one; nothing is deleted. Before start(), or after it failed.
    bool moveJournalAside(QString* movedTo = nullptr, QString* error = nullptr);
    // Opens the journal and starts the engine. On failure nothing runs, `code` says
    // why (JournalInUse: moving aside would not help), and start() may be tried again.
    bool start(QString* error = nullptr, Engine::StartError* code = nullptr);
    // Stops the SSE server, the demo writer and the engine (journal checkpointed), then
    // delivers what the engine signalled meanwhile, so a front end sees every committed
    // event. Blocks for up to about a second per source.
    void stop();
    bool isRunning() const { return m_engine->isRunning(); }
    Engine* engine() const { return m_engine.get(); } // owned; exists from construction
    QString journalPath() const { return m_options.journalPath; }

    // --- connections -------------------------------------------------------------
    // Every connection, with those still waiting for their id to be free in the form
    // they will come up in (an edit included), so a workspace saved meanwhile has them.
    QList<ConnectionSpec> connections() const;
    std::optional<ConnectionSpec> connection(const QString& id) const;
    // Puts a connection into service and watches spec.watches: creates the demo
    // database (and runs its writer) for the demo; a stored password is read from the
    // keychain first (status Connecting meanwhile, Error when it is missing); a typed
    // one is stored there (passwordNotStored() when it cannot be). What is known at
    // once (bad URI, missing file, name taken) comes back here. While `spec.id` is
    // still being removed, the connection comes up once the id is free and a later
    // failure arrives as connectionFailed(); a second add for that id is refused.
    bool addConnection(const ConnectionSpec& spec, QString* error = nullptr);
    // connectionRemoved(id) follows once the source has stopped and the id is free.
    // With `releaseServerState` the source first drops what it keeps on the server (a
    // PostgreSQL replication slot and publication).
    void removeConnection(const QString& id, bool releaseServerState = false);
    void removeAllConnections();
    // Edits connection `id`: removes it and, once the id is free, brings up `spec` with
    // the old watches. What is known at once (bad URI, missing file, name taken) comes
    // back here and leaves the connection as it was; when the bring-up fails later the
    // old connection comes back and connectionFailed() says why.
    bool replaceConnection(const QString& id, const ConnectionSpec& spec, QString* error = nullptr);
    // `options`: the watch's options as WatchOptionsJson spells them (checked by the
    // caller), replacing what the watch had; none: a new watch has the defaults, one
    // already there keeps its options. watchChanged() tells every front end.
    void watch(const QString& id, const Namespace& ns,
               const std::optional<QJsonObject>& options = std::nullopt);
    void unwatch(const QString& id, const Namespace& ns);
    void listNamespaces(const QString& id, const QString& db); // → namespacesListed()

    // --- subscriptions -------------------------------------------------------------
    Subscription addSubscription(const Subscription& subscription); // assigns an id when empty
    bool removeSubscription(const QString& id);
    SubscriptionList subscriptions() const;
    std::optional<Subscription> subscription(const QString& id) const;

    // --- workspace -------------------------------------------------------------------
    // The connections and the persistent subscriptions; the layout is the front end's.
    Workspace workspace() const;
    // Brings up the workspace's connections (one that fails is reported by
    // connectionFailed() and does not stop the others) and adds its subscriptions.
    void applyWorkspace(const Workspace& workspace);
    // The file the connections and their watches are saved to whenever they change,
    // whoever changed them (the window, HTTP, MCP); empty: none. The layout and the
    // current subscription in the file are the window's and are kept as they are.
    void setWorkspacePath(const QString& path) { m_workspacePath = path; }
    QString workspacePath() const { return m_workspacePath; }
    bool saveWorkspace(QString* error = nullptr) const; // atomically; true when there is no path
    // The run-time control of sources and watches (HTTP, MCP); owned, lives on this
    // object's thread, exists from construction.
    SourceControl* control() const;
    static ConnectionSpec demoConnection(); // "demo": the demo database, its three tables watched
    static Workspace demoWorkspace();       // the demo connection, "All changes" and "Paid orders"

    // --- SSE -----------------------------------------------------------------------------
    SseServer* sseServer() const { return m_sse; } // owned (child); exists from construction
    bool isSseRunning() const;
    // Serves SSE on address:port with the token and the limits from the settings. When
    // the token is still being read from the keychain the server starts once it is
    // there, and sseStarted() or sseFailed() tells.
    bool startSse(const QString& address, quint16 port, QString* error = nullptr);
    void stopSse();
    // Reads (or creates) the bearer token once; sseTokenLoaded() when it is there
    // (before this returns when no keychain is asked).
    void loadSseToken();
    QString sseToken() const { return m_token; } // empty until loaded
    QString sseTokenLocation() const { return m_tokenWhere; }

    // --- NATS ------------------------------------------------------------------------------
    // Publishes every committed event to JetStream from now on (after the engine has
    // started, before the SSE server, whose health and metrics then show its lag).
    bool startPublisher(const NatsPublisher::Options& options, QString* error = nullptr);
    // Stops publishing; the last acknowledged seq is committed, so a later start goes
    // on from there.
    void stopPublisher();
    NatsPublisher* publisher() const { return m_publisher.get(); } // owned; null without one

    // --- demo ------------------------------------------------------------------------------
    bool isDemoRunning() const { return m_demo != nullptr; }

Q_SIGNALS:
    // The engine's, re-emitted on the session's thread.
    void committed(const tw::CommittedBatch& batch);
    void sourceStatusChanged(const QString& id, const tw::SourceStatus& status);
    void namespacesListed(const QString& id, const QString& db, const QList<tw::NamespaceInfo>& namespaces,
                          const QString& error);
    void watchReady(const QString& id, const tw::Namespace& ns);
    void watchFailed(const QString& id, const tw::Namespace& ns,
                     const QString& error); // dropped from the connection
    // A watch was added to or dropped from a connection (by any front end, or because it
    // failed); the workspace is saved already.
    void watchChanged(const QString& id, const tw::Namespace& ns, bool watched);
    void journalFailed(const QString& error);
    void subscriptionsChanged();

    void connectionAdded(const tw::ConnectionSpec& spec);
    void connectionRemoved(const QString& id); // the source has stopped; the id is free
    void connectionFailed(const QString& id, const QString& error);
    void passwordNotStored(const QString& id, const QString& message);

    void sseTokenLoaded(const QString& token, const QString& where);
    void sseStarted(const QUrl& url);
    void sseStopped();
    void sseFailed(const QString& error); // a start deferred until the token was there failed
    void sseClientsChanged();

private:
    struct PendingAdd {
        QString waitsFor; // the id being removed; spec.id differs after a rename
        ConnectionSpec spec;
        bool storePassword = true;
        std::optional<ConnectionSpec> fallback; // brought back when `spec` fails
    };

    bool bringUp(const ConnectionSpec& spec, bool storePassword, QString* error);
    bool isTaken(const QString& id, QString* error) const;
    bool checkAtOnce(const ConnectionSpec& spec, QString* error) const;
    void onPasswordRead(const QString& id, const QString& password, const QString& message);
    void watchAll(const ConnectionSpec& spec);
    static WatchOptions optionsFor(const ConnectionSpec& spec, const Namespace& ns);
    // The connections or their watches changed: saves the workspace (not while one is
    // being applied: it would write back what was just read).
    void connectionsChanged();
    void onSourceRemoved(const QString& id);
    void onWatchFailed(const QString& id, const tw::Namespace& ns, const QString& error);
    bool startSseNow(QString* error);
    void startDemo(const QString& path);
    void stopDemo();
    QList<ConnectionSpec>::iterator find(const QString& id);
    QList<PendingAdd>::iterator findWaiting(const QString& id); // by spec.id

    Options m_options;
    std::unique_ptr<Engine> m_engine;
    std::unique_ptr<DemoWriter> m_demo; // while the demo connection is up
    // Stopped before the engine, freed after it (its committed handler runs on the engine
    // thread until the engine has stopped).
    std::unique_ptr<NatsPublisher> m_publisher;
    // Publishers stopped while the engine runs: the engine thread may still be inside
    // one's committed handler, so they are freed with the engine.
    std::vector<std::unique_ptr<NatsPublisher>> m_stoppedPublishers;
    // What the SSE server's health and metrics read, on its own threads, whenever the
    // publisher starts or stops: guarded, since the window may do either at any time.
    struct PublisherView {
        QMutex mutex;
        const NatsPublisher* publisher = nullptr;
    };
    std::shared_ptr<PublisherView> m_publisherView = std::make_shared<PublisherView>();
    SseServer* m_sse = nullptr; // child; stopped before the engine
    QList<ConnectionSpec> m_connections;
    QSet<QString> m_removing;       // ids whose source is still stopping
    QList<PendingAdd> m_waitingAdd; // in the order asked for
    QString m_workspacePath;
    bool m_applyingWorkspace = false;
    std::unique_ptr<SessionControl> m_control; // destroyed before the children (the SSE server)

    QHostAddress m_sseAddress;
    quint16 m_ssePort = 0;
    bool m_ssePending = false; // startSse() waits for the token
    bool m_tokenLoading = false;
    bool m_tokenLoaded = false;
    QString m_token;
    QString m_tokenWhere;
};

} // namespace tw

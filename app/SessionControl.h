#pragma once

#include "http/SourceControl.h"
#include "sources/Source.h"

#include <QDateTime>
#include <QHash>
#include <QObject>
#include <QPointer>

namespace tw {

class AppSession;
struct ConnectionSpec;

// SourceControl on top of an AppSession: the HTTP API and the MCP front end add and
// remove its connections and watches exactly as the window does, so every front end
// shows them and the session saves them in its workspace.
//
// Lives on the session's thread. A call from any thread is posted there (queued); its
// answer is posted back to the caller's `context` (queued), and dropped when that
// object is gone first. A watch answers once the source reports it live (watchReady),
// after checking that the source has the namespace (404 when it does not); a source
// that takes longer than watchTimeoutMs() gets 503, and the watch goes on starting.
class SessionControl : public QObject, public SourceControl {
    Q_OBJECT
public:
    explicit SessionControl(AppSession* session); // not owned; the session owns us
    ~SessionControl() override;

    void listSources(QObject* context, Done done) override;
    void addSource(const QJsonObject& request, QObject* context, Done done) override;
    void removeSource(const QString& id, bool releaseServerState, QObject* context, Done done) override;
    void listNamespaces(const QString& id, QObject* context, Done done) override;
    void watch(const QString& id, const QString& ns, const QJsonObject& options, QObject* context,
               Done done) override;
    void unwatch(const QString& id, const QString& ns, QObject* context, Done done) override;

    // 30 s by default: a MongoDB change stream behind a slow election, or a large SQLite
    // table's first baseline, can take many seconds. On this object's thread.
    int watchTimeoutMs() const { return m_watchTimeoutMs; }
    void setWatchTimeoutMs(int ms) { m_watchTimeoutMs = ms; }

private:
    struct Live {
        QDateTime at;
        qint64 seq = 0; // the journal's newest seq when it went live: its events follow
    };
    struct Listing { // a namespaces request in flight
        QString id;
        QString db;
        std::function<void(const QList<NamespaceInfo>&, const QString& error)> then;
    };
    struct WatchWaiter {
        QString id;
        Namespace ns;
        int status = 201; // what a success answers: 201 new, 200 watched already
        Done reply;
    };
    struct Removal {
        QString id;
        Done reply;
    };

    // Wraps `done` so that calling it from this thread posts the reply to `context`.
    static Done replyTo(QObject* context, Done done);
    static ControlReply error(int status, const QString& message);
    void post(std::function<void()> work); // to this object's thread, queued

    void doAddSource(const QJsonObject& request, const Done& reply);
    void doRemoveSource(const QString& id, bool releaseServerState, const Done& reply);
    void doListNamespaces(const QString& id, const Done& reply);
    void doWatch(const QString& id, const QString& nsText, const QJsonObject& options, const Done& reply);
    void doUnwatch(const QString& id, const QString& nsText, const Done& reply);
    // Every table, collection and view of the source (each database's, for MongoDB).
    void collectNamespaces(const QString& id,
                           std::function<void(const QList<NamespaceInfo>&, const QString& error)> then);
    void list(const QString& id, const QString& db,
              std::function<void(const QList<NamespaceInfo>&, const QString& error)> then);
    void startWatch(const QString& id, const Namespace& ns, const QJsonObject& options, const Done& reply);

    void onNamespacesListed(const QString& id, const QString& db, const QList<tw::NamespaceInfo>& namespaces,
                            const QString& message);
    void onWatchReady(const QString& id, const tw::Namespace& ns);
    void onWatchFailed(const QString& id, const tw::Namespace& ns, const QString& message);
    void onWatchChanged(const QString& id, const tw::Namespace& ns, bool watched);
    void onConnectionRemoved(const QString& id);
    void onSourceStatus(const QString& id, const tw::SourceStatus& status);

    QJsonObject sourceJson(const ConnectionSpec& spec) const;
    QJsonObject liveJson(const QString& id, const Namespace& ns) const;
    // "orders" names main.orders in a SQLite file, as on the command line.
    Namespace parseNamespace(const ConnectionSpec& spec, const QString& text) const;

    QPointer<AppSession> m_session; // not owned
    int m_watchTimeoutMs = 30000;
    int m_listTimeoutMs = 15000;
    int m_removeTimeoutMs = 15000;
    quint64 m_nextTicket = 1;
    QHash<quint64, Listing> m_listings;
    QHash<quint64, WatchWaiter> m_watchWaiters;
    QHash<quint64, Removal> m_removals;
    QHash<QString, QHash<QString, Live>> m_live; // by source id, then Namespace::toString()
    QHash<QString, SourceStatus> m_statuses;     // as the session reported them
};

} // namespace tw

#pragma once

#include "engine/Subscription.h"
#include "sources/Source.h"

#include <functional>
#include <memory>
#include <optional>
#include <QHash>
#include <QString>

namespace tw {

class Engine;
struct JournalStatus;
struct SseShared;

// Every call the HTTP thread makes into the Engine, which lives on its own thread. The
// HTTP side holds no Engine pointer of its own, so a call that crosses threads reads
// m_engineCalls->… at its call site, and each one here says why it is safe from the
// HTTP thread: a snapshot under the engine's mutex, an atomic, or work posted queued to
// the engine thread. A call that fits none of these does not belong on the HTTP thread.
class EngineCalls {
public:
    // `engine` is not owned and outlives the SSE server; `shared` carries the HttpApi
    // that afterEngine() posts back to.
    EngineCalls(Engine* engine, std::shared_ptr<SseShared> shared);

    Engine* engine() const { return m_engine; } // only to connect its signals, queued

    // Set before the engine starts and never changed.
    QString journalPath() const;
    // Atomics.
    qint64 lastCommittedSeq() const;
    qint64 eventsCommitted() const;
    bool isRunning() const; // QThread::isRunning() is thread-safe
    // Snapshots copied under the engine's mutex.
    QHash<QString, SourceStatus> sourceStatuses() const;
    JournalStatus journalStatus() const; // engine/Engine.h
    QString sourceUri(const QString& id) const;
    QList<SourceNamespace> watchedScopes() const;
    std::optional<Subscription> subscription(const QString& id) const;
    SubscriptionList subscriptions() const;
    // Update the snapshot under the mutex and post the index change to the engine
    // thread (queued): the engine routes to a new subscription only once that ran,
    // which is what afterEngine() waits for.
    Subscription addSubscription(const Subscription& subscription) const;
    bool removeSubscription(const QString& id) const;
    // Runs `done` on the HTTP thread after the engine thread has processed everything
    // queued to it so far (e.g. a new subscription is in its index). Posted queued both
    // ways; dropped when the HttpApi is gone by then.
    void afterEngine(std::function<void()> done) const;

private:
    Engine* m_engine; // not owned
    std::shared_ptr<SseShared> m_shared;
};

} // namespace tw

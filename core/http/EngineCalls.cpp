#include "EngineCalls.h"

#include "engine/Engine.h"
#include "http/SseShared.h"

namespace tw {

EngineCalls::EngineCalls(Engine* engine, std::shared_ptr<SseShared> shared)
    : m_engine(engine)
    , m_shared(std::move(shared)) {}

QString EngineCalls::journalPath() const {
    return m_engine->journalPath();
}

qint64 EngineCalls::lastCommittedSeq() const {
    return m_engine->lastCommittedSeq();
}

qint64 EngineCalls::eventsCommitted() const {
    return m_engine->eventsCommitted();
}

bool EngineCalls::isRunning() const {
    return m_engine->isRunning();
}

QList<SourceNamespace> EngineCalls::watchedScopes() const {
    return m_engine->watchedScopes();
}

QHash<QString, SourceStatus> EngineCalls::sourceStatuses() const {
    return m_engine->sourceStatuses();
}

JournalStatus EngineCalls::journalStatus() const {
    return m_engine->journalStatus();
}

QString EngineCalls::sourceUri(const QString& id) const {
    return m_engine->sourceUri(id);
}

std::optional<Subscription> EngineCalls::subscription(const QString& id) const {
    return m_engine->subscription(id);
}

SubscriptionList EngineCalls::subscriptions() const {
    return m_engine->subscriptions();
}

Subscription EngineCalls::addSubscription(const Subscription& subscription) const {
    return m_engine->addSubscription(subscription);
}

bool EngineCalls::removeSubscription(const QString& id) const {
    return m_engine->removeSubscription(id);
}

void EngineCalls::afterEngine(std::function<void()> done) const {
    std::shared_ptr<SseShared> shared = m_shared;
    QMetaObject::invokeMethod(
        m_engine,
        [shared, done = std::move(done)] {
            QMutexLocker lock(&shared->mutex);
            if (shared->worker)
                QMetaObject::invokeMethod(shared->worker, done, Qt::QueuedConnection);
        },
        Qt::QueuedConnection);
}

} // namespace tw

#include "NatsCommitHook.h"

#include "engine/Engine.h"
#include "nats/NatsHandOff.h"

#include <mutex>

namespace tw {

struct NatsCommitHook::Shared {
    std::mutex mutex;     // held while the receiver runs, so close() waits for it
    Receiver onCommitted; // empty once closed
    std::function<void()> connected;
    QMetaObject::Connection connection; // engine thread only
};

NatsCommitHook::NatsCommitHook(Engine* engine, Receiver onCommitted, std::function<void()> connected)
    : m_engine(engine)
    , m_shared(std::make_shared<Shared>()) {
    m_shared->onCommitted = std::move(onCommitted);
    m_shared->connected = std::move(connected);
    NatsHandOff::post(m_engine, [engine, shared = m_shared] {
        shared->connection = QObject::connect(
            engine, &Engine::committed, engine,
            [shared](const CommittedBatch& batch) {
                std::lock_guard lock(shared->mutex);
                if (shared->onCommitted)
                    shared->onCommitted(batch);
            },
            Qt::DirectConnection);
        std::lock_guard lock(shared->mutex);
        if (shared->onCommitted && shared->connected)
            shared->connected();
    });
}

NatsCommitHook::~NatsCommitHook() {
    close();
}

void NatsCommitHook::close() {
    if (!m_shared)
        return;
    {
        std::lock_guard lock(m_shared->mutex);
        m_shared->onCommitted = nullptr;
        m_shared->connected = nullptr;
    }
    NatsHandOff::post(m_engine, [shared = m_shared] { QObject::disconnect(shared->connection); });
    m_shared.reset();
}

} // namespace tw

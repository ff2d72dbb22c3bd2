#pragma once

#include "model/ChangeBatch.h"

#include <functional>
#include <memory>

namespace tw {

class Engine;

// Hands each batch the engine commits to a receiver that lives on another thread
// (NatsPublisher), called on the engine thread as it emits Engine::committed: a direct
// connection, because the receiver keeps a bounded buffer of its own, so the thread
// hop is that buffer, not the event queue (which would grow without bound while the
// receiver is behind).
//
// The connection is made and removed on the engine thread, by calls posted there
// (NatsHandOff): connected from another thread while the engine emits, the connection
// would be handed over inside QtCore, out of ThreadSanitizer's sight. Commits made
// before it is made are not handed over: the receiver reads those from the journal.
class NatsCommitHook {
public:
    using Receiver = std::function<void(const CommittedBatch&)>;
    // `engine` is not owned and must outlive the hook. `connected` runs on the engine
    // thread once the connection is made.
    NatsCommitHook(Engine* engine, Receiver onCommitted, std::function<void()> connected);
    ~NatsCommitHook(); // close()

    NatsCommitHook(const NatsCommitHook&) = delete;
    NatsCommitHook& operator=(const NatsCommitHook&) = delete;

    // Once it returns, the receiver neither runs nor will run again, whenever the
    // posted disconnection comes.
    void close();

private:
    struct Shared;
    Engine* m_engine;                 // not owned
    std::shared_ptr<Shared> m_shared; // with the calls posted to the engine
};

} // namespace tw

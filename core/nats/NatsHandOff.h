#pragma once

#include <mutex>
#include <QMetaObject>
#include <QObject>
#include <utility>

namespace tw {

// Queues a call to another thread's event loop from a thread of the publisher's
// (NatsPublisher's own std::thread, or the thread it lives in), so that
// ThreadSanitizer can follow the hand-off.
//
// Qt hands a queued call over under a mutex inside QtCore, which the sanitizer cannot
// see. tw::startThread's dispatcher (core/threads/Threads.cpp) makes most hand-offs
// visible, but not one taken by a receiver that is already awake before the poster's
// wakeUp() runs: what the poster built for the call (the functor and its captures,
// allocated and written after its last visible release) is then reported as a race with
// the receiver reading it. In sanitizer builds the poster holds one mutex while it
// builds and queues the call, and the call takes the same mutex before it reads
// anything: an early receiver waits for the poster, and the sanitizer sees the order.
// Other builds rely on Qt's own mutex and add nothing.
struct NatsHandOff {
    template <typename Call> static void post(QObject* receiver, Call call) {
#if defined(__SANITIZE_THREAD__)
        std::lock_guard lock(mutex());
        QMetaObject::invokeMethod(
            receiver,
            [call = std::move(call)]() mutable {
                { std::lock_guard order(mutex()); }
                call();
            },
            Qt::QueuedConnection);
#else
        QMetaObject::invokeMethod(receiver, std::move(call), Qt::QueuedConnection);
#endif
    }

private:
#if defined(__SANITIZE_THREAD__)
    static std::mutex& mutex() {
        static std::mutex m;
        return m;
    }
#endif
};

} // namespace tw

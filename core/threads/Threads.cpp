#include "Threads.h"

#include <QThread>
// Qt has no public API to choose a thread's dispatcher; this file is the one place
// that uses its private header for it (so a Qt upgrade that moves it breaks here only).
#include <QtCore/private/qeventdispatcher_unix_p.h>

#if defined(__SANITIZE_THREAD__)
#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QtCore/private/qobject_p.h>

extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);

namespace {

// QCoreApplication::postEvent queues the event under Qt's own mutex, then calls the
// receiving thread's dispatcher wakeUp(): releasing there and acquiring just before
// each event is delivered gives the sanitizer the happens-before edge Qt's futex
// mutex hides.
class HandoffDispatcher : public QEventDispatcherUNIX {
public:
    void wakeUp() override {
        __tsan_release(this);
        QEventDispatcherUNIX::wakeUp();
    }
};

// wakeUp() runs just after the queue's lock is released, so an event taken by a
// receiver that was already awake may be delivered before it. A signal, though, is
// announced before Qt queues its call: every emission releases this one address and
// every delivery acquires it. That orders more than Qt does (any emission before any
// later delivery), which can hide a race but never reports a false one.
char g_emissions;

// Emissions also acquire it: two threads posting to one receiver at once both write
// its queue of posted events (QtCore compacts it with a memmove the sanitizer sees, no
// frame of QtCore's named above it) under that futex mutex, and without an order
// between them that was reported as a race in the source's first statusChanged.
void releaseOnEmission(QObject*, int, void**) {
    __tsan_acquire(&g_emissions);
    __tsan_release(&g_emissions);
}

bool acquireBeforeDelivery(void**) {
    __tsan_acquire(&g_emissions);
    if (QAbstractEventDispatcher* dispatcher = QAbstractEventDispatcher::instance())
        __tsan_acquire(dispatcher);
    return false; // deliver as usual
}

QSignalSpyCallbackSet g_spyCallbacks = {releaseOnEmission, nullptr, nullptr, nullptr};

// Before main(): the main thread's dispatcher must be installed before the
// application object exists, and the hooks are process-wide.
const bool g_installed = [] {
    QCoreApplication::setEventDispatcher(new HandoffDispatcher);
    QInternal::registerCallback(QInternal::EventNotifyCallback, acquireBeforeDelivery);
    qt_register_signal_spy_callbacks(&g_spyCallbacks);
    return true;
}();

} // namespace
#endif

namespace tw {

void startThread(QThread* thread, EventLoop loop) {
    if (!thread->eventDispatcher()) {
#if defined(__SANITIZE_THREAD__)
        Q_UNUSED(loop);
        thread->setEventDispatcher(new HandoffDispatcher); // owned by the thread
#else
        if (loop == EventLoop::Poll)
            thread->setEventDispatcher(new QEventDispatcherUNIX); // owned by the thread
#endif
    }
    thread->start();
}

} // namespace tw

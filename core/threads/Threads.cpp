#include "Threads.h"

#include <QThread>
// Qt has no public API to choose a thread's dispatcher; this file is the one place
// that uses its private header for it (so a Qt upgrade that moves it breaks here only).
#include <QtCore/private/qeventdispatcher_unix_p.h>

#if defined(__SANITIZE_THREAD__)
#include <QAbstractEventDispatcher>
#include <QCoreApplication>

extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);

namespace {

// QCoreApplication::postEvent queues the event under Qt's own mutex, then calls the
// receiving thread's dispatcher wakeUp(): releasing there and acquiring just before
// each event is delivered gives the sanitizer the happens-before edge Qt's futex
// mutex hides. (wakeUp runs just after the queue's lock is released; an event taken
// in that window by an already-awake receiver is the one case this cannot cover.)
class HandoffDispatcher : public QEventDispatcherUNIX {
public:
    void wakeUp() override {
        __tsan_release(this);
        QEventDispatcherUNIX::wakeUp();
    }
};

bool acquireBeforeDelivery(void**) {
    if (QAbstractEventDispatcher* dispatcher = QAbstractEventDispatcher::instance())
        __tsan_acquire(dispatcher);
    return false; // deliver as usual
}

// Before main(): the main thread's dispatcher must be installed before the
// application object exists, and the delivery hook is process-wide.
const bool g_installed = [] {
    QCoreApplication::setEventDispatcher(new HandoffDispatcher);
    QInternal::registerCallback(QInternal::EventNotifyCallback, acquireBeforeDelivery);
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

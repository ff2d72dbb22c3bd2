#include "Threads.h"

#include <QThread>

#if defined(__SANITIZE_THREAD__)
#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QtCore/private/qeventdispatcher_unix_p.h>

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

void startThread(QThread* thread) {
#if defined(__SANITIZE_THREAD__)
    if (!thread->eventDispatcher())
        thread->setEventDispatcher(new HandoffDispatcher); // owned by the thread
#endif
    thread->start();
}

} // namespace tw

#include "Threads.h"

#include <QThread>
// Qt has no public API to choose a thread's dispatcher; this file is the one place
// that uses its private header for it (so a Qt upgrade that moves it breaks here only).
#include <QtCore/private/qeventdispatcher_unix_p.h>

#if defined(__SANITIZE_THREAD__)
#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QtCore/private/qobject_p.h>

#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

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

// Released by every postEvent once its event is built (releaseBeforePosting, below).
char g_posts;

// Emissions also acquire it: two threads posting to one receiver at once both write
// its queue of posted events (QtCore compacts it with a memmove the sanitizer sees, no
// frame of QtCore's named above it) under that futex mutex, and without an order
// between them that was reported as a race in the source's first statusChanged.
void releaseOnEmission(QObject*, int, void**) {
    __tsan_acquire(&g_emissions);
    __tsan_release(&g_emissions);
}

bool acquireBeforeDelivery(void**) {
    __tsan_acquire(&g_posts);
    __tsan_acquire(&g_emissions);
    if (QAbstractEventDispatcher* dispatcher = QAbstractEventDispatcher::instance())
        __tsan_acquire(dispatcher);
    return false; // deliver as usual
}

QSignalSpyCallbackSet g_spyCallbacks = {releaseOnEmission, nullptr, nullptr, nullptr};

// Neither hook above closes one window: a receiver that is already draining its queue
// can take an event between the poster's unlock and its wakeUp(), and a signal's
// arguments are copied after its emission began (CI's TSan run reported exactly that:
// AppSession reading a CommittedBatch the engine thread had just copied). With the
// redirection below alone, the suites pass; with none of these hooks, four fail.
// (The hooks above stay for a QtCore whose postEvent cannot be redirected.)
// Only a release inside
// QCoreApplication::postEvent itself, after the event was built and before it is
// queued, orders everything the event carries before its delivery. QtCore calls
// postEvent directly (not through its PLT), so no symbol can stand in for it: its
// entry is redirected here instead, when its first instructions are the ones this
// build of QtCore (Debian's 6.4) has, and the prologue they held runs from a copy.

using PostEvent = void (*)(QObject*, QEvent*, int);
PostEvent g_postEvent = nullptr; // the copied prologue, then the rest of Qt's own

void releaseBeforePosting(QObject* receiver, QEvent* event, int priority) {
    __tsan_release(&g_posts);
    g_postEvent(receiver, event, priority);
}

#if defined(__x86_64__)
// push %r13; push %r12; push %rbp; mov %rsi,%rbp; push %rbx; sub $0x58,%rsp: position
// independent, and at least the 12 bytes the jump below overwrites.
constexpr unsigned char kPrologue[] = {0x41, 0x55, 0x41, 0x54, 0x55, 0x48, 0x89,
                                       0xf5, 0x53, 0x48, 0x83, 0xec, 0x58};

// An instrumented store into QtCore's code crashed in the sanitizer's shadow update
// (the first try of this hook), so what reads or writes QtCore's code is not instrumented (and copies byte by
// byte rather than through memcpy/memcmp, which it intercepts).
#define TW_UNINSTRUMENTED __attribute__((no_sanitize("thread"), noinline))

// movabs $target, %rax; jmp *%rax (%rax is free at a call's entry and after a prologue).
TW_UNINSTRUMENTED void writeJump(unsigned char* at, const void* target) {
    const auto address = reinterpret_cast<quintptr>(target);
    at[0] = 0x48;
    at[1] = 0xb8;
    for (int i = 0; i < 8; ++i)
        at[2 + i] = static_cast<unsigned char>(address >> (8 * i));
    at[10] = 0xff;
    at[11] = 0xe0;
}

TW_UNINSTRUMENTED bool startsWithPrologue(const unsigned char* entry) {
    for (size_t i = 0; i < sizeof kPrologue; ++i)
        if (entry[i] != kPrologue[i])
            return false;
    return true;
}

TW_UNINSTRUMENTED void endWithNop(unsigned char* at) {
    *at = 0x90; // never reached
}

bool hookPostEvent() {
    auto* entry = static_cast<unsigned char*>(
        dlsym(RTLD_DEFAULT, "_ZN16QCoreApplication9postEventEP7QObjectP6QEventi"));
    if (!entry || !startsWithPrologue(entry))
        return false;
    const long page = sysconf(_SC_PAGESIZE);
    void* copy = mmap(nullptr, size_t(page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (copy == MAP_FAILED)
        return false;
    auto* code = static_cast<unsigned char*>(copy);
    std::memcpy(code, kPrologue, sizeof kPrologue);
    writeJump(code + sizeof kPrologue, entry + sizeof kPrologue);
    if (mprotect(copy, size_t(page), PROT_READ | PROT_EXEC) != 0)
        return false;
    g_postEvent = reinterpret_cast<PostEvent>(copy);

    auto* first = reinterpret_cast<unsigned char*>(reinterpret_cast<quintptr>(entry) & ~quintptr(page - 1));
    const size_t span = size_t(entry + sizeof kPrologue - first);
    if (mprotect(first, span, PROT_READ | PROT_WRITE | PROT_EXEC) != 0)
        return false;
    writeJump(entry, reinterpret_cast<const void*>(&releaseBeforePosting));
    endWithNop(entry + 12);
    mprotect(first, span, PROT_READ | PROT_EXEC);
    return true;
}
#else
bool hookPostEvent() {
    return false;
}
#endif

// Before main(): the main thread's dispatcher must be installed before the
// application object exists, and the hooks are process-wide.
const bool g_installed = [] {
    QCoreApplication::setEventDispatcher(new HandoffDispatcher);
    QInternal::registerCallback(QInternal::EventNotifyCallback, acquireBeforeDelivery);
    qt_register_signal_spy_callbacks(&g_spyCallbacks);
    if (!hookPostEvent())
        std::fputs("tidewatch (tsan): QCoreApplication::postEvent is not the one this build "
                   "knows; queued calls are ordered by the dispatcher's wake-ups only\n",
                   stderr);
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

#pragma once

class QThread;

namespace tw {

// The threads of Tidewatch, and who owns each:
//
//   main (GUI)        widgets and models, or the headless/MCP front end; owns the AppSession
//   engine            Engine: journal writes, routing, subscriptions (Engine::m_thread)
//   source-<id>       one per Source: blocking driver calls (Engine::addSource)
//   sse               SseServer's worker: HTTP parsing, SSE clients, long polls
//   journal-walfold   folds the WAL back into the journal file (std::thread, WalFolder)
//   journal-trainer   trains the zstd dictionary once (std::thread)
//   nats-publish      NatsPublisher: publishes committed events to JetStream (std::thread)
//                     libnats runs threads of its own that call back into it
//
// Threads with a Qt event loop are started through startThread(), so that sanitizer
// builds can see the hand-off of queued calls (below). Everything that crosses
// between them is a queued signal or a posted functor carrying implicitly shared
// values; see DESIGN.md's "Threads".

// Which event dispatcher a thread's event loop runs.
enum class EventLoop {
    Default, // what Qt picks for the process (GLib on most desktops)
    // Qt's poll()-based dispatcher. The HTTP thread uses it: with 2 000 streams,
    // GLib's per-iteration walk over one source per socket made that thread fall behind
    // at 1 000 events/s (30 s of CPU for 10 s of events), where poll() kept up with 9 s
    // (bench/README.md).
    Poll,
};

// Starts `thread` (not owned) with the given event loop. In ThreadSanitizer builds
// (where Threads.cpp also redirects QCoreApplication::postEvent to release first)
// every thread gets a dispatcher that tells the sanitizer about the hand-off through
// Qt's event queue: QCoreApplication::postEvent and the delivering thread synchronise
// on Qt's internal futex mutex, which the sanitizer cannot see, so every queued call
// would otherwise be reported as a race between the code that built its arguments and
// the slot that reads them.
void startThread(QThread* thread, EventLoop loop = EventLoop::Default);

} // namespace tw

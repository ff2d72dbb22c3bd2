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
//
// Threads with a Qt event loop are started through startThread(), so that sanitizer
// builds can see the hand-off of queued calls (below). Everything that crosses
// between them is a queued signal or a posted functor carrying implicitly shared
// values; see DESIGN.md's "Threads".

// Starts `thread` (not owned). In ThreadSanitizer builds it first installs an event
// dispatcher that tells the sanitizer about the hand-off through Qt's event queue:
// QCoreApplication::postEvent and the delivering thread synchronise on Qt's internal
// futex mutex, which the sanitizer cannot see, so every queued call would otherwise
// be reported as a race between the code that built its arguments and the slot that
// reads them. Elsewhere this is QThread::start().
void startThread(QThread* thread);

} // namespace tw

#pragma once

#include "app/CommandLine.h"

#include "engine/Engine.h"

#include <memory>
#include <QObject>

namespace tw {

class DemoWriter;
class SseServer;

// tidewatch --headless: one engine, one source, one subscription made of --watch and
// --filter; committed events go to stdout as NDJSON, logs to stderr. Exits on
// SIGINT/SIGTERM with the journal checkpointed.
class HeadlessRunner : public QObject {
    Q_OBJECT
public:
    explicit HeadlessRunner(const AppOptions& options, QObject* parent = nullptr);
    ~HeadlessRunner() override;

    // Returns a process exit code when start-up fails, -1 when running.
    int start();
    Engine* engine() const { return m_engine.get(); }

private:
    void onCommitted(const tw::CommittedBatch& batch);
    void fail(const QString& message, int code);
    void replay(qint64 fromSeq);
    void writeEvent(const ChangeEvent& event);
    bool startSse();

    AppOptions m_options;
    std::unique_ptr<Engine> m_engine;
    std::unique_ptr<DemoWriter> m_demo;
    QString m_subscriptionId;
    Subscription m_subscription;
    qint64 m_lastWritten = 0;
    SseServer* m_sse = nullptr; // the SSE server when --sse is given (owned, child)
};

// Installs SIGINT/SIGTERM handlers that quit the application's event loop.
void installQuitOnSignals();

} // namespace tw

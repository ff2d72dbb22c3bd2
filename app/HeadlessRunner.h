#pragma once

#include "AppSession.h"
#include "CommandLine.h"

#include "engine/Engine.h"

#include <memory>
#include <QObject>

namespace tw {

// tidewatch --headless: a front end on the application session with one source and
// one subscription made of --watch and --filter; committed events go to stdout as
// NDJSON, logs to stderr. Exits on SIGINT/SIGTERM with the journal checkpointed.
class HeadlessRunner : public QObject {
    Q_OBJECT
public:
    explicit HeadlessRunner(const AppOptions& options, QObject* parent = nullptr);
    ~HeadlessRunner() override;

    // Returns a process exit code when start-up fails, -1 when running.
    int start();
    Engine* engine() const { return m_engine; }

private:
    void onCommitted(const tw::CommittedBatch& batch);
    void fail(const QString& message, int code);
    void replay(qint64 fromSeq);
    void writeEvent(const ChangeEvent& event);
    bool startSse();
    bool startPublisher();
    bool addCommandLineSource(const QString& uri, const QString& sourceId, bool demo,
                              const QList<Namespace>& namespaces);
    void onSseStarted(const QUrl& url);

    AppOptions m_options;
    std::unique_ptr<AppSession> m_session;
    Engine* m_engine = nullptr; // the session's
    QString m_subscriptionId;
    Subscription m_subscription;
    EventShape m_shape; // of m_subscription: what each NDJSON line holds
    qint64 m_lastWritten = 0;
};

// Installs SIGINT/SIGTERM handlers that quit the application's event loop.
void installQuitOnSignals();

} // namespace tw

#pragma once

#include "AppSession.h"
#include "CommandLine.h"

#include <memory>
#include <QObject>

namespace tw {

namespace mcp {
class McpServer;
class McpStdio;
} // namespace mcp

// tidewatch --mcp: a front end on the application session that speaks the Model Context
// Protocol on stdin/stdout. Sources come from --workspace, --source/--watch and --demo. stdout
// carries protocol messages only: the process's descriptor 1 is pointed at stderr at
// start, so a stray print cannot break the stream. Ends at end of input or on
// SIGINT/SIGTERM with the journal checkpointed.
class McpRunner : public QObject {
    Q_OBJECT
public:
    explicit McpRunner(const AppOptions& options, QObject* parent = nullptr);
    ~McpRunner() override;

    // Returns a process exit code when start-up fails, -1 when running.
    int start();

private:
    AppOptions m_options;
    std::unique_ptr<AppSession> m_session;
    mcp::McpServer* m_server = nullptr; // child
    mcp::McpStdio* m_stdio = nullptr;   // child
    int m_protocolOut = -1;             // the original stdout, owned
};

} // namespace tw

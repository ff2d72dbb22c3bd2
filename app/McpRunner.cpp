#include "McpRunner.h"

#include "mcp/McpServer.h"
#include "mcp/McpStdio.h"
#include "mcp/McpTools.h"

#include <QCoreApplication>

#include <cstdio>
#include <unistd.h>

namespace tw {

namespace {

void logLine(const QString& line) {
    std::fprintf(stderr, "tidewatch: %s\n", qPrintable(line));
    std::fflush(stderr);
}

} // namespace

McpRunner::McpRunner(const AppOptions& options, QObject* parent)
    : QObject(parent)
    , m_options(options) {}

McpRunner::~McpRunner() {
    if (m_session && m_session->isRunning()) {
        m_session->stop();
        logLine(QStringLiteral("stopped; journal checkpointed at seq %1")
                    .arg(m_session->engine()->lastCommittedSeq()));
    }
    if (m_protocolOut >= 0)
        ::close(m_protocolOut);
}

int McpRunner::start() {
    // The protocol keeps the real stdout; everything else that writes to descriptor 1
    // lands on stderr.
    std::fflush(stdout);
    m_protocolOut = ::dup(STDOUT_FILENO);
    if (m_protocolOut < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        logLine(QStringLiteral("--mcp: cannot keep stdout for the protocol"));
        return 1;
    }

    AppSession::Options sessionOptions;
    sessionOptions.journalPath = m_options.journal;
    sessionOptions.demoRate = m_options.demoRate;
    m_session = std::make_unique<AppSession>(sessionOptions);
    if (m_options.moveJournalAside) {
        QString movedTo, error;
        if (!m_session->moveJournalAside(&movedTo, &error)) {
            logLine(error);
            return 1;
        }
        logLine(QStringLiteral("moved the old journal to %1").arg(movedTo));
    }
    Workspace workspace;
    QString error;
    if (!m_options.workspace.isEmpty() && !Workspace::load(m_options.workspace, &workspace, &error)) {
        logLine(QStringLiteral("--workspace: %1").arg(error));
        return 2;
    }
    if (!m_session->start(&error)) {
        logLine(error);
        return 1;
    }
    connect(m_session.get(), &AppSession::watchFailed, this,
            [](const QString& id, const Namespace& ns, const QString& message) {
                logLine(QStringLiteral("watch %1 in %2 failed: %3").arg(ns.toString(), id, message));
            });
    connect(m_session.get(), &AppSession::watchReady, this, [](const QString& id, const Namespace& ns) {
        logLine(QStringLiteral("ready: %1 in %2").arg(ns.toString(), id));
    });
    connect(m_session.get(), &AppSession::connectionFailed, this,
            [](const QString& id, const QString& message) {
                logLine(QStringLiteral("source %1: %2").arg(id, message));
            });
    connect(m_session.get(), &AppSession::journalFailed, this,
            [](const QString& message) { logLine(QStringLiteral("journal: %1 (retrying)").arg(message)); });

    if (!m_options.workspace.isEmpty()) {
        m_session->applyWorkspace(workspace);
        // Sources and watches the control tools change are kept in the same file.
        m_session->setWorkspacePath(m_options.workspace);
    }
    // The session creates the demo database and runs its writer.
    if (m_options.demo && m_options.source.isEmpty() &&
        !m_session->addConnection(AppSession::demoConnection(), &error)) {
        logLine(error);
        return 1;
    }
    if (!m_options.source.isEmpty()) {
        ConnectionSpec spec;
        spec.id = m_options.sourceId;
        spec.uri = m_options.source;
        spec.captureMode = m_options.capture;
        for (const QString& text : std::as_const(m_options.watches))
            spec.watches.append(mcp::McpTools::namespaceIn(spec.uri, text));
        if (!m_session->addConnection(spec, &error)) {
            logLine(error);
            return 2;
        }
    }

    m_server = new mcp::McpServer(m_session.get(), this);
    if (!m_server->open(&error)) {
        logLine(error);
        return 1;
    }
    m_stdio = new mcp::McpStdio(STDIN_FILENO, m_protocolOut, this);
    connect(m_stdio, &mcp::McpStdio::lineReceived, m_server, &mcp::McpServer::handleLine);
    connect(m_stdio, &mcp::McpStdio::lineTooLong, m_server, &mcp::McpServer::handleTooLong);
    connect(m_server, &mcp::McpServer::messageReady, m_stdio, &mcp::McpStdio::write);
    connect(m_stdio, &mcp::McpStdio::closed, this, [] {
        logLine(QStringLiteral("end of input; stopping"));
        QCoreApplication::quit();
    });
    m_stdio->start();
    logLine(QStringLiteral("MCP server on stdin/stdout; journal %1 (last seq %2)")
                .arg(m_session->journalPath())
                .arg(m_session->engine()->lastCommittedSeq()));
    return -1;
}

} // namespace tw

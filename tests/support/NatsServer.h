#pragma once

#include <memory>
#include <QProcess>
#include <QString>
#include <QTemporaryDir>

namespace tw::testsupport {

// A throwaway JetStream server for the suites and the benchmarks: Debian's
// `nats-server -js` with its store in a temporary folder, on a free loopback port.
// stop() and kill() keep the folder and the port, so start() brings back the same
// server with the same streams, as an outage would end.
class NatsServer {
public:
    NatsServer();
    ~NatsServer(); // kills the server and removes the folder

    NatsServer(const NatsServer&) = delete;
    NatsServer& operator=(const NatsServer&) = delete;

    // Starts the server and waits until it accepts connections. Empty on success,
    // else what failed (nats-server missing, the port taken, its log).
    QString start();
    // SIGTERM: JetStream flushes its store and the server exits.
    QString stop();
    // SIGKILL, as a crash would.
    void kill();
    bool isRunning() const { return m_process && m_process->state() == QProcess::Running; }

    int port() const { return m_port; }
    QString url() const { return QStringLiteral("nats://127.0.0.1:%1").arg(m_port); }
    QString storeDir() const;

private:
    QString waitUntilAccepting();

    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<QProcess> m_process;
    int m_port = 0;
};

} // namespace tw::testsupport

#include "NatsServer.h"

#include <QDeadlineTimer>
#include <QTcpServer>
#include <QTcpSocket>

namespace tw::testsupport {

namespace {

int freePort() {
    QTcpServer server;
    if (!server.listen(QHostAddress::LocalHost, 0))
        return 0;
    return server.serverPort();
}

} // namespace

NatsServer::NatsServer()
    : m_dir(std::make_unique<QTemporaryDir>()) {}

NatsServer::~NatsServer() {
    kill();
}

QString NatsServer::storeDir() const {
    return m_dir->filePath(QStringLiteral("store"));
}

QString NatsServer::start() {
    if (isRunning())
        return {};
    if (!m_dir->isValid())
        return QStringLiteral("cannot create a temporary folder for nats-server");
    if (m_port == 0)
        m_port = freePort();
    if (m_port == 0)
        return QStringLiteral("no free loopback port for nats-server");
    m_process = std::make_unique<QProcess>();
    m_process->setProcessChannelMode(QProcess::MergedChannels);
    m_process->start(QStringLiteral("nats-server"),
                     {QStringLiteral("-js"), QStringLiteral("-sd"), storeDir(), QStringLiteral("-p"),
                      QString::number(m_port), QStringLiteral("-a"), QStringLiteral("127.0.0.1")});
    if (!m_process->waitForStarted(10000))
        return QStringLiteral("cannot run nats-server (%1): install the nats-server package")
            .arg(m_process->errorString());
    return waitUntilAccepting();
}

QString NatsServer::waitUntilAccepting() {
    // JetStream recovers its store before the client port opens; a connection that
    // is accepted means the server is ready for JetStream requests too.
    const QDeadlineTimer deadline(30000);
    while (!deadline.hasExpired()) {
        if (m_process->state() != QProcess::Running)
            return QStringLiteral("nats-server exited: %1")
                .arg(QString::fromLocal8Bit(m_process->readAll()).trimmed());
        QTcpSocket probe;
        probe.connectToHost(QHostAddress::LocalHost, quint16(m_port));
        if (probe.waitForConnected(500) && probe.waitForReadyRead(2000) &&
            probe.readAll().startsWith("INFO "))
            return {};
        m_process->waitForReadyRead(50); // not a sleep: returns as soon as the server logs
    }
    return QStringLiteral("nats-server on port %1 did not accept connections within 30 s: %2")
        .arg(m_port)
        .arg(QString::fromLocal8Bit(m_process->readAll()).trimmed());
}

QString NatsServer::stop() {
    if (!isRunning())
        return {};
    m_process->terminate();
    if (!m_process->waitForFinished(30000)) {
        kill();
        return QStringLiteral("nats-server did not stop within 30 s; killed");
    }
    return {};
}

void NatsServer::kill() {
    if (!m_process)
        return;
    if (m_process->state() != QProcess::NotRunning) {
        m_process->kill();
        m_process->waitForFinished(10000);
    }
}

} // namespace tw::testsupport

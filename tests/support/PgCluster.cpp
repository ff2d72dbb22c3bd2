#include "PgCluster.h"

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QTcpServer>

#include <csignal>
#include <unistd.h>

#include <libpq-fe.h>

namespace tw::testsupport {

namespace {

constexpr char kBinDir[] = "/usr/lib/postgresql/15/bin";
constexpr char kOwner[] = "postgres";

int freePort() {
    QTcpServer server;
    if (!server.listen(QHostAddress::LocalHost, 0))
        return 0;
    return server.serverPort();
}

QString connectionError(PGconn* conn) {
    return QString::fromUtf8(PQerrorMessage(conn)).trimmed();
}

} // namespace

PgCluster::PgCluster()
    : PgCluster(Options{}) {}

PgCluster::PgCluster(const Options& options)
    : m_options(options) {}

PgCluster::~PgCluster() {
    if (m_running) {
        runTool(QStringLiteral("pg_ctl"),
                {QStringLiteral("stop"), QStringLiteral("-D"), dataDir(), QStringLiteral("-m"),
                 QStringLiteral("immediate"), QStringLiteral("-w")});
    }
}

QString PgCluster::binDir() const {
    return QString::fromLatin1(kBinDir);
}

QString PgCluster::dataDir() const {
    return m_dir ? m_dir->filePath(QStringLiteral("data")) : QString();
}

QStringList PgCluster::asOwner(const QString& program, const QStringList& arguments) const {
    // root may not run initdb or postgres; any other user runs them as itself.
    if (::geteuid() == 0)
        return QStringList{QStringLiteral("runuser"), QStringLiteral("-u"), QString::fromLatin1(kOwner),
                           QStringLiteral("--"), program} +
               arguments;
    return QStringList{program} + arguments;
}

int PgCluster::runTool(const QString& tool, const QStringList& arguments, QString* output,
                       int timeoutMs) const {
    const QStringList command = asOwner(binDir() + QLatin1Char('/') + tool, arguments);
    QProcess p;
    p.setProcessChannelMode(QProcess::MergedChannels);
    if (m_dir)
        p.setWorkingDirectory(m_dir->path());
    p.start(command.first(), command.mid(1));
    if (!p.waitForFinished(timeoutMs)) {
        p.kill();
        p.waitForFinished(5000);
        if (output)
            *output = QStringLiteral("%1 did not finish within %2 ms: %3")
                          .arg(tool)
                          .arg(timeoutMs)
                          .arg(QString::fromLocal8Bit(p.readAll()));
        return -1;
    }
    if (output)
        *output = QString::fromLocal8Bit(p.readAll());
    return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
}

QString PgCluster::initialise() {
    m_dir = std::make_unique<QTemporaryDir>(QDir::tempPath() + QStringLiteral("/tidewatch-pg-XXXXXX"));
    if (!m_dir->isValid())
        return QStringLiteral("cannot make a temporary folder: ") + m_dir->errorString();
    if (::geteuid() == 0) {
        QProcess chown;
        chown.start(QStringLiteral("chown"),
                    {QStringLiteral("-R"), QStringLiteral("postgres:postgres"), m_dir->path()});
        if (!chown.waitForFinished(10000) || chown.exitCode() != 0)
            return QStringLiteral("cannot hand %1 to the postgres user: %2")
                .arg(m_dir->path(), QString::fromLocal8Bit(chown.readAllStandardError()));
    }
    QString output;
    if (runTool(QStringLiteral("initdb"),
                {QStringLiteral("-D"), dataDir(), QStringLiteral("-U"), QStringLiteral("postgres"),
                 QStringLiteral("--auth=trust"), QStringLiteral("-E"), QStringLiteral("UTF8"),
                 QStringLiteral("--locale=C"), QStringLiteral("--no-sync")},
                &output, 120000) != 0)
        return QStringLiteral("initdb failed: ") + output;
    m_port = freePort();
    if (m_port == 0)
        return QStringLiteral("no free loopback port");
    QFile conf(dataDir() + QStringLiteral("/postgresql.conf"));
    if (!conf.open(QIODevice::Append | QIODevice::Text))
        return QStringLiteral("cannot append to ") + conf.fileName();
    QStringList lines = {
        QStringLiteral("port = %1").arg(m_port),
        QStringLiteral("listen_addresses = '127.0.0.1'"),
        QStringLiteral("unix_socket_directories = '%1'").arg(m_dir->path()),
        QStringLiteral("fsync = off"),
        QStringLiteral("full_page_writes = off"),
        QStringLiteral("wal_level = %1").arg(m_options.walLevel),
        QStringLiteral("max_wal_senders = 20"),
        QStringLiteral("max_replication_slots = 20"),
        QStringLiteral("max_connections = 100"),
        QStringLiteral("shared_buffers = 32MB"),
    };
    lines += m_options.settings;
    conf.write(lines.join(QLatin1Char('\n')).toUtf8() + '\n');
    conf.close();
    m_initialised = true;
    return {};
}

QString PgCluster::start() {
    if (m_running)
        return {};
    if (!m_initialised) {
        const QString error = initialise();
        if (!error.isEmpty())
            return error;
    }
    QString output;
    if (runTool(QStringLiteral("pg_ctl"),
                {QStringLiteral("start"), QStringLiteral("-D"), dataDir(), QStringLiteral("-l"),
                 m_dir->filePath(QStringLiteral("server.log")), QStringLiteral("-w"), QStringLiteral("-t"),
                 QStringLiteral("120")},
                &output, 130000) != 0) {
        QFile log(m_dir->filePath(QStringLiteral("server.log")));
        log.open(QIODevice::ReadOnly);
        return QStringLiteral("pg_ctl start failed: %1\n%2").arg(output, QString::fromUtf8(log.readAll()));
    }
    m_running = true;
    if (value(QStringLiteral("SELECT 1 FROM pg_database WHERE datname = 'tidewatch'"),
              QStringLiteral("postgres")) != QLatin1String("1")) {
        const QString error = exec(QStringLiteral("CREATE DATABASE tidewatch"), QStringLiteral("postgres"));
        if (!error.isEmpty())
            return error;
    }
    if (!m_options.plainRole.isEmpty() &&
        value(QStringLiteral("SELECT 1 FROM pg_roles WHERE rolname = '%1'").arg(m_options.plainRole)) !=
            QLatin1String("1")) {
        const QString error = exec(
            QStringLiteral("CREATE ROLE %1 LOGIN NOREPLICATION; GRANT CREATE ON DATABASE tidewatch TO %1")
                .arg(m_options.plainRole));
        if (!error.isEmpty())
            return error;
    }
    return {};
}

QString PgCluster::stop() {
    if (!m_running)
        return {};
    QString output;
    if (runTool(QStringLiteral("pg_ctl"),
                {QStringLiteral("stop"), QStringLiteral("-D"), dataDir(), QStringLiteral("-m"),
                 QStringLiteral("fast"), QStringLiteral("-w"), QStringLiteral("-t"), QStringLiteral("60")},
                &output, 70000) != 0)
        return QStringLiteral("pg_ctl stop failed: ") + output;
    m_running = false;
    return {};
}

QString PgCluster::kill() {
    if (!m_running)
        return {};
    QFile pidFile(dataDir() + QStringLiteral("/postmaster.pid"));
    if (!pidFile.open(QIODevice::ReadOnly))
        return QStringLiteral("no postmaster.pid in ") + dataDir();
    const pid_t pid = pid_t(pidFile.readLine().trimmed().toLongLong());
    if (pid <= 0 || ::kill(pid, SIGKILL) != 0)
        return QStringLiteral("cannot kill the postmaster (pid %1)").arg(pid);
    // Wait until the port is free again: the children leave once the postmaster is gone.
    for (int i = 0; i < 200 && ::kill(pid, 0) == 0; ++i)
        ::usleep(50000);
    m_running = false;
    return {};
}

QString PgCluster::conninfo(const QString& db) const {
    return QStringLiteral("host=127.0.0.1 port=%1 user=postgres dbname=%2").arg(m_port).arg(db);
}

QString PgCluster::uri(const QString& db, const QString& user) const {
    return QStringLiteral("postgresql://%1@127.0.0.1:%2/%3").arg(user).arg(m_port).arg(db);
}

QList<QStringList> PgCluster::query(const QString& sql, QString* error, const QString& db) const {
    QList<QStringList> rows;
    PGconn* conn = PQconnectdb(conninfo(db).toUtf8().constData());
    if (PQstatus(conn) != CONNECTION_OK) {
        if (error)
            *error = connectionError(conn);
        PQfinish(conn);
        return rows;
    }
    PGresult* result = PQexec(conn, sql.toUtf8().constData());
    const ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        if (error)
            *error = connectionError(conn);
    } else {
        if (error)
            error->clear();
        for (int r = 0; r < PQntuples(result); ++r) {
            QStringList row;
            for (int c = 0; c < PQnfields(result); ++c)
                row.append(QString::fromUtf8(PQgetvalue(result, r, c)));
            rows.append(row);
        }
    }
    PQclear(result);
    PQfinish(conn);
    return rows;
}

QString PgCluster::exec(const QString& sql, const QString& db) const {
    QString error;
    query(sql, &error, db);
    return error;
}

QString PgCluster::value(const QString& sql, const QString& db) const {
    QString error;
    const QList<QStringList> rows = query(sql, &error, db);
    return rows.isEmpty() || rows.first().isEmpty() ? QString() : rows.first().first();
}

} // namespace tw::testsupport

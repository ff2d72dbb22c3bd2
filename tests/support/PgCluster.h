#pragma once

#include <QList>
#include <QString>
#include <QStringList>
#include <QTemporaryDir>

#include <memory>

namespace tw::testsupport {

// A throwaway PostgreSQL 15 cluster for the suites and the benchmarks: initdb and
// pg_ctl from /usr/lib/postgresql/15/bin in a temporary folder, listening on a free
// loopback port, fsync off (the tests need speed, not durability of the server's
// own files), trust authentication. initdb and the server refuse to run as root, so
// when the tests run as root every program runs as the `postgres` user (runuser) and
// the folder is handed to that user.
//
// SQL runs through libpq (exec(), query()), never through psql, so a failure comes
// back as the server's own message.
class PgCluster {
public:
    struct Options {
        QString walLevel = QStringLiteral("logical"); // "replica" for the fallback tests
        QStringList settings;                         // extra "name = value" lines
        // A LOGIN role made at start, without REPLICATION, with CREATE on database
        // "tidewatch" (what capture mode needs): a role of a managed server.
        QString plainRole;
    };

    PgCluster();
    explicit PgCluster(const Options& options);
    ~PgCluster(); // stops the server (immediate) and removes the folder

    PgCluster(const PgCluster&) = delete;
    PgCluster& operator=(const PgCluster&) = delete;

    // initdb on first use, then starts the server and waits until it accepts
    // connections; creates database "tidewatch". Empty on success, else what failed.
    QString start();
    // pg_ctl stop -m fast: the server shuts down cleanly.
    QString stop();
    // SIGKILL to the postmaster, as a crash would; start() brings it back.
    QString kill();
    bool isRunning() const { return m_running; }

    int port() const { return m_port; }
    QString binDir() const;
    QString dataDir() const;
    // libpq conninfo / URI for `db` as the superuser "postgres" (the URI: or as `user`).
    QString conninfo(const QString& db = QStringLiteral("tidewatch")) const;
    QString uri(const QString& db = QStringLiteral("tidewatch"),
                const QString& user = QStringLiteral("postgres")) const;

    // Runs `sql` (one or more statements) on a fresh connection; empty on success,
    // else the server's message.
    QString exec(const QString& sql, const QString& db = QStringLiteral("tidewatch")) const;
    // The rows of a query as text (NULL reads as an empty string); `error` gets the
    // server's message.
    QList<QStringList> query(const QString& sql, QString* error = nullptr,
                             const QString& db = QStringLiteral("tidewatch")) const;
    // The single value of a one-row, one-column query (empty on error).
    QString value(const QString& sql, const QString& db = QStringLiteral("tidewatch")) const;

    // Runs a program of the cluster's bin folder as the cluster's owner; returns its
    // exit code, with stdout and stderr in *output.
    int runTool(const QString& tool, const QStringList& arguments, QString* output = nullptr,
                int timeoutMs = 60000) const;

private:
    QString initialise();
    QStringList asOwner(const QString& program, const QStringList& arguments) const;

    Options m_options;
    std::unique_ptr<QTemporaryDir> m_dir;
    int m_port = 0;
    bool m_initialised = false;
    bool m_running = false;
};

} // namespace tw::testsupport

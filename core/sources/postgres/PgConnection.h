#pragma once

#include <QList>
#include <QString>
#include <QStringList>

struct pg_conn;
typedef struct pg_conn PGconn;

namespace tw {

// One libpq connection, owned. Used for SQL (the catalog, the publication) and, with
// `replication`, for the replication protocol (PgReplication). Every session gets the
// settings PgTypes reads values in: DateStyle ISO, TimeZone UTC, bytea_output hex,
// extra_float_digits 3 (floats round-trip); pgoutput formats values with the
// walsender's settings, so the replication connection gets them too.
class PgConnection {
public:
    PgConnection() = default;
    ~PgConnection();
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    // `conninfo`: a postgresql:// URI or "key=value" pairs, as libpq takes them.
    // Blocking, bounded by connect_timeout (5 s unless the conninfo names one).
    bool open(const QString& conninfo, bool replication, QString* error);
    void close();
    bool isOpen() const { return m_conn != nullptr; }
    // False once the server has gone (its socket closed, an admin shutdown).
    bool isHealthy() const;
    PGconn* raw() const { return m_conn; }
    QString database() const;
    QString user() const;
    // libpq's last error, one line.
    QString lastError() const;

    // Runs one statement (simple query protocol); the rows as text, NULL as a null
    // QString. False with the server's message on failure.
    bool exec(const QString& sql, QList<QStringList>* rows = nullptr, QString* error = nullptr);
    QString quoteIdentifier(const QString& name) const;
    QString quoteLiteral(const QString& text) const;

    // The conninfo parameters libpq would use, with the password left out: what
    // Tidewatch shows of a connection.
    static QString describe(const QString& conninfo);

private:
    PGconn* m_conn = nullptr;
};

} // namespace tw

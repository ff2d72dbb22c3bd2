#include "PgConnection.h"

#include <libpq-fe.h>

#include <vector>

namespace tw {

namespace {

// Why each: PgTypes parses ISO dates in UTC and hex bytea; 3 extra float digits make
// float text exact; a name in pg_stat_activity tells an admin who holds the slot.
constexpr char kSessionOptions[] =
    "-c DateStyle=ISO -c TimeZone=UTC -c bytea_output=hex -c extra_float_digits=3 -c IntervalStyle=iso_8601";

QString oneLine(const char* message) {
    return QString::fromUtf8(message).trimmed().replace(QLatin1Char('\n'), QLatin1String("; "));
}

} // namespace

PgConnection::~PgConnection() {
    close();
}

bool PgConnection::open(const QString& conninfo, bool replication, QString* error) {
    close();
    const QByteArray info = conninfo.toUtf8();
    // expand_dbname: the first "dbname" is the user's whole conninfo; the keys after
    // it override what it says.
    std::vector<const char*> keys = {"dbname", "options", "fallback_application_name", "connect_timeout"};
    std::vector<const char*> values = {info.constData(), kSessionOptions, "tidewatch", "5"};
    char* parseError = nullptr;
    if (PQconninfoOption* parsed = PQconninfoParse(info.constData(), &parseError)) {
        for (PQconninfoOption* o = parsed; o->keyword; ++o)
            if (o->val && qstrcmp(o->keyword, "connect_timeout") == 0) {
                keys.pop_back(); // the user's own timeout wins
                values.pop_back();
            }
        PQconninfoFree(parsed);
    } else {
        if (error)
            *error = QStringLiteral("The PostgreSQL connection string is not valid: %1")
                         .arg(parseError ? oneLine(parseError) : QStringLiteral("cannot parse it"));
        PQfreemem(parseError);
        return false;
    }
    if (replication) {
        keys.push_back("replication");
        values.push_back("database");
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    m_conn = PQconnectdbParams(keys.data(), values.data(), 1);
    if (PQstatus(m_conn) != CONNECTION_OK) {
        if (error)
            *error = oneLine(PQerrorMessage(m_conn));
        close();
        return false;
    }
    return true;
}

void PgConnection::close() {
    if (m_conn) {
        PQfinish(m_conn);
        m_conn = nullptr;
    }
}

bool PgConnection::isHealthy() const {
    return m_conn && PQstatus(m_conn) == CONNECTION_OK;
}

QString PgConnection::database() const {
    return m_conn ? QString::fromUtf8(PQdb(m_conn)) : QString();
}

QString PgConnection::user() const {
    return m_conn ? QString::fromUtf8(PQuser(m_conn)) : QString();
}

QString PgConnection::lastError() const {
    return m_conn ? oneLine(PQerrorMessage(m_conn)) : QStringLiteral("not connected");
}

bool PgConnection::exec(const QString& sql, QList<QStringList>* rows, QString* error) {
    if (!m_conn) {
        if (error)
            *error = QStringLiteral("not connected");
        return false;
    }
    PGresult* result = PQexec(m_conn, sql.toUtf8().constData());
    const ExecStatusType status = PQresultStatus(result);
    const bool ok = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
    if (!ok) {
        if (error) {
            const char* message = PQresultErrorMessage(result);
            *error = oneLine(message && *message ? message : PQerrorMessage(m_conn));
        }
    } else if (rows) {
        rows->clear();
        const int columns = PQnfields(result);
        for (int r = 0; r < PQntuples(result); ++r) {
            QStringList row;
            row.reserve(columns);
            for (int c = 0; c < columns; ++c)
                row.append(PQgetisnull(result, r, c) ? QString()
                                                     : QString::fromUtf8(PQgetvalue(result, r, c)));
            rows->append(row);
        }
    }
    PQclear(result);
    return ok;
}

QString PgConnection::quoteIdentifier(const QString& name) const {
    QString out = name;
    out.replace(QLatin1Char('"'), QLatin1String("\"\""));
    return QLatin1Char('"') + out + QLatin1Char('"');
}

QString PgConnection::quoteLiteral(const QString& text) const {
    QString out = text;
    out.replace(QLatin1Char('\''), QLatin1String("''"));
    // standard_conforming_strings is on since 9.1: a backslash is an ordinary character.
    return QLatin1Char('\'') + out + QLatin1Char('\'');
}

QString PgConnection::describe(const QString& conninfo) {
    char* parseError = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(conninfo.toUtf8().constData(), &parseError);
    PQfreemem(parseError);
    if (!parsed)
        return QStringLiteral("(an invalid connection string)");
    QStringList parts;
    for (PQconninfoOption* o = parsed; o->keyword; ++o)
        if (o->val && *o->val && qstrcmp(o->keyword, "password") != 0 &&
            qstrcmp(o->keyword, "sslpassword") != 0)
            parts.append(
                QStringLiteral("%1=%2").arg(QString::fromUtf8(o->keyword), QString::fromUtf8(o->val)));
    PQconninfoFree(parsed);
    return parts.join(QLatin1Char(' '));
}

} // namespace tw

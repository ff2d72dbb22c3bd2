#include "PgReplication.h"

#include "PgOutputDecoder.h"

#include <QDateTime>

#include <libpq-fe.h>

namespace tw {

namespace {

QString resultError(PGconn* conn, PGresult* result) {
    const char* message = result ? PQresultErrorMessage(result) : nullptr;
    return QString::fromUtf8(message && *message ? message : PQerrorMessage(conn))
        .trimmed()
        .replace(QLatin1Char('\n'), QLatin1String("; "));
}

} // namespace

bool PgReplication::open(const QString& conninfo, QString* error) {
    close();
    return m_conn.open(conninfo, true, error);
}

void PgReplication::close() {
    releaseMessage();
    m_streaming = false;
    m_conn.close();
}

int PgReplication::socket() const {
    return m_conn.raw() ? PQsocket(m_conn.raw()) : -1;
}

bool PgReplication::identifySystem(quint64* xlogPos, QString* error) {
    QList<QStringList> rows;
    if (!m_conn.exec(QStringLiteral("IDENTIFY_SYSTEM"), &rows, error))
        return false;
    if (rows.isEmpty() || rows[0].size() < 3 || !pg::parseLsn(rows[0][2], xlogPos)) {
        *error = QStringLiteral("IDENTIFY_SYSTEM gave no WAL position");
        return false;
    }
    return true;
}

bool PgReplication::createSlot(const QString& slot, quint64* consistentLsn, QString* error,
                               QString* exportedSnapshot) {
    QList<QStringList> rows;
    // NOEXPORT_SNAPSHOT: Tidewatch reads no initial copy; the watch starts from now.
    // The switch from polling or capture exports it for its last read.
    if (!m_conn.exec(QStringLiteral("CREATE_REPLICATION_SLOT %1 LOGICAL pgoutput %2")
                         .arg(m_conn.quoteIdentifier(slot), exportedSnapshot
                                                                ? QStringLiteral("EXPORT_SNAPSHOT")
                                                                : QStringLiteral("NOEXPORT_SNAPSHOT")),
                     &rows, error))
        return false;
    if (exportedSnapshot) {
        *exportedSnapshot = rows.isEmpty() || rows[0].size() < 3 ? QString() : rows[0][2];
        if (exportedSnapshot->isEmpty()) {
            *error = QStringLiteral("CREATE_REPLICATION_SLOT exported no snapshot");
            return false;
        }
    }
    if (rows.isEmpty() || rows[0].size() < 2 || !pg::parseLsn(rows[0][1], consistentLsn)) {
        *error = QStringLiteral("CREATE_REPLICATION_SLOT gave no consistent point");
        return false;
    }
    return true;
}

bool PgReplication::start(const QString& slot, quint64 lsn, const QString& publication, QString* error) {
    // publication_names is a list of identifiers inside a string literal.
    const QString names = m_conn.quoteLiteral(m_conn.quoteIdentifier(publication));
    const QString sql = QStringLiteral("START_REPLICATION SLOT %1 LOGICAL %2 (proto_version '1', "
                                       "publication_names %3)")
                            .arg(m_conn.quoteIdentifier(slot), pg::lsnToString(lsn), names);
    PGresult* result = PQexec(m_conn.raw(), sql.toUtf8().constData());
    if (PQresultStatus(result) != PGRES_COPY_BOTH) {
        *error = resultError(m_conn.raw(), result);
        PQclear(result);
        return false;
    }
    PQclear(result);
    if (PQsetnonblocking(m_conn.raw(), 1) != 0) {
        *error = resultError(m_conn.raw(), nullptr);
        return false;
    }
    m_streaming = true;
    return true;
}

bool PgReplication::consumeInput(QString* error) {
    if (!m_conn.raw() || PQconsumeInput(m_conn.raw()) == 0) {
        *error = m_conn.lastError();
        return false;
    }
    return true;
}

void PgReplication::releaseMessage() {
    if (m_message)
        PQfreemem(m_message);
    m_message = nullptr;
}

PgReplication::Read PgReplication::read(QByteArrayView* message, QString* error) {
    releaseMessage();
    const int length = PQgetCopyData(m_conn.raw(), &m_message, 1);
    if (length > 0) {
        *message = QByteArrayView(m_message, length);
        return Read::Message;
    }
    if (length == 0)
        return Read::Empty;
    if (length == -1) {
        // The stream ended: the server's final result says why (an error or shutdown).
        PGresult* result = PQgetResult(m_conn.raw());
        *error = resultError(m_conn.raw(), result);
        if (error->isEmpty())
            *error = QStringLiteral("the server ended the replication stream");
        PQclear(result);
        m_streaming = false;
        return Read::Ended;
    }
    *error = m_conn.lastError();
    m_streaming = false;
    return Read::Failed;
}

bool PgReplication::sendStatus(quint64 received, quint64 flushed, bool replyRequested, QString* error) {
    const qint64 nowUs = (QDateTime::currentMSecsSinceEpoch() - pg::kPgEpochOffsetMs) * 1000;
    const QByteArray update =
        pg::PgOutputDecoder::standbyStatusUpdate(received, flushed, flushed, nowUs, replyRequested);
    if (PQputCopyData(m_conn.raw(), update.constData(), int(update.size())) != 1 ||
        PQflush(m_conn.raw()) < 0) {
        *error = m_conn.lastError();
        return false;
    }
    return true;
}

} // namespace tw

#pragma once

#include "PgConnection.h"

#include <QByteArray>
#include <QString>

namespace tw {

// The replication connection of a PostgreSQL source: a walsender session
// (replication=database) that creates the logical slot and streams pgoutput's
// messages through libpq's COPY BOTH. Reads never block: the caller waits on
// socket() (a QSocketNotifier) and drains with read(), so the source's thread stays
// free and stop() returns at once.
class PgReplication {
public:
    PgReplication() = default;
    ~PgReplication() { releaseMessage(); }
    PgReplication(const PgReplication&) = delete;
    PgReplication& operator=(const PgReplication&) = delete;

    enum class Read { Message, Empty, Ended, Failed };

    bool open(const QString& conninfo, QString* error);
    void close();
    bool isStreaming() const { return m_streaming; }
    int socket() const;

    // IDENTIFY_SYSTEM: the server's current WAL position.
    bool identifySystem(quint64* xlogPos, QString* error);
    // CREATE_REPLICATION_SLOT name LOGICAL pgoutput: `consistentLsn` is where the slot
    // starts (every transaction committed after it will be streamed). With
    // `exportedSnapshot`, the slot exports the snapshot of that point (everything
    // committed before it, nothing after): another connection may read in it with SET
    // TRANSACTION SNAPSHOT until this connection runs its next command.
    bool createSlot(const QString& slot, quint64* consistentLsn, QString* error,
                    QString* exportedSnapshot = nullptr);
    // START_REPLICATION SLOT … LOGICAL lsn (proto_version '1', publication_names …).
    // lsn 0: from the slot's confirmed position. The server never starts before that
    // position, whatever lsn says.
    bool start(const QString& slot, quint64 lsn, const QString& publication, QString* error);

    // Takes one CopyData message: `message` views libpq's buffer, valid until the next
    // read() or close() (no copy per message: a row is three of them). Empty: nothing
    // complete has arrived (wait on the socket). Ended: the server ended the stream;
    // Failed: the connection broke.
    Read read(QByteArrayView* message, QString* error);
    // Reads what the socket has into libpq's buffer; false when the connection broke.
    bool consumeInput(QString* error);
    // Sends a standby status update; the flushed position is what the server may
    // forget WAL before.
    bool sendStatus(quint64 received, quint64 flushed, bool replyRequested, QString* error);

private:
    void releaseMessage();

    PgConnection m_conn;
    bool m_streaming = false;
    char* m_message = nullptr; // owned (PQfreemem): the last message read()
};

} // namespace tw

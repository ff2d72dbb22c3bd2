#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <QList>
#include <QString>

namespace tw::pg {

// A WAL position as the server writes it ("16/B374D848"), and back.
QString lsnToString(quint64 lsn);
bool parseLsn(QStringView text, quint64* lsn);

// PostgreSQL timestamps on the replication protocol: microseconds since 2000-01-01 UTC.
constexpr qint64 kPgEpochOffsetMs = 946684800000LL;
inline qint64 pgMicrosToEpochMs(qint64 micros) {
    return micros / 1000 + kPgEpochOffsetMs;
}

// One column value of a tuple in pgoutput's text format.
struct PgValue {
    enum class Kind : char { Null = 'n', UnchangedToast = 'u', Text = 't' };
    Kind kind = Kind::Null;
    QByteArray text;
};
using PgTuple = QList<PgValue>;

struct PgColumn {
    QByteArray name;
    quint32 typeOid = 0;
    qint32 typmod = -1;
    bool isKey = false; // part of the replica identity
};

struct PgRelation {
    quint32 oid = 0;
    QByteArray schema;
    QByteArray name;
    char replicaIdentity = 'd'; // 'd' default, 'n' nothing, 'f' full, 'i' index
    QList<PgColumn> columns;
};

// One logical replication message of the pgoutput plugin, protocol version 1.
struct PgMessage {
    enum class Kind {
        Begin,
        Commit,
        Origin,
        Relation,
        Type,
        Insert,
        Update,
        Delete,
        Truncate,
        Message,
        Unknown
    };
    Kind kind = Kind::Unknown;
    char tag = 0;

    // Begin: finalLsn, timestampUs, xid. Commit: commitLsn, endLsn, timestampUs.
    quint64 finalLsn = 0;
    quint64 commitLsn = 0;
    quint64 endLsn = 0;
    qint64 timestampUs = 0;
    quint32 xid = 0;

    PgRelation relation; // Relation

    // Type: a data type's name for its oid.
    quint32 typeOid = 0;
    QByteArray typeSchema;
    QByteArray typeName;

    // Insert, Update, Delete: the relation; the old tuple ('K' its key columns, 'O' the
    // whole old row under REPLICA IDENTITY FULL, 0 none) and the new one.
    quint32 relationOid = 0;
    char oldKind = 0;
    PgTuple oldTuple;
    PgTuple newTuple;

    // Truncate: the relations and the options (1 cascade, 2 restart identity).
    QList<quint32> truncated;
    quint8 truncateOptions = 0;
};

// What a CopyData message of a logical replication stream holds: WAL data (one
// pgoutput message as payload) or a primary keepalive.
struct PgCopyMessage {
    enum class Kind { XLogData, Keepalive, Unknown };
    Kind kind = Kind::Unknown;
    quint64 walStart = 0; // XLogData: where the payload's record starts
    quint64 walEnd = 0;   // the server's current end of WAL
    qint64 sendTimeUs = 0;
    bool replyRequested = false; // Keepalive: answer at once or be disconnected
    QByteArrayView payload;      // XLogData: a view into the decoded buffer
};

// Decodes pgoutput's binary messages and the replication stream's framing. Pure:
// bytes in, values out, no connection; every read is bounds-checked, so a short or
// damaged message is an error, never a read past its end.
class PgOutputDecoder {
public:
    static bool decodeCopyData(QByteArrayView bytes, PgCopyMessage* out, QString* error);
    static bool decode(QByteArrayView bytes, PgMessage* out, QString* error);

    // A standby status update ('r'): written, flushed and applied positions and the
    // client's clock, microseconds since 2000-01-01.
    static QByteArray standbyStatusUpdate(quint64 written, quint64 flushed, quint64 applied, qint64 nowUs,
                                          bool replyRequested = false);
};

} // namespace tw::pg

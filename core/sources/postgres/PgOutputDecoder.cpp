#include "PgOutputDecoder.h"

namespace tw::pg {

QString lsnToString(quint64 lsn) {
    return QStringLiteral("%1/%2")
        .arg(quint32(lsn >> 32), 0, 16)
        .arg(quint32(lsn & 0xffffffffu), 0, 16)
        .toUpper();
}

bool parseLsn(QStringView text, quint64* lsn) {
    const qsizetype slash = text.indexOf(QLatin1Char('/'));
    if (slash <= 0 || slash == text.size() - 1)
        return false;
    bool okHigh = false;
    bool okLow = false;
    const quint64 high = text.left(slash).toULongLong(&okHigh, 16);
    const quint64 low = text.mid(slash + 1).toULongLong(&okLow, 16);
    if (!okHigh || !okLow || high > 0xffffffffu || low > 0xffffffffu)
        return false;
    *lsn = (high << 32) | low;
    return true;
}

namespace {

// A bounds-checked big-endian reader over one message.
class Reader {
public:
    explicit Reader(QByteArrayView bytes)
        : m_bytes(bytes) {}

    bool ok() const { return m_ok; }
    bool atEnd() const { return m_pos >= m_bytes.size(); }
    qsizetype position() const { return m_pos; }

    quint8 u8() { return quint8(take(1, 0)); }
    quint16 u16() { return quint16(take(2, 0)); }
    quint32 u32() { return quint32(take(4, 0)); }
    quint64 u64() { return take(8, 0); }

    // A NUL-terminated string.
    QByteArray string() {
        if (!m_ok)
            return {};
        const qsizetype end = m_bytes.indexOf('\0', m_pos);
        if (end < 0) {
            m_ok = false;
            return {};
        }
        QByteArray out(m_bytes.data() + m_pos, end - m_pos);
        m_pos = end + 1;
        return out;
    }
    QByteArray bytes(qsizetype length) {
        if (!m_ok || length < 0 || m_bytes.size() - m_pos < length) {
            m_ok = false;
            return {};
        }
        QByteArray out(m_bytes.data() + m_pos, length);
        m_pos += length;
        return out;
    }
    QByteArrayView rest() const { return m_ok ? m_bytes.sliced(m_pos) : QByteArrayView(); }

private:
    quint64 take(int size, quint64 fallback) {
        if (!m_ok || m_bytes.size() - m_pos < size) {
            m_ok = false;
            return fallback;
        }
        quint64 value = 0;
        for (int i = 0; i < size; ++i)
            value = (value << 8) | quint8(m_bytes[m_pos + i]);
        m_pos += size;
        return value;
    }

    QByteArrayView m_bytes;
    qsizetype m_pos = 0;
    bool m_ok = true;
};

bool readTuple(Reader& in, PgTuple* tuple) {
    const quint16 count = in.u16();
    tuple->clear();
    tuple->reserve(count);
    for (quint16 i = 0; i < count && in.ok(); ++i) {
        PgValue value;
        switch (in.u8()) {
        case 'n':
            value.kind = PgValue::Kind::Null;
            break;
        case 'u':
            value.kind = PgValue::Kind::UnchangedToast;
            break;
        case 't':
        case 'b': // binary values only when asked for (binary 'true'); kept as the bytes
            value.kind = PgValue::Kind::Text;
            value.text = in.bytes(qint32(in.u32()));
            break;
        default:
            return false;
        }
        tuple->append(std::move(value));
    }
    return in.ok();
}

void appendBigEndian(QByteArray& out, quint64 value) {
    for (int shift = 56; shift >= 0; shift -= 8)
        out.append(char((value >> shift) & 0xff));
}

} // namespace

bool PgOutputDecoder::decodeCopyData(QByteArrayView bytes, PgCopyMessage* out, QString* error) {
    *out = PgCopyMessage{};
    if (bytes.isEmpty()) {
        *error = QStringLiteral("empty CopyData message on the replication stream");
        return false;
    }
    Reader in(bytes.sliced(1));
    switch (bytes[0]) {
    case 'w':
        out->kind = PgCopyMessage::Kind::XLogData;
        out->walStart = in.u64();
        out->walEnd = in.u64();
        out->sendTimeUs = qint64(in.u64());
        out->payload = in.rest();
        break;
    case 'k':
        out->kind = PgCopyMessage::Kind::Keepalive;
        out->walEnd = in.u64();
        out->sendTimeUs = qint64(in.u64());
        out->replyRequested = in.u8() != 0;
        break;
    default:
        out->kind = PgCopyMessage::Kind::Unknown;
        return true;
    }
    if (!in.ok()) {
        *error = QStringLiteral("a short '%1' message on the replication stream (%2 bytes)")
                     .arg(QLatin1Char(bytes[0]))
                     .arg(bytes.size());
        return false;
    }
    return true;
}

bool PgOutputDecoder::decode(QByteArrayView bytes, PgMessage* out, QString* error) {
    *out = PgMessage{};
    if (bytes.isEmpty()) {
        *error = QStringLiteral("an empty pgoutput message");
        return false;
    }
    out->tag = bytes[0];
    Reader in(bytes.sliced(1));
    bool tupleOk = true;
    switch (out->tag) {
    case 'B':
        out->kind = PgMessage::Kind::Begin;
        out->finalLsn = in.u64();
        out->timestampUs = qint64(in.u64());
        out->xid = in.u32();
        break;
    case 'C':
        out->kind = PgMessage::Kind::Commit;
        in.u8(); // flags, unused
        out->commitLsn = in.u64();
        out->endLsn = in.u64();
        out->timestampUs = qint64(in.u64());
        break;
    case 'O':
        out->kind = PgMessage::Kind::Origin;
        out->commitLsn = in.u64();
        out->typeName = in.string(); // the origin's name
        break;
    case 'R': {
        out->kind = PgMessage::Kind::Relation;
        PgRelation& r = out->relation;
        r.oid = in.u32();
        r.schema = in.string();
        r.name = in.string();
        r.replicaIdentity = char(in.u8());
        const quint16 count = in.u16();
        for (quint16 i = 0; i < count && in.ok(); ++i) {
            PgColumn c;
            c.isKey = (in.u8() & 1) != 0;
            c.name = in.string();
            c.typeOid = in.u32();
            c.typmod = qint32(in.u32());
            r.columns.append(std::move(c));
        }
        break;
    }
    case 'Y':
        out->kind = PgMessage::Kind::Type;
        out->typeOid = in.u32();
        out->typeSchema = in.string();
        out->typeName = in.string();
        break;
    case 'I':
        out->kind = PgMessage::Kind::Insert;
        out->relationOid = in.u32();
        if (in.u8() != 'N')
            tupleOk = false;
        else
            tupleOk = readTuple(in, &out->newTuple);
        break;
    case 'U': {
        out->kind = PgMessage::Kind::Update;
        out->relationOid = in.u32();
        quint8 marker = in.u8();
        if (marker == 'K' || marker == 'O') {
            out->oldKind = char(marker);
            tupleOk = readTuple(in, &out->oldTuple);
            marker = in.u8();
        }
        if (tupleOk && marker == 'N')
            tupleOk = readTuple(in, &out->newTuple);
        else
            tupleOk = false;
        break;
    }
    case 'D': {
        out->kind = PgMessage::Kind::Delete;
        out->relationOid = in.u32();
        const quint8 marker = in.u8();
        if (marker == 'K' || marker == 'O') {
            out->oldKind = char(marker);
            tupleOk = readTuple(in, &out->oldTuple);
        } else {
            tupleOk = false;
        }
        break;
    }
    case 'T': {
        out->kind = PgMessage::Kind::Truncate;
        const quint32 count = in.u32();
        out->truncateOptions = in.u8();
        for (quint32 i = 0; i < count && in.ok(); ++i)
            out->truncated.append(in.u32());
        break;
    }
    case 'M':
        out->kind = PgMessage::Kind::Message; // pg_logical_emit_message: not asked for, ignored
        return true;
    default:
        out->kind = PgMessage::Kind::Unknown;
        *error = QStringLiteral("an unknown pgoutput message '%1' (is the slot's plugin pgoutput, "
                                "protocol version 1?)")
                     .arg(QLatin1Char(out->tag));
        return false;
    }
    if (!in.ok() || !tupleOk) {
        *error = QStringLiteral("a damaged pgoutput '%1' message (%2 bytes)")
                     .arg(QLatin1Char(out->tag))
                     .arg(bytes.size());
        return false;
    }
    return true;
}

QByteArray PgOutputDecoder::standbyStatusUpdate(quint64 written, quint64 flushed, quint64 applied,
                                                qint64 nowUs, bool replyRequested) {
    QByteArray out;
    out.reserve(34);
    out.append('r');
    appendBigEndian(out, written);
    appendBigEndian(out, flushed);
    appendBigEndian(out, applied);
    appendBigEndian(out, quint64(nowUs));
    out.append(replyRequested ? '\1' : '\0');
    return out;
}

} // namespace tw::pg

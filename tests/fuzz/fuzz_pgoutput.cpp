// pgoutput messages and the logical replication stream's framing. Input: the bytes of
// one CopyData message; its payload, when it is WAL data, is decoded as a pgoutput
// message, and the input itself is decoded as one too (the decoder is pure and must
// bound every read: a short or damaged message is an error, never a read past its end).
#include "FuzzInput.h"

#include "sources/postgres/PgOutputDecoder.h"

#include <QString>

using namespace tw::pg;

namespace {

void decodeMessage(QByteArrayView bytes) {
    PgMessage message;
    QString error;
    if (!PgOutputDecoder::decode(bytes, &message, &error)) {
        tw::fuzz::check(!error.isEmpty(), "a pgoutput message refused without a message");
        return;
    }
    if (message.kind == PgMessage::Kind::Relation) {
        for (const PgColumn& column : message.relation.columns)
            (void)column.name.size();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // A copy the exact size of the input, so a read past its end is ASan's to see.
    const QByteArray input(reinterpret_cast<const char*>(data), qsizetype(size));
    PgCopyMessage copy;
    QString error;
    if (PgOutputDecoder::decodeCopyData(input, &copy, &error)) {
        if (copy.kind == PgCopyMessage::Kind::XLogData)
            decodeMessage(QByteArray(copy.payload.data(), copy.payload.size()));
    } else {
        tw::fuzz::check(!error.isEmpty(), "a CopyData message refused without a message");
    }
    decodeMessage(input);
    const QString lsn = lsnToString(quint64(size) << 20);
    quint64 back = 0;
    tw::fuzz::check(parseLsn(lsn, &back) && back == quint64(size) << 20, "an LSN does not read back");
    quint64 parsed = 0;
    (void)parseLsn(QString::fromLatin1(input), &parsed);
    return 0;
}

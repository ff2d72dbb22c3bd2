#include "NatsEventMessage.h"

#include "sources/nats/NatsHeaders.h"
#include "sources/nats/NatsSubject.h"

namespace tw {

using natsheaders::kJournal;
using natsheaders::kOperation;
using natsheaders::kSeq;

natsStatus NatsEventMessage::publishAsync(jsCtx* js, const ChangeEvent& event, const QByteArray& json,
                                          const QByteArray& journalId) {
    const QByteArray subject = NatsSubject::forEvent(event);
    const QByteArray seq = QByteArray::number(event.seq());
    const QByteArray msgId = journalId + ':' + seq;
    natsMsg* msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, subject.constData(), nullptr, json.constData(), int(json.size()));
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, kJournal, journalId.constData());
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, kSeq, seq.constData());
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, kOperation, event.operationType().constData());
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msgId.constData();
    if (s == NATS_OK)
        s = js_PublishMsgAsync(js, &msg, &po); // takes the message on success
    natsMsg_Destroy(msg);
    return s;
}

qint64 NatsEventMessage::headerBytes(const ChangeEvent& event, const QByteArray& journalId) {
    // What the server counts against the limits besides the body: "NATS/1.0\r\n", each
    // "Key: value\r\n" (ours and Nats-Msg-Id) and the closing "\r\n". A few bytes over
    // (the seq's digits counted twice over) only makes the check stricter.
    const qint64 seqDigits = QByteArray::number(event.seq()).size();
    return 10 + 2 + qint64(sizeof kJournal) + 3 + journalId.size() + qint64(sizeof kSeq) + 3 + seqDigits +
           qint64(sizeof kOperation) + 3 + event.operationType().size() + qint64(sizeof "Nats-Msg-Id") + 3 +
           journalId.size() + 1 + seqDigits;
}

QByteArray NatsEventMessage::journalOf(natsMsg* msg) {
    const char* value = nullptr;
    return natsMsgHeader_Get(msg, kJournal, &value) == NATS_OK && value ? QByteArray(value) : QByteArray();
}

qint64 NatsEventMessage::seqOf(natsMsg* msg) {
    const char* value = nullptr;
    return natsMsgHeader_Get(msg, kSeq, &value) == NATS_OK && value ? QByteArray(value).toLongLong() : 0;
}

ChangeEvent NatsEventMessage::rejectionStub(const ChangeEvent& event, int bytes, const QString& why) {
    // On the event's own subject, so the consumers that wanted the event see it.
    ChangeEvent stub = ChangeEvent::makeGap(
        event.sourceId(), event.ns(),
        QStringLiteral(
            "event %1 (%2, %3 bytes) was refused by JetStream: %4; the ingest's journal still has it")
            .arg(event.seq())
            .arg(QString::fromUtf8(event.operationType()))
            .arg(bytes)
            .arg(why));
    stub.finalize(event.seq());
    return stub;
}

} // namespace tw

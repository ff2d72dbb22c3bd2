#pragma once

// What NatsPublisher's two files share: its libnats handles and its timings. Not part
// of the publisher's interface.
#include "nats/NatsPublisher.h"

#include "nats/NatsEventMessage.h"
#include "sources/nats/NatsClient.h"

#include <QDateTime>
#include <QLoggingCategory>

#include <nats/nats.h>

Q_DECLARE_LOGGING_CATEGORY(lcNats)

namespace tw {

namespace natspublisher {

// Committed events kept in memory for the publisher; past it they are read back from
// the journal. 65 536 events of 1 KiB is 64 MiB at most, a few seconds of a flood.
constexpr size_t kMaxBuffered = 65536;
// How far back from the stream's end the newest message of this journal is looked
// for at (re)connection. The stream ends with this journal's messages unless other
// journals publish to it too; past this many of theirs, the journal's checkpoint and
// JetStream's duplicate window decide alone.
constexpr int kTailScan = 10000;
// The acknowledged seq is committed at most this often (one small journal
// transaction); a crash in between is covered by reading the stream's tail.
constexpr qint64 kCheckpointEveryMs = 250;
// How long a window may wait for its acknowledgements before the connection is
// treated as lost.
constexpr int kAckWaitMs = 5000;

inline qint64 nowMs() {
    return QDateTime::currentMSecsSinceEpoch();
}

} // namespace natspublisher

struct NatsPublisher::Nats {
    natsOptions* options = nullptr;
    natsConnection* connection = nullptr;
    jsCtx* js = nullptr;
    kvStore* watchList = nullptr; // the bucket the watch list goes to; null while it cannot be opened

    static void onAck(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure) {
        const qint64 seq = NatsEventMessage::seqOf(msg);
        QString why;
        bool rejected = false;
        if (!ack && error) {
            why = error->ErrText ? QString::fromUtf8(error->ErrText) : natsclient::statusText(error->Err);
            // Only a verdict on the message itself is final: a full stream, missing
            // storage or a timeout pass, so those are sent again after a backoff.
            rejected = error->ErrCode == JSStreamMessageExceedsMaximumErr;
        }
        const auto* context = static_cast<const AckContext*>(closure);
        context->publisher->acknowledged(context->generation, seq, ack != nullptr, rejected, why);
        natsMsg_Destroy(msg);
    }

    ~Nats() {
        if (watchList)
            kvStore_Destroy(watchList);
        if (js)
            jsCtx_Destroy(js);
        if (connection) {
            natsConnection_Close(connection);
            natsConnection_Destroy(connection);
        }
        if (options)
            natsOptions_Destroy(options);
    }
};

} // namespace tw

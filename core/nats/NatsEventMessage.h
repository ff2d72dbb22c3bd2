#pragma once

#include "model/ChangeEvent.h"

#include <QByteArray>
#include <QString>

#include <nats/nats.h>

namespace tw {

// The JetStream message one committed event becomes (NatsPublisher): its rendered JSON
// (the bytes SSE sends) on the subject NatsSubject::forEvent() names, with the headers
// of natsheaders and Nats-Msg-Id "<journal id>:<seq>"; and the `gap` stub published in
// its place when JetStream would refuse it.
struct NatsEventMessage {
    // Publishes `event` of the journal `journalId`, rendered as `json` (its toJson(),
    // rendered once by the caller), through `js`'s asynchronous publisher; NATS_OK, or
    // what libnats answered.
    static natsStatus publishAsync(jsCtx* js, const ChangeEvent& event, const QByteArray& json,
                                   const QByteArray& journalId);
    // The bytes of the event's headers, as the server counts them against its limits.
    static qint64 headerBytes(const ChangeEvent& event, const QByteArray& journalId);
    // What a message of the stream says in its headers: the journal it came from, and
    // its seq in that journal (0 when it has none).
    static QByteArray journalOf(natsMsg* msg);
    static qint64 seqOf(natsMsg* msg);
    // The `gap` event published in place of `event` (of `bytes` bytes) refused for `why`.
    static ChangeEvent rejectionStub(const ChangeEvent& event, int bytes, const QString& why);
};

} // namespace tw

#pragma once

#include <QByteArray>
#include <QString>

#include <nats/nats.h>

// What the publisher (NatsPublisher) and a gateway (NatsGatewaySource) do alike with
// libnats.
namespace tw::natsclient {

// A libnats status as a person reads it: the status's own text, and libnats' last error
// on this thread when it says more (which server, which stream, what it answered).
inline QString statusText(natsStatus s) {
    const char* last = nats_GetLastError(nullptr);
    QString text = QString::fromUtf8(natsStatus_GetText(s));
    if (last && *last)
        text += QStringLiteral(" (%1)").arg(QString::fromUtf8(last));
    return text;
}

// Connects to `url` as `name`, giving up after `timeoutMs`, without libnats' own
// reconnection: both reconnect themselves, from where they stand (see their callers).
// *options and *connection are the caller's to destroy, as far as they were made.
inline natsStatus connect(natsOptions** options, natsConnection** connection, const QByteArray& url,
                          const char* name, int timeoutMs) {
    natsStatus s = natsOptions_Create(options);
    if (s == NATS_OK)
        s = natsOptions_SetURL(*options, url.constData());
    if (s == NATS_OK)
        s = natsOptions_SetName(*options, name);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(*options, false);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(*options, timeoutMs);
    if (s == NATS_OK)
        s = natsConnection_Connect(connection, *options);
    return s;
}

} // namespace tw::natsclient

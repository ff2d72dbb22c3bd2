#pragma once

#include "engine/Subscription.h"
#include "http/HttpAdapter.h"
#include "model/ChangeEvent.h"

#include <QByteArray>
#include <QByteArrayView>
#include <QString>

namespace tw {

// How an event is written for a client: its JSON in one of four formats, and its SSE
// frame. The fan-out renders a frame once per event and format, whatever the number of
// clients (SseStreams::onCommitted); the replay and the long poll render per reader.
class EventRenderer {
public:
    // Bit 0: canonical Extended JSON; bit 1: keys only (no full documents).
    enum Format { Relaxed = 0, Canonical = 1, KeysOnly = 2, FormatCount = 4 };

    // The format a request asks for (?format=relaxed|canonical, ?projection=full|keys)
    // over the subscription's projection; sets `error` when a value is unknown.
    static int formatFor(const HttpRequest& request, const Subscription& subscription, QString* error);

    static QByteArray renderJson(const ChangeEvent& event, int format);
    // id: <seq>, event: <operation>, data: <json>.
    static QByteArray renderFrame(const ChangeEvent& event, int format) {
        return renderFrame(event, format, event.seq());
    }
    // The same with another id: a gap stands between seqs and carries none of its own.
    static QByteArray renderFrame(const ChangeEvent& event, int format, qint64 id);
    // A frame of our own (ready, deleted): `data` is one line of JSON; no id line when
    // `id` is negative.
    static QByteArray controlFrame(QByteArrayView event, const QByteArray& data, qint64 id = -1);
};

} // namespace tw

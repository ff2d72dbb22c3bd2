#pragma once

#include "engine/Subscription.h"
#include "filter/EventShape.h"
#include "http/HttpAdapter.h"
#include "model/ChangeEvent.h"

#include <QByteArray>
#include <QByteArrayView>
#include <QString>

namespace tw {

// How an event is written for a client: its JSON in the client's shape (projection, JSON
// flavour, event name) and its SSE frame. The fan-out renders a frame once per event and
// shape, whatever the number of clients (SseStreams::onCommitted); the replay and the
// long poll render per reader through the same functions, so the bytes are the same.
class EventRenderer {
public:
    // The shape a request asks for (?format=relaxed|canonical, ?projection=full|keys|{…},
    // ?event=TEMPLATE) over the subscription's own; sets `error`, naming the parameter and
    // the path, when a value is wrong.
    static EventShape shapeFor(const HttpRequest& request, const Subscription& subscription, QString* error);

    // The shaped JSON of an event for a subscription, as a long poll returns it (wrapped in
    // {"event", "data"} when the subscription names its events): what any other front end
    // (MCP) hands its consumers.
    static QByteArray renderJson(const ChangeEvent& event, const Subscription& subscription, bool canonical) {
        return subscription.shape(canonical).namedJson(event);
    }
    // id: <seq>, event: <name>, data: <json>.
    static QByteArray renderFrame(const ChangeEvent& event, const EventShape& shape) {
        return renderFrame(event, shape, event.seq());
    }
    // The same with another id: a gap stands between seqs and carries none of its own.
    static QByteArray renderFrame(const ChangeEvent& event, const EventShape& shape, qint64 id);
    // A frame of our own (ready, deleted): `data` is one line of JSON; no id line when
    // `id` is negative.
    static QByteArray controlFrame(QByteArrayView event, const QByteArray& data, qint64 id = -1);
};

} // namespace tw

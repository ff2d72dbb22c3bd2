#pragma once

#include "filter/EventTemplate.h"
#include "filter/Projection.h"
#include "model/ChangeEvent.h"

#include <QByteArray>

namespace tw {

// What a consumer receives of an event: the projection of its document, the JSON flavour
// and its event name. Every front end (SSE live and replay, long poll, NDJSON, export,
// MCP) renders through one, so the same shape gives the same bytes wherever it is read.
// The default is the event as committed: full, relaxed, named by its operationType.
// A gap is never shaped: it keeps its reason and positions and the name "gap", so no
// projection or constant name can hide from a consumer that it must re-read.
class EventShape {
public:
    EventShape();
    EventShape(Projection projection, EventTemplate event, bool canonical);

    const Projection& projection() const { return m_projection; }
    const EventTemplate& event() const { return m_event; }
    bool isCanonical() const { return m_canonical; }
    // Two shapes with the same key render the same bytes: the fan-out renders once per
    // event and key, whatever the number of clients.
    const QByteArray& key() const { return m_key; }

    // One line of Extended JSON. The default shape returns the rendering cached at commit.
    QByteArray json(const ChangeEvent& event) const;
    QByteArray eventName(const ChangeEvent& event) const;
    // The JSON where no SSE event line can carry the name (NDJSON, the long poll's
    // `changes`, MCP): json() as it is with the default name, else
    // {"event": "<name>", "data": <json>}.
    QByteArray namedJson(const ChangeEvent& event) const;

private:
    Projection m_projection;
    EventTemplate m_event;
    bool m_canonical = false;
    QByteArray m_key;
};

} // namespace tw

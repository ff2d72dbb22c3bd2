#include "EventShape.h"

#include "model/JsonWriter.h"

namespace tw {

EventShape::EventShape()
    : EventShape(Projection(), EventTemplate(), false) {}

EventShape::EventShape(Projection projection, EventTemplate event, bool canonical)
    : m_projection(std::move(projection))
    , m_event(std::move(event))
    , m_canonical(canonical) {
    // The projection's JSON cannot contain a newline, so the parts cannot run together.
    m_key = (m_canonical ? "c\n" : "r\n") + m_projection.json() + '\n' + m_event.text().toUtf8();
}

QByteArray EventShape::json(const ChangeEvent& event) const {
    const bool gap = event.operation() == Operation::Gap;
    if ((m_projection.isNull() || gap) && !m_canonical)
        return event.toJson();
    const Bson document = gap ? event.document() : m_projection.apply(event.document());
    return document.toJson(m_canonical ? Bson::JsonMode::Canonical : Bson::JsonMode::Relaxed);
}

QByteArray EventShape::eventName(const ChangeEvent& event) const {
    if (event.operation() == Operation::Gap)
        return event.operationType();
    return m_event.render(event);
}

QByteArray EventShape::namedJson(const ChangeEvent& event) const {
    if (m_event.isDefault())
        return json(event);
    const QByteArray data = json(event);
    JsonWriter out(data.size() + 64);
    out.beginObject().key("event").string(QByteArrayView(eventName(event))).key("data").raw(data).endObject();
    return out.take();
}

} // namespace tw

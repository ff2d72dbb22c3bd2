#pragma once

#include "model/ChangeEvent.h"

#include <memory>
#include <QByteArray>
#include <QString>
#include <QStringView>

namespace tw {

// The SSE event name of a subscription, compiled once: a constant
// ("notification_received") or a template of the event's fields in braces
// ("{ns.coll}.{operationType}"); any dotted field of the change event may stand in
// braces. The default (empty text) is "{operationType}", the name every stream had.
//
// A field renders as its value: strings as they are, numbers in decimal, booleans as
// true/false, an ObjectId in hex; a missing field, null, a document or an array renders as
// nothing. Line breaks never reach the name: SSE would read them as the end of the field.
// A template holding a line break or another control character is refused; what a field
// value (operationType included) brings in has each of them replaced by a space.
// Implicitly shared and immutable, like Projection.
class EventTemplate {
public:
    EventTemplate() = default;
    // On error returns the default and sets `error` ("event: unclosed { at offset 5").
    static EventTemplate compile(QStringView text, QString* error);

    bool isDefault() const { return !m_d; }
    // As given; empty for the default.
    QString text() const;
    QByteArray render(const ChangeEvent& event) const;

    friend bool operator==(const EventTemplate& a, const EventTemplate& b) { return a.text() == b.text(); }

private:
    struct Data;
    std::shared_ptr<const Data> m_d;
};

} // namespace tw

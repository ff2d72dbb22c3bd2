#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <QStringView>

namespace tw {

// Writes one compact JSON value, placing commas and colons itself, so no caller joins
// JSON text by hand. Strings are escaped by appendJsonString (ExtendedJson.h), the same
// escaping every event gets. raw() splices a value that is already JSON (an event's
// cached rendering, Subscription::toJson()) without parsing it again: the long poll's
// `changes` array would otherwise parse and re-print every event it returns.
//
//     JsonWriter w;
//     w.beginObject().key("id").string(id).key("subscription").raw(sub.toJson()).endObject();
//
// The writer trusts its caller for structure (keys only inside objects, ends matched)
// and for raw() being one complete JSON value; in debug builds both are asserted.
class JsonWriter {
public:
    explicit JsonWriter(qsizetype reserve = 0);

    JsonWriter& beginObject();
    JsonWriter& endObject();
    JsonWriter& beginArray();
    JsonWriter& endArray();
    JsonWriter& key(QByteArrayView name); // UTF-8, escaped like any string

    JsonWriter& string(QStringView text);
    JsonWriter& string(QByteArrayView utf8);
    JsonWriter& number(qint64 value);
    JsonWriter& boolean(bool value);
    JsonWriter& null();
    JsonWriter& raw(QByteArrayView json);

    const QByteArray& bytes() const { return m_out; }
    QByteArray take() { return std::move(m_out); }

private:
    // Before a value: a comma when one came before it at this level, none after a key.
    void separate();

    QByteArray m_out;
    bool m_needComma = false;
    bool m_afterKey = false;
    int m_depth = 0;
};

} // namespace tw

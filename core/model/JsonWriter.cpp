#include "JsonWriter.h"

#include "ExtendedJson.h"

#include <QString>

namespace tw {

JsonWriter::JsonWriter(qsizetype reserve) {
    if (reserve > 0)
        m_out.reserve(reserve);
}

void JsonWriter::separate() {
    if (m_afterKey)
        m_afterKey = false;
    else if (m_needComma)
        m_out.append(',');
}

JsonWriter& JsonWriter::beginObject() {
    separate();
    m_out.append('{');
    m_needComma = false;
    ++m_depth;
    return *this;
}

JsonWriter& JsonWriter::endObject() {
    Q_ASSERT(m_depth > 0 && !m_afterKey);
    m_out.append('}');
    m_needComma = true;
    --m_depth;
    return *this;
}

JsonWriter& JsonWriter::beginArray() {
    separate();
    m_out.append('[');
    m_needComma = false;
    ++m_depth;
    return *this;
}

JsonWriter& JsonWriter::endArray() {
    Q_ASSERT(m_depth > 0 && !m_afterKey);
    m_out.append(']');
    m_needComma = true;
    --m_depth;
    return *this;
}

JsonWriter& JsonWriter::key(QByteArrayView name) {
    Q_ASSERT(m_depth > 0 && !m_afterKey);
    if (m_needComma)
        m_out.append(',');
    appendJsonString(m_out, name.data(), size_t(name.size()));
    m_out.append(':');
    m_afterKey = true;
    return *this;
}

JsonWriter& JsonWriter::string(QStringView text) {
    return string(QByteArrayView(text.toUtf8()));
}

JsonWriter& JsonWriter::string(QByteArrayView utf8) {
    separate();
    appendJsonString(m_out, utf8.data(), size_t(utf8.size()));
    m_needComma = true;
    return *this;
}

JsonWriter& JsonWriter::number(qint64 value) {
    separate();
    m_out.append(QByteArray::number(value));
    m_needComma = true;
    return *this;
}

JsonWriter& JsonWriter::boolean(bool value) {
    separate();
    m_out.append(value ? "true" : "false");
    m_needComma = true;
    return *this;
}

JsonWriter& JsonWriter::null() {
    separate();
    m_out.append("null");
    m_needComma = true;
    return *this;
}

JsonWriter& JsonWriter::raw(QByteArrayView json) {
    // An empty splice would leave "a":, or a dangling comma: not JSON.
    Q_ASSERT(!json.isEmpty());
    separate();
    m_out.append(json.isEmpty() ? QByteArrayView("null") : json);
    m_needComma = true;
    return *this;
}

} // namespace tw

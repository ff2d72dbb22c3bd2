#include "EventTemplate.h"

#include <vector>

namespace tw {

namespace {

// The top-level fields a change event can carry (ChangeEvent::document() and the server
// fields MongoDB adds); a template naming anything else is a typo.
constexpr const char* kEventFields[] = {"_id",
                                        "seq",
                                        "source",
                                        "operationType",
                                        "ns",
                                        "documentKey",
                                        "fullDocument",
                                        "fullDocumentBeforeChange",
                                        "updateDescription",
                                        "to",
                                        "clusterTime",
                                        "wallTime",
                                        "reason",
                                        "requested",
                                        "firstAvailable",
                                        "resumeAfter",
                                        "operationDescription",
                                        "collectionUUID",
                                        "txnNumber",
                                        "lsid",
                                        "stateBeforeChange"};

QByteArray topField(const QByteArray& path) {
    const qsizetype dot = path.indexOf('.');
    return dot < 0 ? path : path.left(dot);
}

bool isEventField(const QByteArray& path) {
    const QByteArray top = topField(path);
    for (const char* field : kEventFields)
        if (top == field)
            return true;
    return false;
}

// Where `c` ends a line for some reader of the stream: CR and LF for SSE itself, and
// NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR for readers that split on Unicode line
// breaks. Any other control character (NUL, VT, FF, ESC, DEL) has no business in a name
// either, and VT and FF end lines in Python's splitlines().
bool isForbidden(char32_t c) {
    return c < 0x20 || c == 0x7f || c == 0x85 || c == 0x2028 || c == 0x2029;
}

// The bytes of UTF-8 text that can start a forbidden character: the C0 controls and
// DEL themselves, 0xC2 (NEL is C2 85) and 0xE2 (U+2028/9 are E2 80 A8/A9). Checked
// first so that the common name, plain ASCII letters, costs one pass and no copy.
bool mayHoldForbidden(QByteArrayView text) {
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f || byte == 0xc2 || byte == 0xe2)
            return true;
    }
    return false;
}

// What a field value brings into a name, made one line: each forbidden character
// becomes a space, as a line break inside a string value always has.
void appendOneLine(QByteArray& out, QByteArrayView text) {
    if (!mayHoldForbidden(text)) {
        out += text;
        return;
    }
    const QString decoded = QString::fromUtf8(text);
    QString cleaned;
    cleaned.reserve(decoded.size());
    for (const QChar c : decoded)
        cleaned += isForbidden(c.unicode()) ? QChar(u' ') : c;
    out += cleaned.toUtf8();
}

void appendValue(QByteArray& out, const bson_iter_t* it) {
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: {
        uint32_t length = 0;
        const char* text = bson_iter_utf8(it, &length);
        appendOneLine(out, QByteArrayView(text, qsizetype(length)));
        return;
    }
    case BSON_TYPE_INT32:
        out += QByteArray::number(bson_iter_int32(it));
        return;
    case BSON_TYPE_INT64:
        out += QByteArray::number(bson_iter_int64(it));
        return;
    case BSON_TYPE_DOUBLE:
        out += QByteArray::number(bson_iter_double(it), 'g', 17);
        return;
    case BSON_TYPE_BOOL:
        out += bson_iter_bool(it) ? "true" : "false";
        return;
    case BSON_TYPE_OID: {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(it), hex);
        out += hex;
        return;
    }
    default:
        return;
    }
}

} // namespace

struct EventTemplate::Data {
    struct Part {
        QByteArray literal; // when `path` is empty
        QByteArray path;
    };
    QString text;
    std::vector<Part> parts;
    bool constant = true;
};

EventTemplate EventTemplate::compile(QStringView text, QString* error) {
    if (error)
        error->clear();
    const auto fail = [error](const QString& message) {
        if (error)
            *error = QStringLiteral("event: %1").arg(message);
        return EventTemplate();
    };
    if (text.isEmpty() || text == u"{operationType}")
        return {};
    for (qsizetype i = 0; i < text.size(); ++i) {
        const char16_t c = text[i].unicode();
        if (c == u'\n' || c == u'\r' || c == 0x85 || c == 0x2028 || c == 0x2029)
            return fail(QStringLiteral("an event name cannot contain a line break"));
        if (isForbidden(c))
            return fail(QStringLiteral("an event name cannot contain control character U+%1 (at offset %2)")
                            .arg(uint(c), 4, 16, QChar(u'0'))
                            .arg(i));
    }
    auto data = std::make_shared<Data>();
    data->text = text.toString();
    const QByteArray utf8 = text.toUtf8();
    qsizetype i = 0;
    while (i < utf8.size()) {
        const qsizetype open = utf8.indexOf('{', i);
        const qsizetype close = utf8.indexOf('}', i);
        if (close >= 0 && (open < 0 || close < open))
            return fail(QStringLiteral("unmatched } at offset %1; a field is written {ns.coll}").arg(close));
        const qsizetype end = open < 0 ? utf8.size() : open;
        if (end > i)
            data->parts.push_back({utf8.mid(i, end - i), {}});
        if (open < 0)
            break;
        if (close < 0)
            return fail(QStringLiteral("unclosed { at offset %1; a field is written {ns.coll}").arg(open));
        const QByteArray path = utf8.mid(open + 1, close - open - 1).trimmed();
        if (path.isEmpty())
            return fail(QStringLiteral("empty field {} at offset %1; name a field such as {operationType}")
                            .arg(open));
        if (path.contains('{'))
            return fail(QStringLiteral("unclosed { at offset %1; a field is written {ns.coll}").arg(open));
        if (path.startsWith('.') || path.endsWith('.') || path.contains(".."))
            return fail(QStringLiteral("{%1}: field names may not be empty").arg(QString::fromUtf8(path)));
        if (!isEventField(path))
            return fail(QStringLiteral("{%1}: a change event has no field %2 (try {operationType}, "
                                       "{ns.db}, {ns.coll}, {source} or {fullDocument.FIELD})")
                            .arg(QString::fromUtf8(path), QString::fromUtf8(topField(path))));
        data->parts.push_back({{}, path});
        data->constant = false;
        i = close + 1;
    }
    EventTemplate compiled;
    compiled.m_d = std::move(data);
    return compiled;
}

QString EventTemplate::text() const {
    return m_d ? m_d->text : QString();
}

QByteArray EventTemplate::render(const ChangeEvent& event) const {
    if (!m_d) {
        // operationType is whatever the server or the journal said; a name with a line
        // break in it would end the SSE event: line and start a field of its own.
        const QByteArray type = event.operationType();
        if (!mayHoldForbidden(type))
            return type;
        QByteArray name;
        appendOneLine(name, type);
        return name;
    }
    if (m_d->constant)
        return m_d->parts.empty() ? QByteArray() : m_d->parts.front().literal;
    const Bson document = event.document();
    bson_t view;
    const bool readable = document.view(&view);
    QByteArray name;
    for (const Data::Part& part : m_d->parts) {
        if (part.path.isEmpty()) {
            name += part.literal;
        } else if (part.path == "operationType") {
            appendOneLine(name, event.operationType());
        } else if (readable) {
            bson_iter_t it, found;
            if (bson_iter_init(&it, &view) && bson_iter_find_descendant(&it, part.path.constData(), &found))
                appendValue(name, &found);
        }
    }
    return name;
}

} // namespace tw

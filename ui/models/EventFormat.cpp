#include "EventFormat.h"

#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <cstring>

namespace tw::ui::EventFormat {

namespace {

QString elide(QString text, int maxLength) {
    if (maxLength > 1 && text.size() > maxLength)
        text = text.left(maxLength - 1) + QChar(0x2026);
    return text;
}

// Iterates the top-level fields of `doc`, calling f(key, iter).
template <typename F> void forEachField(const Bson& doc, F&& f) {
    bson_t view;
    if (!doc.view(&view))
        return;
    bson_iter_t it;
    if (!bson_iter_init(&it, &view))
        return;
    while (bson_iter_next(&it))
        f(QString::fromUtf8(bson_iter_key(&it)), &it);
}

} // namespace

QString timeText(const ChangeEvent& event) {
    const qint64 ms = event.wallTimeMs();
    if (ms <= 0)
        return QStringLiteral("—");
    return QDateTime::fromMSecsSinceEpoch(ms).toString(QStringLiteral("HH:mm:ss.zzz"));
}

QString namespaceText(const ChangeEvent& event) {
    const QString ns = event.ns().toString();
    if (event.sourceId().isEmpty())
        return ns;
    return ns.isEmpty() ? event.sourceId() : event.sourceId() + QStringLiteral(" · ") + ns;
}

QString operationText(const ChangeEvent& event) {
    return QString::fromLatin1(event.operationType());
}

namespace {

// "id INTEGER, status TEXT NOT NULL", from [{name, type, notNull, …}].
QString columnsText(const QJsonArray& columns) {
    QStringList parts;
    for (const QJsonValue& v : columns) {
        const QJsonObject c = v.toObject();
        QString part = c.value(QLatin1String("name")).toString();
        const QString type = c.value(QLatin1String("type")).toString();
        if (!type.isEmpty())
            part += QLatin1Char(' ') + type;
        if (c.value(QLatin1String("notNull")).toBool())
            part += QStringLiteral(" NOT NULL");
        parts.append(part);
    }
    return parts.join(QStringLiteral(", "));
}

// "index by_status on status ↑, total ↓ (unique)", from a MongoDB index spec. Read
// from the BSON: a JSON object would sort a compound key's columns.
QString indexText(const bson_iter_t* spec) {
    QString name;
    QStringList keys;
    bool unique = false;
    for (const bson_iter_t& field : BsonFields(spec)) {
        const char* key = bson_iter_key(&field);
        if (!strcmp(key, "name") && BSON_ITER_HOLDS_UTF8(&field)) {
            name = QString::fromUtf8(bson_iter_utf8(&field, nullptr));
        } else if (!strcmp(key, "unique")) {
            unique = bson_iter_as_bool(&field);
        } else if (!strcmp(key, "key")) {
            for (const bson_iter_t& column : BsonFields(&field))
                keys.append(QString::fromUtf8(bson_iter_key(&column)) +
                            (bson_iter_as_int64(&column) < 0 ? QStringLiteral(" ↓") : QStringLiteral(" ↑")));
        }
    }
    QString text = QStringLiteral("index %1 on %2").arg(name, keys.join(QStringLiteral(", ")));
    if (unique)
        text += QStringLiteral(" (unique)");
    return text;
}

} // namespace

QStringList schemaLines(const ChangeEvent& event) {
    QStringList lines;
    if (!isSchemaOperation(event.operation()))
        return lines;
    if (event.operation() == Operation::Rename)
        lines.append(QStringLiteral("renamed to ") + event.renameTarget().toString());
    const QJsonObject description = QJsonDocument::fromJson(event.extra().toJson())
                                        .object()
                                        .value(QLatin1String("operationDescription"))
                                        .toObject();
    bson_t extra;
    bson_iter_t it, indexes;
    if (event.extra().view(&extra) && bson_iter_init(&it, &extra) &&
        bson_iter_find_descendant(&it, "operationDescription.indexes", &indexes))
        for (const bson_iter_t& spec : BsonFields(&indexes))
            lines.append(indexText(&spec));
    const bool hasBefore = description.contains(QLatin1String("previousColumns"));
    if (hasBefore)
        lines.append(QStringLiteral("columns before: ") +
                     columnsText(description.value(QLatin1String("previousColumns")).toArray()));
    if (description.contains(QLatin1String("columns")))
        lines.append((hasBefore ? QStringLiteral("columns after: ") : QStringLiteral("columns: ")) +
                     columnsText(description.value(QLatin1String("columns")).toArray()));
    return lines;
}

namespace {

// "{}" / "{…1 field}" / "{…3 fields}", and the same for arrays with items.
QString containerText(const bson_iter_t* iter, const char* open, const char* close, const char* one,
                      const char* many) {
    bson_iter_t child;
    int count = 0;
    if (bson_iter_recurse(iter, &child))
        while (bson_iter_next(&child))
            ++count;
    if (count == 0)
        return QLatin1String(open) + QLatin1String(close);
    return QStringLiteral("%1…%2 %3%4")
        .arg(QLatin1String(open))
        .arg(count)
        .arg(QLatin1String(count == 1 ? one : many), QLatin1String(close));
}

} // namespace

QString valueText(const bson_iter_t* iter, int maxLength) {
    switch (bson_iter_type(iter)) {
    case BSON_TYPE_UTF8: {
        uint32_t length = 0;
        const char* text = bson_iter_utf8(iter, &length);
        return QLatin1Char('"') + elide(QString::fromUtf8(text, qsizetype(length)), maxLength) +
               QLatin1Char('"');
    }
    case BSON_TYPE_INT32:
        return QString::number(bson_iter_int32(iter));
    case BSON_TYPE_INT64:
        return QString::number(bson_iter_int64(iter));
    case BSON_TYPE_DOUBLE:
        return QString::number(bson_iter_double(iter), 'g', 15);
    case BSON_TYPE_BOOL:
        return bson_iter_bool(iter) ? QStringLiteral("true") : QStringLiteral("false");
    case BSON_TYPE_NULL:
        return QStringLiteral("null");
    case BSON_TYPE_UNDEFINED:
        return QStringLiteral("undefined");
    case BSON_TYPE_DATE_TIME:
        return QDateTime::fromMSecsSinceEpoch(bson_iter_date_time(iter), Qt::UTC).toString(Qt::ISODateWithMs);
    case BSON_TYPE_OID: {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(iter), hex);
        return QStringLiteral("ObjectId(%1)").arg(QLatin1String(hex));
    }
    case BSON_TYPE_DECIMAL128: {
        bson_decimal128_t value;
        char text[BSON_DECIMAL128_STRING];
        if (bson_iter_decimal128(iter, &value)) {
            bson_decimal128_to_string(&value, text);
            return QString::fromLatin1(text);
        }
        return QStringLiteral("Decimal128");
    }
    case BSON_TYPE_TIMESTAMP: {
        uint32_t t = 0, i = 0;
        bson_iter_timestamp(iter, &t, &i);
        return QStringLiteral("Timestamp(%1, %2)").arg(t).arg(i);
    }
    case BSON_TYPE_DOCUMENT:
        return containerText(iter, "{", "}", "field", "fields");
    case BSON_TYPE_ARRAY:
        // Not "[2]", which reads as an array holding the number 2.
        return containerText(iter, "[", "]", "item", "items");
    case BSON_TYPE_BINARY:
        return QStringLiteral("Binary");
    case BSON_TYPE_REGEX: {
        const char* options = nullptr;
        const char* pattern = bson_iter_regex(iter, &options);
        return QStringLiteral("/%1/%2").arg(QString::fromUtf8(pattern), QString::fromUtf8(options));
    }
    default:
        return QStringLiteral("…");
    }
}

QString keyText(const ChangeEvent& event) {
    QString text;
    int fields = 0;
    forEachField(event.documentKey(), [&](const QString& key, const bson_iter_t* it) {
        if (fields++ > 0)
            text += QStringLiteral(", ");
        // A lone _id is the common case: show just its value.
        text += key == QLatin1String("_id") ? valueText(it, 40) : key + QLatin1Char('=') + valueText(it, 40);
    });
    return text;
}

QString summaryText(const ChangeEvent& event) {
    constexpr int kMaxFields = 6; // more does not fit a table cell; the detail shows everything
    QString text;
    int shown = 0;
    int total = 0;
    const auto add = [&](const QString& part) {
        ++total;
        if (shown >= kMaxFields)
            return;
        if (shown++ > 0)
            text += QStringLiteral(", ");
        text += part;
    };
    switch (event.operation()) {
    case Operation::Update: {
        bson_t view;
        const Bson desc = event.updateDescription();
        if (desc.view(&view)) {
            bson_iter_t it, child;
            if (bson_iter_init_find(&it, &view, "updatedFields") && bson_iter_recurse(&it, &child))
                while (bson_iter_next(&child))
                    add(QString::fromUtf8(bson_iter_key(&child)) + QStringLiteral(" → ") +
                        valueText(&child, 40));
            QStringList removed;
            if (bson_iter_init_find(&it, &view, "removedFields") && bson_iter_recurse(&it, &child))
                while (bson_iter_next(&child))
                    if (BSON_ITER_HOLDS_UTF8(&child))
                        removed.append(QString::fromUtf8(bson_iter_utf8(&child, nullptr)));
            if (!removed.isEmpty())
                add(QStringLiteral("removed: ") + removed.join(QStringLiteral(", ")));
        }
        break;
    }
    case Operation::Insert:
    case Operation::Replace:
        forEachField(event.fullDocument(), [&](const QString& key, const bson_iter_t* it) {
            if (key != QLatin1String("_id"))
                add(key + QLatin1Char('=') + valueText(it, 30));
        });
        break;
    case Operation::Delete:
        return QString();
    case Operation::Truncate:
        return QObject::tr("every row removed (TRUNCATE)");
    case Operation::Rename:
        return QStringLiteral("→ ") + event.renameTarget().toString();
    case Operation::Ddl:
        return schemaLines(event).join(QStringLiteral("; "));
    case Operation::Gap:
    case Operation::Invalidate:
        return event.reason();
    default:
        return QString();
    }
    if (shown < total)
        text += QStringLiteral(" (+%1 more)").arg(total - shown);
    return text;
}

namespace {

void collectPaths(const Bson& desc, const char* field, bool keysAreValues, QSet<QString>* out) {
    bson_t view;
    if (!desc.view(&view))
        return;
    bson_iter_t it, child;
    if (!bson_iter_init_find(&it, &view, field) || !bson_iter_recurse(&it, &child))
        return;
    while (bson_iter_next(&child)) {
        if (keysAreValues)
            out->insert(QString::fromUtf8(bson_iter_key(&child)));
        else if (BSON_ITER_HOLDS_UTF8(&child))
            out->insert(QString::fromUtf8(bson_iter_utf8(&child, nullptr)));
    }
}

} // namespace

QSet<QString> updatedPaths(const ChangeEvent& event) {
    QSet<QString> paths;
    collectPaths(event.updateDescription(), "updatedFields", true, &paths);
    return paths;
}

QSet<QString> removedPaths(const ChangeEvent& event) {
    QSet<QString> paths;
    collectPaths(event.updateDescription(), "removedFields", false, &paths);
    return paths;
}

bool isDark(const QPalette& palette) {
    return palette.color(QPalette::Base).lightness() < 128;
}

QColor operationColor(Operation op, const QPalette& palette) {
    // Two shades per hue: the dark-theme ones are lighter so they keep contrast on a
    // near-black base.
    const bool dark = isDark(palette);
    switch (op) {
    case Operation::Insert:
        return dark ? QColor(0x6c, 0xd0, 0x7a) : QColor(0x1a, 0x7f, 0x37);
    case Operation::Update:
        return dark ? QColor(0x6c, 0xb6, 0xff) : QColor(0x09, 0x69, 0xda);
    case Operation::Replace:
        return dark ? QColor(0xc2, 0x97, 0xff) : QColor(0x82, 0x50, 0xdf);
    case Operation::Delete:
    case Operation::Truncate:
        return dark ? QColor(0xff, 0x7b, 0x72) : QColor(0xcf, 0x22, 0x2e);
    case Operation::Gap:
    case Operation::Invalidate:
        return dark ? QColor(0xf0, 0xb7, 0x2f) : QColor(0x9a, 0x67, 0x00);
    case Operation::Drop:
    case Operation::Rename:
    case Operation::DropDatabase:
    case Operation::Ddl:
        // Schema changes: teal, a hue no data change uses.
        return dark ? QColor(0x4f, 0xd1, 0xc5) : QColor(0x0b, 0x72, 0x85);
    default:
        return dark ? QColor(0xe3, 0x9b, 0x5a) : QColor(0xbc, 0x4c, 0x00);
    }
}

QString prettyJson(QByteArrayView compact) {
    const QString in = QString::fromUtf8(compact);
    QString out;
    out.reserve(in.size() * 2);
    int depth = 0;
    bool inString = false;
    const auto newline = [&] {
        out += QLatin1Char('\n');
        out += QString(depth * 2, QLatin1Char(' '));
    };
    for (qsizetype i = 0; i < in.size(); ++i) {
        const QChar c = in.at(i);
        if (inString) {
            out += c;
            if (c == QLatin1Char('\\') && i + 1 < in.size())
                out += in.at(++i);
            else if (c == QLatin1Char('"'))
                inString = false;
            continue;
        }
        switch (c.unicode()) {
        case '"':
            inString = true;
            out += c;
            break;
        case '{':
        case '[': {
            // Keep empty containers on one line: "{}", "[]".
            qsizetype j = i + 1;
            while (j < in.size() && in.at(j) == QLatin1Char(' '))
                ++j;
            if (j < in.size() && (in.at(j) == QLatin1Char('}') || in.at(j) == QLatin1Char(']'))) {
                out += c;
                out += in.at(j);
                i = j;
                break;
            }
            out += c;
            ++depth;
            newline();
            break;
        }
        case '}':
        case ']':
            --depth;
            newline();
            out += c;
            break;
        case ',':
            out += c;
            newline();
            break;
        case ':':
            out += QStringLiteral(": ");
            break;
        case ' ':
        case '\n':
        case '\t':
        case '\r':
            break;
        default:
            out += c;
        }
    }
    return out;
}

} // namespace tw::ui::EventFormat

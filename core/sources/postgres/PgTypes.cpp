#include "PgTypes.h"

#include "model/Bson.h"

#include <QByteArray>

#include <charconv>

namespace tw::pg {

namespace {

void appendText(bson_t* doc, const char* key, int keyLength, QByteArrayView text) {
    bson_append_utf8(doc, key, keyLength, text.data(), int(text.size()));
}

template <typename T> bool parseInteger(QByteArrayView text, T* out) {
    const char* end = text.data() + text.size();
    const auto result = std::from_chars(text.data(), end, *out);
    return result.ec == std::errc() && result.ptr == end;
}

bool parseDouble(QByteArrayView text, double* out) {
    const char* end = text.data() + text.size();
    const auto result = std::from_chars(text.data(), end, *out);
    return result.ec == std::errc() && result.ptr == end;
}

int hexDigit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

// Hex digits (dashes skipped for a uuid) into bytes; false on anything else.
bool decodeHex(QByteArrayView text, QByteArray* out, bool skipDashes) {
    out->clear();
    out->reserve(text.size() / 2);
    int high = -1;
    for (const char c : text) {
        if (skipDashes && c == '-')
            continue;
        const int digit = hexDigit(c);
        if (digit < 0)
            return false;
        if (high < 0) {
            high = digit;
        } else {
            out->append(char(high << 4 | digit));
            high = -1;
        }
    }
    return high < 0;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
qint64 daysFromCivil(qint64 y, unsigned m, unsigned d) {
    y -= m <= 2;
    const qint64 era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = unsigned(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + qint64(doe) - 719468;
}

bool digits(QByteArrayView text, qsizetype pos, int count, int* out) {
    if (pos + count > text.size())
        return false;
    int value = 0;
    for (int i = 0; i < count; ++i) {
        const char c = text[pos + i];
        if (c < '0' || c > '9')
            return false;
        value = value * 10 + (c - '0');
    }
    *out = value;
    return true;
}

void appendJson(bson_t* doc, const char* key, int keyLength, QByteArrayView text) {
    // Any JSON value (an object, an array, a scalar) parsed under one key of a wrapper
    // document, then moved across: libbson only parses whole documents.
    QByteArray wrapped;
    wrapped.reserve(text.size() + 8);
    wrapped.append("{\"v\":");
    wrapped.append(text.data(), text.size());
    wrapped.append('}');
    const Bson parsed = Bson::fromJson(wrapped);
    bson_t view;
    bson_iter_t it;
    if (parsed.view(&view) && bson_iter_init_find(&it, &view, "v")) {
        bson_append_value(doc, key, keyLength, bson_iter_value(&it));
        return;
    }
    appendText(doc, key, keyLength, text);
}

// One level of PostgreSQL's array text format: {a,"b c",NULL,{nested}}. `pos` stands
// on the '{' and ends after the matching '}'. False when the text is not well formed.
bool appendArray(bson_t* doc, const char* key, int keyLength, quint32 elementType, QByteArrayView text,
                 qsizetype& pos) {
    if (pos >= text.size() || text[pos] != '{')
        return false;
    ++pos;
    bson_t child;
    bson_append_array_begin(doc, key, keyLength, &child);
    int index = 0;
    bool ok = true;
    bool expectElement = true;
    while (ok && pos < text.size() && text[pos] != '}') {
        char indexKey[16];
        const char* ikey = nullptr;
        const size_t ikeyLength = bson_uint32_to_string(uint32_t(index), &ikey, indexKey, sizeof indexKey);
        if (!expectElement) {
            if (text[pos] != ',') {
                ok = false;
                break;
            }
            ++pos;
        }
        if (pos >= text.size()) {
            ok = false;
            break;
        }
        if (text[pos] == '{') {
            ok = appendArray(&child, ikey, int(ikeyLength), elementType, text, pos);
        } else if (text[pos] == '"') {
            QByteArray element;
            ++pos;
            while (pos < text.size() && text[pos] != '"') {
                if (text[pos] == '\\' && pos + 1 < text.size())
                    ++pos;
                element.append(text[pos]);
                ++pos;
            }
            if (pos >= text.size())
                ok = false;
            else
                ++pos;
            if (ok)
                appendValue(&child, ikey, int(ikeyLength), elementType, element);
        } else {
            const qsizetype start = pos;
            while (pos < text.size() && text[pos] != ',' && text[pos] != '}')
                ++pos;
            const QByteArrayView element = text.sliced(start, pos - start);
            if (element == "NULL")
                bson_append_null(&child, ikey, int(ikeyLength));
            else
                appendValue(&child, ikey, int(ikeyLength), elementType, element);
        }
        ++index;
        expectElement = false;
    }
    if (ok && pos < text.size() && text[pos] == '}')
        ++pos;
    else
        ok = false;
    bson_append_array_end(doc, &child);
    return ok;
}

} // namespace

quint32 arrayElementType(quint32 typeOid) {
    switch (typeOid) {
    case 1000:
        return oid::Bool;
    case 1001:
        return oid::Bytea;
    case 1005:
        return oid::Int2;
    case 1007:
        return oid::Int4;
    case 1009:
        return oid::Text;
    case 1014:
        return oid::Bpchar;
    case 1015:
        return oid::Varchar;
    case 1016:
        return oid::Int8;
    case 1021:
        return oid::Float4;
    case 1022:
        return oid::Float8;
    case 1028:
        return oid::Oid;
    case 1115:
        return oid::Timestamp;
    case 1182:
        return oid::Date;
    case 1185:
        return oid::TimestampTz;
    case 1231:
        return oid::Numeric;
    case 199:
        return oid::Json;
    case 2951:
        return oid::Uuid;
    case 3807:
        return oid::Jsonb;
    default:
        return 0;
    }
}

bool parseTimestamp(QByteArrayView text, qint64* epochMs) {
    int year = 0, month = 0, day = 0;
    if (!digits(text, 0, 4, &year) || text.size() < 10 || text[4] != '-' || !digits(text, 5, 2, &month) ||
        text[7] != '-' || !digits(text, 8, 2, &day) || month < 1 || month > 12 || day < 1 || day > 31)
        return false;
    qint64 ms = daysFromCivil(year, unsigned(month), unsigned(day)) * 86400000LL;
    qsizetype pos = 10;
    if (pos < text.size() && (text[pos] == ' ' || text[pos] == 'T')) {
        int hour = 0, minute = 0, second = 0;
        if (!digits(text, pos + 1, 2, &hour) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
            !digits(text, pos + 4, 2, &minute) || pos + 6 >= text.size() || text[pos + 6] != ':' ||
            !digits(text, pos + 7, 2, &second))
            return false;
        ms += (hour * 3600LL + minute * 60LL + second) * 1000LL;
        pos += 9;
        if (pos < text.size() && text[pos] == '.') {
            ++pos;
            int scale = 100;
            while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
                ms += (text[pos] - '0') * scale / 1; // ms digits; finer ones truncate
                scale /= 10;
                ++pos;
                if (scale == 0) {
                    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9')
                        ++pos;
                    break;
                }
            }
        }
    }
    if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
        const int sign = text[pos] == '+' ? 1 : -1;
        int hours = 0, minutes = 0, seconds = 0;
        if (!digits(text, pos + 1, 2, &hours))
            return false;
        pos += 3;
        if (pos < text.size() && text[pos] == ':') {
            if (!digits(text, pos + 1, 2, &minutes))
                return false;
            pos += 3;
            if (pos < text.size() && text[pos] == ':') {
                if (!digits(text, pos + 1, 2, &seconds))
                    return false;
                pos += 3;
            }
        }
        ms -= sign * (hours * 3600LL + minutes * 60LL + seconds) * 1000LL;
    }
    if (pos != text.size())
        return false;
    *epochMs = ms;
    return true;
}

void appendValue(bson_t* doc, const char* key, int keyLength, quint32 typeOid, QByteArrayView text) {
    switch (typeOid) {
    case oid::Int2:
    case oid::Int4: {
        qint32 v = 0;
        if (parseInteger(text, &v)) {
            bson_append_int32(doc, key, keyLength, v);
            return;
        }
        break;
    }
    case oid::Int8: {
        qint64 v = 0;
        if (parseInteger(text, &v)) {
            bson_append_int64(doc, key, keyLength, v);
            return;
        }
        break;
    }
    case oid::Float4:
    case oid::Float8: {
        double v = 0;
        if (parseDouble(text, &v)) {
            bson_append_double(doc, key, keyLength, v);
            return;
        }
        break;
    }
    case oid::Numeric: {
        const QByteArray copy = text.toByteArray(); // libbson wants a terminated string
        bson_decimal128_t v;
        if (bson_decimal128_from_string(copy.constData(), &v)) {
            bson_append_decimal128(doc, key, keyLength, &v);
            return;
        }
        break;
    }
    case oid::Bool:
        if (text == "t" || text == "f") {
            bson_append_bool(doc, key, keyLength, text == "t");
            return;
        }
        break;
    case oid::Date:
    case oid::Timestamp:
    case oid::TimestampTz: {
        qint64 ms = 0;
        if (parseTimestamp(text, &ms)) {
            bson_append_date_time(doc, key, keyLength, ms);
            return;
        }
        break;
    }
    case oid::Uuid: {
        QByteArray bytes;
        if (decodeHex(text, &bytes, true) && bytes.size() == 16) {
            bson_append_binary(doc, key, keyLength, BSON_SUBTYPE_UUID,
                               reinterpret_cast<const uint8_t*>(bytes.constData()), 16);
            return;
        }
        break;
    }
    case oid::Bytea: {
        QByteArray bytes;
        if (text.startsWith("\\x") && decodeHex(text.sliced(2), &bytes, false)) {
            bson_append_binary(doc, key, keyLength, BSON_SUBTYPE_BINARY,
                               reinterpret_cast<const uint8_t*>(bytes.constData()), uint32_t(bytes.size()));
            return;
        }
        break;
    }
    case oid::Json:
    case oid::Jsonb:
        appendJson(doc, key, keyLength, text);
        return;
    default:
        if (const quint32 element = arrayElementType(typeOid)) {
            // "[1:2]={…}": an array with explicit bounds; the bounds are dropped.
            qsizetype pos = 0;
            if (text.startsWith('[')) {
                pos = text.indexOf('=');
                pos = pos < 0 ? text.size() : pos + 1;
            }
            bson_t attempt;
            bson_init(&attempt);
            if (appendArray(&attempt, key, keyLength, element, text, pos) && pos == text.size()) {
                bson_iter_t it;
                if (bson_iter_init(&it, &attempt) && bson_iter_next(&it))
                    bson_append_iter(doc, key, keyLength, &it);
                bson_destroy(&attempt);
                return;
            }
            bson_destroy(&attempt);
        }
        break;
    }
    appendText(doc, key, keyLength, text);
}

} // namespace tw::pg

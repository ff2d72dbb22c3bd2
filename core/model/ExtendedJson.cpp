#include "ExtendedJson.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include <QString>

namespace tw {

namespace {

const char kHex[] = "0123456789abcdef";

void appendInt(QByteArray& out, qint64 value) {
    char buffer[24];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, result.ptr - buffer);
}

void appendDouble(QByteArray& out, double value) {
    if (std::isnan(value)) {
        out.append("{\"$numberDouble\":\"NaN\"}");
        return;
    }
    if (std::isinf(value)) {
        out.append(value > 0 ? "{\"$numberDouble\":\"Infinity\"}" : "{\"$numberDouble\":\"-Infinity\"}");
        return;
    }
    if (value == 0 && std::signbit(value)) {
        out.append("{\"$numberDouble\":\"-0.0\"}");
        return;
    }
    char buffer[32];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value); // shortest round trip
    const qsizetype n = result.ptr - buffer;
    out.append(buffer, n);
    // Keep it a double for whoever parses it back: 20 -> 20.0
    if (!memchr(buffer, '.', size_t(n)) && !memchr(buffer, 'e', size_t(n)))
        out.append(".0");
}

// Days since 1970-01-01 to a proleptic Gregorian date (civil calendar arithmetic).
void civilFromDays(qint64 days, qint64* year, unsigned* month, unsigned* day) {
    days += 719468;
    const qint64 era = (days >= 0 ? days : days - 146096) / 146097;
    const unsigned dayOfEra = unsigned(days - era * 146097);
    const unsigned yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365;
    const unsigned dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100);
    const unsigned mp = (5 * dayOfYear + 2) / 153;
    *day = dayOfYear - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = qint64(yearOfEra) + era * 400 + (*month <= 2);
}

void appendDigits(QByteArray& out, qint64 value, int width) {
    char buffer[8];
    for (int i = width - 1; i >= 0; --i) {
        buffer[i] = char('0' + value % 10);
        value /= 10;
    }
    out.append(buffer, width);
}

void appendDate(QByteArray& out, qint64 ms) {
    // Relaxed form only for years 1970 to 9999, as the specification says.
    if (ms < 0 || ms > 253402300799999LL) {
        out.append("{\"$date\":{\"$numberLong\":\"");
        appendInt(out, ms);
        out.append("\"}}");
        return;
    }
    const qint64 days = ms / 86400000;
    qint64 rest = ms % 86400000;
    qint64 year;
    unsigned month, day;
    civilFromDays(days, &year, &month, &day);
    out.append("{\"$date\":\"");
    appendDigits(out, year, 4);
    out.append('-');
    appendDigits(out, month, 2);
    out.append('-');
    appendDigits(out, day, 2);
    out.append('T');
    appendDigits(out, rest / 3600000, 2);
    rest %= 3600000;
    out.append(':');
    appendDigits(out, rest / 60000, 2);
    rest %= 60000;
    out.append(':');
    appendDigits(out, rest / 1000, 2);
    if (rest % 1000) {
        out.append('.');
        appendDigits(out, rest % 1000, 3);
    }
    out.append("Z\"}");
}

bool appendValue(QByteArray& out, const bson_iter_t* it);

bool appendContainer(QByteArray& out, const bson_iter_t* parent, bool isArray) {
    bson_iter_t child;
    if (!bson_iter_recurse(parent, &child))
        return false;
    out.append(isArray ? '[' : '{');
    bool first = true;
    while (bson_iter_next(&child)) {
        if (!first)
            out.append(',');
        first = false;
        if (!isArray) {
            appendJsonString(out, bson_iter_key(&child), bson_iter_key_len(&child));
            out.append(':');
        }
        if (!appendValue(out, &child))
            return false;
    }
    out.append(isArray ? ']' : '}');
    return !child.err_off;
}

bool appendValue(QByteArray& out, const bson_iter_t* it) {
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        appendDouble(out, bson_iter_double(it));
        return true;
    case BSON_TYPE_UTF8: {
        uint32_t len = 0;
        const char* s = bson_iter_utf8(it, &len);
        appendJsonString(out, s, len);
        return true;
    }
    case BSON_TYPE_DOCUMENT:
        return appendContainer(out, it, false);
    case BSON_TYPE_ARRAY:
        return appendContainer(out, it, true);
    case BSON_TYPE_BINARY: {
        bson_subtype_t subtype;
        uint32_t len = 0;
        const uint8_t* data = nullptr;
        bson_iter_binary(it, &subtype, &len, &data);
        out.append("{\"$binary\":{\"base64\":\"");
        out.append(QByteArray::fromRawData(reinterpret_cast<const char*>(data), qsizetype(len)).toBase64());
        out.append("\",\"subType\":\"");
        out.append(kHex[(subtype >> 4) & 0xf]);
        out.append(kHex[subtype & 0xf]);
        out.append("\"}}");
        return true;
    }
    case BSON_TYPE_UNDEFINED:
        out.append("{\"$undefined\":true}");
        return true;
    case BSON_TYPE_OID: {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(it), hex);
        out.append("{\"$oid\":\"");
        out.append(hex, 24);
        out.append("\"}");
        return true;
    }
    case BSON_TYPE_BOOL:
        out.append(bson_iter_bool(it) ? "true" : "false");
        return true;
    case BSON_TYPE_DATE_TIME:
        appendDate(out, bson_iter_date_time(it));
        return true;
    case BSON_TYPE_NULL:
        out.append("null");
        return true;
    case BSON_TYPE_REGEX: {
        const char* options = nullptr;
        const char* pattern = bson_iter_regex(it, &options);
        out.append("{\"$regularExpression\":{\"pattern\":");
        appendJsonString(out, pattern, strlen(pattern));
        out.append(",\"options\":");
        appendJsonString(out, options ? options : "", options ? strlen(options) : 0);
        out.append("}}");
        return true;
    }
    case BSON_TYPE_DBPOINTER: {
        uint32_t len = 0;
        const char* collection = nullptr;
        const bson_oid_t* oid = nullptr;
        bson_iter_dbpointer(it, &len, &collection, &oid);
        char hex[25];
        bson_oid_to_string(oid, hex);
        out.append("{\"$dbPointer\":{\"$ref\":");
        appendJsonString(out, collection, len);
        out.append(",\"$id\":{\"$oid\":\"");
        out.append(hex, 24);
        out.append("\"}}}");
        return true;
    }
    case BSON_TYPE_CODE: {
        uint32_t len = 0;
        const char* code = bson_iter_code(it, &len);
        out.append("{\"$code\":");
        appendJsonString(out, code, len);
        out.append('}');
        return true;
    }
    case BSON_TYPE_SYMBOL: {
        uint32_t len = 0;
        const char* symbol = bson_iter_symbol(it, &len);
        out.append("{\"$symbol\":");
        appendJsonString(out, symbol, len);
        out.append('}');
        return true;
    }
    case BSON_TYPE_CODEWSCOPE: {
        uint32_t len = 0, scopeLen = 0;
        const uint8_t* scopeData = nullptr;
        const char* code = bson_iter_codewscope(it, &len, &scopeLen, &scopeData);
        bson_t scope;
        if (!bson_init_static(&scope, scopeData, scopeLen))
            return false;
        out.append("{\"$code\":");
        appendJsonString(out, code, len);
        out.append(",\"$scope\":");
        if (!appendRelaxedJson(out, &scope))
            return false;
        out.append('}');
        return true;
    }
    case BSON_TYPE_INT32:
        appendInt(out, bson_iter_int32(it));
        return true;
    case BSON_TYPE_TIMESTAMP: {
        uint32_t t = 0, i = 0;
        bson_iter_timestamp(it, &t, &i);
        out.append("{\"$timestamp\":{\"t\":");
        appendInt(out, t);
        out.append(",\"i\":");
        appendInt(out, i);
        out.append("}}");
        return true;
    }
    case BSON_TYPE_INT64:
        appendInt(out, bson_iter_int64(it));
        return true;
    case BSON_TYPE_DECIMAL128: {
        bson_decimal128_t value;
        bson_iter_decimal128(it, &value);
        char text[BSON_DECIMAL128_STRING];
        bson_decimal128_to_string(&value, text);
        out.append("{\"$numberDecimal\":\"");
        out.append(text);
        out.append("\"}");
        return true;
    }
    case BSON_TYPE_MAXKEY:
        out.append("{\"$maxKey\":1}");
        return true;
    case BSON_TYPE_MINKEY:
        out.append("{\"$minKey\":1}");
        return true;
    case BSON_TYPE_EOD:
        break;
    }
    return false;
}

} // namespace

namespace {

// Eight bytes at a time: is any of them a control character, '"' or '\\'?
// (x - 0x01..) & ~x & 0x80.. is non-zero exactly when some byte of x is zero.
constexpr quint64 kOnes = 0x0101010101010101ULL;
constexpr quint64 kHighBits = 0x8080808080808080ULL;

inline quint64 anyZeroByte(quint64 x) {
    return (x - kOnes) & ~x & kHighBits;
}

inline bool wordNeedsEscape(quint64 w) {
    return ((w - kOnes * 0x20) & ~w & kHighBits) | anyZeroByte(w ^ (kOnes * '"')) |
           anyZeroByte(w ^ (kOnes * '\\'));
}

} // namespace

void appendJsonString(QByteArray& out, const char* text, size_t length) {
    const auto* s = reinterpret_cast<const unsigned char*>(text);
    const qsizetype begin = out.size();
    quint64 seen = 0; // every byte looked at, OR-ed: its high bits say "not ASCII"
    out.append('"');
    size_t start = 0;
    size_t i = 0;
    while (i < length) {
        while (i + 8 <= length) {
            quint64 w;
            memcpy(&w, s + i, 8);
            if (wordNeedsEscape(w))
                break;
            seen |= w;
            i += 8;
        }
        if (i >= length)
            break;
        const unsigned char c = s[i++];
        seen |= c;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        out.append(text + start, qsizetype(i - 1 - start));
        start = i;
        switch (c) {
        case '"':
            out.append("\\\"");
            break;
        case '\\':
            out.append("\\\\");
            break;
        case '\n':
            out.append("\\n");
            break;
        case '\r':
            out.append("\\r");
            break;
        case '\t':
            out.append("\\t");
            break;
        case '\b':
            out.append("\\b");
            break;
        case '\f':
            out.append("\\f");
            break;
        default: {
            const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
            out.append(escape, 6);
        }
        }
    }
    out.append(text + start, qsizetype(length - start));
    out.append('"');
    if ((seen & kHighBits) && !bson_utf8_validate(text, length, true)) {
        // Rare: a malformed string from a driver. Start over on a copy in which every
        // invalid sequence became U+FFFD (valid, so this recursion ends).
        out.truncate(begin);
        const QByteArray fixed = QString::fromUtf8(text, qsizetype(length)).toUtf8();
        appendJsonString(out, fixed.constData(), size_t(fixed.size()));
    }
}

bool appendRelaxedJson(QByteArray& out, const bson_t* doc) {
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return false;
    out.append('{');
    bool first = true;
    while (bson_iter_next(&it)) {
        if (!first)
            out.append(',');
        first = false;
        appendJsonString(out, bson_iter_key(&it), bson_iter_key_len(&it));
        out.append(':');
        if (!appendValue(out, &it))
            return false;
    }
    out.append('}');
    return !it.err_off;
}

} // namespace tw

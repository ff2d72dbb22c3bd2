#include "JsonToBson.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>

#include <QByteArray>

#include <simdjson.h>

namespace tw {

namespace {

namespace dom = simdjson::dom;

// libbson's reader refuses documents past 100 levels; the deep ones are left to it, so
// its error is the one given.
constexpr int kMaxDepth = 90;

bool hasNul(std::string_view s) {
    return std::memchr(s.data(), 0, s.size()) != nullptr;
}

bool isDigits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// An int64 as our writer writes one: an optional '-', no leading zero, no "-0".
bool parseInt64(std::string_view s, qint64* value) {
    const std::string_view digits = !s.empty() && s.front() == '-' ? s.substr(1) : s;
    if (!isDigits(digits) || (digits.size() > 1 && digits.front() == '0') || s == "-0")
        return false;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *value);
    return ec == std::errc() && end == s.data() + s.size();
}

unsigned parseFixed(std::string_view s, size_t at, size_t width) {
    unsigned value = 0;
    for (size_t i = at; i < at + width; ++i)
        value = value * 10 + unsigned(s[i] - '0');
    return value;
}

// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of the writer's).
qint64 daysFromCivil(qint64 year, unsigned month, unsigned day) {
    year -= month <= 2;
    const qint64 era = (year >= 0 ? year : year - 399) / 400;
    const unsigned yearOfEra = unsigned(year - era * 400);
    const unsigned dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    const unsigned dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
    return era * 146097 + qint64(dayOfEra) - 719468;
}

// "YYYY-MM-DDTHH:MM:SS[.mmm]Z" from 1970 on: what the writer's relaxed $date holds.
bool parseIsoDate(std::string_view s, qint64* ms) {
    if (s.size() != 20 && s.size() != 24)
        return false;
    static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i + 1 < s.size(); ++i) {
        const char want = kShape[i];
        if (want == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != want)
            return false;
    }
    if (s.back() != 'Z')
        return false;
    const unsigned year = parseFixed(s, 0, 4), month = parseFixed(s, 5, 2), day = parseFixed(s, 8, 2);
    const unsigned hour = parseFixed(s, 11, 2), minute = parseFixed(s, 14, 2), second = parseFixed(s, 17, 2);
    static constexpr unsigned kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1970 || month < 1 || month > 12 || day < 1 || day > kDays[month - 1] ||
        (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59 || second > 59)
        return false;
    const unsigned millis = s.size() == 24 ? parseFixed(s, 20, 3) : 0;
    *ms = ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60000 + qint64(second) * 1000 +
          millis;
    return true;
}

// Two hex digits, either case: a $binary's subType (unsigned: no sign is read).
bool parseSubtype(std::string_view s, unsigned* value) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *value, 16);
    return s.size() == 2 && ec == std::errc() && end == s.data() + s.size();
}

// The only member of `obj`, when it has exactly one.
bool single(dom::object obj, std::string_view* key, dom::element* value) {
    if (obj.size() != 1)
        return false;
    const dom::key_value_pair field = *obj.begin();
    *key = field.key;
    *value = field.value;
    return true;
}

// Exactly the members `first` then `second`, in that order.
bool pair(dom::object obj, std::string_view first, std::string_view second, dom::element* a,
          dom::element* b) {
    if (obj.size() != 2)
        return false;
    auto it = obj.begin();
    if (it.key() != first)
        return false;
    *a = it.value();
    ++it;
    if (it.key() != second)
        return false;
    *b = it.value();
    return true;
}

bool appendValue(bson_t* out, const char* key, int keyLength, dom::element value, int depth);

bool appendMembers(bson_t* out, dom::object obj, int depth) {
    for (const dom::key_value_pair field : obj) {
        // Any other $-key is libbson's to read (a DBRef, a legacy $regex, an error).
        if (hasNul(field.key) || (!field.key.empty() && field.key.front() == '$'))
            return false;
        if (!appendValue(out, field.key.data(), int(field.key.size()), field.value, depth))
            return false;
    }
    return true;
}

bool appendElements(bson_t* out, dom::array array, int depth) {
    uint32_t index = 0;
    for (const dom::element element : array) {
        char buffer[16];
        const char* key = nullptr;
        const size_t length = bson_uint32_to_string(index++, &key, buffer, sizeof buffer);
        if (!appendValue(out, key, int(length), element, depth))
            return false;
    }
    return true;
}

// A type wrapper of Extended JSON, as our writer writes it; false for any other shape.
bool appendWrapper(bson_t* out, const char* key, int keyLength, dom::object obj) {
    std::string_view name;
    dom::element inner;
    if (!single(obj, &name, &inner))
        return false;
    std::string_view text;
    if (name == "$oid") {
        if (inner.get_string().get(text) || !bson_oid_is_valid(text.data(), text.size()))
            return false;
        char hex[25];
        std::memcpy(hex, text.data(), 24);
        hex[24] = 0;
        bson_oid_t oid;
        bson_oid_init_from_string(&oid, hex);
        return bson_append_oid(out, key, keyLength, &oid);
    }
    if (name == "$date") {
        qint64 ms = 0;
        dom::object wrapped;
        std::string_view longName;
        dom::element longValue;
        if (!inner.get_string().get(text)) {
            if (!parseIsoDate(text, &ms))
                return false;
        } else if (inner.get_object().get(wrapped) || !single(wrapped, &longName, &longValue) ||
                   longName != "$numberLong" || longValue.get_string().get(text) || !parseInt64(text, &ms)) {
            return false;
        }
        return bson_append_date_time(out, key, keyLength, ms);
    }
    if (name == "$numberLong") {
        qint64 value = 0;
        return !inner.get_string().get(text) && parseInt64(text, &value) &&
               bson_append_int64(out, key, keyLength, value);
    }
    if (name == "$numberDouble") {
        if (inner.get_string().get(text))
            return false;
        double value = 0;
        if (text == "NaN")
            value = std::numeric_limits<double>::quiet_NaN();
        else if (text == "Infinity")
            value = std::numeric_limits<double>::infinity();
        else if (text == "-Infinity")
            value = -std::numeric_limits<double>::infinity();
        else if (text == "-0.0")
            value = -0.0;
        else
            return false;
        return bson_append_double(out, key, keyLength, value);
    }
    if (name == "$binary") {
        dom::object fields;
        dom::element base64, subType;
        std::string_view data, type;
        if (inner.get_object().get(fields) || !pair(fields, "base64", "subType", &base64, &subType) ||
            base64.get_string().get(data) || subType.get_string().get(type) || data.size() % 4 != 0)
            return false;
        unsigned subtype = 0;
        if (!parseSubtype(type, &subtype))
            return false;
        if (subtype == BSON_SUBTYPE_BINARY_DEPRECATED)
            return false; // its inner length is libbson's business
        auto decoded =
            QByteArray::fromBase64Encoding(QByteArray::fromRawData(data.data(), qsizetype(data.size())),
                                           QByteArray::AbortOnBase64DecodingErrors);
        // libbson refuses non-canonical text (stray bits before the padding, AAEC/v==),
        // which Qt decodes: only what encodes back to the very text is taken.
        if (!decoded || decoded.decoded.toBase64() != QByteArrayView(data.data(), qsizetype(data.size())))
            return false;
        return bson_append_binary(out, key, keyLength, bson_subtype_t(subtype),
                                  reinterpret_cast<const uint8_t*>(decoded.decoded.constData()),
                                  uint32_t(decoded.decoded.size()));
    }
    if (name == "$timestamp") {
        dom::object fields;
        dom::element t, i;
        int64_t seconds = 0, increment = 0;
        if (inner.get_object().get(fields) || !pair(fields, "t", "i", &t, &i) ||
            t.type() != dom::element_type::INT64 || i.type() != dom::element_type::INT64 ||
            t.get_int64().get(seconds) || i.get_int64().get(increment) || seconds < 0 ||
            seconds > std::numeric_limits<uint32_t>::max() || increment < 0 ||
            increment > std::numeric_limits<uint32_t>::max())
            return false;
        return bson_append_timestamp(out, key, keyLength, uint32_t(seconds), uint32_t(increment));
    }
    int64_t one = 0;
    if (name == "$minKey" || name == "$maxKey") {
        if (inner.type() != dom::element_type::INT64 || inner.get_int64().get(one) || one != 1)
            return false;
        return name == "$minKey" ? bson_append_minkey(out, key, keyLength)
                                 : bson_append_maxkey(out, key, keyLength);
    }
    bool flag = false;
    if (name == "$undefined")
        return !inner.get_bool().get(flag) && flag && bson_append_undefined(out, key, keyLength);
    return false;
}

bool appendValue(bson_t* out, const char* key, int keyLength, dom::element value, int depth) {
    switch (value.type()) {
    case dom::element_type::OBJECT: {
        const dom::object obj = value.get_object().value_unsafe();
        const auto first = obj.begin();
        if (first != obj.end() && !first.key().empty() && first.key().front() == '$')
            return appendWrapper(out, key, keyLength, obj);
        if (depth >= kMaxDepth)
            return false;
        bson_t child;
        if (!bson_append_document_begin(out, key, keyLength, &child))
            return false;
        // Ended in every case: the parent is whole again, whatever the caller does next.
        const bool ok = appendMembers(&child, obj, depth + 1);
        return bson_append_document_end(out, &child) && ok;
    }
    case dom::element_type::ARRAY: {
        if (depth >= kMaxDepth)
            return false;
        bson_t child;
        if (!bson_append_array_begin(out, key, keyLength, &child))
            return false;
        const bool ok = appendElements(&child, value.get_array().value_unsafe(), depth + 1);
        return bson_append_array_end(out, &child) && ok;
    }
    case dom::element_type::STRING: {
        const std::string_view text = value.get_string().value_unsafe();
        return !hasNul(text) && bson_append_utf8(out, key, keyLength, text.data(), int(text.size()));
    }
    case dom::element_type::INT64: {
        // libbson: an integer that fits 32 bits is an int32, else an int64.
        const int64_t n = value.get_int64().value_unsafe();
        if (n >= std::numeric_limits<int32_t>::min() && n <= std::numeric_limits<int32_t>::max())
            return bson_append_int32(out, key, keyLength, int32_t(n));
        return bson_append_int64(out, key, keyLength, n);
    }
    case dom::element_type::DOUBLE: {
        // "-0" and "-0.0" part ways in libbson; both are left to it.
        const double d = value.get_double().value_unsafe();
        return !(d == 0 && std::signbit(d)) && bson_append_double(out, key, keyLength, d);
    }
    case dom::element_type::BOOL:
        return bson_append_bool(out, key, keyLength, value.get_bool().value_unsafe());
    case dom::element_type::NULL_VALUE:
        return bson_append_null(out, key, keyLength);
    case dom::element_type::UINT64: // past int64: libbson's range error
    default:
        return false;
    }
}

} // namespace

bool jsonToBsonFast(QByteArrayView json, bson_t* out) {
    // One parser per thread, its buffers kept between documents; they grow to about ten
    // times the largest document read, so a large one is left to libbson.
    constexpr qsizetype kMaxFastBytes = 4 * 1024 * 1024;
    if (json.isEmpty() || json.size() > kMaxFastBytes)
        return false;
    thread_local dom::parser parser;
    dom::element root;
    dom::object obj;
    if (parser.parse(json.data(), size_t(json.size())).get(root) || root.get_object().get(obj))
        return false;
    if (appendMembers(out, obj, 0))
        return true;
    bson_reinit(out);
    return false;
}

} // namespace tw

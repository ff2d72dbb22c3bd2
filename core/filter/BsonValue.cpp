#include "BsonValue.h"

#include "FieldPath.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace tw::bsonvalue {

int bracket(bson_type_t type) {
    switch (type) {
    case BSON_TYPE_MINKEY:
        return -1;
    case BSON_TYPE_EOD:
    case BSON_TYPE_UNDEFINED:
        return 0;
    case BSON_TYPE_NULL:
        return 5;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128:
        return 10;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL:
        return 15;
    case BSON_TYPE_DOCUMENT:
        return 20;
    case BSON_TYPE_ARRAY:
        return 25;
    case BSON_TYPE_BINARY:
        return 30;
    case BSON_TYPE_OID:
        return 35;
    case BSON_TYPE_BOOL:
        return 40;
    case BSON_TYPE_DATE_TIME:
        return 45;
    case BSON_TYPE_TIMESTAMP:
        return 47;
    case BSON_TYPE_REGEX:
        return 50;
    case BSON_TYPE_DBPOINTER:
        return 55;
    case BSON_TYPE_CODE:
        return 60;
    case BSON_TYPE_CODEWSCOPE:
        return 65;
    case BSON_TYPE_MAXKEY:
        return 127;
    }
    return 0;
}

bool isNumber(bson_type_t type) {
    return type == BSON_TYPE_INT32 || type == BSON_TYPE_INT64 || type == BSON_TYPE_DOUBLE ||
           type == BSON_TYPE_DECIMAL128;
}

// 2^63 as a double: the first value outside int64.
static constexpr double kTwo63 = 9223372036854775808.0;

static bool integralDouble(double d, int64_t* out) {
    if (!(d >= -kTwo63 && d < kTwo63) || std::trunc(d) != d)
        return false;
    *out = int64_t(d);
    return true;
}

Number toNumber(const bson_iter_t* it) {
    Number n;
    switch (iterType(it)) {
    case BSON_TYPE_INT32:
        n.i = bson_iter_int32(it);
        break;
    case BSON_TYPE_INT64:
        n.i = bson_iter_int64(it);
        break;
    case BSON_TYPE_DOUBLE:
        n.isInt = false;
        n.d = bson_iter_double(it);
        break;
    case BSON_TYPE_DECIMAL128: {
        bson_decimal128_t dec;
        bson_iter_decimal128(it, &dec);
        char text[BSON_DECIMAL128_STRING];
        bson_decimal128_to_string(&dec, text);
        const char* end = text + std::strlen(text);
        long long asInt = 0;
        const auto exact = std::from_chars(text, end, asInt);
        if (exact.ec == std::errc() && exact.ptr == end) {
            n.i = asInt;
            break;
        }
        // from_chars, not strtod: the C library honours LC_NUMERIC, which Qt sets from
        // the environment, and a "," locale would stop at the ".".
        n.isInt = false;
        n.d = 0;
        std::from_chars(*text == '+' ? text + 1 : text, end, n.d);
        int64_t whole = 0;
        // "5.0" and "5E+3" are integers too: keep them exact so they hash like int 5.
        if (std::fabs(n.d) < 9007199254740992.0 && integralDouble(n.d, &whole)) {
            n.isInt = true;
            n.i = whole;
        }
        break;
    }
    default:
        break;
    }
    return n;
}

static int compareDoubles(double a, double b) {
    const bool na = std::isnan(a);
    const bool nb = std::isnan(b);
    if (na || nb)
        return na && nb ? 0 : (na ? -1 : 1);
    return a < b ? -1 : (a > b ? 1 : 0);
}

// Exact int64 vs double comparison: converting the int64 to double would round above
// 2^53 and call 2^53 + 1 equal to 2^53.
static int compareIntDouble(int64_t i, double d) {
    if (std::isnan(d))
        return 1;
    if (d >= kTwo63)
        return -1;
    if (d < -kTwo63)
        return 1;
    const double whole = std::trunc(d);
    const int64_t t = int64_t(whole);
    if (i != t)
        return i < t ? -1 : 1;
    const double frac = d - whole;
    return frac > 0 ? -1 : (frac < 0 ? 1 : 0);
}

int compareNumbers(const Number& a, const Number& b) {
    if (a.isInt && b.isInt)
        return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
    if (!a.isInt && !b.isInt)
        return compareDoubles(a.d, b.d);
    if (a.isInt)
        return compareIntDouble(a.i, b.d);
    return -compareIntDouble(b.i, a.d);
}

static int compareBytes(const void* a, size_t la, const void* b, size_t lb) {
    const size_t common = la < lb ? la : lb;
    const int c = common ? std::memcmp(a, b, common) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return la < lb ? -1 : (la > lb ? 1 : 0);
}

static const char* stringOf(const bson_iter_t* it, uint32_t* len) {
    return (iterType(it) == BSON_TYPE_SYMBOL) ? bson_iter_symbol(it, len) : bson_iter_utf8(it, len);
}

static int compareContainers(const uint8_t* da, uint32_t la, const uint8_t* db, uint32_t lb) {
    bson_iter_t a;
    bson_iter_t b;
    if (!bson_iter_init_from_data(&a, da, la) || !bson_iter_init_from_data(&b, db, lb))
        return compareBytes(da, la, db, lb);
    for (;;) {
        const bool moreA = bson_iter_next(&a);
        const bool moreB = bson_iter_next(&b);
        if (!moreA || !moreB)
            return moreA == moreB ? 0 : (moreA ? 1 : -1);
        const int ra = bracket(iterType(&a));
        const int rb = bracket(iterType(&b));
        if (ra != rb)
            return ra < rb ? -1 : 1;
        const int byName = std::strcmp(bson_iter_key(&a), bson_iter_key(&b));
        if (byName)
            return byName < 0 ? -1 : 1;
        const int byValue = compare(&a, &b);
        if (byValue)
            return byValue;
    }
}

static void containerOf(const bson_iter_t* it, const uint8_t** data, uint32_t* len) {
    if ((iterType(it) == BSON_TYPE_ARRAY))
        bson_iter_array(it, len, data);
    else
        bson_iter_document(it, len, data);
}

int compare(const bson_iter_t* a, const bson_iter_t* b) {
    const bson_type_t ta = iterType(a);
    const bson_type_t tb = iterType(b);
    const int ra = bracket(ta);
    const int rb = bracket(tb);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch (ta) {
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128: {
        // Same-type fast paths: the common case in filters on real documents.
        if (ta == tb && ta == BSON_TYPE_INT32) {
            const int32_t x = bson_iter_int32(a), y = bson_iter_int32(b);
            return x < y ? -1 : (x > y ? 1 : 0);
        }
        if (ta == tb && ta == BSON_TYPE_INT64) {
            const int64_t x = bson_iter_int64(a), y = bson_iter_int64(b);
            return x < y ? -1 : (x > y ? 1 : 0);
        }
        return compareNumbers(toNumber(a), toNumber(b));
    }
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL: {
        uint32_t la = 0, lb = 0;
        const char* sa = stringOf(a, &la);
        const char* sb = stringOf(b, &lb);
        return compareBytes(sa, la, sb, lb);
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        const uint8_t* da = nullptr;
        const uint8_t* db = nullptr;
        uint32_t la = 0, lb = 0;
        containerOf(a, &da, &la);
        containerOf(b, &db, &lb);
        return compareContainers(da, la, db, lb);
    }
    case BSON_TYPE_BINARY: {
        bson_subtype_t sa, sb;
        uint32_t la = 0, lb = 0;
        const uint8_t* pa = nullptr;
        const uint8_t* pb = nullptr;
        bson_iter_binary(a, &sa, &la, &pa);
        bson_iter_binary(b, &sb, &lb, &pb);
        // MongoDB orders binData by length, then subtype, then bytes.
        if (la != lb)
            return la < lb ? -1 : 1;
        if (sa != sb)
            return sa < sb ? -1 : 1;
        return compareBytes(pa, la, pb, lb);
    }
    case BSON_TYPE_OID: {
        const int c = bson_oid_compare(bson_iter_oid(a), bson_iter_oid(b));
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case BSON_TYPE_BOOL:
        return int(bson_iter_bool(a)) - int(bson_iter_bool(b));
    case BSON_TYPE_DATE_TIME: {
        const int64_t x = bson_iter_date_time(a), y = bson_iter_date_time(b);
        return x < y ? -1 : (x > y ? 1 : 0);
    }
    case BSON_TYPE_TIMESTAMP: {
        uint32_t ta1 = 0, ia = 0, tb1 = 0, ib = 0;
        bson_iter_timestamp(a, &ta1, &ia);
        bson_iter_timestamp(b, &tb1, &ib);
        if (ta1 != tb1)
            return ta1 < tb1 ? -1 : 1;
        return ia < ib ? -1 : (ia > ib ? 1 : 0);
    }
    case BSON_TYPE_REGEX: {
        const char* oa = nullptr;
        const char* ob = nullptr;
        const char* pa = bson_iter_regex(a, &oa);
        const char* pb = bson_iter_regex(b, &ob);
        int c = std::strcmp(pa, pb);
        if (!c)
            c = std::strcmp(oa, ob);
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case BSON_TYPE_DBPOINTER: {
        uint32_t la = 0, lb = 0;
        const char* ca = nullptr;
        const char* cb = nullptr;
        const bson_oid_t* oa = nullptr;
        const bson_oid_t* ob = nullptr;
        bson_iter_dbpointer(a, &la, &ca, &oa);
        bson_iter_dbpointer(b, &lb, &cb, &ob);
        const int c = compareBytes(ca, la, cb, lb);
        if (c)
            return c;
        const int o = bson_oid_compare(oa, ob);
        return o < 0 ? -1 : (o > 0 ? 1 : 0);
    }
    case BSON_TYPE_CODE: {
        uint32_t la = 0, lb = 0;
        const char* ca = bson_iter_code(a, &la);
        const char* cb = bson_iter_code(b, &lb);
        return compareBytes(ca, la, cb, lb);
    }
    case BSON_TYPE_CODEWSCOPE: {
        uint32_t la = 0, lb = 0, sla = 0, slb = 0;
        const uint8_t* sa = nullptr;
        const uint8_t* sb = nullptr;
        const char* ca = bson_iter_codewscope(a, &la, &sla, &sa);
        const char* cb = bson_iter_codewscope(b, &lb, &slb, &sb);
        const int c = compareBytes(ca, la, cb, lb);
        return c ? c : compareContainers(sa, sla, sb, slb);
    }
    default:
        return 0; // MinKey, MaxKey, null, undefined: one value each
    }
}

static void appendRaw(std::string& out, char tag, const void* data, size_t len) {
    out.push_back(tag);
    out.append(static_cast<const char*>(data), len);
}

bool appendKey(const bson_iter_t* it, std::string& out) {
    const bson_type_t type = iterType(it);
    switch (type) {
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128: {
        Number n = toNumber(it);
        if (!n.isInt) {
            int64_t whole = 0;
            if (integralDouble(n.d, &whole)) {
                n.isInt = true;
                n.i = whole;
            }
        }
        if (n.isInt) {
            appendRaw(out, 'I', &n.i, sizeof n.i);
        } else {
            // One NaN for all NaN payloads: MongoDB treats every NaN as equal.
            const double d = std::isnan(n.d) ? std::nan("") : n.d;
            appendRaw(out, 'D', &d, sizeof d);
        }
        return true;
    }
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL: {
        uint32_t len = 0;
        const char* s = stringOf(it, &len);
        appendRaw(out, 'S', s, len);
        return true;
    }
    case BSON_TYPE_OID:
        appendRaw(out, 'O', bson_iter_oid(it)->bytes, 12);
        return true;
    case BSON_TYPE_BOOL:
        out.push_back(bson_iter_bool(it) ? 'b' : 'f');
        return true;
    case BSON_TYPE_DATE_TIME: {
        const int64_t ms = bson_iter_date_time(it);
        appendRaw(out, 'T', &ms, sizeof ms);
        return true;
    }
    case BSON_TYPE_TIMESTAMP: {
        uint32_t parts[2] = {0, 0};
        bson_iter_timestamp(it, &parts[0], &parts[1]);
        appendRaw(out, 't', parts, sizeof parts);
        return true;
    }
    case BSON_TYPE_BINARY: {
        bson_subtype_t subtype;
        uint32_t len = 0;
        const uint8_t* data = nullptr;
        bson_iter_binary(it, &subtype, &len, &data);
        out.push_back('B');
        out.push_back(char(subtype));
        out.append(reinterpret_cast<const char*>(data), len);
        return true;
    }
    case BSON_TYPE_CODE: {
        uint32_t len = 0;
        const char* code = bson_iter_code(it, &len);
        appendRaw(out, 'C', code, len);
        return true;
    }
    case BSON_TYPE_MINKEY:
        out.push_back('m');
        return true;
    case BSON_TYPE_MAXKEY:
        out.push_back('M');
        return true;
    default:
        return false;
    }
}

uint32_t childCount(const bson_iter_t* it) {
    bson_iter_t child;
    if (!((iterType(it) == BSON_TYPE_ARRAY) || (iterType(it) == BSON_TYPE_DOCUMENT)) ||
        !bson_iter_recurse(it, &child))
        return 0;
    uint32_t n = 0;
    while (bson_iter_next(&child))
        ++n;
    return n;
}

} // namespace tw::bsonvalue

// The Extended JSON writer against libbson's parser. Input: a BSON document's bytes.
//
// On any bytes the writer must not crash, and what it writes for a structurally sound
// document must be JSON that libbson reads. On a document libbson calls well-formed,
// with valid UTF-8 and no $-prefixed keys (which Extended JSON reads as type wrappers:
// {"$oid": …} is ambiguous by design), what libbson reads back must hold the same
// values: the same keys in the same order (arrays: the same elements), numbers of the same value (Relaxed
// JSON may turn an int64 that fits into an int32, never a double into an integer), dates to the millisecond,
// and every other value byte for byte. The fast reader (model/JsonToBson) reads the same
// text into libbson's very bytes, or leaves it.
#include "FuzzInput.h"

#include "model/ExtendedJson.h"
#include "model/JsonToBson.h"

#include <QByteArray>

#include <cmath>
#include <cstring>

using namespace tw;

namespace {

bool sameValue(const bson_iter_t* a, const bson_iter_t* b);

// An array's keys are not written (JSON has none; a reader numbers the elements from
// 0), so only a document's keys are compared.
bool sameDocument(const bson_t* a, const bson_t* b, bool isArray = false) {
    bson_iter_t x, y;
    if (!bson_iter_init(&x, a) || !bson_iter_init(&y, b))
        return false;
    for (;;) {
        const bool more = bson_iter_next(&x);
        if (more != bson_iter_next(&y))
            return false;
        if (!more)
            return true;
        if ((!isArray && std::strcmp(bson_iter_key(&x), bson_iter_key(&y)) != 0) || !sameValue(&x, &y))
            return false;
    }
}

bool sameContainer(const bson_iter_t* a, const bson_iter_t* b) {
    uint32_t la = 0, lb = 0;
    const uint8_t *da = nullptr, *db = nullptr;
    if (BSON_ITER_HOLDS_ARRAY(a)) {
        bson_iter_array(a, &la, &da);
        bson_iter_array(b, &lb, &db);
    } else {
        bson_iter_document(a, &la, &da);
        bson_iter_document(b, &lb, &db);
    }
    bson_t x, y;
    return bson_init_static(&x, da, la) && bson_init_static(&y, db, lb) &&
           sameDocument(&x, &y, BSON_ITER_HOLDS_ARRAY(a));
}

// The value's bytes as a one-field document, to compare what has no numbers inside.
QByteArray valueBytes(const bson_iter_t* it) {
    bson_t out = BSON_INITIALIZER;
    bson_append_iter(&out, "v", 1, it);
    QByteArray bytes(reinterpret_cast<const char*>(bson_get_data(&out)), qsizetype(out.len));
    bson_destroy(&out);
    return bytes;
}

bool sameValue(const bson_iter_t* a, const bson_iter_t* b) {
    const bson_type_t ta = bson_iter_type(a);
    const bson_type_t tb = bson_iter_type(b);
    switch (ta) {
    case BSON_TYPE_DOUBLE: {
        if (tb != BSON_TYPE_DOUBLE)
            return false;
        const double x = bson_iter_double(a), y = bson_iter_double(b);
        return (std::isnan(x) && std::isnan(y)) || (x == y && std::signbit(x) == std::signbit(y));
    }
    case BSON_TYPE_INT32:
        return tb == BSON_TYPE_INT32 && bson_iter_int32(a) == bson_iter_int32(b);
    case BSON_TYPE_INT64:
        return (tb == BSON_TYPE_INT64 || tb == BSON_TYPE_INT32) &&
               bson_iter_as_int64(a) == bson_iter_as_int64(b);
    case BSON_TYPE_DATE_TIME:
        return tb == BSON_TYPE_DATE_TIME && bson_iter_date_time(a) == bson_iter_date_time(b);
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        return ta == tb && sameContainer(a, b);
    case BSON_TYPE_CODEWSCOPE: {
        if (tb != ta)
            return false;
        uint32_t la = 0, lb = 0, sa = 0, sb = 0;
        const uint8_t *da = nullptr, *db = nullptr;
        const char* ca = bson_iter_codewscope(a, &la, &sa, &da);
        const char* cb = bson_iter_codewscope(b, &lb, &sb, &db);
        bson_t x, y;
        return la == lb && std::memcmp(ca, cb, la) == 0 && bson_init_static(&x, da, sa) &&
               bson_init_static(&y, db, sb) && sameDocument(&x, &y);
    }
    case BSON_TYPE_DECIMAL128: {
        // Non-canonical encodings (a significand past 10^34) mean zero: compare the text.
        if (tb != ta)
            return false;
        bson_decimal128_t x, y;
        bson_iter_decimal128(a, &x);
        bson_iter_decimal128(b, &y);
        char sx[BSON_DECIMAL128_STRING], sy[BSON_DECIMAL128_STRING];
        bson_decimal128_to_string(&x, sx);
        bson_decimal128_to_string(&y, sy);
        if (std::strcmp(sx, sy) == 0)
            return true;
        // libbson prints some values near the ends of the exponent range in a form
        // its own parser reads as NaN (1.03…E-6015): a limit of libbson, not of our
        // writer, which writes libbson's text. Anything libbson itself reads back is
        // judged.
        bson_decimal128_t z;
        char sz[BSON_DECIMAL128_STRING];
        if (!bson_decimal128_from_string(sx, &z))
            return true;
        bson_decimal128_to_string(&z, sz);
        return std::strcmp(sz, sx) != 0;
    }
    default:
        return ta == tb && valueBytes(a) == valueBytes(b);
    }
}

// Options libbson keeps as written: the valid flags, each once, in order.
bool regexOptionsOk(const char* options) {
    char last = 0;
    for (const char* p = options; *p; ++p) {
        if (!std::strchr("ilmsux", *p) || *p <= last)
            return false;
        last = *p;
    }
    return true;
}

bool canonicalRegexOptions(const bson_t* doc) {
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return false;
    while (bson_iter_next(&it)) {
        if (BSON_ITER_HOLDS_REGEX(&it)) {
            const char* options = nullptr;
            bson_iter_regex(&it, &options);
            if (!regexOptionsOk(options))
                return false;
        } else if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
            bson_t sub;
            uint32_t len = 0;
            const uint8_t* data = nullptr;
            if (BSON_ITER_HOLDS_ARRAY(&it))
                bson_iter_array(&it, &len, &data);
            else
                bson_iter_document(&it, &len, &data);
            if (!bson_init_static(&sub, data, len) || !canonicalRegexOptions(&sub))
                return false;
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    bson_t doc;
    if (!fuzz::viewBson(QByteArrayView(data, qsizetype(size)), &doc))
        return 0;
    QByteArray json;
    const bool written = appendRelaxedJson(json, &doc);
    if (!fuzz::isWellFormed(&doc))
        return 0;
    fuzz::check(written, "the writer refused a well-formed document");

    bson_error_t error;
    bson_t* parsed =
        bson_new_from_json(reinterpret_cast<const uint8_t*>(json.constData()), json.size(), &error);
    size_t offset = 0;
    const bool comparable =
        bson_validate(&doc, bson_validate_flags_t(BSON_VALIDATE_UTF8 | BSON_VALIDATE_DOLLAR_KEYS), &offset) &&
        canonicalRegexOptions(&doc);
    if (!parsed) {
        if (comparable) {
            std::fprintf(stderr, "%s\n%s\n", json.constData(), error.message);
            fuzz::check(false, "libbson cannot read what the writer wrote");
        }
        return 0;
    }
    // The fast reader takes what the writer writes or leaves it, and reads libbson's bytes.
    bson_t fast;
    bson_init(&fast);
    if (jsonToBsonFast(json, &fast))
        fuzz::check(fast.len == parsed->len &&
                        std::memcmp(bson_get_data(&fast), bson_get_data(parsed), fast.len) == 0,
                    "the fast reader reads the writer's JSON into other bytes than libbson");
    bson_destroy(&fast);
    if (comparable && !sameDocument(&doc, parsed)) {
        // Both sides in libbson's own Canonical form, to show which value changed.
        char* before = bson_as_canonical_extended_json(&doc, nullptr);
        char* after = bson_as_canonical_extended_json(parsed, nullptr);
        std::fprintf(stderr, "written: %s\nbefore:  %s\nafter:   %s\n", json.constData(), before, after);
        bson_free(before);
        bson_free(after);
        fuzz::check(false, "libbson reads back other values than the document's");
    }
    bson_destroy(parsed);
    return 0;
}

#pragma once

#include "BsonValue.h"
#include "FieldPath.h"

#include <bson/bson.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

// The fast comparison of strings and plain numbers, shared by the compiler (which
// reads operands into FastOperand), the flat path and the general evaluation. Inline:
// these ran inside one translation unit with the evaluation, and the flat path is hot.
// Private to core/filter.
namespace tw::filterimpl {

// A well-formed value's type and bytes (where its BSON value starts: a string's length,
// a number's first byte).
struct ValueBytes {
    uint8_t type;
    const uint8_t* bytes;
};

// The operand of an equality or a comparison, read once at compile time when it is a
// string or a plain number, so the common cases (string against string, number
// against number) compare the event's bytes directly instead of going through the
// general compare(). Points into the query, which the Program keeps.
struct FastOperand {
    enum Kind : uint8_t { None, String, Int, Double } kind = None;
    uint32_t len = 0; // String
    union {
        const char* text = nullptr;
        int64_t i;
        double d;
    };
};

// The event's value as a plain number (int32, int64, double); false for anything else.
inline bool plainNumber(ValueBytes v, bsonvalue::Number* out) {
    switch (v.type) {
    case BSON_TYPE_INT32: {
        int32_t i;
        std::memcpy(&i, v.bytes, sizeof i);
        out->i = int32_t(BSON_UINT32_FROM_LE(uint32_t(i)));
        return true;
    }
    case BSON_TYPE_INT64: {
        int64_t i;
        std::memcpy(&i, v.bytes, sizeof i);
        out->i = int64_t(BSON_UINT64_FROM_LE(uint64_t(i)));
        return true;
    }
    case BSON_TYPE_DOUBLE:
        out->isInt = false;
        std::memcpy(&out->d, v.bytes, sizeof out->d);
        out->d = BSON_DOUBLE_FROM_LE(out->d);
        return true;
    default:
        return false;
    }
}

// Three-way comparison of the event's value with a fast operand, when both are of the
// kind the operand was read as; false when the general path must decide.
inline bool fastCompare(const FastOperand& op, ValueBytes v, int* result) {
    if (op.kind == FastOperand::String) {
        if (v.type != BSON_TYPE_UTF8)
            return false;
        const size_t len = readLength(v.bytes) - 1; // well-formed: at least the NUL
        const char* text = reinterpret_cast<const char*>(v.bytes + 4);
        const size_t common = std::min<size_t>(len, op.len);
        int c = 0;
        for (size_t i = 0; i < common && !c; ++i)
            c = int(uint8_t(text[i])) - int(uint8_t(op.text[i]));
        *result = c ? (c < 0 ? -1 : 1) : (len < op.len ? -1 : (len > op.len ? 1 : 0));
        return true;
    }
    if (op.kind == FastOperand::Int || op.kind == FastOperand::Double) {
        bsonvalue::Number n;
        if (!plainNumber(v, &n))
            return false;
        bsonvalue::Number operand;
        operand.isInt = op.kind == FastOperand::Int;
        operand.i = op.kind == FastOperand::Int ? op.i : 0;
        operand.d = op.kind == FastOperand::Double ? op.d : 0;
        *result = bsonvalue::compareNumbers(n, operand);
        return true;
    }
    return false;
}

// The same for a value libbson has positioned an iterator on (d1 is where the value
// starts, as libbson's own inline accessors read it).
inline bool fastCompare(const FastOperand& op, const bson_iter_t* v, int* result) {
    return fastCompare(op, ValueBytes{uint8_t(iterType(v)), v->raw + v->d1}, result);
}

} // namespace tw::filterimpl

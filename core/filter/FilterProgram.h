#pragma once

#include "CompiledRegex.h"
#include "FastOperand.h"
#include "FieldPath.h"
#include "model/Bson.h"
#include "PrefixCache.h"

#include <QByteArray>
#include <QByteArrayView>
#include <QString>

#include <bson/bson.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

// The compiled form of a Filter: what FilterCompiler builds and the flat path and the
// general evaluation read. Private to core/filter.
namespace tw::filterimpl {

// The compiled form: a flat array of nodes whose operands point into the query's own
// BSON bytes, so compiling copies no values and evaluating allocates nothing (except
// $regex, which needs a QString subject).
enum class Kind : uint8_t {
    // Document level: evaluated against a document (the event, or an $elemMatch element).
    And,
    Or,
    Nor,
    True,
    False,
    Path, // a = path, b = value node
    // Value level: evaluated against the values a path reaches.
    VAnd, // b = first kid, c = kid count
    VNot, // a = value node
    VFalse,
    Eq, // a = operand
    Gt,
    Gte,
    Lt,
    Lte,
    In,             // a = in-list
    Exists,         // true when some value is present
    Type,           // a = type mask
    Regex,          // a = regex
    Size,           // a = element count
    ElemMatchDoc,   // a = document-level node run on each element that is a document
    ElemMatchValue, // a = value node run on each element
};

struct Node {
    Kind kind;
    uint32_t a = 0;
    uint32_t b = 0;
    uint32_t c = 0;
};

// Whether an equality or comparison holds, given the three-way comparison of the
// value with the operand.
inline bool holds(Kind kind, int c) {
    switch (kind) {
    case Kind::Eq:
        return c == 0;
    case Kind::Gt:
        return c > 0;
    case Kind::Gte:
        return c >= 0;
    case Kind::Lt:
        return c < 0;
    default:
        return c <= 0;
    }
}

// The bit of a $type mask for a type code as $type spells it (1 … 19, -1 for MinKey,
// 127 for MaxKey); 0 for a code that names no type.
inline uint32_t typeCodeBit(int code) {
    if (code == -1)
        return 1u << 20;
    if (code == 127)
        return 1u << 21;
    return code >= 1 && code <= 19 ? 1u << code : 0;
}

// The bit of a $type mask for a value's BSON type (MaxKey is 127 there too; MinKey is 255).
inline uint32_t typeBit(bson_type_t type) {
    return typeCodeBit(type == BSON_TYPE_MINKEY ? -1 : int(type));
}

struct CompiledPath {
    QByteArrayView text; // points into the query
    std::vector<PathComponent> parts;
    int leafSlot = -1;          // the prefix-cache node of the whole path, or -1 when not cached
    std::vector<uint8_t> chain; // when cached: the trie node of each prefix, root first
};

struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using KeySet = std::unordered_set<std::string, KeyHash, std::equal_to<>>;

struct InList {
    std::vector<uint32_t> values; // operands compared one by one
    std::vector<uint32_t> regexes;
    bool hasNull = false;
    bool hashed = false; // scalars live in `keys`, `values` keeps only documents and arrays
    KeySet keys;
};

// An operand kept as the bytes of an iterator positioned on it inside the query:
// 80 bytes instead of the 128 an aligned bson_iter_t element would take, which counts
// with a million subscriptions. Copied out (memcpy) before use. Strings and plain
// numbers are also read once, for fastCompare.
struct Operand {
    unsigned char bytes[sizeof(bson_iter_t)];
    FastOperand fast;
};

// One test of the flat path (see FlatFilter.h): a path of the prefix cache and the
// value node tested on what it reaches.
struct FlatTest {
    uint32_t path;
    uint32_t value; // value node
};

struct Program {
    Bson query;
    bool valid = true;
    QByteArray source; // the text of an invalid filter, shown back by json()
    QString error;
    uint32_t root = 0;
    std::vector<Node> nodes;
    std::vector<uint32_t> kids;
    std::vector<CompiledPath> paths;
    std::vector<Operand> operands;

    bson_iter_t operand(uint32_t index) const {
        bson_iter_t it;
        std::memcpy(&it, operands[index].bytes, sizeof it);
        return it;
    }
    std::vector<InList> inLists;
    std::vector<CompiledRegex> regexes;
    PrefixTrie trie;
    // Empty unless the whole filter runs on the flat path.
    std::vector<FlatTest> flat;

    bool isTrue() const { return valid && nodes[root].kind == Kind::True; }
};

} // namespace tw::filterimpl

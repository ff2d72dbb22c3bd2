#include "Filter.h"

#include "BsonValue.h"
#include "DocumentIndex.h"
#include "FieldPath.h"
#include "QueryJson.h"

#include <QRegularExpression>

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace tw {

namespace filterimpl {

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

struct CompiledRegex {
    QRegularExpression re;
    QByteArray pattern;
    QByteArray flags;
};

// Paths from the event's root share prefixes ("fullDocument.total",
// "fullDocument.status", "fullDocument.customer.country"). Each distinct prefix is a
// node of a small trie; during one evaluation a document is scanned once for all the
// children the filter needs from it, and the values are kept. Without it each
// predicate rescanned the event and fullDocument: 300 ns of a 450 ns evaluation of the
// five-predicate benchmark filter. 16 nodes cover any hand-written filter; paths past
// that are resolved without the cache.
constexpr size_t kCacheNodes = 16;

struct TrieNode {
    PathComponent part;
    int parent = -1; // -1: the root document
    // The name's first 16 bytes, zero-padded, and which of them count: a key of up to
    // 16 bytes is compared with two loads and two masks instead of a memcmp call.
    uint64_t word[2] = {};
    uint64_t mask[2] = {};

    TrieNode(const PathComponent& p, int parentNode)
        : part(p)
        , parent(parentNode) {
        const size_t n = std::min<size_t>(size_t(p.len), sizeof word);
        std::memcpy(word, p.name, n);
        std::memset(mask, 0xff, n);
    }

    // Whether the key at `key` (keyLen == part.len) is this node's name; `limit` is the
    // end of the document's bytes, which a wide load must not pass.
    bool named(const char* key, uint32_t keyLen, const uint8_t* limit) const {
        const auto* bytes = reinterpret_cast<const uint8_t*>(key);
        if (keyLen > sizeof word || limit - bytes < qsizetype(sizeof word))
            return std::memcmp(key, part.name, keyLen) == 0;
        uint64_t w[2];
        std::memcpy(w, key, sizeof w);
        return ((w[0] & mask[0]) == word[0]) & ((w[1] & mask[1]) == word[1]);
    }
};

// bson_iter_t is declared 128-byte aligned but is 80 bytes long, so it cannot be an
// array element (or a std::vector element) by itself.
struct IterSlot {
    bson_iter_t it;
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

// A well-formed value's type and bytes (where its BSON value starts: a string's length,
// a number's first byte).
struct ValueBytes {
    uint8_t type;
    const uint8_t* bytes;
};

struct PrefixCache {
    const uint8_t* data; // the root document
    uint32_t len;
    const DocumentIndex* index = nullptr; // when the caller indexed the document
    uint32_t scanned = 0;                 // bit p + 1: the children of node p (bit 0: of the root) are known
    uint32_t found = 0;                   // bit n: node n exists in this document
    uint32_t ready = 0;                   // bit n: values[n] is positioned on node n
    // Where each found node is. Its iterator is made only when a filter reads the
    // value: a document on the way to a field only needs its bytes.
    struct Place {
        const uint8_t* container;
        uint32_t containerLen;
        uint32_t offset; // of the element inside its container
        uint32_t keyLen;
        uint8_t type() const { return container[offset]; }
        const uint8_t* valueBytes() const { return container + offset + 1 + keyLen + 1; }
        // The value, when its bytes are well-formed for the types the flat path reads
        // (what libbson would refuse is left to the general path).
        bool scalar(ValueBytes* out) const {
            const uint32_t start = offset + 1 + keyLen + 1;
            if (start >= containerLen)
                return false;
            // Only the types fastCompare reads, which the checks below validate as
            // strictly as libbson does (a bool byte of 2, say, libbson refuses).
            const uint8_t t = type();
            if (t != BSON_TYPE_UTF8 && t != BSON_TYPE_INT32 && t != BSON_TYPE_INT64 && t != BSON_TYPE_DOUBLE)
                return false;
            const uint32_t size = valueSize(t, valueBytes(), containerLen - 1 - start);
            if (size == 0)
                return false;
            if (t == BSON_TYPE_UTF8 && valueBytes()[size - 1] != 0)
                return false;
            *out = {t, valueBytes()};
            return true;
        }
        // The size of a document's bytes, 0 when it does not fit its container (the
        // scanner stops at the last field it wants, before checking that field's size).
        uint32_t documentSize() const {
            const uint32_t start = offset + 1 + keyLen + 1;
            return start < containerLen
                       ? valueSize(BSON_TYPE_DOCUMENT, valueBytes(), containerLen - 1 - start)
                       : 0;
        }
    };
    Place places[kCacheNodes];
    IterSlot values[kCacheNodes];

    const bson_iter_t* value(int n) {
        const uint32_t bit = 1u << n;
        if (!(ready & bit)) {
            const Place& p = places[n];
            if (!bson_iter_init_from_data_at_offset(&values[n].it, p.container, p.containerLen, p.offset,
                                                    p.keyLen))
                return nullptr; // libbson refuses the element: as if missing
            ready |= bit;
        }
        return &values[n].it;
    }
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

// An operand kept as the bytes of an iterator positioned on it inside the query:
// 80 bytes instead of the 128 an aligned bson_iter_t element would take, which counts
// with a million subscriptions. Copied out (memcpy) before use. Strings and plain
// numbers are also read once, for fastCompare.
struct Operand {
    unsigned char bytes[sizeof(bson_iter_t)];
    FastOperand fast;
};

// The values a path reaches in one document: a single value (or missing) in the
// common case, or a walk when an array lies on the way.
struct Source {
    const bson_iter_t* value = nullptr;
    const PathComponent* parts = nullptr;
    size_t n = 0;
    size_t k = 0;
    bool walk = false;
    bool expandable = true; // $elemMatch elements are matched as they are
};

template <class F> bool anyValue(const Source& s, bool expand, F&& visit) {
    if (s.walk) {
        bool yielded = false;
        if (walkPath(s.parts, s.n, s.k, s.value, expand, yielded, visit))
            return true;
        return !yielded && visit(nullptr);
    }
    if (s.value && expand && s.expandable && (iterType(s.value) == BSON_TYPE_ARRAY)) {
        bson_iter_t element;
        if (bson_iter_recurse(s.value, &element))
            while (bson_iter_next(&element))
                if (visit(&element))
                    return true;
    }
    return visit(s.value);
}

uint32_t typeBit(bson_type_t type) {
    if (type == BSON_TYPE_MINKEY)
        return 1u << 20;
    if (type == BSON_TYPE_MAXKEY)
        return 1u << 21;
    const unsigned t = unsigned(type);
    return t >= 1 && t <= 19 ? 1u << t : 0;
}

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
    std::vector<TrieNode> trie;
    // Trie nodes grouped by parent: those of parent p are children[childStart[p + 1] ..
    // childStart[p + 2]), so a scan compares each key with two or three names, not all.
    std::vector<uint8_t> children;
    uint8_t childStart[kCacheNodes + 2] = {};
    uint64_t childLengths[kCacheNodes + 1] = {}; // per parent: which name lengths its children have

    void indexChildren() {
        children.clear();
        for (int parent = -1; parent < int(kCacheNodes); ++parent) {
            childStart[parent + 1] = uint8_t(children.size());
            childLengths[parent + 1] = 0;
            for (size_t n = 0; n < trie.size(); ++n)
                if (trie[n].parent == parent) {
                    children.push_back(uint8_t(n));
                    // Bit L: a child's name is L bytes long; bit 63 also stands for longer.
                    childLengths[parent + 1] |= uint64_t(1) << std::min(trie[n].part.len, 63);
                }
        }
        childStart[kCacheNodes + 1] = uint8_t(children.size());
    }

    bool isTrue() const { return valid && nodes[root].kind == Kind::True; }

    bool matches(const bson_t* doc) const {
        PrefixCache cache;
        cache.data = bson_get_data(doc);
        cache.len = doc->len;
        if (!flat.empty()) {
            const int result = evalFlat(&cache);
            if (result >= 0)
                return result;
        }
        return evalDoc(root, cache.data, cache.len, &cache);
    }

    // The flat path: a filter that is an AND of simple tests ($eq, $ne, comparisons,
    // $in, $exists against strings and plain numbers) on paths of the prefix cache is
    // evaluated in one loop over those tests, reading each value's bytes directly.
    // Anything it does not read that way (an array, a value of another type, bytes
    // libbson would refuse) makes it say "undecided", and the general evaluation
    // decides, with the cache it filled. Every filter test runs through it.
    struct FlatTest {
        uint32_t path;
        uint32_t value; // value node
    };
    std::vector<FlatTest> flat;

    bool flatValueNode(uint32_t index) const {
        const Node& node = nodes[index];
        switch (node.kind) {
        case Kind::VAnd:
            for (uint32_t i = 0; i < node.c; ++i)
                if (!flatValueNode(kids[node.b + i]))
                    return false;
            return true;
        case Kind::VNot:
            return nodes[node.a].kind == Kind::Eq && flatValueNode(node.a);
        case Kind::Eq:
        case Kind::Gt:
        case Kind::Gte:
        case Kind::Lt:
        case Kind::Lte:
            return operands[node.a].fast.kind != FastOperand::None;
        case Kind::In: {
            const InList& list = inLists[node.a];
            if (list.hashed || !list.regexes.empty())
                return false;
            for (uint32_t operand : list.values)
                if (operands[operand].fast.kind == FastOperand::None)
                    return false;
            return true;
        }
        case Kind::Exists:
            return true;
        default:
            return false;
        }
    }

    void buildFlat() {
        flat.clear();
        const Node& top = nodes[root];
        std::vector<uint32_t> tests;
        if (top.kind == Kind::And)
            for (uint32_t i = 0; i < top.c; ++i)
                tests.push_back(kids[top.b + i]);
        else
            tests.push_back(root);
        std::vector<FlatTest> built;
        for (uint32_t index : tests) {
            const Node& node = nodes[index];
            if (node.kind != Kind::Path || paths[node.a].leafSlot < 0 || !flatValueNode(node.b))
                return;
            built.push_back({node.a, node.b});
        }
        flat = std::move(built);
    }

    // 1: matches, 0: does not, -1: undecided.
    int flatValue(uint32_t index, const ValueBytes* v) const {
        const Node& node = nodes[index];
        int c = 0;
        switch (node.kind) {
        case Kind::VAnd:
            for (uint32_t i = 0; i < node.c; ++i) {
                const int r = flatValue(kids[node.b + i], v);
                if (r <= 0)
                    return r;
            }
            return 1;
        case Kind::VNot: {
            const int r = flatValue(node.a, v);
            return r < 0 ? -1 : !r;
        }
        case Kind::Exists:
            return v != nullptr;
        case Kind::In:
            if (!v)
                return inLists[node.a].hasNull;
            for (uint32_t operand : inLists[node.a].values) {
                if (!fastCompare(operands[operand].fast, *v, &c))
                    return -1;
                if (c == 0)
                    return 1;
            }
            return 0;
        default:
            break;
        }
        if (!v)
            return 0; // a fast operand is never null: missing matches none of these
        if (!fastCompare(operands[node.a].fast, *v, &c))
            return -1;
        return holds(node.kind, c);
    }

    int evalFlat(PrefixCache* cache) const {
        for (const FlatTest& test : flat) {
            const CompiledPath& path = paths[test.path];
            const uint8_t* chain = path.chain.data();
            const size_t n = path.parts.size();
            const uint8_t* data = cache->data;
            uint32_t len = cache->len;
            bool missing = false;
            for (size_t k = 0; k < n && !missing; ++k) {
                if (k > 0) {
                    const PrefixCache::Place& place = cache->places[chain[k - 1]];
                    const uint8_t type = place.type();
                    if (type == BSON_TYPE_ARRAY)
                        return -1;
                    if (type != BSON_TYPE_DOCUMENT) {
                        missing = true;
                        break;
                    }
                    data = place.valueBytes();
                    len = place.documentSize();
                    if (len == 0)
                        return -1;
                }
                scanChildren(cache, k == 0 ? -1 : chain[k - 1], data, len);
                missing = !(cache->found & (1u << chain[k]));
            }
            ValueBytes value;
            if (!missing && !cache->places[chain[n - 1]].scalar(&value))
                return -1;
            const int r = flatValue(test.value, missing ? nullptr : &value);
            if (r <= 0)
                return r;
        }
        return 1;
    }

    bool matches(const DocumentIndex& index) const {
        PrefixCache cache;
        cache.data = index.data();
        cache.len = index.size();
        cache.index = index.usable() ? &index : nullptr;
        return evalDoc(root, cache.data, cache.len, &cache);
    }

    // Resolves a path from the root through the caller's DocumentIndex: the whole path
    // in one probe, or, when it is not there, the longest prefix that is (an array on
    // the way is walked from there, as resolveCached does). False when the index
    // cannot say (a path deeper than it goes).
    bool resolveIndexed(const CompiledPath& path, const DocumentIndex& index, Source* src,
                        bson_iter_t* buffer) const {
        const size_t n = path.parts.size();
        bson_type_t type = BSON_TYPE_EOD;
        for (size_t k = n; k > 0; --k) {
            switch (index.find(path.parts.data(), k, buffer, &type)) {
            case DocumentIndex::Lookup::Unindexed:
                return false;
            case DocumentIndex::Lookup::Missing:
                continue;
            case DocumentIndex::Lookup::Found:
                if (k == n) {
                    src->value = buffer;
                } else if (type == BSON_TYPE_ARRAY) {
                    src->value = buffer;
                    src->walk = true;
                    src->parts = path.parts.data();
                    src->n = n;
                    src->k = k;
                } else {
                    // A scalar, or a document without the next field: missing.
                    src->value = nullptr;
                }
                return true;
            }
        }
        src->value = nullptr; // not even the first field
        return true;
    }

    // Scans the document of node `parent` (-1: the root) once for all its trie children.
    void scanChildren(PrefixCache* cache, int parent, const uint8_t* data, uint32_t len) const {
        const uint32_t bit = 1u << (parent + 1);
        if (cache->scanned & bit)
            return;
        cache->scanned |= bit;
        // Locals, not members: the compiler cannot keep members in registers across the
        // writes into the cache's iterators.
        const uint8_t* const kids = children.data() + childStart[parent + 1];
        const uint32_t count = uint32_t(childStart[parent + 2] - childStart[parent + 1]);
        const TrieNode* const nodes = trie.data();
        const uint64_t lengths = childLengths[parent + 1];
        const uint8_t* const limit = data + len;
        uint32_t found = cache->found;
        size_t remaining = count;
        const bool wellFormed =
            scanElements(data, len, [&](uint32_t offset, const char* key, uint32_t keyLen) {
                if (!((lengths >> std::min(keyLen, 63u)) & 1))
                    return false; // no child has a name this long (the common case)
                for (uint32_t c = 0; c < count; ++c) {
                    const uint32_t n = kids[c];
                    const TrieNode& node = nodes[n];
                    if (uint32_t(node.part.len) != keyLen || (found & (1u << n)) ||
                        !node.named(key, keyLen, limit))
                        continue;
                    cache->places[n] = {data, len, offset, keyLen};
                    found |= 1u << n;
                    return --remaining == 0;
                }
                return false;
            });
        cache->found = found;
        if (wellFormed || !remaining)
            return;
        // Bytes the scanner does not accept: look each field up through libbson.
        for (size_t n = 0; n < trie.size(); ++n) {
            bson_iter_t* it = &cache->values[n].it;
            if (trie[n].parent == parent && !(cache->found & (1u << n)) &&
                bson_iter_init_from_data(it, data, len) && findNext(it, trie[n].part)) {
                cache->places[n] = {data, len, bson_iter_offset(it), bson_iter_key_len(it)};
                cache->found |= 1u << n;
                cache->ready |= 1u << n;
            }
        }
    }

    // Resolves a cached path from the root. Sets src to the single value (or missing), or
    // to a walk from the first array on the way.
    void resolveCached(const CompiledPath& path, PrefixCache* cache, Source* src) const {
        const size_t n = path.parts.size();
        const uint8_t* chain = path.chain.data();
        const uint8_t* data = cache->data;
        uint32_t len = cache->len;
        src->value = nullptr;
        for (size_t k = 0; k < n; ++k) {
            if (k > 0) {
                const PrefixCache::Place& place = cache->places[chain[k - 1]];
                const uint8_t type = place.type();
                if (type == BSON_TYPE_ARRAY) {
                    src->value = cache->value(chain[k - 1]);
                    src->walk = src->value != nullptr;
                    src->parts = path.parts.data();
                    src->n = n;
                    src->k = k;
                    return;
                }
                if (type != BSON_TYPE_DOCUMENT)
                    return; // a scalar on the way: missing
                data = place.valueBytes();
                len = place.documentSize();
                if (len == 0)
                    return; // malformed: libbson would not read it either
            }
            scanChildren(cache, k == 0 ? -1 : chain[k - 1], data, len);
            if (!(cache->found & (1u << chain[k])))
                return;
        }
        src->value = cache->value(chain[n - 1]);
    }

    bool evalDoc(uint32_t index, const uint8_t* data, uint32_t len, PrefixCache* cache) const {
        const Node& node = nodes[index];
        switch (node.kind) {
        case Kind::And:
            for (uint32_t i = 0; i < node.c; ++i)
                if (!evalDoc(kids[node.b + i], data, len, cache))
                    return false;
            return true;
        case Kind::Or:
            for (uint32_t i = 0; i < node.c; ++i)
                if (evalDoc(kids[node.b + i], data, len, cache))
                    return true;
            return false;
        case Kind::Nor:
            for (uint32_t i = 0; i < node.c; ++i)
                if (evalDoc(kids[node.b + i], data, len, cache))
                    return false;
            return true;
        case Kind::True:
            return true;
        case Kind::False:
            return false;
        case Kind::Path: {
            const CompiledPath& path = paths[node.a];
            Source src;
            bson_iter_t found;
            if (cache && cache->index && resolveIndexed(path, *cache->index, &src, &found))
                return evalValue(node.b, src);
            if (cache && path.leafSlot >= 0) {
                resolveCached(path, cache, &src);
                return evalValue(node.b, src);
            }
            bson_iter_t bufA;
            bson_iter_t bufB;
            const bson_iter_t* cur = findInDocument(data, len, path.parts[0], &bufA) ? &bufA : nullptr;
            bson_iter_t* next = &bufB;
            const size_t n = path.parts.size();
            size_t k = 1;
            // Descend through documents without the general walk; only an array on the
            // way needs it.
            for (; k < n && cur; ++k) {
                if ((iterType(cur) == BSON_TYPE_DOCUMENT)) {
                    if (findChild(cur, path.parts[k], next)) {
                        cur = next;
                        next = cur == &bufA ? &bufB : &bufA;
                    } else {
                        cur = nullptr;
                    }
                } else if ((iterType(cur) == BSON_TYPE_ARRAY)) {
                    src.walk = true;
                    src.parts = path.parts.data();
                    src.n = n;
                    src.k = k;
                    break;
                } else {
                    cur = nullptr;
                }
            }
            src.value = cur;
            return evalValue(node.b, src);
        }
        default:
            return false;
        }
    }

    bool evalValue(uint32_t index, const Source& src) const {
        const Node& node = nodes[index];
        switch (node.kind) {
        case Kind::VAnd:
            for (uint32_t i = 0; i < node.c; ++i)
                if (!evalValue(kids[node.b + i], src))
                    return false;
            return true;
        case Kind::VNot:
            return !evalValue(node.a, src);
        case Kind::VFalse:
            return false;
        case Kind::Exists:
            return anyValue(src, false, [](const bson_iter_t* v) { return v != nullptr; });
        case Kind::Size:
            return anyValue(src, false, [&](const bson_iter_t* v) {
                return v && (iterType(v) == BSON_TYPE_ARRAY) && bsonvalue::childCount(v) == node.a;
            });
        case Kind::ElemMatchDoc:
            return anyValue(src, false, [&](const bson_iter_t* v) {
                bson_iter_t element;
                if (!v || !(iterType(v) == BSON_TYPE_ARRAY) || !bson_iter_recurse(v, &element))
                    return false;
                while (bson_iter_next(&element)) {
                    if (!(iterType(&element) == BSON_TYPE_DOCUMENT))
                        continue;
                    uint32_t len = 0;
                    const uint8_t* data = nullptr;
                    bson_iter_document(&element, &len, &data);
                    if (evalDoc(node.a, data, len, nullptr))
                        return true;
                }
                return false;
            });
        case Kind::ElemMatchValue:
            return anyValue(src, false, [&](const bson_iter_t* v) {
                bson_iter_t element;
                if (!v || !(iterType(v) == BSON_TYPE_ARRAY) || !bson_iter_recurse(v, &element))
                    return false;
                while (bson_iter_next(&element)) {
                    Source one;
                    one.value = &element;
                    one.expandable = false;
                    if (evalValue(node.a, one))
                        return true;
                }
                return false;
            });
        default:
            return anyValue(src, true, [&](const bson_iter_t* v) { return leaf(node, v); });
        }
    }

    bool leaf(const Node& node, const bson_iter_t* v) const {
        switch (node.kind) {
        case Kind::Eq: {
            int c = 0;
            if (v && fastCompare(operands[node.a].fast, v, &c))
                return c == 0;
            const bson_iter_t op = operand(node.a);
            if ((iterType(&op) == BSON_TYPE_NULL))
                return !v || (iterType(v) == BSON_TYPE_NULL);
            return v && bsonvalue::equal(v, &op);
        }
        case Kind::Gt:
        case Kind::Gte:
        case Kind::Lt:
        case Kind::Lte: {
            if (!v)
                return false;
            int c = 0;
            if (!fastCompare(operands[node.a].fast, v, &c)) {
                const bson_iter_t op = operand(node.a);
                // Comparisons stay inside one type bracket: {$gt: 5} never matches a string.
                if (bsonvalue::bracket(iterType(v)) != bsonvalue::bracket(iterType(&op)))
                    return false;
                c = bsonvalue::compare(v, &op);
            }
            return holds(node.kind, c);
        }
        case Kind::In:
            return inListMatches(inLists[node.a], v);
        case Kind::Type:
            return v && (node.a & typeBit(iterType(v)));
        case Kind::Regex:
            return v && regexMatches(regexes[node.a], v);
        default:
            return false;
        }
    }

    bool inListMatches(const InList& list, const bson_iter_t* v) const {
        if (!v || (iterType(v) == BSON_TYPE_NULL))
            return list.hasNull;
        bool scalar = false;
        if (list.hashed) {
            // Reused per thread: after the first few evaluations no allocation remains.
            thread_local std::string key;
            key.clear();
            scalar = bsonvalue::appendKey(v, key);
            if (scalar && list.keys.find(std::string_view(key)) != list.keys.end())
                return true;
        }
        if (!scalar)
            for (uint32_t index : list.values) {
                int c = 0;
                if (fastCompare(operands[index].fast, v, &c)) {
                    if (c == 0)
                        return true;
                    continue;
                }
                const bson_iter_t op = operand(index);
                if (bsonvalue::equal(v, &op))
                    return true;
            }
        for (uint32_t regex : list.regexes)
            if (regexMatches(regexes[regex], v))
                return true;
        return false;
    }

    static bool regexMatches(const CompiledRegex& regex, const bson_iter_t* v) {
        uint32_t len = 0;
        const char* text = nullptr;
        if ((iterType(v) == BSON_TYPE_UTF8)) {
            text = bson_iter_utf8(v, &len);
        } else if ((iterType(v) == BSON_TYPE_SYMBOL)) {
            text = bson_iter_symbol(v, &len);
        } else if ((iterType(v) == BSON_TYPE_REGEX)) {
            // {a: /x/} also finds documents that store the regular expression itself.
            const char* flags = nullptr;
            const char* pattern = bson_iter_regex(v, &flags);
            return regex.pattern == pattern && regex.flags == flags;
        } else {
            return false;
        }
        return regex.re.match(QString::fromUtf8(text, qsizetype(len))).hasMatch();
    }
};

// Type names of $type, as MongoDB spells them.
struct TypeName {
    const char* name;
    int code;
};
constexpr TypeName kTypeNames[] = {
    {"double", 1},    {"string", 2},     {"object", 3},      {"array", 4},    {"binData", 5},
    {"undefined", 6}, {"objectId", 7},   {"bool", 8},        {"date", 9},     {"null", 10},
    {"regex", 11},    {"dbPointer", 12}, {"javascript", 13}, {"symbol", 14},  {"javascriptWithScope", 15},
    {"int", 16},      {"timestamp", 17}, {"long", 18},       {"decimal", 19}, {"minKey", -1},
    {"maxKey", 127},
};

uint32_t codeBit(int code) {
    if (code == -1)
        return 1u << 20;
    if (code == 127)
        return 1u << 21;
    return code >= 1 && code <= 19 ? 1u << code : 0;
}

QString keyOf(const bson_iter_t* it) {
    return QString::fromUtf8(bson_iter_key(it), qsizetype(bson_iter_key_len(it)));
}

bool isOperatorDocument(const bson_iter_t* it) {
    bson_iter_t child;
    return (iterType(it) == BSON_TYPE_DOCUMENT) && bson_iter_recurse(it, &child) && bson_iter_next(&child) &&
           bson_iter_key(&child)[0] == '$';
}

// A whole number from int32, int64, or a double without fraction.
bool wholeNumber(const bson_iter_t* it, int64_t* out) {
    if ((iterType(it) == BSON_TYPE_INT32) || (iterType(it) == BSON_TYPE_INT64)) {
        *out = bson_iter_as_int64(it);
        return true;
    }
    if ((iterType(it) == BSON_TYPE_DOUBLE) || (iterType(it) == BSON_TYPE_DECIMAL128)) {
        const bsonvalue::Number n = bsonvalue::toNumber(it);
        if (n.isInt) {
            *out = n.i;
            return true;
        }
        if (n.d == n.d && n.d >= -9.2e18 && n.d <= 9.2e18 && double(int64_t(n.d)) == n.d) {
            *out = int64_t(n.d);
            return true;
        }
    }
    return false;
}

class Compiler {
public:
    explicit Compiler(Program& program)
        : m_p(program) {}

    bool run() {
        bson_t doc;
        bson_iter_t it;
        if (!m_p.query.view(&doc) || !bson_iter_init(&it, &doc)) {
            m_error = QStringLiteral("filter must be a document");
            return false;
        }
        if (!compileDocument(&it, QString(), QString(), false, &m_p.root))
            return false;
        m_p.indexChildren();
        m_p.buildFlat();
        return true;
    }

    QString error() const { return m_error; }

private:
    bool fail(const QString& message) {
        m_error = message;
        return false;
    }
    bool failAt(const QString& path, const QString& message) {
        return fail(path + QStringLiteral(": ") + message);
    }

    uint32_t add(Kind kind, uint32_t a = 0, uint32_t b = 0, uint32_t c = 0) {
        m_p.nodes.push_back(Node{kind, a, b, c});
        return uint32_t(m_p.nodes.size() - 1);
    }

    uint32_t addList(Kind kind, const std::vector<uint32_t>& kids) {
        const uint32_t firstKid = uint32_t(m_p.kids.size());
        m_p.kids.insert(m_p.kids.end(), kids.begin(), kids.end());
        return add(kind, 0, firstKid, uint32_t(kids.size()));
    }

    uint32_t addOperand(const bson_iter_t* it) {
        Operand operand;
        std::memcpy(operand.bytes, it, sizeof operand.bytes);
        if (iterType(it) == BSON_TYPE_UTF8) {
            operand.fast.kind = FastOperand::String;
            operand.fast.text = bson_iter_utf8(it, &operand.fast.len);
        } else if (bsonvalue::Number n;
                   plainNumber(ValueBytes{uint8_t(iterType(it)), it->raw + it->d1}, &n)) {
            operand.fast.kind = n.isInt ? FastOperand::Int : FastOperand::Double;
            if (n.isInt)
                operand.fast.i = n.i;
            else
                operand.fast.d = n.d;
        }
        m_p.operands.push_back(operand);
        return uint32_t(m_p.operands.size() - 1);
    }

    // The trie node of the whole path, adding the missing prefixes; -1 when the trie is full.
    int addToTrie(const std::vector<PathComponent>& parts) {
        int parent = -1;
        for (const PathComponent& part : parts) {
            int found = -1;
            for (size_t n = 0; n < m_p.trie.size() && found < 0; ++n) {
                const TrieNode& node = m_p.trie[n];
                if (node.parent == parent && node.part.len == part.len &&
                    std::memcmp(node.part.name, part.name, size_t(part.len)) == 0)
                    found = int(n);
            }
            if (found < 0) {
                if (m_p.trie.size() >= kCacheNodes)
                    return -1;
                m_p.trie.push_back(TrieNode{part, parent});
                found = int(m_p.trie.size() - 1);
            }
            parent = found;
        }
        return parent;
    }

    uint32_t addPath(const char* key, uint32_t len, bool relative) {
        CompiledPath path;
        path.text = QByteArrayView(key, qsizetype(len));
        path.parts = splitPath(path.text);
        if (!relative)
            path.leafSlot = addToTrie(path.parts);
        if (path.leafSlot >= 0) {
            path.chain.resize(path.parts.size());
            for (int k = int(path.parts.size()) - 1, node = path.leafSlot; k >= 0; --k) {
                path.chain[size_t(k)] = uint8_t(node);
                node = m_p.trie[size_t(node)].parent;
            }
        }
        m_p.paths.push_back(std::move(path));
        return uint32_t(m_p.paths.size() - 1);
    }

    // `it` is positioned before the first field. `where` locates nested logical
    // operators ("$or.1"), `prefix` the enclosing $elemMatch path for messages.
    bool compileDocument(bson_iter_t* it, const QString& where, const QString& prefix, bool relative,
                         uint32_t* out) {
        std::vector<uint32_t> conjuncts;
        while (bson_iter_next(it)) {
            const char* key = bson_iter_key(it);
            if (key[0] != '$') {
                uint32_t node = 0;
                if (!compileField(it, prefix, relative, &node))
                    return false;
                conjuncts.push_back(node);
                continue;
            }
            const QString name = keyOf(it);
            if (name == QLatin1String("$comment"))
                continue;
            Kind kind;
            if (name == QLatin1String("$and"))
                kind = Kind::And;
            else if (name == QLatin1String("$or"))
                kind = Kind::Or;
            else if (name == QLatin1String("$nor"))
                kind = Kind::Nor;
            else if (where.isEmpty())
                return fail(QStringLiteral("unknown top-level operator %1").arg(name));
            else
                return fail(QStringLiteral("%1: unknown top-level operator %2").arg(where, name));
            const QString here = where.isEmpty() ? prefix + name : where + QLatin1Char('.') + name;
            bson_iter_t element;
            if (!(iterType(it) == BSON_TYPE_ARRAY) || bsonvalue::childCount(it) == 0 ||
                !bson_iter_recurse(it, &element))
                return fail(QStringLiteral("%1 must be a non-empty array").arg(here));
            std::vector<uint32_t> branches;
            while (bson_iter_next(&element)) {
                const QString branchWhere = here + QLatin1Char('.') + keyOf(&element);
                bson_iter_t branch;
                if (!(iterType(&element) == BSON_TYPE_DOCUMENT) || !bson_iter_recurse(&element, &branch))
                    return fail(QStringLiteral("%1 must be a document").arg(branchWhere));
                uint32_t node = 0;
                if (!compileDocument(&branch, branchWhere, prefix, relative, &node))
                    return false;
                branches.push_back(node);
            }
            conjuncts.push_back(branches.size() == 1 && kind == Kind::And ? branches[0]
                                                                          : addList(kind, branches));
        }
        if (conjuncts.empty())
            *out = add(Kind::True);
        else if (conjuncts.size() == 1)
            *out = conjuncts[0];
        else
            *out = addList(Kind::And, conjuncts);
        return true;
    }

    bool compileField(const bson_iter_t* it, const QString& prefix, bool relative, uint32_t* out) {
        const QString path = prefix + keyOf(it);
        const uint32_t pathIndex = addPath(bson_iter_key(it), bson_iter_key_len(it), relative);
        uint32_t value = 0;
        if (isOperatorDocument(it)) {
            if (!compileOperators(it, path, &value))
                return false;
        } else if ((iterType(it) == BSON_TYPE_REGEX)) {
            const char* flags = nullptr;
            const char* pattern = bson_iter_regex(it, &flags);
            uint32_t regex = 0;
            if (!compileRegex(path, pattern, flags, &regex))
                return false;
            value = add(Kind::Regex, regex);
        } else {
            value = add(Kind::Eq, addOperand(it));
        }
        *out = add(Kind::Path, pathIndex, value);
        return true;
    }

    bool compileRegex(const QString& path, const char* pattern, const char* flags, uint32_t* out) {
        QRegularExpression::PatternOptions options;
        for (const char* f = flags; *f; ++f) {
            switch (*f) {
            case 'i':
                options |= QRegularExpression::CaseInsensitiveOption;
                break;
            case 'm':
                options |= QRegularExpression::MultilineOption;
                break;
            case 's':
                options |= QRegularExpression::DotMatchesEverythingOption;
                break;
            case 'x':
                options |= QRegularExpression::ExtendedPatternSyntaxOption;
                break;
            case 'u':
                break; // QRegularExpression always matches Unicode
            default:
                return failAt(
                    path,
                    QStringLiteral("$regex: unknown option '%1' (use i, m, s or x)").arg(QLatin1Char(*f)));
            }
        }
        CompiledRegex regex;
        regex.re = QRegularExpression(QString::fromUtf8(pattern), options);
        if (!regex.re.isValid())
            return failAt(path, QStringLiteral("$regex: invalid regular expression: %1 at offset %2")
                                    .arg(regex.re.errorString())
                                    .arg(regex.re.patternErrorOffset()));
        // Compile now: the first match would otherwise do it, on whichever thread runs first.
        regex.re.optimize();
        regex.pattern = pattern;
        regex.flags = flags;
        m_p.regexes.push_back(std::move(regex));
        *out = uint32_t(m_p.regexes.size() - 1);
        return true;
    }

    bool compileComparison(const QString& path, const QString& name, Kind kind, const bson_iter_t* operand,
                           uint32_t* out) {
        if ((iterType(operand) == BSON_TYPE_REGEX))
            return failAt(path, QStringLiteral("%1 cannot take a regular expression").arg(name));
        if ((iterType(operand) == BSON_TYPE_NULL)) {
            // Only null (and missing) sits in the null bracket: $gte/$lte null are
            // equality, $gt/$lt null match nothing.
            *out = kind == Kind::Gte || kind == Kind::Lte ? add(Kind::Eq, addOperand(operand))
                                                          : add(Kind::VFalse);
            return true;
        }
        *out = add(kind, addOperand(operand));
        return true;
    }

    bool compileIn(const QString& path, const QString& name, const bson_iter_t* operand, uint32_t* out) {
        bson_iter_t element;
        if (!(iterType(operand) == BSON_TYPE_ARRAY) || !bson_iter_recurse(operand, &element))
            return failAt(path, QStringLiteral("%1 needs an array").arg(name));
        InList list;
        std::vector<uint32_t> scalars;
        while (bson_iter_next(&element)) {
            if (isOperatorDocument(&element)) {
                bson_iter_t inner;
                bson_iter_recurse(&element, &inner);
                bson_iter_next(&inner);
                return failAt(path,
                              QStringLiteral("%1 cannot hold an operator (%2)").arg(name, keyOf(&inner)));
            }
            if ((iterType(&element) == BSON_TYPE_REGEX)) {
                const char* flags = nullptr;
                const char* pattern = bson_iter_regex(&element, &flags);
                uint32_t regex = 0;
                if (!compileRegex(path, pattern, flags, &regex))
                    return false;
                list.regexes.push_back(regex);
            } else if ((iterType(&element) == BSON_TYPE_NULL)) {
                list.hasNull = true;
            } else {
                list.values.push_back(addOperand(&element));
            }
        }
        // Up to 8 values a linear scan of compare() is as quick as building a key and
        // hashing it; above that the hash wins (an $in of 1 000 ids is common).
        if (list.values.size() > 8) {
            list.hashed = true;
            std::vector<uint32_t> rest;
            std::string key;
            for (uint32_t index : list.values) {
                key.clear();
                const bson_iter_t op = m_p.operand(index);
                if (bsonvalue::appendKey(&op, key))
                    list.keys.insert(key);
                else
                    rest.push_back(index);
            }
            list.values = std::move(rest);
        }
        m_p.inLists.push_back(std::move(list));
        const uint32_t in = add(Kind::In, uint32_t(m_p.inLists.size() - 1));
        *out = name == QLatin1String("$nin") ? add(Kind::VNot, in) : in;
        return true;
    }

    bool compileType(const QString& path, const bson_iter_t* operand, uint32_t* mask) {
        if ((iterType(operand) == BSON_TYPE_ARRAY)) {
            bson_iter_t element;
            if (bsonvalue::childCount(operand) == 0 || !bson_iter_recurse(operand, &element))
                return failAt(path, QStringLiteral("$type needs at least one type"));
            while (bson_iter_next(&element))
                if (!compileType(path, &element, mask))
                    return false;
            return true;
        }
        if ((iterType(operand) == BSON_TYPE_UTF8)) {
            uint32_t len = 0;
            const char* name = bson_iter_utf8(operand, &len);
            const std::string_view text(name, len);
            if (text == "number") {
                *mask |= codeBit(1) | codeBit(16) | codeBit(18) | codeBit(19);
                return true;
            }
            for (const TypeName& type : kTypeNames) {
                if (text == type.name) {
                    *mask |= codeBit(type.code);
                    return true;
                }
            }
            return failAt(
                path, QStringLiteral("$type: unknown type name \"%1\"").arg(QString::fromUtf8(name, len)));
        }
        int64_t code = 0;
        if (wholeNumber(operand, &code)) {
            const uint32_t bit = code >= -1 && code <= 127 ? codeBit(int(code)) : 0;
            if (!bit)
                return failAt(path, QStringLiteral("$type: unknown type code %1").arg(code));
            *mask |= bit;
            return true;
        }
        return failAt(path, QStringLiteral("$type needs a type name, a type number or an array of them"));
    }

    bool compileElemMatch(const QString& path, const bson_iter_t* operand, uint32_t* out) {
        bson_iter_t inner;
        if (!(iterType(operand) == BSON_TYPE_DOCUMENT) || !bson_iter_recurse(operand, &inner))
            return failAt(path, QStringLiteral("$elemMatch needs a document"));
        bson_iter_t probe = inner;
        bool valueMode = false;
        if (bson_iter_next(&probe)) {
            const char* key = bson_iter_key(&probe);
            // {$elemMatch: {$gt: 1}} tests elements as values; a query whose first key is
            // a field or a logical operator tests elements that are documents.
            valueMode = key[0] == '$' && std::strcmp(key, "$and") != 0 && std::strcmp(key, "$or") != 0 &&
                        std::strcmp(key, "$nor") != 0;
        }
        uint32_t child = 0;
        if (valueMode) {
            if (!compileOperators(operand, path + QStringLiteral(".$elemMatch"), &child))
                return false;
            *out = add(Kind::ElemMatchValue, child);
            return true;
        }
        if (!compileDocument(&inner, QString(), path + QLatin1Char('.'), true, &child))
            return false;
        *out = add(Kind::ElemMatchDoc, child);
        return true;
    }

    bool compileAll(const QString& path, const bson_iter_t* operand, uint32_t* out) {
        bson_iter_t element;
        if (!(iterType(operand) == BSON_TYPE_ARRAY) || !bson_iter_recurse(operand, &element))
            return failAt(path, QStringLiteral("$all needs an array"));
        std::vector<uint32_t> parts;
        while (bson_iter_next(&element)) {
            uint32_t node = 0;
            if (isOperatorDocument(&element)) {
                bson_iter_t inner;
                bson_iter_recurse(&element, &inner);
                bson_iter_next(&inner);
                if (std::strcmp(bson_iter_key(&inner), "$elemMatch") != 0)
                    return failAt(path,
                                  QStringLiteral("$all cannot hold an operator (%1)").arg(keyOf(&inner)));
                if (!compileElemMatch(path, &inner, &node))
                    return false;
            } else if ((iterType(&element) == BSON_TYPE_REGEX)) {
                const char* flags = nullptr;
                const char* pattern = bson_iter_regex(&element, &flags);
                uint32_t regex = 0;
                if (!compileRegex(path, pattern, flags, &regex))
                    return false;
                node = add(Kind::Regex, regex);
            } else {
                node = add(Kind::Eq, addOperand(&element));
            }
            parts.push_back(node);
        }
        // MongoDB: {$all: []} matches nothing.
        if (parts.empty())
            *out = add(Kind::VFalse);
        else
            *out = parts.size() == 1 ? parts[0] : addList(Kind::VAnd, parts);
        return true;
    }

    // `doc` points at a document of operators ({$gt: 1, $lt: 5}); all must hold.
    bool compileOperators(const bson_iter_t* doc, const QString& path, uint32_t* out) {
        bson_iter_t it;
        bson_iter_recurse(doc, &it);
        // $regex and $options are one predicate written as two fields, in either order.
        const bson_iter_t* regexField = nullptr;
        const bson_iter_t* optionsField = nullptr;
        bson_iter_t regexCopy;
        bson_iter_t optionsCopy;
        {
            bson_iter_t scan = it;
            while (bson_iter_next(&scan)) {
                if (!std::strcmp(bson_iter_key(&scan), "$regex")) {
                    regexCopy = scan;
                    regexField = &regexCopy;
                } else if (!std::strcmp(bson_iter_key(&scan), "$options")) {
                    optionsCopy = scan;
                    optionsField = &optionsCopy;
                }
            }
        }
        if (optionsField && !regexField)
            return failAt(path, QStringLiteral("$options needs $regex"));

        std::vector<uint32_t> parts;
        while (bson_iter_next(&it)) {
            const QString name = keyOf(&it);
            const char* key = bson_iter_key(&it);
            uint32_t node = 0;
            if (!std::strcmp(key, "$eq")) {
                node = add(Kind::Eq, addOperand(&it));
            } else if (!std::strcmp(key, "$ne")) {
                node = add(Kind::VNot, add(Kind::Eq, addOperand(&it)));
            } else if (!std::strcmp(key, "$gt")) {
                if (!compileComparison(path, name, Kind::Gt, &it, &node))
                    return false;
            } else if (!std::strcmp(key, "$gte")) {
                if (!compileComparison(path, name, Kind::Gte, &it, &node))
                    return false;
            } else if (!std::strcmp(key, "$lt")) {
                if (!compileComparison(path, name, Kind::Lt, &it, &node))
                    return false;
            } else if (!std::strcmp(key, "$lte")) {
                if (!compileComparison(path, name, Kind::Lte, &it, &node))
                    return false;
            } else if (!std::strcmp(key, "$in") || !std::strcmp(key, "$nin")) {
                if (!compileIn(path, name, &it, &node))
                    return false;
            } else if (!std::strcmp(key, "$exists")) {
                const uint32_t exists = add(Kind::Exists);
                node = bson_iter_as_bool(&it) ? exists : add(Kind::VNot, exists);
            } else if (!std::strcmp(key, "$type")) {
                uint32_t mask = 0;
                if (!compileType(path, &it, &mask))
                    return false;
                node = add(Kind::Type, mask);
            } else if (!std::strcmp(key, "$regex")) {
                const char* pattern = nullptr;
                const char* flags = "";
                if ((iterType(&it) == BSON_TYPE_UTF8))
                    pattern = bson_iter_utf8(&it, nullptr);
                else if ((iterType(&it) == BSON_TYPE_REGEX))
                    pattern = bson_iter_regex(&it, &flags);
                else
                    return failAt(path, QStringLiteral("$regex needs a string or a regular expression"));
                if (optionsField) {
                    if (!(iterType(optionsField) == BSON_TYPE_UTF8))
                        return failAt(path, QStringLiteral("$options needs a string"));
                    const char* extra = bson_iter_utf8(optionsField, nullptr);
                    if (*flags && *extra)
                        return failAt(path,
                                      QStringLiteral("$regex has options both in the regular expression "
                                                     "and in $options"));
                    if (*extra)
                        flags = extra;
                }
                uint32_t regex = 0;
                if (!compileRegex(path, pattern, flags, &regex))
                    return false;
                node = add(Kind::Regex, regex);
            } else if (!std::strcmp(key, "$options")) {
                continue;
            } else if (!std::strcmp(key, "$not")) {
                uint32_t inner = 0;
                if ((iterType(&it) == BSON_TYPE_REGEX)) {
                    const char* flags = nullptr;
                    const char* pattern = bson_iter_regex(&it, &flags);
                    uint32_t regex = 0;
                    if (!compileRegex(path, pattern, flags, &regex))
                        return false;
                    inner = add(Kind::Regex, regex);
                } else if ((iterType(&it) == BSON_TYPE_DOCUMENT)) {
                    if (bsonvalue::childCount(&it) == 0)
                        return failAt(path, QStringLiteral("$not cannot be empty"));
                    if (!isOperatorDocument(&it))
                        return failAt(path, QStringLiteral("$not needs a regular expression or a document of "
                                                           "operators"));
                    if (!compileOperators(&it, path, &inner))
                        return false;
                } else {
                    return failAt(
                        path, QStringLiteral("$not needs a regular expression or a document of operators"));
                }
                node = add(Kind::VNot, inner);
            } else if (!std::strcmp(key, "$elemMatch")) {
                if (!compileElemMatch(path, &it, &node))
                    return false;
            } else if (!std::strcmp(key, "$size")) {
                int64_t size = 0;
                if (!wholeNumber(&it, &size) || size < 0)
                    return failAt(path, QStringLiteral("$size needs a non-negative integer"));
                node = size > int64_t(UINT32_MAX) ? add(Kind::VFalse) : add(Kind::Size, uint32_t(size));
            } else if (!std::strcmp(key, "$all")) {
                if (!compileAll(path, &it, &node))
                    return false;
            } else {
                return failAt(path, QStringLiteral("unknown operator %1").arg(name));
            }
            parts.push_back(node);
        }
        *out = parts.size() == 1 ? parts[0] : addList(Kind::VAnd, parts);
        return true;
    }

    Program& m_p;
    QString m_error;
};

bool indexableOperand(const bson_iter_t* it) {
    switch (iterType(it)) {
    case BSON_TYPE_ARRAY:
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_REGEX:
        return false;
    default:
        return true;
    }
}

} // namespace filterimpl

struct Filter::Program : filterimpl::Program {};

using filterimpl::Kind;

Filter::Filter() = default;

Filter Filter::compile(QByteArrayView json, QString* error) {
    if (json.trimmed().isEmpty()) {
        // An empty filter box means "no filter", like a default-constructed Filter.
        if (error)
            error->clear();
        return Filter();
    }
    Bson query;
    QString message;
    if (!parseQueryJson(json, &query, &message)) {
        auto program = std::make_shared<Program>();
        program->valid = false;
        program->source = json.toByteArray();
        program->error = message;
        if (error)
            *error = message;
        Filter filter;
        filter.m_program = std::move(program);
        return filter;
    }
    Filter filter = fromBson(query, error);
    if (!filter.isValid()) {
        auto program = std::make_shared<Program>(*filter.m_program);
        program->source = json.toByteArray();
        filter.m_program = std::move(program);
    }
    return filter;
}

Filter Filter::fromBson(const Bson& query, QString* error) {
    if (query.isAbsent()) {
        if (error)
            error->clear();
        return Filter();
    }
    auto program = std::make_shared<Program>();
    program->query = query;
    filterimpl::Compiler compiler(*program);
    if (!compiler.run()) {
        program->valid = false;
        program->error = compiler.error();
        // The nodes may point at half-built state; an invalid filter evaluates nothing.
        program->nodes.clear();
        program->operands.clear();
    }
    if (error)
        *error = program->error;
    Filter filter;
    filter.m_program = std::move(program);
    return filter;
}

bool Filter::isValid() const {
    return !m_program || m_program->valid;
}

bool Filter::matchesEverything() const {
    return !m_program || m_program->isTrue();
}

QByteArray Filter::json() const {
    if (!m_program)
        return QByteArrayLiteral("{}");
    if (!m_program->valid && !m_program->source.isEmpty())
        return m_program->source;
    return m_program->query.toJson();
}

Bson Filter::query() const {
    return m_program ? m_program->query : Bson::empty();
}

bool Filter::matches(const bson_t* changeDocument) const {
    if (!m_program)
        return true;
    if (!m_program->valid || !changeDocument)
        return false;
    return m_program->matches(changeDocument);
}

bool Filter::matches(const DocumentIndex& index) const {
    if (!m_program)
        return true;
    if (!m_program->valid || !index.data())
        return false;
    return m_program->matches(index);
}

bool Filter::matches(const ChangeEvent& event) const {
    if (matchesEverything())
        return true;
    if (!m_program->valid)
        return false;
    const Bson document = event.document();
    bson_t view;
    return document.view(&view) && m_program->matches(&view);
}

QList<Filter::Equality> Filter::equalities() const {
    QList<Equality> result;
    if (!m_program || !m_program->valid)
        return result;
    const filterimpl::Program& p = *m_program;
    const auto addEquality = [&](const filterimpl::CompiledPath& path, uint32_t operand) {
        const bson_iter_t value = p.operand(operand);
        if (!filterimpl::indexableOperand(&value))
            return;
        BsonBuilder wrapped;
        bson_append_iter(wrapped.get(), "v", 1, &value);
        result.append(Equality{path.text.toByteArray(), wrapped.take()});
    };
    const auto visitPath = [&](const filterimpl::Node& node) {
        const filterimpl::Node& value = p.nodes[node.b];
        if (value.kind == Kind::Eq) {
            addEquality(p.paths[node.a], value.a);
        } else if (value.kind == Kind::VAnd) {
            for (uint32_t i = 0; i < value.c; ++i) {
                const filterimpl::Node& part = p.nodes[p.kids[value.b + i]];
                if (part.kind == Kind::Eq)
                    addEquality(p.paths[node.a], part.a);
            }
        }
    };
    // Conjuncts of the top level, including those of top-level $and (nested And nodes).
    std::vector<uint32_t> pending{p.root};
    for (size_t i = 0; i < pending.size(); ++i) {
        const filterimpl::Node& node = p.nodes[pending[i]];
        if (node.kind == Kind::Path)
            visitPath(node);
        else if (node.kind == Kind::And)
            for (uint32_t k = 0; k < node.c; ++k)
                pending.push_back(p.kids[node.b + k]);
    }
    return result;
}

} // namespace tw

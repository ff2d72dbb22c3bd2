#pragma once

#include <QByteArrayView>

#include <bson/bson.h>

#include <cstdint>
#include <cstring>
#include <vector>

// Dotted-path resolution with MongoDB's array rules, shared by Filter and
// SubscriptionIndex so that the index can never disagree with matches(). Private to core/.
namespace tw {

struct PathComponent {
    const char* name = nullptr; // not NUL-terminated; points into the path's owner
    int len = 0;
    int64_t index = -1;      // the component read as an array index, or -1
    uint64_t prefixHash = 0; // hashPathComponent of the path up to this component
};

// FNV-1a over a dotted path, component by component: hashing "a" then "b" gives the
// hash of "a.b", so DocumentIndex hashes incrementally while it descends a document,
// and splitPath() hashes each prefix of a compiled path once.
constexpr uint64_t kPathHashSeed = 14695981039346656037ULL;
inline uint64_t hashPathComponent(uint64_t hash, const char* name, uint32_t len, bool first) {
    constexpr uint64_t kPrime = 1099511628211ULL;
    if (!first)
        hash = (hash ^ uint8_t('.')) * kPrime;
    for (uint32_t i = 0; i < len; ++i)
        hash = (hash ^ uint8_t(name[i])) * kPrime;
    return hash;
}

// Splits "a.b.0" into components that point into `dotted`, which must outlive them.
// Each carries the hash of the path so far.
std::vector<PathComponent> splitPath(QByteArrayView dotted);

// bson_iter_type() is an exported function, called through the PLT for every type test;
// it reads one byte, so read it here.
inline bson_type_t iterType(const bson_iter_t* it) {
    return bson_type_t(it->raw[it->type]);
}

inline uint32_t readLength(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return BSON_UINT32_FROM_LE(v);
}

// Size of the value of BSON type `type` whose bytes start at `value`, with `available`
// bytes left before the document's terminator; 0 when malformed or of unknown type,
// kEmptyValue for the types without value bytes (null, undefined, MinKey, MaxKey).
constexpr uint32_t kEmptyValue = UINT32_MAX;
inline uint32_t valueSize(uint8_t type, const uint8_t* value, uint32_t available) {
    uint32_t size = 0;
    switch (type) {
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_MINKEY:
    case BSON_TYPE_MAXKEY:
        return kEmptyValue;
    case BSON_TYPE_BOOL:
        size = 1;
        break;
    case BSON_TYPE_INT32:
        size = 4;
        break;
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DATE_TIME:
    case BSON_TYPE_TIMESTAMP:
        size = 8;
        break;
    case BSON_TYPE_OID:
        size = 12;
        break;
    case BSON_TYPE_DECIMAL128:
        size = 16;
        break;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_CODE:
    case BSON_TYPE_SYMBOL:
        if (available < 4)
            return 0;
        size = 4 + readLength(value);
        if (size < 5)
            return 0;
        break;
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
    case BSON_TYPE_CODEWSCOPE:
        if (available < 4)
            return 0;
        size = readLength(value);
        if (size < 5)
            return 0;
        break;
    case BSON_TYPE_BINARY:
        if (available < 5)
            return 0;
        size = 5 + readLength(value);
        if (size < 5)
            return 0;
        break;
    case BSON_TYPE_DBPOINTER:
        if (available < 4)
            return 0;
        size = 4 + readLength(value) + 12;
        if (size < 17)
            return 0;
        break;
    case BSON_TYPE_REGEX: {
        const void* first = std::memchr(value, 0, available);
        if (!first)
            return 0;
        const uint32_t patternLen = uint32_t(static_cast<const uint8_t*>(first) - value) + 1;
        const void* second = std::memchr(value + patternLen, 0, available - patternLen);
        if (!second)
            return 0;
        size = uint32_t(static_cast<const uint8_t*>(second) - value) + 1;
        break;
    }
    default:
        return 0;
    }
    return size <= available ? size : 0;
}

// The length of the NUL-terminated key at `key`, or `room` when no NUL comes within
// `room` bytes. Eight bytes at a time while at least eight are left: keys such as
// "operationType" and "fullDocument" made a byte loop a fifth of an evaluation.
inline uint32_t keyLength(const uint8_t* key, uint32_t room) {
    uint32_t n = 0;
#if Q_BYTE_ORDER == Q_LITTLE_ENDIAN
    constexpr uint64_t kLow = 0x0101010101010101ULL;
    constexpr uint64_t kHigh = 0x8080808080808080ULL;
    for (; n + 8 <= room; n += 8) {
        uint64_t word;
        std::memcpy(&word, key + n, sizeof word);
        // The lowest flagged byte is the first NUL (borrows only run upwards).
        if (const uint64_t zero = (word - kLow) & ~word & kHigh)
            return n + uint32_t(__builtin_ctzll(zero) / 8);
    }
#endif
    while (n < room && key[n])
        ++n;
    return n;
}

// Visits the elements of a BSON document: visit(offset, key, keyLen) for each, where
// offset is where the element starts. Stops when visit returns true. Returns false on
// malformed bytes, so the caller can fall back to libbson.
//
// Why not bson_iter_next: it validates and decodes every element it passes, which made
// it most of a five-predicate evaluation (about 10 ns per element skipped); this skips
// an element with one length read.
template <class Visit> bool scanElements(const uint8_t* data, uint32_t len, Visit&& visit) {
    if (len < 5)
        return false;
    const uint32_t end = len - 1; // the terminating NUL
    uint32_t pos = 4;
    while (pos < end) {
        const uint8_t type = data[pos];
        const uint8_t* key = data + pos + 1;
        // A plain loop, not memchr: keys are a few bytes and the libc call cost more
        // than the scan (15% of an evaluation).
        const uint32_t room = end - pos - 1;
        const uint32_t keyLen = keyLength(key, room);
        if (keyLen == room)
            return false;
        if (visit(pos, reinterpret_cast<const char*>(key), keyLen))
            return true;
        const uint32_t valueStart = pos + 1 + keyLen + 1;
        const uint32_t size = valueSize(type, data + valueStart, end - valueStart);
        if (size == 0)
            return false;
        pos = valueStart + (size == kEmptyValue ? 0 : size);
    }
    return pos == end;
}

// Finds the field named `part` in a document's bytes and positions *out on it.
bool findInDocument(const uint8_t* data, uint32_t len, const PathComponent& part, bson_iter_t* out);
// Advances `it` to the field named `part`; false when the document has no such field.
bool findNext(bson_iter_t* it, const PathComponent& part);
// Finds `part` among the fields of the document (or array) `container` points at.
bool findChild(const bson_iter_t* container, const PathComponent& part, bson_iter_t* out);

// Calls visit(const bson_iter_t* value) for every value that the components
// [k, n) reach from `value` (the element reached by the first k components, or nullptr
// when that was missing); nullptr stands for "missing". Stops and returns true as soon
// as visit does.
//
// MongoDB's rules: an array met before the last component is traversed (every element
// that is a document is searched for the next component; a numeric component also
// indexes the array); nested arrays are not traversed; a document without the field
// yields "missing". With expandLeaf, an array at the end yields each element and then
// the array itself ({a: 1} matches {a: [1, 2]}; {a: [1, 2]} matches it too).
// `yielded` is set when visit ran at least once: a path through arrays that reaches
// nothing at all counts as missing, which the caller decides.
template <class Visit>
bool walkPath(const PathComponent* parts, size_t n, size_t k, const bson_iter_t* value, bool expandLeaf,
              bool& yielded, Visit& visit) {
    if (k == n || !value) {
        yielded = true;
        if (value && expandLeaf && (iterType(value) == BSON_TYPE_ARRAY)) {
            bson_iter_t element;
            if (bson_iter_recurse(value, &element))
                while (bson_iter_next(&element))
                    if (visit(&element))
                        return true;
        }
        return visit(value);
    }
    if ((iterType(value) == BSON_TYPE_DOCUMENT)) {
        bson_iter_t child;
        const bool found = findChild(value, parts[k], &child);
        return walkPath(parts, n, k + 1, found ? &child : nullptr, expandLeaf, yielded, visit);
    }
    if ((iterType(value) == BSON_TYPE_ARRAY)) {
        bson_iter_t element;
        if (!bson_iter_recurse(value, &element))
            return false;
        const int64_t wanted = parts[k].index;
        for (int64_t i = 0; bson_iter_next(&element); ++i) {
            if (i == wanted && walkPath(parts, n, k + 1, &element, expandLeaf, yielded, visit))
                return true;
            if ((iterType(&element) == BSON_TYPE_DOCUMENT)) {
                bson_iter_t child;
                const bool found = findChild(&element, parts[k], &child);
                if (walkPath(parts, n, k + 1, found ? &child : nullptr, expandLeaf, yielded, visit))
                    return true;
            }
        }
        return false;
    }
    // A scalar where a document was needed: the rest of the path is missing.
    yielded = true;
    return visit(nullptr);
}

// walkPath from the top, with "reached nothing" reported as one missing value.
template <class Visit>
bool forEachPathValue(const PathComponent* parts, size_t n, const bson_iter_t* first, bool expandLeaf,
                      Visit& visit) {
    bool yielded = false;
    if (walkPath(parts, n, 1, first, expandLeaf, yielded, visit))
        return true;
    return !yielded && visit(nullptr);
}

} // namespace tw

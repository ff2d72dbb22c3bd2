#include "FilterEvaluator.h"

#include "BsonValue.h"
#include "DocumentIndex.h"
#include "FastOperand.h"
#include "FieldPath.h"

#include <string>
#include <string_view>

namespace tw::filterimpl {

namespace {

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

// Resolves a path from the root through the caller's DocumentIndex: the whole path
// in one probe, or, when it is not there, the longest prefix that is (an array on
// the way is walked from there, as resolveCached does). False when the index
// cannot say (a path deeper than it goes).
inline bool resolveIndexed(const CompiledPath& path, const DocumentIndex& index, Source* src,
                           bson_iter_t* buffer) {
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

// Resolves a cached path from the root. Sets src to the single value (or missing), or
// to a walk from the first array on the way.
inline void resolveCached(const Program& p, const CompiledPath& path, PrefixCache* cache, Source* src) {
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
        cache->scanChildren(p.trie, k == 0 ? -1 : chain[k - 1], data, len);
        if (!(cache->found & (1u << chain[k])))
            return;
    }
    src->value = cache->value(chain[n - 1]);
}

inline bool inListMatches(const Program& p, const InList& list, const bson_iter_t* v) {
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
            if (fastCompare(p.operands[index].fast, v, &c)) {
                if (c == 0)
                    return true;
                continue;
            }
            const bson_iter_t op = p.operand(index);
            if (bsonvalue::equal(v, &op))
                return true;
        }
    for (uint32_t regex : list.regexes)
        if (p.regexes[regex].matches(v))
            return true;
    return false;
}

inline bool leaf(const Program& p, const Node& node, const bson_iter_t* v) {
    switch (node.kind) {
    case Kind::Eq: {
        int c = 0;
        if (v && fastCompare(p.operands[node.a].fast, v, &c))
            return c == 0;
        const bson_iter_t op = p.operand(node.a);
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
        if (!fastCompare(p.operands[node.a].fast, v, &c)) {
            const bson_iter_t op = p.operand(node.a);
            // Comparisons stay inside one type bracket: {$gt: 5} never matches a string.
            if (bsonvalue::bracket(iterType(v)) != bsonvalue::bracket(iterType(&op)))
                return false;
            c = bsonvalue::compare(v, &op);
        }
        return holds(node.kind, c);
    }
    case Kind::In:
        return inListMatches(p, p.inLists[node.a], v);
    case Kind::Type:
        return v && (node.a & typeBit(iterType(v)));
    case Kind::Regex:
        return v && p.regexes[node.a].matches(v);
    default:
        return false;
    }
}

inline bool evalValue(const Program& p, uint32_t index, const Source& src) {
    const Node& node = p.nodes[index];
    switch (node.kind) {
    case Kind::VAnd:
        for (uint32_t i = 0; i < node.c; ++i)
            if (!evalValue(p, p.kids[node.b + i], src))
                return false;
        return true;
    case Kind::VNot:
        return !evalValue(p, node.a, src);
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
                if (evaluateDocument(p, node.a, data, len, nullptr))
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
                if (evalValue(p, node.a, one))
                    return true;
            }
            return false;
        });
    default:
        return anyValue(src, true, [&](const bson_iter_t* v) { return leaf(p, node, v); });
    }
}

} // namespace

bool evaluateDocument(const Program& p, uint32_t index, const uint8_t* data, uint32_t len,
                      PrefixCache* cache) {
    const Node& node = p.nodes[index];
    switch (node.kind) {
    case Kind::And:
        for (uint32_t i = 0; i < node.c; ++i)
            if (!evaluateDocument(p, p.kids[node.b + i], data, len, cache))
                return false;
        return true;
    case Kind::Or:
        for (uint32_t i = 0; i < node.c; ++i)
            if (evaluateDocument(p, p.kids[node.b + i], data, len, cache))
                return true;
        return false;
    case Kind::Nor:
        for (uint32_t i = 0; i < node.c; ++i)
            if (evaluateDocument(p, p.kids[node.b + i], data, len, cache))
                return false;
        return true;
    case Kind::True:
        return true;
    case Kind::False:
        return false;
    case Kind::Path: {
        const CompiledPath& path = p.paths[node.a];
        Source src;
        bson_iter_t found;
        if (cache && cache->index && resolveIndexed(path, *cache->index, &src, &found))
            return evalValue(p, node.b, src);
        if (cache && path.leafSlot >= 0) {
            resolveCached(p, path, cache, &src);
            return evalValue(p, node.b, src);
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
        return evalValue(p, node.b, src);
    }
    default:
        return false;
    }
}

} // namespace tw::filterimpl

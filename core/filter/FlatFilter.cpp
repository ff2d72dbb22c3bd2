#include "FlatFilter.h"

#include "FilterEvaluator.h"

namespace tw::filterimpl {

namespace {

bool flatValueNode(const Program& p, uint32_t index) {
    const Node& node = p.nodes[index];
    switch (node.kind) {
    case Kind::VAnd:
        for (uint32_t i = 0; i < node.c; ++i)
            if (!flatValueNode(p, p.kids[node.b + i]))
                return false;
        return true;
    case Kind::VNot:
        return p.nodes[node.a].kind == Kind::Eq && flatValueNode(p, node.a);
    case Kind::Eq:
    case Kind::Gt:
    case Kind::Gte:
    case Kind::Lt:
    case Kind::Lte:
        return p.operands[node.a].fast.kind != FastOperand::None;
    case Kind::In: {
        const InList& list = p.inLists[node.a];
        if (list.hashed || !list.regexes.empty())
            return false;
        for (uint32_t operand : list.values)
            if (p.operands[operand].fast.kind == FastOperand::None)
                return false;
        return true;
    }
    case Kind::Exists:
        return true;
    default:
        return false;
    }
}

// 1: matches, 0: does not, -1: undecided.
int flatValue(const Program& p, uint32_t index, const ValueBytes* v) {
    const Node& node = p.nodes[index];
    int c = 0;
    switch (node.kind) {
    case Kind::VAnd:
        for (uint32_t i = 0; i < node.c; ++i) {
            const int r = flatValue(p, p.kids[node.b + i], v);
            if (r <= 0)
                return r;
        }
        return 1;
    case Kind::VNot: {
        const int r = flatValue(p, node.a, v);
        return r < 0 ? -1 : !r;
    }
    case Kind::Exists:
        return v != nullptr;
    case Kind::In:
        if (!v)
            return p.inLists[node.a].hasNull;
        for (uint32_t operand : p.inLists[node.a].values) {
            if (!fastCompare(p.operands[operand].fast, *v, &c))
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
    if (!fastCompare(p.operands[node.a].fast, *v, &c))
        return -1;
    return holds(node.kind, c);
}

// 1: matches, 0: does not, -1: undecided.
inline int evaluateFlat(const Program& p, PrefixCache* cache) {
    for (const FlatTest& test : p.flat) {
        const CompiledPath& path = p.paths[test.path];
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
            cache->scanChildren(p.trie, k == 0 ? -1 : chain[k - 1], data, len);
            missing = !(cache->found & (1u << chain[k]));
        }
        ValueBytes value;
        if (!missing && !cache->places[chain[n - 1]].scalar(&value))
            return -1;
        const int r = flatValue(p, test.value, missing ? nullptr : &value);
        if (r <= 0)
            return r;
    }
    return 1;
}

} // namespace

void buildFlat(Program& p) {
    p.flat.clear();
    const Node& top = p.nodes[p.root];
    std::vector<uint32_t> tests;
    if (top.kind == Kind::And)
        for (uint32_t i = 0; i < top.c; ++i)
            tests.push_back(p.kids[top.b + i]);
    else
        tests.push_back(p.root);
    std::vector<FlatTest> built;
    for (uint32_t index : tests) {
        const Node& node = p.nodes[index];
        if (node.kind != Kind::Path || p.paths[node.a].leafSlot < 0 || !flatValueNode(p, node.b))
            return;
        built.push_back({node.a, node.b});
    }
    p.flat = std::move(built);
}

bool matchDocument(const Program& p, const bson_t* doc) {
    PrefixCache cache;
    cache.data = bson_get_data(doc);
    cache.len = doc->len;
    if (!p.flat.empty()) {
        const int result = evaluateFlat(p, &cache);
        if (result >= 0)
            return result;
    }
    return evaluateDocument(p, p.root, cache.data, cache.len, &cache);
}

} // namespace tw::filterimpl

#pragma once

#include "FastOperand.h"
#include "FieldPath.h"

#include <bson/bson.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

// The per-evaluation prefix cache and its key scanner, used by the flat path and the
// general evaluation. The scanner is inline: it was inlined into both callers when they
// shared one translation unit, and it is most of a flat evaluation. Private to
// core/filter.
namespace tw {

class DocumentIndex;

namespace filterimpl {

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

// The compiled half of the cache: the trie of a program's paths from the root, built
// once when the filter compiles.
struct PrefixTrie {
    std::vector<TrieNode> nodes;
    // Trie nodes grouped by parent: those of parent p are children[childStart[p + 1] ..
    // childStart[p + 2]), so a scan compares each key with two or three names, not all.
    std::vector<uint8_t> children;
    uint8_t childStart[kCacheNodes + 2] = {};
    uint64_t childLengths[kCacheNodes + 1] = {}; // per parent: which name lengths its children have

    // The trie node of the whole path, adding the missing prefixes; -1 when the trie is full.
    int add(const std::vector<PathComponent>& parts);
    // Fills children, childStart and childLengths once every path has been added.
    void indexChildren();
};

// bson_iter_t is declared 128-byte aligned but is 80 bytes long, so it cannot be an
// array element (or a std::vector element) by itself.
struct IterSlot {
    bson_iter_t it;
};

struct PrefixCache {
    const uint8_t* data; // the root document
    uint32_t len;
    const DocumentIndex* index = nullptr; // when the caller indexed the document; not owned
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

    // Scans the document of node `parent` (-1: the root) once for all its trie children.
    void scanChildren(const PrefixTrie& trie, int parent, const uint8_t* data, uint32_t len);
};

inline void PrefixCache::scanChildren(const PrefixTrie& trie, int parent, const uint8_t* data, uint32_t len) {
    const uint32_t bit = 1u << (parent + 1);
    if (scanned & bit)
        return;
    scanned |= bit;
    // Locals, not members: the compiler cannot keep members in registers across the
    // writes into the cache's iterators.
    const uint8_t* const kids = trie.children.data() + trie.childStart[parent + 1];
    const uint32_t count = uint32_t(trie.childStart[parent + 2] - trie.childStart[parent + 1]);
    const TrieNode* const nodes = trie.nodes.data();
    const uint64_t lengths = trie.childLengths[parent + 1];
    const uint8_t* const limit = data + len;
    uint32_t foundNodes = found;
    size_t remaining = count;
    const bool wellFormed = scanElements(data, len, [&](uint32_t offset, const char* key, uint32_t keyLen) {
        if (!((lengths >> std::min(keyLen, 63u)) & 1))
            return false; // no child has a name this long (the common case)
        for (uint32_t c = 0; c < count; ++c) {
            const uint32_t n = kids[c];
            const TrieNode& node = nodes[n];
            if (uint32_t(node.part.len) != keyLen || (foundNodes & (1u << n)) ||
                !node.named(key, keyLen, limit))
                continue;
            places[n] = {data, len, offset, keyLen};
            foundNodes |= 1u << n;
            return --remaining == 0;
        }
        return false;
    });
    found = foundNodes;
    if (wellFormed || !remaining)
        return;
    // Bytes the scanner does not accept: look each field up through libbson.
    for (size_t n = 0; n < trie.nodes.size(); ++n) {
        bson_iter_t* it = &values[n].it;
        if (trie.nodes[n].parent == parent && !(found & (1u << n)) &&
            bson_iter_init_from_data(it, data, len) && findNext(it, trie.nodes[n].part)) {
            places[n] = {data, len, bson_iter_offset(it), bson_iter_key_len(it)};
            found |= 1u << n;
            ready |= 1u << n;
        }
    }
}

} // namespace filterimpl
} // namespace tw

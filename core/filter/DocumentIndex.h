#pragma once

#include "FieldPath.h"

#include <bson/bson.h>

#include <cstdint>
#include <vector>

// Private to core/: Filter and SubscriptionIndex.
namespace tw {

// Every field of one document reachable through embedded documents (not through
// arrays), by dotted path: "operationType", "ns.coll", "fullDocument.customer.country".
// Built once per event, in one pass over its bytes, and then shared by every filter
// evaluated on that event: each filter's path becomes one hash probe instead of a
// scan of the event and of fullDocument. Routing builds one when it has several
// filters to evaluate.
//
// A document with more fields than the index holds, or nested deeper than it goes,
// is still answered correctly: the index says where it cannot, and the filter scans.
class DocumentIndex {
public:
    static constexpr int kMaxDepth = 6;          // path components indexed
    static constexpr uint32_t kMaxFields = 1024; // beyond this, usable() is false

    DocumentIndex() = default;
    explicit DocumentIndex(const bson_t* document) { rebuild(document); }
    // Indexes another document, keeping the memory of the previous one. The document's
    // bytes must outlive the index's use.
    void rebuild(const bson_t* document) { build(bson_get_data(document), document->len); }

    // False when the document's bytes were malformed or it had too many fields.
    bool usable() const { return m_usable; }
    const uint8_t* data() const { return m_data; }
    uint32_t size() const { return m_len; }

    enum class Lookup {
        Found,     // *out is positioned on the field
        Missing,   // no such field at that path
        Unindexed, // the path goes below what was indexed: scan for it
    };
    // The field at the first `count` components of `parts` (as splitPath made them).
    // A path through an array is not indexed: look up the prefix up to the array
    // instead (Found, with *type an array). Paths longer than kMaxDepth are Unindexed.
    Lookup find(const PathComponent* parts, size_t count, bson_iter_t* out, bson_type_t* type) const;

private:
    struct Entry {
        uint64_t hash;
        uint32_t container; // offset of the enclosing document from data()
        uint32_t containerLen;
        uint32_t element; // offset of the element inside its container
        uint16_t keyLen;
        int16_t parent; // index of the enclosing field's entry, -1 for the root
        uint8_t type;
        uint8_t depth; // 1 for a field of the root
        bool live;     // false: a repeated key (the first one counts), or below one
    };

    void build(const uint8_t* data, uint32_t len);
    bool addFields(uint32_t container, uint32_t containerLen, int parent, uint64_t parentHash, int depth);
    void fillSlots();
    bool samePath(const Entry& e, const PathComponent* parts, size_t count) const;
    bool samePath(const Entry& a, const Entry& b) const;
    const char* keyOf(const Entry& e) const {
        return reinterpret_cast<const char*>(m_data + e.container + e.element + 1);
    }

    const uint8_t* m_data = nullptr;
    uint32_t m_len = 0;
    bool m_usable = false;
    std::vector<Entry> m_entries;
    std::vector<int16_t> m_slots; // open addressing, -1 empty; size a power of two
};

} // namespace tw

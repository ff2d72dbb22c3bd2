#include "DocumentIndex.h"

#include <cstring>

namespace tw {

void DocumentIndex::build(const uint8_t* data, uint32_t len) {
    m_data = data;
    m_len = len;
    m_entries.clear();
    m_usable = addFields(0, len, -1, kPathHashSeed, 1);
    if (m_usable)
        fillSlots();
}

bool DocumentIndex::addFields(uint32_t container, uint32_t containerLen, int parent, uint64_t parentHash,
                              int depth) {
    const uint8_t* doc = m_data + container;
    bool ok = true;
    const bool wellFormed =
        scanElements(doc, containerLen, [&](uint32_t offset, const char* key, uint32_t keyLen) {
            if (m_entries.size() >= kMaxFields || keyLen > UINT16_MAX) {
                ok = false;
                return true;
            }
            const uint8_t type = doc[offset];
            Entry e;
            e.hash = hashPathComponent(parentHash, key, keyLen, parent < 0);
            e.container = container;
            e.containerLen = containerLen;
            e.element = offset;
            e.keyLen = uint16_t(keyLen);
            e.parent = int16_t(parent);
            e.type = type;
            e.depth = uint8_t(depth);
            e.live = true;
            m_entries.push_back(e);
            if (type == BSON_TYPE_DOCUMENT && depth < kMaxDepth) {
                // scanElements checks a value's size only after this visit: check it here.
                const uint32_t valueStart = offset + 1 + keyLen + 1;
                const uint32_t size = valueSize(type, doc + valueStart, containerLen - 1 - valueStart);
                if (size == 0 || size == kEmptyValue ||
                    !addFields(container + valueStart, size, int(m_entries.size() - 1), e.hash, depth + 1)) {
                    ok = false;
                    return true;
                }
            }
            return false;
        });
    return ok && wellFormed;
}

void DocumentIndex::fillSlots() {
    size_t capacity = 16;
    while (capacity < m_entries.size() * 2)
        capacity <<= 1;
    m_slots.assign(capacity, -1);
    const size_t mask = capacity - 1;
    // Entries are in document order with parents first, so a field below a repeated
    // key is known dead before it is reached. MongoDB reads the first of repeated keys,
    // and so does the scanning path of a filter: the index must agree.
    for (size_t i = 0; i < m_entries.size(); ++i) {
        Entry& e = m_entries[i];
        if (e.parent >= 0 && !m_entries[size_t(e.parent)].live) {
            e.live = false;
            continue;
        }
        size_t slot = e.hash & mask;
        for (; m_slots[slot] >= 0; slot = (slot + 1) & mask) {
            const Entry& other = m_entries[size_t(m_slots[slot])];
            if (other.hash == e.hash && samePath(other, e)) {
                e.live = false;
                break;
            }
        }
        if (e.live)
            m_slots[slot] = int16_t(i);
    }
}

bool DocumentIndex::samePath(const Entry& a, const Entry& b) const {
    const Entry* x = &a;
    const Entry* y = &b;
    for (;;) {
        if (x->keyLen != y->keyLen || std::memcmp(keyOf(*x), keyOf(*y), x->keyLen) != 0)
            return false;
        if (x->parent < 0 || y->parent < 0)
            return x->parent == y->parent;
        x = &m_entries[size_t(x->parent)];
        y = &m_entries[size_t(y->parent)];
    }
}

bool DocumentIndex::samePath(const Entry& e, const PathComponent* parts, size_t count) const {
    const Entry* x = &e;
    for (size_t i = count; i-- > 0;) {
        if (x->keyLen != uint32_t(parts[i].len) || std::memcmp(keyOf(*x), parts[i].name, x->keyLen) != 0)
            return false;
        if (i > 0) {
            if (x->parent < 0)
                return false;
            x = &m_entries[size_t(x->parent)];
        }
    }
    return x->parent < 0;
}

DocumentIndex::Lookup DocumentIndex::find(const PathComponent* parts, size_t count, bson_iter_t* out,
                                          bson_type_t* type) const {
    if (!m_usable || count == 0 || count > size_t(kMaxDepth))
        return Lookup::Unindexed;
    const uint64_t hash = parts[count - 1].prefixHash;
    const size_t mask = m_slots.size() - 1;
    for (size_t slot = hash & mask; m_slots[slot] >= 0; slot = (slot + 1) & mask) {
        const Entry& e = m_entries[size_t(m_slots[slot])];
        if (e.hash != hash || e.depth != count || !samePath(e, parts, count))
            continue;
        if (!bson_iter_init_from_data_at_offset(out, m_data + e.container, e.containerLen, e.element,
                                                e.keyLen))
            return Lookup::Unindexed;
        *type = bson_type_t(e.type);
        return Lookup::Found;
    }
    return Lookup::Missing;
}

} // namespace tw

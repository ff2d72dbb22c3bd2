#include "SubscriptionIndex.h"

#include "filter/BsonValue.h"
#include "filter/DocumentIndex.h"
#include "filter/FieldPath.h"

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tw {

namespace {

constexpr uint32_t kNone = UINT32_MAX;

uint64_t hashKey(std::string_view key) {
    return std::hash<std::string_view>{}(key);
}

// Open addressing with linear probing, at most half full, one 16-byte cell per
// subscription. Chosen over std::unordered_map by bench_filter with 1 M
// documentKey._id subscriptions: the node-based map cost a cache miss for the bucket
// and one for the node on every event (1.46 µs added per event); here an absent key
// usually costs one cache line, a present one that line and the subscription itself
// (0.87 µs added). Several subscriptions with one key take one cell each.
class FlatTable {
public:
    struct Cell {
        uint64_t hash = 0;
        uint32_t slot = kNone;
    };

    size_t size() const { return m_count; }

    void insert(uint64_t hash, uint32_t slot) {
        if ((m_count + 1) * 2 > m_cells.size())
            grow();
        place(hash, slot);
        ++m_count;
    }

    bool erase(uint64_t hash, uint32_t slot) {
        if (m_cells.empty())
            return false;
        const size_t mask = m_cells.size() - 1;
        size_t i = size_t(hash) & mask;
        while (m_cells[i].slot != slot) {
            if (m_cells[i].slot == kNone)
                return false;
            i = (i + 1) & mask;
        }
        // Backward-shift deletion: pull later cells of the probe run into the hole so
        // that lookups never need tombstones.
        for (size_t j = (i + 1) & mask; m_cells[j].slot != kNone; j = (j + 1) & mask) {
            const size_t home = size_t(m_cells[j].hash) & mask;
            const bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
            if (!between) {
                m_cells[i] = m_cells[j];
                i = j;
            }
        }
        m_cells[i] = Cell();
        --m_count;
        return true;
    }

    template <class F> void forEach(uint64_t hash, F&& f) const {
        if (m_cells.empty())
            return;
        const size_t mask = m_cells.size() - 1;
        for (size_t i = size_t(hash) & mask; m_cells[i].slot != kNone; i = (i + 1) & mask)
            if (m_cells[i].hash == hash)
                f(m_cells[i].slot);
    }

private:
    void place(uint64_t hash, uint32_t slot) {
        const size_t mask = m_cells.size() - 1;
        size_t i = size_t(hash) & mask;
        while (m_cells[i].slot != kNone)
            i = (i + 1) & mask;
        m_cells[i] = Cell{hash, slot};
    }

    void grow() {
        std::vector<Cell> old = std::move(m_cells);
        m_cells.assign(old.empty() ? 16 : old.size() * 2, Cell());
        for (const Cell& cell : old)
            if (cell.slot != kNone)
                place(cell.hash, cell.slot);
    }

    std::vector<Cell> m_cells; // size is a power of two
    size_t m_count = 0;
};

// One hash index: subscriptions bucketed by the canonical bytes of the value their
// filter requires at `text` (bsonvalue::appendKey, so int32 5, int64 5 and 5.0 meet).
struct PathIndex {
    QByteArray text;
    std::vector<PathComponent> parts; // point into `text`, which never changes
    FlatTable table;
};

} // namespace

struct SubscriptionIndex::Impl {
    struct Entry {
        Subscription subscription;
        bool live = false;
        uint32_t path = kNone;     // index into `paths`, or kNone for the evaluated list
        std::string key;           // bucket key when indexed
        uint64_t hash = 0;         // hashKey(key)
        bool keyDecides = false;   // the filter is that one equality: a key hit is a match
        uint32_t position = kNone; // position in `unindexed` when not indexed
    };

    std::vector<Entry> entries;
    std::vector<uint32_t> freeSlots;
    QHash<QString, uint32_t> slotById;
    // unique_ptr: PathIndex::parts point into PathIndex::text, which must not move.
    std::vector<std::unique_ptr<PathIndex>> paths;
    std::vector<uint32_t> unindexed;

    Impl() = default;
    Impl(const Impl& other)
        : entries(other.entries)
        , freeSlots(other.freeSlots)
        , slotById(other.slotById)
        , unindexed(other.unindexed) {
        for (const auto& path : other.paths) {
            auto copy = std::make_unique<PathIndex>();
            copy->text = path->text;
            copy->parts = splitPath(copy->text);
            copy->table = path->table;
            paths.push_back(std::move(copy));
        }
    }

    uint32_t pathFor(const QByteArray& text) {
        for (size_t i = 0; i < paths.size(); ++i)
            if (paths[i]->text == text)
                return uint32_t(i);
        auto index = std::make_unique<PathIndex>();
        index->text = text;
        index->parts = splitPath(index->text);
        paths.push_back(std::move(index));
        return uint32_t(paths.size() - 1);
    }

    // Picks the equality to index on: documentKey._id when present (it is unique per
    // document, so its buckets hold one or two subscriptions), otherwise the first one.
    static bool chooseKey(const Filter& filter, QByteArray* path, std::string* key, bool* keyDecides) {
        const QList<Filter::Equality> equalities = filter.equalities();
        const Filter::Equality* chosen = nullptr;
        for (const Filter::Equality& equality : equalities) {
            if (equality.path == "documentKey._id") {
                chosen = &equality;
                break;
            }
            if (!chosen)
                chosen = &equality;
        }
        if (!chosen)
            return false;
        bson_t wrapped;
        bson_iter_t value;
        if (!chosen->value.view(&wrapped) || !bson_iter_init_find(&value, &wrapped, "v"))
            return false;
        key->clear();
        if (!bsonvalue::appendKey(&value, *key))
            return false;
        *path = chosen->path;
        *keyDecides = isSingleEquality(filter, *path);
        return true;
    }

    // True when the whole filter is {path: scalar} or {path: {$eq: scalar}}: finding the
    // key then proves the match, since the index and matches() resolve paths and compare
    // scalars the same way, and evaluating it again would touch four more cache lines.
    static bool isSingleEquality(const Filter& filter, const QByteArray& path) {
        bson_t query;
        bson_iter_t it;
        if (!filter.query().view(&query) || bson_count_keys(&query) != 1 || !bson_iter_init(&it, &query) ||
            !bson_iter_next(&it) || path != bson_iter_key(&it))
            return false;
        if (!(iterType(&it) == BSON_TYPE_DOCUMENT))
            return true;
        bson_iter_t op;
        return bson_iter_recurse(&it, &op) && bson_iter_next(&op) &&
               !std::strcmp(bson_iter_key(&op), "$eq") && !bson_iter_next(&op);
    }

    void insert(const Subscription& subscription) {
        uint32_t slot;
        if (!freeSlots.empty()) {
            slot = freeSlots.back();
            freeSlots.pop_back();
        } else {
            slot = uint32_t(entries.size());
            entries.emplace_back();
        }
        Entry& entry = entries[slot];
        entry.subscription = subscription;
        entry.live = true;
        QByteArray path;
        if (chooseKey(subscription.filter, &path, &entry.key, &entry.keyDecides)) {
            entry.path = pathFor(path);
            entry.position = kNone;
            PathIndex& index = *paths[entry.path];
            entry.hash = hashKey(entry.key);
            index.table.insert(entry.hash, slot);
        } else {
            entry.path = kNone;
            entry.key.clear();
            entry.position = uint32_t(unindexed.size());
            unindexed.push_back(slot);
        }
        slotById.insert(subscription.id, slot);
    }

    void remove(uint32_t slot) {
        Entry& entry = entries[slot];
        if (entry.path != kNone) {
            PathIndex& index = *paths[entry.path];
            index.table.erase(entry.hash, slot);
        } else {
            const uint32_t moved = unindexed.back();
            unindexed[entry.position] = moved;
            entries[moved].position = entry.position;
            unindexed.pop_back();
        }
        slotById.remove(entry.subscription.id);
        entry = Entry();
        freeSlots.push_back(slot);
    }
};

SubscriptionIndex::Impl& SubscriptionIndex::impl() {
    if (!m_impl)
        m_impl = std::make_shared<Impl>();
    else if (m_impl.use_count() > 1)
        m_impl = std::make_shared<Impl>(*m_impl); // copies share until one of them changes
    return *m_impl;
}

void SubscriptionIndex::insert(const Subscription& subscription) {
    Impl& d = impl();
    const auto existing = d.slotById.constFind(subscription.id);
    if (existing != d.slotById.constEnd())
        d.remove(existing.value());
    d.insert(subscription);
}

bool SubscriptionIndex::remove(const QString& id) {
    if (!cimpl() || !cimpl()->slotById.contains(id))
        return false;
    Impl& d = impl();
    d.remove(d.slotById.value(id));
    return true;
}

void SubscriptionIndex::clear() {
    m_impl.reset();
}

int SubscriptionIndex::size() const {
    return cimpl() ? int(cimpl()->slotById.size()) : 0;
}

const Subscription* SubscriptionIndex::find(const QString& id) const {
    const Impl* d = cimpl();
    if (!d)
        return nullptr;
    const auto it = d->slotById.constFind(id);
    return it == d->slotById.constEnd() ? nullptr : &d->entries[it.value()].subscription;
}

QList<Subscription> SubscriptionIndex::all() const {
    QList<Subscription> result;
    if (const Impl* d = cimpl()) {
        result.reserve(d->slotById.size());
        for (const auto& entry : d->entries)
            if (entry.live)
                result.append(entry.subscription);
    }
    return result;
}

QStringList SubscriptionIndex::route(const ChangeEvent& event) const {
    QStringList matched;
    const Impl* d = cimpl();
    if (!d || d->slotById.isEmpty())
        return matched;
    const QString sourceId = event.sourceId();
    const Namespace ns = event.ns();

    // A gap concerns every subscription of its namespace, whatever the filter.
    if (event.operation() == Operation::Gap) {
        for (const auto& entry : d->entries)
            if (entry.live && entry.subscription.concernedByGap(sourceId, ns))
                matched.append(entry.subscription.id);
        return matched;
    }

    const Bson document = event.document();
    bson_t view;
    if (!document.view(&view))
        return matched;
    // Several filters to evaluate: index the event once and let each of them probe it.
    thread_local DocumentIndex shared;
    const bool indexed = d->unindexed.size() >= 2;
    if (indexed)
        shared.rebuild(&view);
    const auto evaluate = [&](const Impl::Entry& entry) {
        const Subscription& s = entry.subscription;
        if (!s.coversNamespace(sourceId, ns) || !s.wantsKind(event.operation()))
            return;
        if (entry.keyDecides || (indexed ? s.filter.matches(shared) : s.filter.matches(&view)))
            matched.append(s.id);
    };

    // Reused per thread so that routing allocates only for the ids it returns.
    thread_local std::string key;
    thread_local std::vector<std::string> seen;
    for (const auto& index : d->paths) {
        if (!index->table.size())
            continue;
        seen.clear();
        // Every value the path reaches (array elements included) may select a bucket;
        // a subscription sits in one bucket, so each distinct key is looked up once.
        const auto visit = [&](const bson_iter_t* value) {
            key.clear();
            if (!value || !bsonvalue::appendKey(value, key))
                return false;
            for (const std::string& done : seen)
                if (done == key)
                    return false;
            seen.push_back(key);
            index->table.forEach(hashKey(key), [&](uint32_t slot) {
                const Impl::Entry& entry = d->entries[slot];
                if (entry.key == key)
                    evaluate(entry);
            });
            return false;
        };
        bson_iter_t first;
        const bool found = findInDocument(bson_get_data(&view), view.len, index->parts[0], &first);
        forEachPathValue(index->parts.data(), index->parts.size(), found ? &first : nullptr, true, visit);
    }
    for (uint32_t slot : d->unindexed)
        evaluate(d->entries[slot]);
    return matched;
}

} // namespace tw

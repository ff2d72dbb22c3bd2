#include "SubscriptionIndex.h"

#include "filter/BsonValue.h"
#include "filter/FieldPath.h"

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tw {

namespace {

struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

constexpr uint32_t kNone = UINT32_MAX;

// One hash index: subscriptions bucketed by the canonical bytes of the value their
// filter requires at `text` (bsonvalue::appendKey, so int32 5, int64 5 and 5.0 meet).
struct PathIndex {
    QByteArray text;
    std::vector<PathComponent> parts; // point into `text`, which never changes
    std::unordered_map<std::string, std::vector<uint32_t>, KeyHash, std::equal_to<>> buckets;
    size_t count = 0;
};

} // namespace

struct SubscriptionIndex::Impl {
    struct Entry {
        Subscription subscription;
        bool live = false;
        uint32_t path = kNone;     // index into `paths`, or kNone for the evaluated list
        std::string key;           // bucket key when indexed
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
            copy->buckets = path->buckets;
            copy->count = path->count;
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
    static bool chooseKey(const Filter& filter, QByteArray* path, std::string* key) {
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
        return true;
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
        if (chooseKey(subscription.filter, &path, &entry.key)) {
            entry.path = pathFor(path);
            entry.position = kNone;
            PathIndex& index = *paths[entry.path];
            index.buckets[entry.key].push_back(slot);
            ++index.count;
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
            const auto bucket = index.buckets.find(std::string_view(entry.key));
            if (bucket != index.buckets.end()) {
                std::vector<uint32_t>& members = bucket->second;
                for (size_t i = 0; i < members.size(); ++i) {
                    if (members[i] == slot) {
                        members[i] = members.back();
                        members.pop_back();
                        break;
                    }
                }
                if (members.empty())
                    index.buckets.erase(bucket);
            }
            --index.count;
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
            if (entry.live && entry.subscription.coversNamespace(sourceId, ns))
                matched.append(entry.subscription.id);
        return matched;
    }

    const Bson document = event.document();
    bson_t view;
    if (!document.view(&view))
        return matched;
    const auto evaluate = [&](const Impl::Entry& entry) {
        const Subscription& s = entry.subscription;
        if (s.coversNamespace(sourceId, ns) && s.filter.matches(&view))
            matched.append(s.id);
    };

    // Reused per thread so that routing allocates only for the ids it returns.
    thread_local std::string key;
    thread_local std::vector<std::string> seen;
    for (const auto& index : d->paths) {
        if (!index->count)
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
            const auto bucket = index->buckets.find(std::string_view(key));
            if (bucket != index->buckets.end())
                for (uint32_t slot : bucket->second)
                    evaluate(d->entries[slot]);
            return false;
        };
        const PathComponent& head = index->parts[0];
        bson_iter_t first;
        const bool found = bson_iter_init_find_w_len(&first, &view, head.name, head.len);
        forEachPathValue(index->parts.data(), index->parts.size(), found ? &first : nullptr, true, visit);
    }
    for (uint32_t slot : d->unindexed)
        evaluate(d->entries[slot]);
    return matched;
}

} // namespace tw

#include "ReplayCache.h"

#include "http/EventRenderer.h"
#include "journal/JournalReader.h"

#include <algorithm>

namespace tw {

qsizetype ReplayCache::Block::firstAfter(qint64 cursor) const {
    return std::upper_bound(seqs.cbegin(), seqs.cend(), cursor) - seqs.cbegin();
}

qint64 ReplayCache::Block::cost() const {
    // The frames, the two index arrays and the bookkeeping of an entry.
    return frames.capacity() + (seqs.capacity() + ends.capacity()) * qint64(sizeof(qint64)) + 256;
}

ReplayCache::ReplayCache(qint64 maxBytes)
    : m_maxBytes(std::max<qint64>(0, maxBytes)) {}

ReplayCache::BlockPtr ReplayCache::find(const QByteArray& key, qint64 index) {
    const auto it = m_blocks.find(Id{key, index});
    if (it == m_blocks.end())
        return {};
    m_uses.splice(m_uses.begin(), m_uses, it->use);
    ++m_stats.hits;
    return it->block;
}

ReplayCache::Read ReplayCache::read(const QByteArray& key, qint64 index, const BlockPtr& partial,
                                    JournalReader* reader,
                                    const std::function<bool(const ChangeEvent&)>& match,
                                    const EventShape& shape) {
    Read read;
    const qint64 end = (index + 1) * kBlockSeqs;
    const qint64 after = partial ? partial->through : index * kBlockSeqs;
    const int rows = int(end - after);
    const JournalReader::Result r = reader->readAfter(after, rows, match, rows);
    read.head = r.lastSeq;
    if (!r.error.isEmpty()) {
        read.error = r.error;
        return read;
    }
    if (r.gap) {
        read.pruned = true;
        return read;
    }
    auto block = partial ? std::make_shared<Block>(*partial) : std::make_shared<Block>();
    // Without more to read, everything up to the head of that snapshot was looked at, as
    // in Replay::next(); a block never claims seqs beyond its range.
    block->through = std::min(end, r.hasMore ? r.scannedThrough : std::max(r.scannedThrough, r.lastSeq));
    block->through = std::max(block->through, after);
    for (const ChangeEvent& e : r.events) {
        if (e.seq() > end)
            break;
        block->frames += EventRenderer::renderFrame(e, shape);
        block->seqs.append(e.seq());
        block->ends.append(block->frames.size());
    }
    block->frames.squeeze();
    block->seqs.squeeze();
    block->ends.squeeze();
    ++m_stats.reads;
    read.block = block;
    insert(Id{key, index}, std::move(block));
    return read;
}

void ReplayCache::insert(const Id& id, BlockPtr block) {
    if (const auto it = m_blocks.find(id); it != m_blocks.end())
        evict(it->use);
    const qint64 cost = block->cost();
    // A block larger than the whole cache is served to the client that read it, not kept.
    if (cost > m_maxBytes)
        return;
    while (!m_uses.empty() && m_stats.bytes + cost > m_maxBytes) {
        evict(std::prev(m_uses.end()));
        ++m_stats.evictions;
    }
    m_uses.push_front(id);
    m_blocks.insert(id, Entry{std::move(block), m_uses.begin()});
    m_stats.bytes += cost;
    m_stats.blocks = m_blocks.size();
}

void ReplayCache::evict(std::list<Id>::iterator use) {
    const auto it = m_blocks.find(*use);
    if (it != m_blocks.end()) {
        m_stats.bytes -= it->block->cost();
        m_blocks.erase(it);
    }
    m_uses.erase(use);
    m_stats.blocks = m_blocks.size();
}

void ReplayCache::removeKeys(const QByteArray& prefix) {
    for (auto use = m_uses.begin(); use != m_uses.end();) {
        const auto next = std::next(use);
        if (use->first.startsWith(prefix))
            evict(use);
        use = next;
    }
}

ReplayCache::Stats ReplayCache::stats() const {
    return m_stats;
}

} // namespace tw

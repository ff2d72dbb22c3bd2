#pragma once

#include "filter/EventShape.h"
#include "model/ChangeEvent.h"

#include <functional>
#include <list>
#include <memory>
#include <QByteArray>
#include <QHash>
#include <QList>
#include <QString>

namespace tw {

class JournalReader;

// The rendered frames of the journal, in journal order, shared by every SSE client that
// replays: a herd of clients reconnecting from nearby ids reads and renders each event
// once, not once per client. Everything here runs on the HTTP thread.
//
// The journal is cut into blocks of kBlockSeqs seqs, aligned on multiples of it, so that
// clients resuming from any id land on the same blocks. A block belongs to one key, a
// subscription (its id and definition: what matches) and a shape (what a match looks
// like); it holds the frames of the matching events of its range, exactly the bytes the
// live fan-out writes (EventRenderer::renderFrame), and how far the range was read. A
// block is immutable once made, so a client may keep writing one that was evicted.
//
// Bounded in bytes: past the limit the least recently used blocks go. Retention is the
// caller's to check (JournalReader::bounds()): a cached block may outlive the rows it
// was read from, and a client from before the prune mark must get its gap instead.
class ReplayCache {
public:
    // 256 seqs: about 84 KiB of ~330-byte frames, a third of a replay step's write, so a
    // step is a few whole-block writes that share the block's bytes, and the one partial
    // block at a client's start is small to copy.
    static constexpr qint64 kBlockSeqs = 256;

    struct Block {
        qint64 through = 0;    // every seq of the range up to here was read
        QList<qint64> seqs;    // the matching events, ascending
        QList<qsizetype> ends; // frame i is frames[ends[i - 1], ends[i]) (from 0 for i == 0)
        QByteArray frames;     // the frames of seqs, back to back
        // The index of the first frame with a seq after `cursor` (seqs.size() if none).
        qsizetype firstAfter(qint64 cursor) const;
        qsizetype frameStart(qsizetype i) const { return i == 0 ? 0 : ends[i - 1]; }
        qint64 cost() const;
    };
    using BlockPtr = std::shared_ptr<const Block>;

    struct Stats {
        qint64 bytes = 0;
        qint64 blocks = 0;
        qint64 hits = 0;
        qint64 reads = 0; // blocks read (or extended) from the journal
        qint64 evictions = 0;
    };

    // At most `maxBytes` of blocks are kept; 0 turns the cache off (every client reads
    // the journal on its own, as before the cache).
    explicit ReplayCache(qint64 maxBytes);

    bool isEnabled() const { return m_maxBytes > 0; }
    qint64 maxBytes() const { return m_maxBytes; }
    // The block that holds the first seq after `cursor`: block i covers (i * kBlockSeqs,
    // (i + 1) * kBlockSeqs].
    static qint64 blockOf(qint64 cursor) { return cursor / kBlockSeqs; }

    // The block, when cached; counts as a use.
    BlockPtr find(const QByteArray& key, qint64 index);

    struct Read {
        BlockPtr block;
        qint64 head = 0;     // the journal's head at the read
        bool pruned = false; // part of the range was removed by retention: nothing cached
        QString error;       // the journal could not be read: nothing cached
    };
    // Reads block `index` of `key` from the journal (or the rest of it after `partial`,
    // a block read while it was the head's), renders the matching events in `shape` and
    // keeps the block.
    Read read(const QByteArray& key, qint64 index, const BlockPtr& partial, JournalReader* reader,
              const std::function<bool(const ChangeEvent&)>& match, const EventShape& shape);

    // Forgets every block of keys starting with `prefix` (a subscription that is gone).
    void removeKeys(const QByteArray& prefix);
    Stats stats() const;

private:
    using Id = std::pair<QByteArray, qint64>;
    struct Entry {
        BlockPtr block;
        std::list<Id>::iterator use; // position in m_uses
    };
    void insert(const Id& id, BlockPtr block);
    void evict(std::list<Id>::iterator use);

    qint64 m_maxBytes;
    QHash<Id, Entry> m_blocks;
    std::list<Id> m_uses; // most recently used first
    Stats m_stats;
};

} // namespace tw

#include "SseStreams.h"

#include "http/EngineCalls.h"
#include "journal/Journal.h"
#include "journal/JournalReader.h"
#include "model/JsonWriter.h"

#include <QLoggingCategory>
#include <QTimer>

Q_DECLARE_LOGGING_CATEGORY(lcSse)

namespace tw {

namespace {

// Replay reads this many matching events per step, then yields to the event loop so
// other clients and the live fan-out keep moving while a long history is sent.
constexpr int kReplayChunk = 500;
// While replaying, live events are kept in memory only up to this many; past it they
// are dropped and the replay reads them from the journal instead.
constexpr qsizetype kReplayBufferCap = 50000;
// A cached replay step reads at most this many blocks from the journal (4 096 rows),
// so a sparse subscription's long history is read in steps, like Replay's.
constexpr int kBlockReadsPerStep = 16;
// Live batches merged into one write per client when they queued up: 256 events of
// ~300 bytes stay well inside a loopback socket's send buffer.
constexpr qsizetype kCoalesceEvents = 256;

} // namespace

SseStreams::SseStreams(const SseServer::Options& options, EngineCalls* engineCalls, JournalReader* reader,
                       std::shared_ptr<SseShared> shared, QObject* parent)
    : QObject(parent)
    , m_options(options)
    , m_engineCalls(engineCalls)
    , m_reader(reader)
    , m_shared(std::move(shared))
    , m_cache(options.replayCacheBytes) {
    // A replay pauses above this many unsent bytes, well before the slow-client cap.
    m_replayHighWater =
        std::max<qint64>(16 * 1024, std::min<qint64>(256 * 1024, options.maxPendingBytes / 4));
}

void SseStreams::start(qint64 head) {
    m_head = head;
    m_keepAlive = new QTimer(this);
    m_keepAlive->setInterval(std::max(100, m_options.keepAliveMs));
    connect(m_keepAlive, &QTimer::timeout, this, &SseStreams::sendKeepAlive);
    m_keepAlive->start();
}

void SseStreams::closeAll() {
    const QList<quint64> ids = m_clients.keys();
    for (quint64 id : ids) {
        const auto client = m_clients.value(id);
        if (client->adhoc)
            m_engineCalls->removeSubscription(client->subscription.id);
        client->out.close();
    }
    m_clients.clear();
    m_clientsBySubscription.clear();
    m_pendingBatches.clear();
    delete m_keepAlive;
    m_keepAlive = nullptr;
}

int SseStreams::liveCount() const {
    int live = 0;
    for (const auto& c : std::as_const(m_clients))
        live += c->state == State::Live ? 1 : 0;
    return live;
}

QList<SseStreams::Position> SseStreams::positions() const {
    QList<Position> list;
    list.reserve(m_clients.size());
    for (const auto& c : std::as_const(m_clients)) {
        const qint64 bytes = c->out.pendingBytes();
        // A live client with nothing pending has everything this thread has seen.
        const qint64 position =
            c->state == State::Live && bytes == 0 ? std::max(m_head, c->cursor) : c->cursor;
        list.append(Position{c->id, c->subscription.id, position, bytes});
    }
    return list;
}

QByteArray SseStreams::cacheKeyOf(const Subscription& subscription, const EventShape& shape) {
    // The definition decides what matches, the shape what a match looks like; a
    // subscription changed behind our back (another front end) gets a key of its own.
    return subscription.id.toUtf8() + '\n' + subscription.toJson() + '\n' + shape.key();
}

void SseStreams::closeSubscription(const QString& subscriptionId) {
    m_cache.removeKeys(subscriptionId.toUtf8() + '\n');
    for (quint64 id : m_clientsBySubscription.value(subscriptionId)) {
        if (const auto client = m_clients.value(id)) {
            JsonWriter data;
            data.beginObject().key("subscription").string(subscriptionId).endObject();
            client->out.write(EventRenderer::controlFrame("deleted", data.take()));
            client->state = State::Closed;
            client->out.close();
        }
    }
}

// --- one stream --------------------------------------------------------------------------

void SseStreams::open(const HttpRequest& request, HttpResponder&& out, const HttpHeaders& cors,
                      const Subscription& subscription, bool adhoc, std::optional<qint64> lastEventId,
                      const EventShape& shape) {
    HttpHeaders headers = cors;
    headers.emplaceBack("Content-Type", "text/event-stream; charset=utf-8");
    headers.emplaceBack("Cache-Control", "no-cache");
    // Reverse proxies (nginx) otherwise buffer the stream.
    headers.emplaceBack("X-Accel-Buffering", "no");
    headers.emplaceBack("Connection", "close");
    out.beginStream(200, headers);
    HttpAdapter::setLongLived(out, true);

    auto client = std::make_shared<Client>();
    client->id = m_nextId++;
    client->subscription = subscription;
    client->adhoc = adhoc;
    client->shape = shape;
    client->shapeFollowsSubscription = shape.key() == subscription.shape(shape.isCanonical()).key();
    client->cacheKey = cacheKeyOf(subscription, shape);
    client->out = std::move(out);
    client->stats = std::make_shared<SseShared::ClientStats>();
    client->stats->id = client->id;
    client->stats->peer = request.peer;
    client->stats->subscriptionId = subscription.id;
    client->stats->connectedAt = QDateTime::currentDateTimeUtc();
    const quint64 id = client->id;
    // Registered for live events before anything is read from the journal: whatever
    // commits from now on is either read by the replay or buffered, never missed.
    m_clients.insert(id, client);
    m_clientsBySubscription[subscription.id].append(id);
    {
        QMutexLocker lock(&m_shared->mutex);
        m_shared->clients.insert(id, client->stats);
    }
    client->out.setClosedHandler(this, [this, id] { removeClient(id); });
    client->out.setBytesWrittenHandler(this, [this, id] {
        const auto c = m_clients.value(id);
        if (!c)
            return;
        c->stats->pending.store(c->out.pendingBytes(), std::memory_order_relaxed);
        if (c->state == State::WaitingForDrain && c->out.pendingBytes() <= drainMark()) {
            c->state = State::Replaying;
            scheduleReplay(c.get());
        }
    });
    Q_EMIT clientsChanged();

    client->out.write("retry: " + QByteArray::number(m_options.retryMs) + "\n\n");
    if (!lastEventId) {
        client->cursor = client->coverageTold = m_engineCalls->lastCommittedSeq();
        goLive(client.get());
        return;
    }
    // The client owns its replay, so the matcher may read the client's snapshot, which
    // refreshSubscriptions() keeps current.
    Client* raw = client.get();
    client->replay.emplace(
        m_reader, [raw](const ChangeEvent& event) { return raw->subscription.matches(event); }, *lastEventId);
    client->replay->limitToCoverage(client->subscription);
    // The replay's notice tells what may be missing through the coverage it read now.
    client->coverageTold = std::max(*lastEventId, client->replay->coveredAfter());
    if (const std::optional<Replay::Gap> gap = client->replay->skipUnknownCursor()) {
        // An id this journal never issued: say so, and carry on from now.
        writeFrame(raw, EventRenderer::renderFrame(gap->event, client->shape, gap->id), 0);
        client->cursor = client->coverageTold = client->replay->cursor();
        goLive(raw);
        return;
    }
    client->cursor = *lastEventId;
    // A new client's first step sees the journal as it is now: one that connects after
    // retention ran gets its gap, never blocks still cached from before.
    m_boundsAge.invalidate();
    replayStep(id);
}

void SseStreams::scheduleReplay(Client* client) {
    const quint64 id = client->id;
    QMetaObject::invokeMethod(
        this, [this, id] { replayStep(id); }, Qt::QueuedConnection);
}

void SseStreams::replayStep(quint64 clientId) {
    const auto client = m_clients.value(clientId);
    if (!client || client->state != State::Replaying)
        return;
    if (client->out.pendingBytes() > drainMark()) {
        // Resumed from the bytesWritten handler: a replay never trips the slow-client
        // cap by itself.
        client->state = State::WaitingForDrain;
        return;
    }
    if (m_cache.isEnabled()) {
        const bool done = replayFromCache(client.get());
        publishCacheStats();
        if (done)
            return;
        // History before the prune mark: Replay says what was lost, from where we are.
        client->replay->rewindTo(client->cursor);
    }
    Replay& replay = *client->replay;
    const Replay::Chunk chunk = replay.next(kReplayChunk);
    if (!chunk.error.isEmpty())
        return failReplay(client.get(), chunk.error);
    if (chunk.gap)
        writeFrame(client.get(), EventRenderer::renderFrame(chunk.gap->event, client->shape, chunk.gap->id),
                   0);
    if (!chunk.events.isEmpty()) {
        QByteArray bytes;
        int count = 0;
        for (const ChangeEvent& e : chunk.events) {
            bytes += EventRenderer::renderFrame(e, client->shape);
            ++count;
            client->lastSent = e.seq();
            // One step writes about a high-water mark's worth, so a history of large
            // events never piles up past the slow-client cap; the rest is read again.
            if (bytes.size() >= m_replayHighWater && count < chunk.events.size()) {
                replay.rewindTo(e.seq());
                break;
            }
        }
        writeFrame(client.get(), bytes, count);
    }
    client->cursor = replay.cursor();
    if (client->state == State::Closed)
        return;
    if (replay.isAtHead())
        goLive(client.get());
    else
        scheduleReplay(client.get());
}

bool SseStreams::replayFromCache(Client* client) {
    const JournalReader::Bounds bounds = journalBounds();
    // Before the prune mark, or owed the notice of the subscription's coverage: Replay
    // says what was lost or may be missing.
    if (client->cursor < bounds.prunedThrough || client->replay->owesCoverageNotice(client->cursor))
        return false;
    // Every batch this thread has fanned out is in the journal: a client goes live only
    // past it, as the live events of its replay were not buffered.
    qint64 head = std::max(bounds.lastSeq, m_head);
    qint64 written = 0;
    int reads = 0;
    const Subscription& subscription = client->subscription;
    const auto match = [&subscription](const ChangeEvent& event) { return subscription.matches(event); };
    // About a high-water mark's worth per step, as the journal's way writes, so a history
    // of large events never piles up past the slow-client cap; and only while the kernel
    // takes each write whole. Writing on past a refused write queued up to a high-water
    // mark per client in user space (470 MiB for a herd of 2 000) and made the stalls
    // longer, not the replay faster.
    while (client->cursor < head && written < m_replayHighWater && client->out.pendingBytes() == 0) {
        const qint64 index = ReplayCache::blockOf(client->cursor);
        ReplayCache::BlockPtr block = m_cache.find(client->cacheKey, index);
        if (!block || block->through <= client->cursor) {
            // Not cached, or cached while it held the head and the client is past it.
            if (reads == kBlockReadsPerStep)
                break;
            ++reads;
            const ReplayCache::Read read =
                m_cache.read(client->cacheKey, index, block, m_reader, match, client->shape);
            if (!read.error.isEmpty()) {
                failReplay(client, read.error);
                return true;
            }
            if (read.pruned)
                return false; // retention ran since bounds(): Replay reports the gap
            head = std::max(head, read.head);
            block = read.block;
            if (block->through <= client->cursor)
                break; // nothing after the cursor yet: the head
        }
        const qsizetype first = block->firstAfter(client->cursor);
        const qsizetype from = block->frameStart(first);
        const qsizetype rest = block->frames.size() - from;
        // The rest of a block goes whole, so the next step starts on a block's first frame
        // and writes the cached bytes themselves; only a block larger than a step by
        // itself (large events) is cut.
        if (written > 0 && written + rest > m_replayHighWater)
            break;
        qsizetype end = first;
        if (rest <= m_replayHighWater)
            end = block->seqs.size();
        while (end < block->seqs.size()) {
            ++end;
            if (block->ends[end - 1] - from >= m_replayHighWater)
                break;
        }
        if (end > first) {
            const qsizetype size = block->ends[end - 1] - from;
            // A whole block is written as the cached bytes themselves, shared, not copied.
            const QByteArray bytes =
                size == block->frames.size() ? block->frames : block->frames.sliced(from, size);
            client->lastSent = block->seqs[end - 1];
            writeFrame(client, bytes, int(end - first));
            written += size;
            if (client->state == State::Closed)
                return true;
        }
        client->cursor = end == block->seqs.size() ? block->through : block->seqs[end - 1];
    }
    if (client->cursor >= head)
        goLive(client);
    else
        scheduleReplay(client);
    return true;
}

JournalReader::Bounds SseStreams::journalBounds() {
    // One query per replay step was a twentieth of the server's CPU in a herd of 2 000
    // (hundreds of thousands of steps). A snapshot a millisecond old says no less than a
    // fresh one: retention may run the moment after either is read, and a read from the
    // journal still finds what was pruned (ReplayCache::Read::pruned).
    if (!m_boundsAge.isValid() || m_boundsAge.elapsed() >= 1) {
        m_bounds = m_reader->bounds();
        m_boundsAge.start();
    }
    return m_bounds;
}

void SseStreams::failReplay(Client* client, const QString& error) {
    qCWarning(lcSse).noquote() << "replay for client" << client->id << "failed:" << error;
    client->out.write(": replay failed: " + error.toUtf8().replace('\n', ' ') + "\n\n");
    client->state = State::Closed;
    client->out.close();
}

void SseStreams::publishCacheStats() {
    QMutexLocker lock(&m_shared->mutex);
    m_shared->replayCache = m_cache.stats();
}

void SseStreams::goLive(Client* client) {
    // Live events that arrived during the replay: the ones the journal read already
    // covered (seq <= cursor) are skipped, the rest go out in order.
    QByteArray bytes;
    int count = 0;
    for (const ChangeEvent& e : std::as_const(client->buffer)) {
        if (e.seq() <= client->cursor)
            continue;
        bytes += EventRenderer::renderFrame(e, client->shape);
        client->cursor = e.seq();
        client->lastSent = e.seq();
        ++count;
    }
    client->buffer.clear();
    client->buffer.squeeze();
    client->replay.reset();
    if (count)
        writeFrame(client, bytes, count);
    if (client->state == State::Closed)
        return;
    client->state = State::Live;
    // Its subscription may be one a narrowing source does not read yet (just made).
    settleCoverage({client});
    JsonWriter data;
    data.beginObject()
        .key("lastEventId")
        .number(client->cursor)
        .key("subscription")
        .string(client->subscription.id)
        .endObject();
    writeFrame(client, EventRenderer::controlFrame("ready", data.take(), client->cursor), 0);
}

void SseStreams::writeFrame(Client* client, const QByteArray& frame, int events) {
    if (client->state == State::Closed)
        return;
    // Slow means the bytes of earlier writes are still waiting: one large batch to a
    // client that keeps up is not a reason to drop it.
    if (client->out.pendingBytes() > m_options.maxPendingBytes)
        return disconnectSlow(client);
    client->out.write(frame);
    if (events) {
        m_shared->eventsSent.fetch_add(events, std::memory_order_relaxed);
        client->stats->lastSent.store(client->lastSent, std::memory_order_relaxed);
    }
    client->stats->pending.store(client->out.pendingBytes(), std::memory_order_relaxed);
}

void SseStreams::disconnectSlow(Client* client) {
    qCInfo(lcSse).noquote() << "client" << client->id << "of" << client->subscription.id << "fell"
                            << client->out.pendingBytes()
                            << "bytes behind; disconnected (it resumes from its "
                            << "Last-Event-ID)";
    m_shared->slowDisconnects.fetch_add(1, std::memory_order_relaxed);
    client->state = State::Closed;
    // Unsent bytes are dropped with the connection; the client's Last-Event-ID is the
    // last event it fully received, so its reconnect replays from there.
    client->out.close();
}

void SseStreams::removeClient(quint64 clientId) {
    const auto client = m_clients.take(clientId);
    if (!client)
        return;
    client->state = State::Closed;
    auto it = m_clientsBySubscription.find(client->subscription.id);
    if (it != m_clientsBySubscription.end()) {
        it->removeOne(clientId);
        if (it->isEmpty())
            m_clientsBySubscription.erase(it);
    }
    {
        QMutexLocker lock(&m_shared->mutex);
        m_shared->clients.remove(clientId);
    }
    if (client->adhoc)
        m_engineCalls->removeSubscription(client->subscription.id);
    Q_EMIT clientsChanged();
}

void SseStreams::sendKeepAlive() {
    // Only idle connections need one; a client with bytes still queued is not idle, and
    // a comment must not be what pushes it over the slow-client cap.
    static const QByteArray comment = QByteArrayLiteral(": keep-alive\n\n");
    for (const auto& client : std::as_const(m_clients))
        if (client->out.pendingBytes() == 0)
            writeFrame(client.get(), comment, 0);
}

// --- fan-out -------------------------------------------------------------------------------

void SseStreams::onCommitted(const CommittedBatch& batch) {
    if (!m_options.coalesceLive)
        return deliver(batch.bySubscription, batch.lastSeq);
    // The fan-out runs from a call posted behind this batch: when the thread keeps up it
    // runs right after it, one batch at a time; when batches queued up while it was busy,
    // they are all in before it runs, and each client gets them in one write.
    m_pendingBatches.append(batch);
    if (m_flushQueued)
        return;
    m_flushQueued = true;
    QMetaObject::invokeMethod(this, &SseStreams::flushCommitted, Qt::QueuedConnection);
}

void SseStreams::flushCommitted() {
    m_flushQueued = false;
    if (m_pendingBatches.isEmpty())
        return;
    if (m_pendingBatches.size() == 1) {
        const CommittedBatch batch = m_pendingBatches.takeFirst();
        return deliver(batch.bySubscription, batch.lastSeq);
    }
    // At most kCoalesceEvents per write: a backlog of seconds merged into one write per
    // client overflowed the kernel's socket buffers, and what it refuses is copied per
    // client (1.7 GB of RSS for 2 000 clients at 1 000 events/s on a loaded machine).
    QHash<QString, ChangeEventList> merged;
    qint64 lastSeq = 0;
    qsizetype events = 0;
    for (const CommittedBatch& batch : std::as_const(m_pendingBatches)) {
        if (events > 0 && events + batch.events.size() > kCoalesceEvents) {
            deliver(merged, lastSeq);
            merged.clear();
            events = 0;
        }
        for (auto it = batch.bySubscription.cbegin(); it != batch.bySubscription.cend(); ++it)
            merged[it.key()] += it.value();
        lastSeq = std::max(lastSeq, batch.lastSeq);
        events += batch.events.size();
    }
    m_pendingBatches.clear();
    deliver(merged, lastSeq);
}

void SseStreams::deliver(const QHash<QString, ChangeEventList>& bySubscription, qint64 through) {
    m_head = std::max(m_head, through);
    // Frames are built at most once per event and shape (EventShape::key()) for the whole
    // batch, and a subscription's run of frames is concatenated once per shape: every
    // client of it with that shape gets the same bytes in one write.
    QHash<QByteArray, QHash<qint64, QByteArray>> frames;
    auto frameOf = [&frames](const ChangeEvent& e, const EventShape& shape) -> const QByteArray& {
        QByteArray& slot = frames[shape.key()][e.seq()];
        if (slot.isEmpty())
            slot = EventRenderer::renderFrame(e, shape);
        return slot;
    };

    for (auto it = bySubscription.cbegin(); it != bySubscription.cend(); ++it) {
        const auto clientsIt = m_clientsBySubscription.constFind(it.key());
        if (clientsIt == m_clientsBySubscription.constEnd())
            continue;
        const ChangeEventList& events = it.value();
        if (events.isEmpty())
            continue;
        const qint64 firstSeq = events.first().seq();
        const qint64 lastSeq = events.last().seq();
        QHash<QByteArray, QByteArray> runs;
        // The clients of a subscription mostly share one shape: the last client's run is
        // tried before the hash, whose hashing of the key was a tenth of the HTTP thread
        // with 1 000 clients. (A run's address holds until the next insertion, which
        // replaces it.)
        QByteArray lastKey;
        QByteArray* lastRun = nullptr;
        const QList<quint64> ids = *clientsIt; // writeFrame may close clients
        for (quint64 id : ids) {
            Client* c = m_clients.value(id).get();
            if (!c || c->state == State::Closed)
                continue;
            if (c->state != State::Live) {
                // Through the cache a replay reads up to the journal's head before it goes
                // live, and a batch reaches this thread only once it is in the journal, so
                // goLive() would skip every event buffered here: a herd of replaying
                // clients copied each live event once per client for nothing.
                if (m_cache.isEnabled())
                    continue;
                if (c->buffer.size() + events.size() > kReplayBufferCap) {
                    // The replay will read these from the journal.
                    c->buffer.clear();
                    continue;
                }
                for (const ChangeEvent& e : events)
                    if (e.seq() > c->cursor)
                        c->buffer.append(e);
                continue;
            }
            if (lastSeq <= c->cursor)
                continue;
            if (firstSeq > c->cursor) {
                const QByteArray& key = c->shape.key();
                if (!lastRun || key != lastKey) {
                    lastRun = &runs[key];
                    lastKey = key;
                }
                QByteArray& run = *lastRun;
                if (run.isEmpty()) {
                    for (const ChangeEvent& e : events)
                        run += frameOf(e, c->shape);
                }
                c->cursor = c->lastSent = lastSeq;
                writeFrame(c, run, int(events.size()));
                continue;
            }
            QByteArray bytes;
            int count = 0;
            for (const ChangeEvent& e : events) {
                if (e.seq() <= c->cursor)
                    continue;
                bytes += frameOf(e, c->shape);
                ++count;
            }
            c->cursor = c->lastSent = lastSeq;
            writeFrame(c, bytes, count);
        }
    }
}

} // namespace tw

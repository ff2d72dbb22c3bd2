#include "LongPolls.h"

#include "engine/Replay.h"
#include "http/ApiReply.h"
#include "http/EngineCalls.h"
#include "http/EventRenderer.h"
#include "http/RequestValues.h"
#include "model/JsonWriter.h"

#include <QTimer>

namespace tw {

namespace {

constexpr int kMaxLongPollLimit = 10000;
constexpr int kMaxLongPollTimeoutS = 300;

} // namespace

LongPolls::LongPolls(EngineCalls* engineCalls, JournalReader* reader, const ApiReply* reply, QObject* parent)
    : QObject(parent)
    , m_engineCalls(engineCalls)
    , m_reader(reader)
    , m_reply(reply) {}

LongPolls::~LongPolls() {
    for (const auto& waiter : std::as_const(m_waiters))
        delete waiter->timer;
}

void LongPolls::closeSubscription(const QString& subscriptionId) {
    for (const auto& waiter : std::as_const(m_waiters))
        if (waiter->subscriptionId == subscriptionId)
            waiter->out.close();
}

void LongPolls::closeAll() {
    for (const auto& waiter : std::as_const(m_waiters)) {
        waiter->out.close();
        delete waiter->timer;
        waiter->timer = nullptr;
    }
    m_waiters.clear();
}

QByteArray LongPolls::changesJson(const ChangeEvent* gap, const ChangeEventList& events,
                                  const EventShape& shape, qint64 next, bool hasMore) {
    JsonWriter json;
    json.beginObject().key("changes").beginArray();
    if (gap)
        json.raw(shape.namedJson(*gap));
    for (const ChangeEvent& e : events)
        json.raw(shape.namedJson(e));
    json.endArray().key("next").string(QByteArray::number(next)).key("hasMore").boolean(hasMore).endObject();
    return json.take();
}

void LongPolls::handle(const HttpRequest& request, HttpResponder&& out, const QString& id) {
    const std::optional<Subscription> sub = m_engineCalls->subscription(id);
    if (!sub)
        return m_reply->sendError(request, out, 404,
                                  QStringLiteral("no subscription with id \"%1\"").arg(id));
    QString error;
    const EventShape shape = EventRenderer::shapeFor(request, *sub, &error);
    if (!error.isEmpty())
        return m_reply->sendError(request, out, 400, error);
    qint64 after = 0;
    const QString afterText = request.queryValue(QStringLiteral("after"));
    if (!afterText.isEmpty() && !RequestValues::parseSeq(afterText, &after))
        return m_reply->sendError(
            request, out, 400,
            QStringLiteral("after must be a token returned as \"next\", not \"%1\"").arg(afterText.left(40)));
    qint64 limit = 100;
    const QString limitText = request.queryValue(QStringLiteral("limit"));
    if (!limitText.isEmpty() &&
        (!RequestValues::parseSeq(limitText, &limit) || limit < 1 || limit > kMaxLongPollLimit))
        return m_reply->sendError(request, out, 400,
                                  QStringLiteral("limit must be 1 … %1").arg(kMaxLongPollLimit));
    qint64 timeoutS = 30;
    const QString timeoutText = request.queryValue(QStringLiteral("timeout"));
    if (!timeoutText.isEmpty() &&
        (!RequestValues::parseSeq(timeoutText, &timeoutS) || timeoutS > kMaxLongPollTimeoutS))
        return m_reply->sendError(request, out, 400,
                                  QStringLiteral("timeout must be 0 … %1 seconds").arg(kMaxLongPollTimeoutS));

    Replay replay(m_reader, Replay::matching(*sub), after);
    replay.limitToCoverage(*sub);
    const Replay::Chunk chunk = replay.next(int(limit));
    if (!chunk.error.isEmpty())
        return m_reply->sendError(request, out, 503,
                                  QStringLiteral("the journal cannot be read: %1").arg(chunk.error));
    const qint64 cursor = replay.cursor();
    const bool hasMore = !replay.isAtHead();
    if (!chunk.events.isEmpty() || chunk.gap || hasMore || timeoutS == 0)
        return m_reply->sendJson(
            request, out, 200,
            changesJson(chunk.gap ? &chunk.gap->event : nullptr, chunk.events, shape, cursor, hasMore));

    // Nothing yet: park until a matching commit or the timeout. Commits after this read
    // reach onCommitted() after we return, so none is missed.
    auto waiter = std::make_shared<Waiter>();
    waiter->id = m_nextId++;
    waiter->subscriptionId = id;
    waiter->shape = shape;
    waiter->limit = int(limit);
    waiter->cursor = cursor;
    waiter->origin = request.header("origin");
    waiter->out = std::move(out);
    HttpAdapter::setLongLived(waiter->out, true);
    const quint64 waiterId = waiter->id;
    waiter->timer = new QTimer;
    waiter->timer->setSingleShot(true);
    connect(waiter->timer, &QTimer::timeout, this, [this, waiterId] {
        const auto w = m_waiters.value(waiterId);
        if (w)
            answer(waiterId, {}, w->cursor, false);
    });
    waiter->timer->start(int(timeoutS * 1000));
    waiter->out.setClosedHandler(this, [this, waiterId] {
        const auto w = m_waiters.take(waiterId);
        if (w)
            w->timer->deleteLater();
    });
    m_waiters.insert(waiterId, waiter);
}

void LongPolls::onCommitted(const CommittedBatch& batch) {
    // Answer the ones that have something, move the others' cursors past this batch
    // (every seq up to batch.lastSeq has now been routed).
    if (m_waiters.isEmpty())
        return;
    const QList<quint64> waiterIds = m_waiters.keys();
    for (quint64 id : waiterIds) {
        const auto waiter = m_waiters.value(id);
        if (!waiter)
            continue;
        const ChangeEventList events = batch.bySubscription.value(waiter->subscriptionId);
        ChangeEventList fresh;
        qint64 next = std::max(waiter->cursor, batch.lastSeq);
        bool hasMore = false;
        for (const ChangeEvent& e : events) {
            if (e.seq() <= waiter->cursor)
                continue;
            if (fresh.size() >= waiter->limit) {
                hasMore = true;
                next = fresh.last().seq();
                break;
            }
            fresh.append(e);
        }
        if (fresh.isEmpty()) {
            waiter->cursor = next;
            continue;
        }
        answer(id, fresh, next, hasMore);
    }
}

void LongPolls::answer(quint64 waiterId, const ChangeEventList& events, qint64 next, bool hasMore) {
    const auto waiter = m_waiters.take(waiterId);
    if (!waiter)
        return;
    waiter->timer->stop();
    waiter->timer->deleteLater();
    waiter->timer = nullptr;
    m_reply->sendJson(waiter->origin, waiter->out, 200,
                      changesJson(nullptr, events, waiter->shape, next, hasMore));
}

} // namespace tw

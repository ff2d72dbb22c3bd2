#include "McpPolls.h"

#include "engine/Replay.h"
#include "http/EventRenderer.h"

#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <QTimer>

namespace tw::mcp {

namespace {

QJsonObject parseObject(const QByteArray& json) {
    return QJsonDocument::fromJson(json).object();
}

QString idText(const QJsonValue& id) {
    if (id.isString())
        return id.toString();
    if (id.isDouble())
        return QString::number(id.toDouble(), 'g', 17);
    if (id.isObject()) {
        // Extended JSON: {"$oid": "…"}, {"$numberLong": "…"}, … — the value is the id.
        const QJsonObject object = id.toObject();
        if (object.size() == 1 && object.begin()->isString())
            return object.begin()->toString();
        return QString::fromUtf8(QJsonDocument(object).toJson(QJsonDocument::Compact));
    }
    if (id.isBool())
        return id.toBool() ? QStringLiteral("true") : QStringLiteral("false");
    return QString();
}

QString changeType(Operation op, const QByteArray& operationType) {
    switch (op) {
    case Operation::Insert:
        return QStringLiteral("created");
    case Operation::Update:
    case Operation::Replace:
        return QStringLiteral("updated");
    case Operation::Delete:
        return QStringLiteral("deleted");
    default:
        return QString::fromUtf8(operationType); // the schema-change kind, "gap", "invalidate"
    }
}

} // namespace

McpPolls::McpPolls(QObject* parent)
    : QObject(parent) {}

McpPolls::~McpPolls() {
    for (const auto& waiter : std::as_const(m_waiters))
        delete waiter->timer;
}

bool McpPolls::open(const QString& journalPath, QString* error) {
    return m_reader.open(journalPath, error);
}

QString McpPolls::token(const QString& subscriptionId, qint64 seq) {
    const QJsonObject body{{QStringLiteral("s"), subscriptionId},
                           {QStringLiteral("q"), QString::number(seq)}};
    return QString::fromLatin1(QJsonDocument(body)
                                   .toJson(QJsonDocument::Compact)
                                   .toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals));
}

bool McpPolls::parseToken(const QString& token, const QString& subscriptionId, qint64* seq, QString* error) {
    const auto decoded = QByteArray::fromBase64Encoding(
        token.toLatin1(), QByteArray::Base64UrlEncoding | QByteArray::AbortOnBase64DecodingErrors);
    const QJsonObject body = decoded ? parseObject(*decoded) : QJsonObject();
    bool ok = false;
    const qint64 value = body.value(QLatin1String("q")).toString().toLongLong(&ok);
    if (!ok || value < 0 || !body.value(QLatin1String("s")).isString()) {
        *error = QStringLiteral("poll_token is not a token Tidewatch issued; pass the poll_token of the last "
                                "poll_changes (or of subscribe_changes), or none to start from the "
                                "subscription's beginning");
        return false;
    }
    const QString owner = body.value(QLatin1String("s")).toString();
    if (owner != subscriptionId) {
        *error =
            QStringLiteral("poll_token belongs to subscription \"%1\", not \"%2\"; poll each subscription "
                           "with its own tokens")
                .arg(owner, subscriptionId);
        return false;
    }
    *seq = value;
    return true;
}

QJsonObject McpPolls::renderChange(const ChangeEvent& event, bool includeData, const EventShape& shape) {
    const QJsonObject document = parseObject(shape.json(event));
    const QJsonObject committed =
        includeData || !shape.projection().isNull() ? parseObject(event.toJson()) : document;
    const Operation op = event.operation();
    const bool data = op == Operation::Insert || op == Operation::Update || op == Operation::Replace ||
                      op == Operation::Delete;
    QJsonObject change{
        {QStringLiteral("type"), changeType(op, event.operationType())},
        {QStringLiteral("resource_type"), data ? QStringLiteral("document") : QStringLiteral("collection")},
        {QStringLiteral("resource_id"),
         data ? idText(committed.value(QLatin1String("documentKey")).toObject().value(QLatin1String("_id")))
              : event.ns().toString()},
        {QStringLiteral("version"), event.seq()},
        {QStringLiteral("source"), event.sourceId()},
        {QStringLiteral("namespace"), event.ns().toString()},
        {QStringLiteral("timestamp"),
         event.wallTimeMs() > 0
             ? QJsonValue(
                   QDateTime::fromMSecsSinceEpoch(event.wallTimeMs(), Qt::UTC).toString(Qt::ISODateWithMs))
             : QJsonValue(QJsonValue::Null)},
        {QStringLiteral("event"), document}};
    if (includeData) {
        const QJsonValue before = committed.value(QLatin1String("fullDocumentBeforeChange"));
        const QJsonValue after = committed.value(QLatin1String("fullDocument"));
        change.insert(QStringLiteral("old_data"), before.isObject() ? before : QJsonValue(QJsonValue::Null));
        change.insert(QStringLiteral("new_data"), after.isObject() ? after : QJsonValue(QJsonValue::Null));
    }
    return change;
}

McpPolls::View McpPolls::viewOf(const Subscription& subscription) {
    View view;
    const QJsonObject& options = subscription.options;
    view.limit = qBound(1, options.value(QLatin1String("batch_size")).toInt(100), 1000);
    view.includeData = options.value(QLatin1String("include_data")).toBool(true);
    // Without data the event carries no documents either: that is what the client asked.
    // A projection of the client's own wins: it says exactly what the event keeps.
    Subscription shaped = subscription;
    if (!view.includeData && subscription.fieldProjection.isNull())
        shaped.projection = Subscription::Projection::KeysOnly;
    view.shape = shaped.shape();
    return view;
}

QJsonObject McpPolls::answer(const QString& subscriptionId, const ChangeEvent* gap,
                             const ChangeEventList& events, const View& view, qint64 cursor, bool hasMore,
                             bool active) {
    QJsonArray changes;
    if (gap)
        changes.append(renderChange(*gap, view.includeData, view.shape));
    for (const ChangeEvent& event : events)
        changes.append(renderChange(event, view.includeData, view.shape));
    return QJsonObject{{QStringLiteral("changes"), changes},
                       {QStringLiteral("poll_token"), token(subscriptionId, cursor)},
                       {QStringLiteral("has_more"), hasMore},
                       {QStringLiteral("subscription_active"), active}};
}

void McpPolls::poll(const Subscription& subscription, qint64 after, int timeoutMs, const QString& key,
                    Done done) {
    const View view = viewOf(subscription);
    Replay replay(&m_reader, Replay::matching(subscription), after);
    replay.limitToCoverage(subscription);
    const Replay::Chunk chunk = replay.next(view.limit);
    if (!chunk.error.isEmpty()) {
        const JsonRpc::Error error{JsonRpc::InternalError,
                                   QStringLiteral("the journal cannot be read: %1").arg(chunk.error)};
        done(&error, {});
        return;
    }
    const bool hasMore = !replay.isAtHead();
    if (!chunk.events.isEmpty() || chunk.gap || hasMore || timeoutMs <= 0) {
        done(nullptr, answer(subscription.id, chunk.gap ? &chunk.gap->event : nullptr, chunk.events, view,
                             replay.cursor(), hasMore, true));
        return;
    }
    // Nothing yet. Commits after this read reach onCommitted() after we return (the
    // session re-emits them on this thread), so none is missed.
    auto waiter = std::make_shared<Waiter>();
    waiter->key = key;
    waiter->subscriptionId = subscription.id;
    waiter->cursor = replay.cursor();
    waiter->limit = view.limit;
    waiter->includeData = view.includeData;
    waiter->shape = view.shape;
    waiter->done = std::move(done);
    waiter->timer = new QTimer;
    waiter->timer->setSingleShot(true);
    connect(waiter->timer, &QTimer::timeout, this, [this, key] {
        const auto w = m_waiters.value(key);
        if (w)
            finish(key, {}, w->cursor, false, true);
    });
    waiter->timer->start(timeoutMs);
    cancel(key); // a key is one request: a repeated one replaces the parked call
    m_waiters.insert(key, waiter);
}

void McpPolls::finish(const QString& key, const ChangeEventList& events, qint64 cursor, bool hasMore,
                      bool active) {
    const auto waiter = m_waiters.take(key);
    if (!waiter)
        return;
    waiter->timer->deleteLater();
    const View view{waiter->limit, waiter->includeData, waiter->shape};
    waiter->done(nullptr, answer(waiter->subscriptionId, nullptr, events, view, cursor, hasMore, active));
}

void McpPolls::cancel(const QString& key) {
    const auto waiter = m_waiters.take(key);
    if (waiter)
        waiter->timer->deleteLater();
}

void McpPolls::closeSubscription(const QString& subscriptionId) {
    const QList<QString> keys = m_waiters.keys();
    for (const QString& key : keys) {
        const auto waiter = m_waiters.value(key);
        if (waiter && waiter->subscriptionId == subscriptionId)
            finish(key, {}, waiter->cursor, false, false);
    }
}

void McpPolls::onCommitted(const CommittedBatch& batch) {
    if (m_waiters.isEmpty())
        return;
    const QList<QString> keys = m_waiters.keys();
    for (const QString& key : keys) {
        const auto waiter = m_waiters.value(key);
        if (!waiter)
            continue;
        ChangeEventList fresh;
        bool hasMore = false;
        qint64 next = std::max(waiter->cursor, batch.lastSeq);
        for (const ChangeEvent& event : batch.bySubscription.value(waiter->subscriptionId)) {
            if (event.seq() <= waiter->cursor)
                continue;
            if (fresh.size() == waiter->limit) {
                hasMore = true;
                next = fresh.constLast().seq();
                break;
            }
            fresh.append(event);
        }
        if (!fresh.isEmpty())
            finish(key, fresh, next, hasMore, true);
        else
            waiter->cursor = next; // every seq up to the batch's last has been routed
    }
}

} // namespace tw::mcp

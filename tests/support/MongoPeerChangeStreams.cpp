#include "MongoPeerChangeStreams.h"

#include "MongoPeerBson.h"
#include "MongoPeerMatcher.h"
#include "MongoPeerReplies.h"
#include "MongoPeerResumeToken.h"
#include "MongoPeerSettings.h"
#include "MongoPeerStore.h"

#include <QDateTime>
#include <QStringList>
#include <QTimer>

#include <algorithm>
#include <limits>

namespace tw::test {

using namespace peerbson;

namespace {

QString codeNameFor(int code) {
    switch (code) {
    case 260:
        return QStringLiteral("InvalidResumeToken");
    case 280:
        return QStringLiteral("ChangeStreamFatalError");
    case 286:
        return QStringLiteral("ChangeStreamHistoryLost");
    default:
        return QStringLiteral("Location%1").arg(code);
    }
}

bool isExpandedEvent(const QString& op) {
    static const QStringList expanded = {QStringLiteral("create"),
                                         QStringLiteral("createIndexes"),
                                         QStringLiteral("dropIndexes"),
                                         QStringLiteral("modify"),
                                         QStringLiteral("shardCollection"),
                                         QStringLiteral("reshardCollection"),
                                         QStringLiteral("refineCollectionShardKey")};
    return expanded.contains(op);
}

} // namespace

MongoPeerChangeStreams::MongoPeerChangeStreams(const MongoPeerSettings& settings, const MongoPeerStore& store,
                                               MongoPeerCursors& cursors, MongoPeerWire& wire,
                                               const MongoPeerReplies& replies, QObject* parent)
    : QObject(parent)
    , m_settings(settings)
    , m_store(store)
    , m_cursors(cursors)
    , m_wire(wire)
    , m_replies(replies) {}

MongoPeerChangeStreams::~MongoPeerChangeStreams() {
    for (PendingGetMore* pending : std::as_const(m_pending))
        delete pending;
    m_pending.clear();
}

int MongoPeerChangeStreams::openCount() const {
    return m_cursors.count(Cursor::Kind::ChangeStream);
}

Bson MongoPeerChangeStreams::open(const Request& request, const QString& coll, const QList<Bson>& stages) {
    if (!m_settings.changeStreamsAvailable())
        return m_replies.error(40573, QStringLiteral("Location40573"),
                               QStringLiteral("The $changeStream stage is only supported on replica sets"));
    const Bson options = documentField(stages.first(), "$changeStream");
    auto cursor = std::make_unique<Cursor>();
    cursor->kind = Cursor::Kind::ChangeStream;
    cursor->db = request.db;
    cursor->coll = coll;
    cursor->position = m_store.lastPosition();

    static const QStringList known = {
        QStringLiteral("fullDocument"),         QStringLiteral("fullDocumentBeforeChange"),
        QStringLiteral("resumeAfter"),          QStringLiteral("startAfter"),
        QStringLiteral("startAtOperationTime"), QStringLiteral("allChangesForCluster"),
        QStringLiteral("showExpandedEvents"),   QStringLiteral("allowToRunOnConfigDB"),
        QStringLiteral("showSystemEvents"),     QStringLiteral("showMigrationEvents")};
    int resumeOptions = 0;
    View view(options);
    bson_iter_t it;
    if (view.isValid() && bson_iter_init(&it, view.get())) {
        while (bson_iter_next(&it)) {
            const QString key = QString::fromUtf8(bson_iter_key(&it));
            // showExpandedEvents came with 6.0 (wire version 17): a 5.0 server's parser
            // refuses it like any field it does not know.
            const bool tooNew = key == QLatin1String("showExpandedEvents") &&
                                m_settings.maxWireVersion < MongoPeerSettings::ExpandedEventsWireVersion;
            if (!known.contains(key) || tooNew)
                return m_replies.error(
                    40415, QStringLiteral("Location40415"),
                    QStringLiteral("BSON field '$changeStream.%1' is an unknown field.").arg(key));
            if (key == QLatin1String("resumeAfter") || key == QLatin1String("startAfter") ||
                key == QLatin1String("startAtOperationTime"))
                ++resumeOptions;
        }
    }
    if (resumeOptions > 1)
        return m_replies.error(
            40674, QStringLiteral("Location40674"),
            QStringLiteral("Only one type of resume option is allowed, but multiple were found."));

    const QString fullDocument = stringField(options, "fullDocument");
    if (!fullDocument.isEmpty())
        cursor->fullDocument = fullDocument;
    const QString before = stringField(options, "fullDocumentBeforeChange");
    if (!before.isEmpty())
        cursor->fullDocumentBeforeChange = before;
    cursor->showExpandedEvents = boolField(options, "showExpandedEvents");
    cursor->allDatabases = boolField(options, "allChangesForCluster");
    if (cursor->allDatabases && (request.db != QLatin1String("admin") || !coll.isEmpty()))
        return m_replies.error(
            72, QStringLiteral("InvalidOptions"),
            QStringLiteral(
                "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' "
                "database, and with no collection name"));
    if (!cursor->allDatabases && request.db == QLatin1String("admin"))
        return m_replies.error(
            73, QStringLiteral("InvalidNamespace"),
            QStringLiteral("$changeStream may not be opened on the internal admin database"));

    const bool isStartAfter = findField(options, "startAfter", &it);
    if (isStartAfter || findField(options, "resumeAfter", &it)) {
        const Bson token = iterDocument(&it);
        qint64 position = 0;
        bool invalidate = false;
        if (!MongoPeerResumeToken::parse(token, &position, &invalidate) ||
            position < m_store.historyStart() || position > m_store.lastPosition()) {
            const int code = m_settings.historyLostCode;
            const QString message =
                code == 286   ? QStringLiteral("Resume of change stream was not possible, as the "
                                                 "resume point may no longer be in the oplog.")
                : code == 260 ? QStringLiteral("Bad resume token: the resume token was not found")
                              : QStringLiteral("resume of change stream was not possible, as "
                                               "the resume token was not found.");
            return m_replies.error(code, codeNameFor(code), message);
        }
        if (invalidate && !isStartAfter)
            return m_replies.error(
                260, QStringLiteral("InvalidResumeToken"),
                QStringLiteral("Attempting to resume a change stream using 'resumeAfter' is not "
                               "allowed from an invalidate notification."));
        cursor->position = position;
    } else if (findField(options, "startAtOperationTime", &it) && BSON_ITER_HOLDS_TIMESTAMP(&it)) {
        quint32 t = 0, i = 0;
        bson_iter_timestamp(&it, &t, &i);
        cursor->position = m_store.historyStart();
        for (const MongoPeerStore::LogEntry& entry : m_store.log()) {
            if (entry.t > t || (entry.t == t && entry.i >= i))
                break;
            cursor->position = entry.position;
        }
    }
    for (qsizetype i = 1; i < stages.size(); ++i) {
        if (firstKey(stages.at(i)) == QLatin1String("$match"))
            cursor->matchStages.append(documentField(stages.at(i), "$match"));
        // $project, $addFields, $set, $unset, $replaceRoot, $redact are accepted and
        // not applied: tests only assert that they were sent.
    }
    cursor->ns = coll.isEmpty() ? request.db + QStringLiteral(".$cmd.aggregate")
                                : request.db + QLatin1Char('.') + coll;
    const int batchSize = MongoPeerCursors::batchSizeOf(request.body, "cursor");
    const QList<Bson> batch =
        takeBatch(*cursor, batchSize < 0 ? MongoPeerCursors::DefaultBatchSize : batchSize);
    const qint64 id = cursor->invalidated ? 0 : m_cursors.newId();
    cursor->id = id;
    const Bson reply = m_cursors.reply(*cursor, batch, true, id);
    if (id)
        m_cursors.insert(std::move(cursor));
    return reply;
}

bool MongoPeerChangeStreams::getMore(Connection* connection, const Request& request, Cursor& cursor,
                                     int batchSize, Bson* reply) {
    const qint64 id = cursor.id;
    if (hasEvents(cursor)) {
        PendingGetMore now;
        now.connection = connection;
        now.request = request;
        now.cursorId = id;
        now.batchSize = batchSize;
        *reply = getMoreReply(&now);
        if (!reply->isAbsent())
            return true;
    }
    // awaitData: park the request and answer on the next event or at maxTimeMS.
    auto* pending = new PendingGetMore;
    pending->connection = connection;
    pending->request = request;
    pending->cursorId = id;
    pending->batchSize = batchSize;
    pending->timer = new QTimer(this);
    pending->timer->setSingleShot(true);
    connect(pending->timer, &QTimer::timeout, this, [this, pending] { answerGetMore(pending, true); });
    pending->timer->start(int(intField(request.body, "maxTimeMS").value_or(m_settings.defaultAwaitMs)));
    connection->waiting = true;
    m_pending.append(pending);
    return false;
}

// Builds the reply for a change stream getMore. Returns an absent Bson when the
// batch came out empty (events filtered by $match) and the request should keep
// waiting.
Bson MongoPeerChangeStreams::getMoreReply(PendingGetMore* pending, bool force) {
    Cursor* found = m_cursors.find(pending->cursorId);
    if (!found)
        return m_replies.error(237, QStringLiteral("CursorKilled"),
                               QStringLiteral("cursor id %1 was killed").arg(pending->cursorId));
    Cursor& cursor = *found;
    if (cursor.position < m_store.historyStart()) {
        m_cursors.erase(cursor.id);
        return m_replies.error(
            286, QStringLiteral("ChangeStreamHistoryLost"),
            QStringLiteral("Resume of change stream was not possible, as the resume point may no "
                           "longer be in the oplog."));
    }
    // Without batchSize a getMore returns everything available (up to 16 MB on a server).
    const QList<Bson> batch =
        takeBatch(cursor, pending->batchSize < 0 ? std::numeric_limits<int>::max() : pending->batchSize);
    if (batch.isEmpty() && !force && !cursor.invalidated)
        return {};
    const qint64 replyId = cursor.invalidated ? 0 : cursor.id;
    const Bson reply = m_cursors.reply(cursor, batch, false, replyId);
    if (!replyId)
        m_cursors.erase(cursor.id);
    return reply;
}

void MongoPeerChangeStreams::answerGetMore(PendingGetMore* pending, bool timedOut) {
    if (m_wire.isStalled()) {
        pending->timedOut = pending->timedOut || timedOut;
        return; // answered when the stall ends
    }
    const Bson reply = getMoreReply(pending, timedOut || pending->timedOut);
    if (reply.isAbsent())
        return;
    m_pending.removeOne(pending);
    Connection* connection = pending->connection;
    m_wire.sendReply(connection, pending->request, reply);
    connection->waiting = false;
    pending->timer->stop();
    pending->timer->deleteLater();
    delete pending;
    m_wire.resumeLater(connection);
}

void MongoPeerChangeStreams::wakeWaitingGetMores() {
    const QList<PendingGetMore*> pending = m_pending;
    for (PendingGetMore* p : pending) {
        if (!m_pending.contains(p))
            continue;
        const Cursor* found = m_cursors.find(p->cursorId);
        if (!found || hasEvents(*found))
            answerGetMore(p, false);
    }
}

void MongoPeerChangeStreams::dropWaiting(Connection* connection) {
    const QList<PendingGetMore*> pending = m_pending;
    for (PendingGetMore* p : pending) {
        if (p->connection == connection) {
            m_pending.removeOne(p);
            delete p->timer;
            delete p;
        }
    }
}

void MongoPeerChangeStreams::stallEnded() {
    const QList<PendingGetMore*> pending = m_pending;
    for (PendingGetMore* p : pending) {
        if (m_pending.contains(p) && p->timedOut)
            answerGetMore(p, true);
    }
    wakeWaitingGetMores();
}

bool MongoPeerChangeStreams::hasEvents(const Cursor& cursor) const {
    if (cursor.invalidated || cursor.position < m_store.historyStart())
        return true; // the answer (invalidate or history lost) is ready now
    for (const MongoPeerStore::LogEntry& entry : m_store.log()) {
        if (entry.position <= cursor.position)
            continue;
        if (!cursor.allDatabases && entry.db != cursor.db)
            continue;
        if (!cursor.coll.isEmpty() && entry.coll != cursor.coll)
            continue;
        return true; // may still be filtered by $match; then the getMore waits again
    }
    return false;
}

QList<Bson> MongoPeerChangeStreams::takeBatch(Cursor& cursor, int batchSize) {
    QList<Bson> batch;
    while (!cursor.invalidated && batch.size() < batchSize && cursor.position < m_store.lastPosition()) {
        const MongoPeerStore::LogEntry* next = m_store.entryAt(cursor.position + 1);
        if (!next)
            break;
        const MongoPeerStore::LogEntry& entry = *next;
        cursor.position = entry.position;
        if (!cursor.allDatabases && entry.db != cursor.db)
            continue;
        if (!cursor.coll.isEmpty() && entry.coll != cursor.coll)
            continue;
        if (isExpandedEvent(entry.operationType) && !cursor.showExpandedEvents)
            continue;

        Bson delivered = entry.event;
        if (entry.hasExpandedFields && !cursor.showExpandedEvents) {
            // drop, rename and dropDatabase carry these only in the expanded shape.
            BsonBuilder b;
            View base(entry.event);
            bson_copy_to_excluding_noinit(base.get(), b.get(), "collectionUUID", "operationDescription",
                                          nullptr);
            delivered = b.take();
        }
        if (entry.fromWrite) {
            BsonBuilder b;
            View base(entry.event);
            bson_concat(b.get(), base.get());
            const bool wantsPost = cursor.fullDocument != QLatin1String("default");
            if (entry.operationType == QLatin1String("update") && wantsPost)
                appendDocument(b.get(), "fullDocument", entry.postImage);
            const bool wantsPre = cursor.fullDocumentBeforeChange != QLatin1String("off");
            if (wantsPre && entry.operationType != QLatin1String("insert"))
                appendDocument(b.get(), "fullDocumentBeforeChange", entry.preImage);
            delivered = b.take();
        }
        const bool invalidates =
            cursor.coll.isEmpty()
                ? (!cursor.allDatabases && entry.operationType == QLatin1String("dropDatabase"))
                : (entry.operationType == QLatin1String("drop") ||
                   entry.operationType == QLatin1String("rename"));
        bool passes = true;
        for (const Bson& stage : std::as_const(cursor.matchStages))
            passes = passes && MongoPeerMatcher::matches(delivered, stage);
        if (passes)
            batch.append(delivered);
        cursor.postBatchResumeToken = MongoPeerResumeToken::forPosition(cursor.position);
        if (invalidates) {
            BsonBuilder inv;
            appendDocument(inv.get(), "_id", MongoPeerResumeToken::invalidateFor(entry.position));
            bson_append_utf8(inv.get(), "operationType", -1, "invalidate", -1);
            bson_append_timestamp(inv.get(), "clusterTime", -1, entry.t, entry.i);
            bson_append_date_time(inv.get(), "wallTime", -1, QDateTime::currentMSecsSinceEpoch());
            batch.append(inv.take());
            cursor.invalidated = true;
            cursor.postBatchResumeToken = MongoPeerResumeToken::invalidateFor(entry.position);
        }
    }
    if (!cursor.invalidated)
        cursor.postBatchResumeToken = MongoPeerResumeToken::forPosition(cursor.position);
    return batch;
}

} // namespace tw::test

#include "MongoPeerCursors.h"

#include "MongoPeerBson.h"
#include "MongoPeerReplies.h"

#include <QRandomGenerator>

#include <algorithm>

namespace tw::test {

using namespace peerbson;

MongoPeerCursors::MongoPeerCursors(const MongoPeerReplies& replies)
    : m_replies(replies) {}

MongoPeerCursors::Cursor* MongoPeerCursors::find(qint64 id) const {
    const auto found = m_cursors.find(id);
    return found == m_cursors.end() ? nullptr : found->second.get();
}

bool MongoPeerCursors::erase(qint64 id) {
    return m_cursors.erase(id) > 0;
}

qint64 MongoPeerCursors::newId() const {
    qint64 id = 0;
    while (id <= 0 || m_cursors.count(id))
        id = qint64(QRandomGenerator::global()->generate64() & 0x7fffffffffffffffULL);
    return id;
}

void MongoPeerCursors::insert(std::unique_ptr<Cursor> cursor) {
    const qint64 id = cursor->id;
    m_cursors.emplace(id, std::move(cursor));
}

int MongoPeerCursors::count(Cursor::Kind kind) const {
    return int(std::count_if(m_cursors.begin(), m_cursors.end(),
                             [kind](const auto& entry) { return entry.second->kind == kind; }));
}

Bson MongoPeerCursors::reply(const Cursor& cursor, const QList<Bson>& batch, bool first, qint64 id) const {
    BsonBuilder b;
    bson_t c;
    bson_append_document_begin(b.get(), "cursor", -1, &c);
    appendArray(&c, first ? "firstBatch" : "nextBatch", batch);
    if (cursor.kind == Cursor::Kind::ChangeStream)
        appendDocument(&c, "postBatchResumeToken", cursor.postBatchResumeToken);
    bson_append_int64(&c, "id", -1, id);
    appendUtf8(&c, "ns", cursor.ns);
    bson_append_document_end(b.get(), &c);
    return m_replies.finish(b.get());
}

int MongoPeerCursors::batchSizeOf(const Bson& command, const char* parent) {
    Bson holder = parent ? documentField(command, parent) : command;
    const auto size = intField(holder, "batchSize");
    return size ? int(*size) : -1;
}

QList<Bson> MongoPeerCursors::takeFindBatch(Cursor& cursor, int batchSize) {
    const qsizetype n =
        batchSize < 0 ? cursor.remaining.size() : std::min<qsizetype>(batchSize, cursor.remaining.size());
    QList<Bson> batch = cursor.remaining.first(n);
    cursor.remaining.remove(0, n);
    return batch;
}

Bson MongoPeerCursors::openFind(const QString& ns, QList<Bson> docs, int batchSize, bool singleBatch) {
    auto cursor = std::make_unique<Cursor>();
    cursor->ns = ns;
    cursor->remaining = std::move(docs);
    const QList<Bson> batch = takeFindBatch(*cursor, batchSize < 0 ? DefaultBatchSize : batchSize);
    qint64 id = 0;
    if (!cursor->remaining.isEmpty() && !singleBatch) {
        id = newId();
        cursor->id = id;
    }
    const Bson first = reply(*cursor, batch, true, id);
    if (id)
        insert(std::move(cursor));
    return first;
}

Bson MongoPeerCursors::findGetMore(Cursor& cursor, int batchSize) {
    const QList<Bson> batch = takeFindBatch(cursor, batchSize);
    const qint64 id = cursor.id;
    const qint64 replyId = cursor.remaining.isEmpty() ? 0 : id;
    const Bson next = reply(cursor, batch, false, replyId);
    if (!replyId)
        erase(id); // `cursor` is gone from here on
    return next;
}

} // namespace tw::test

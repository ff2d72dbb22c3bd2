#include "MongoPeerStore.h"

#include "MongoPeerBson.h"
#include "MongoPeerResumeToken.h"

#include <QDateTime>
#include <QRandomGenerator>

namespace tw::test {

using namespace peerbson;

namespace {
QString keyOf(const QString& db, const QString& coll) {
    return db + QLatin1Char('.') + coll;
}
} // namespace

void MongoPeerStore::setDocuments(const QString& db, const QString& coll, const QList<Bson>& documents) {
    createCollection(db, coll);
    m_collections.value(keyOf(db, coll))->documents = documents;
}

QList<Bson> MongoPeerStore::documents(const QString& db, const QString& coll) const {
    const auto c = m_collections.value(keyOf(db, coll));
    return c ? c->documents : QList<Bson>();
}

void MongoPeerStore::createCollection(const QString& db, const QString& coll) {
    const QString key = keyOf(db, coll);
    if (m_collections.contains(key))
        return;
    auto c = std::make_shared<Collection>();
    c->db = db;
    c->name = coll;
    c->uuid.resize(16);
    QRandomGenerator::global()->fillRange(reinterpret_cast<quint32*>(c->uuid.data()), 4);
    m_collections.insert(key, c);
}

bool MongoPeerStore::dropCollection(const QString& db, const QString& coll) {
    return m_collections.remove(keyOf(db, coll)) > 0;
}

bool MongoPeerStore::renameCollection(const QString& db, const QString& from, const QString& toDb,
                                      const QString& to) {
    const std::shared_ptr<Collection> c = m_collections.take(keyOf(db, from));
    if (!c)
        return false;
    c->db = toDb;
    c->name = to;
    m_collections.insert(keyOf(toDb, to), c);
    return true;
}

void MongoPeerStore::createView(const QString& db, const QString& name, const QString& viewOn,
                                const QList<Bson>& pipeline) {
    createCollection(db, name);
    auto c = m_collections.value(keyOf(db, name));
    c->isView = true;
    c->viewOn = viewOn;
    c->pipeline = pipeline;
}

void MongoPeerStore::dropAll() {
    m_collections.clear();
}

std::shared_ptr<MongoPeerStore::Collection> MongoPeerStore::collection(const QString& db,
                                                                       const QString& coll) const {
    return m_collections.value(keyOf(db, coll));
}

QList<Bson> MongoPeerStore::collectionDocuments(const QString& db, const QString& coll,
                                                QList<Bson>* pipeline) const {
    auto c = m_collections.value(keyOf(db, coll));
    int depth = 0;
    while (c && c->isView && depth++ < 10) {
        if (pipeline)
            *pipeline = c->pipeline + *pipeline;
        c = m_collections.value(keyOf(db, c->viewOn));
    }
    return c ? c->documents : QList<Bson>();
}

void MongoPeerStore::forgetHistory() {
    // Skipping one position makes even the newest issued token unusable, which is
    // what a test of "history lost" wants; a fresh cursor reports the new position.
    m_log.clear();
    ++m_lastPosition;
    m_historyStart = m_lastPosition;
}

const MongoPeerStore::LogEntry* MongoPeerStore::entryAt(qint64 position) const {
    const qint64 index = position - (m_historyStart + 1);
    if (index < 0 || index >= m_log.size())
        return nullptr;
    return &m_log.at(index);
}

void MongoPeerStore::nextClusterTime(quint32* t, quint32* i) {
    const quint32 now = quint32(QDateTime::currentSecsSinceEpoch());
    if (now > m_clusterSeconds) {
        m_clusterSeconds = now;
        m_clusterIncrement = 1;
    } else {
        ++m_clusterIncrement;
    }
    *t = m_clusterSeconds;
    *i = m_clusterIncrement;
}

void MongoPeerStore::currentClusterTime(quint32* t, quint32* i) const {
    *t = m_clusterSeconds ? m_clusterSeconds : quint32(QDateTime::currentSecsSinceEpoch());
    *i = m_clusterSeconds ? m_clusterIncrement : 1;
}

qint64 MongoPeerStore::appendChange(const QString& db, const QString& coll, const Bson& event,
                                    const Bson& preImage, const Bson& postImage) {
    LogEntry entry;
    entry.position = ++m_lastPosition;
    entry.db = db;
    entry.coll = coll;
    entry.operationType = stringField(event, "operationType");
    entry.preImage = preImage;
    entry.postImage = postImage;
    entry.fromWrite = !preImage.isAbsent() || !postImage.isAbsent();
    bson_iter_t probe;
    entry.hasExpandedFields =
        findField(event, "collectionUUID", &probe) || findField(event, "operationDescription", &probe);

    View source(event);
    BsonBuilder b;
    bson_iter_t it;
    if (!findField(event, "_id", &it))
        appendDocument(b.get(), "_id", MongoPeerResumeToken::forPosition(entry.position));
    if (source.isValid())
        bson_concat(b.get(), source.get());
    if (findField(event, "clusterTime", &it) && BSON_ITER_HOLDS_TIMESTAMP(&it)) {
        bson_iter_timestamp(&it, &entry.t, &entry.i);
    } else {
        nextClusterTime(&entry.t, &entry.i);
        bson_append_timestamp(b.get(), "clusterTime", -1, entry.t, entry.i);
    }
    if (!findField(event, "wallTime", &it))
        bson_append_date_time(b.get(), "wallTime", -1, QDateTime::currentMSecsSinceEpoch());
    if (!findField(event, "ns", &it)) {
        bson_t ns;
        bson_append_document_begin(b.get(), "ns", -1, &ns);
        appendUtf8(&ns, "db", db);
        if (!coll.isEmpty())
            appendUtf8(&ns, "coll", coll);
        bson_append_document_end(b.get(), &ns);
    }
    entry.event = b.take();
    m_log.append(entry);
    if (m_onAppended)
        m_onAppended();
    return m_lastPosition;
}

} // namespace tw::test

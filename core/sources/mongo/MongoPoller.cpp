#include "MongoPoller.h"

#include "sources/RowHash.h"

#include <QDateTime>

#include <cstring>

namespace tw {

namespace {

// Hash of one element's type and value (not its key). The element is re-encoded under
// an empty key so the hash covers exactly the bytes BSON stores for the value; values
// up to ~110 bytes stay in bson_t's inline buffer.
quint64 valueHash(const bson_iter_t* it) {
    bson_t one;
    bson_init(&one);
    bson_append_iter(&one, "", 0, it);
    const quint64 h = fnv1a(bson_get_data(&one), one.len);
    bson_destroy(&one);
    return h;
}

} // namespace

MongoPoller::MongoPoller(const QString& sourceId, const Namespace& ns, const QString& pollField)
    : m_sourceId(sourceId)
    , m_ns(ns)
    , m_pollField(pollField) {
    const QByteArray name = ns.toString().toUtf8();
    m_markerKey = QByteArrayLiteral("poll\x1f") + name;
    m_prefix = m_markerKey + '\x1f';
    m_highKey = m_markerKey + '\x1e';
}

void MongoPoller::restore(const QHash<QByteArray, QByteArray>& state) {
    m_docs.clear();
    m_hasBaseline = state.contains(m_markerKey);
    if (!m_hasBaseline)
        return; // entries without the marker are a scan interrupted half-way: ignored
    for (auto it = state.cbegin(); it != state.cend(); ++it)
        if (it.key().startsWith(m_prefix))
            m_docs.insert(it.key().mid(m_prefix.size()), Doc{it.value(), 0});
    m_high = state.value(m_highKey);
}

MongoPoller::ScanKind MongoPoller::nextScanKind() const {
    if (!m_hasBaseline || !isIncremental())
        return ScanKind::Full;
    return (m_polls % kKeyScanEvery == kKeyScanEvery - 1) ? ScanKind::KeysOnly : ScanKind::Incremental;
}

void MongoPoller::scanQuery(ScanKind kind, bson_t* filter, bson_t* opts) const {
    const QByteArray field = m_pollField.toUtf8();
    if (kind == ScanKind::KeysOnly) {
        bson_t projection;
        bson_append_document_begin(opts, "projection", -1, &projection);
        bson_append_int32(&projection, "_id", 3, 1);
        bson_append_document_end(opts, &projection);
        return;
    }
    if (isIncremental()) {
        // Ascending by the field: the last document read carries the high-water mark.
        bson_t sort;
        bson_append_document_begin(opts, "sort", -1, &sort);
        bson_append_int32(&sort, field.constData(), int(field.size()), 1);
        bson_append_document_end(opts, &sort);
    }
    bson_t high;
    bson_iter_t it;
    if (kind == ScanKind::Incremental && !m_high.isEmpty() &&
        bson_init_static(&high, reinterpret_cast<const uint8_t*>(m_high.constData()),
                         size_t(m_high.size())) &&
        findKey(&high, "v", &it)) {
        // $gte, not $gt: several documents may share the newest value (same second);
        // the ones already seen are skipped by their hash.
        bson_t cond;
        bson_append_document_begin(filter, field.constData(), int(field.size()), &cond);
        bson_append_iter(&cond, "$gte", 4, &it);
        bson_append_document_end(filter, &cond);
    }
}

QByteArray MongoPoller::idKeyOf(const bson_t* doc) {
    bson_iter_t it;
    return findKey(doc, "_id", &it) ? iterElement("_id", &it) : QByteArray();
}

QByteArray MongoPoller::fieldTable(const bson_t* doc) {
    QByteArray table;
    table.reserve(int(doc->len) / 2);
    for (const bson_iter_t& field : BsonFields(doc)) {
        const char* key = bson_iter_key(&field);
        table.append(key, qsizetype(strlen(key) + 1));
        const quint64 h = valueHash(&field);
        table.append(reinterpret_cast<const char*>(&h), 8);
    }
    return table;
}

ChangeEvent MongoPoller::makeEvent(Operation op, const QByteArray& idKey) const {
    ChangeEvent e;
    e.setSourceId(m_sourceId);
    e.setNs(m_ns);
    e.setOperation(op);
    e.setDocumentKey(Bson::fromRaw(idKey));
    e.setWallTimeMs(QDateTime::currentMSecsSinceEpoch());
    return e;
}

void MongoPoller::beginScan(ScanKind kind) {
    m_scanKind = kind;
    m_scanChanged = false;
    m_scanHigh.clear();
    ++m_generation;
}

void MongoPoller::addDocument(const bson_t* doc, ChangeBatch& out) {
    const QByteArray idKey = idKeyOf(doc);
    if (idKey.isEmpty())
        return; // a document without _id cannot be tracked (only possible on capped collections)

    if (isIncremental() && m_scanKind != ScanKind::KeysOnly) {
        bson_iter_t it;
        const QByteArray field = m_pollField.toUtf8();
        if (findKey(doc, field.constData(), &it))
            m_scanHigh = iterElement("v", &it);
    }

    auto found = m_docs.find(idKey);
    if (m_scanKind == ScanKind::KeysOnly) {
        if (found != m_docs.end())
            found->generation = m_generation;
        return;
    }
    const QByteArray table = fieldTable(doc);
    if (found == m_docs.end()) {
        m_docs.insert(idKey, Doc{table, m_generation});
        out.checkpoint.stateUpserts.insert(stateKey(idKey), table);
        if (m_hasBaseline) {
            ChangeEvent e = makeEvent(Operation::Insert, idKey);
            e.setFullDocument(Bson::fromBsonT(doc));
            out.events.append(e);
            m_scanChanged = true;
        }
        return;
    }
    found->generation = m_generation;
    if (found->fields == table)
        return;

    // Which fields changed: walk the old table into name -> hash, then the document.
    QHash<QByteArrayView, quint64> old;
    const QByteArray& before = found->fields;
    for (qsizetype pos = 0; pos < before.size();) {
        const qsizetype nul = before.indexOf('\0', pos);
        if (nul < 0 || nul + 9 > before.size())
            break;
        quint64 h;
        memcpy(&h, before.constData() + nul + 1, 8);
        old.insert(QByteArrayView(before.constData() + pos, nul - pos), h);
        pos = nul + 9;
    }
    BsonBuilder updated;
    for (const bson_iter_t& field : BsonFields(doc)) {
        const char* key = bson_iter_key(&field);
        const QByteArrayView name(key, qsizetype(strlen(key)));
        const auto o = old.constFind(name);
        if (o == old.constEnd() || *o != valueHash(&field))
            bson_append_iter(updated.get(), key, -1, &field);
        if (o != old.constEnd())
            old.erase(o);
    }
    QList<QByteArray> removed;
    for (auto o = old.cbegin(); o != old.cend(); ++o)
        removed.append(o.key().toByteArray());
    std::sort(removed.begin(), removed.end());

    ChangeEvent e = makeEvent(Operation::Update, idKey);
    e.setUpdateDescription(ChangeEvent::makeUpdateDescription(updated.take(), removed));
    e.setFullDocument(Bson::fromBsonT(doc));
    out.events.append(e);
    found->fields = table;
    out.checkpoint.stateUpserts.insert(stateKey(idKey), table);
    m_scanChanged = true;
}

bool MongoPoller::endScan(ChangeBatch& out, qint64 scanMs) {
    if (m_scanKind != ScanKind::Incremental) {
        for (auto it = m_docs.begin(); it != m_docs.end();) {
            if (it->generation == m_generation) {
                ++it;
                continue;
            }
            out.checkpoint.stateRemovals.append(stateKey(it.key()));
            out.events.append(makeEvent(Operation::Delete, it.key()));
            m_scanChanged = true;
            it = m_docs.erase(it);
        }
    }
    if (!m_scanHigh.isEmpty() && m_scanHigh != m_high) {
        m_high = m_scanHigh;
        out.checkpoint.stateUpserts.insert(m_highKey, m_high);
    }
    if (!m_hasBaseline) {
        m_hasBaseline = true;
        out.checkpoint.stateUpserts.insert(m_markerKey, QByteArrayLiteral("1"));
    }
    ++m_polls;
    const bool changed = m_scanChanged;
    m_intervalMs = changed ? 1000 : std::min(5000, m_intervalMs * 3 / 2);
    m_intervalMs = int(std::max<qint64>(m_intervalMs, std::min<qint64>(scanMs * 4, 60000)));
    return changed;
}

void MongoPoller::abortScan() {
    // Documents not marked in this generation must not read as deleted next time.
    for (auto& doc : m_docs)
        doc.generation = m_generation;
}

void MongoPoller::clear(SourceCheckpoint& out) {
    m_docs.clear();
    m_hasBaseline = false;
    m_high.clear();
    out.stateRemovedPrefixes.append(m_prefix);
    out.stateRemovals.append(m_markerKey);
    out.stateRemovals.append(m_highKey);
}

} // namespace tw

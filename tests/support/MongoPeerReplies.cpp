#include "MongoPeerReplies.h"

#include "MongoPeerBson.h"
#include "MongoPeerSettings.h"
#include "MongoPeerStore.h"

namespace tw::test {

using namespace peerbson;

MongoPeerReplies::MongoPeerReplies(const MongoPeerSettings& settings, const MongoPeerStore& store)
    : m_settings(settings)
    , m_store(store) {}

Bson MongoPeerReplies::finish(bson_t* body) const {
    bson_append_double(body, "ok", 2, 1.0);
    appendClusterTime(body);
    return Bson::fromBsonT(body);
}

void MongoPeerReplies::appendClusterTime(bson_t* body) const {
    if (!m_settings.replicaSet)
        return; // a standalone does not gossip cluster time
    quint32 t = 0, i = 0;
    m_store.currentClusterTime(&t, &i);
    bson_t clusterTime, signature;
    bson_append_document_begin(body, "$clusterTime", -1, &clusterTime);
    bson_append_timestamp(&clusterTime, "clusterTime", -1, t, i);
    bson_append_document_begin(&clusterTime, "signature", -1, &signature);
    static const uint8_t zeroHash[20] = {};
    bson_append_binary(&signature, "hash", -1, BSON_SUBTYPE_BINARY, zeroHash, sizeof zeroHash);
    bson_append_int64(&signature, "keyId", -1, 0);
    bson_append_document_end(&clusterTime, &signature);
    bson_append_document_end(body, &clusterTime);
    bson_append_timestamp(body, "operationTime", -1, t, i);
}

Bson MongoPeerReplies::error(int code, const QString& codeName, const QString& errmsg,
                             const QStringList& errorLabels) const {
    const Bson base = errorDocument(code, codeName, errmsg, errorLabels);
    BsonBuilder b;
    View view(base);
    bson_concat(b.get(), view.get());
    appendClusterTime(b.get());
    return b.take();
}

Bson MongoPeerReplies::errorDocument(int code, const QString& codeName, const QString& errmsg,
                                     const QStringList& errorLabels) {
    BsonBuilder b;
    bson_append_double(b.get(), "ok", 2, 0.0);
    appendUtf8(b.get(), "errmsg", errmsg);
    bson_append_int32(b.get(), "code", 4, code);
    appendUtf8(b.get(), "codeName", codeName);
    if (!errorLabels.isEmpty()) {
        bson_t labels;
        bson_append_array_begin(b.get(), "errorLabels", -1, &labels);
        for (qsizetype i = 0; i < errorLabels.size(); ++i)
            appendUtf8(&labels, QByteArray::number(i).constData(), errorLabels.at(i));
        bson_append_array_end(b.get(), &labels);
    }
    return b.take();
}

} // namespace tw::test

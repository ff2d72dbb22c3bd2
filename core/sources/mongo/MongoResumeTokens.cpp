#include "MongoResumeTokens.h"

namespace tw {

QByteArray MongoResumeTokens::encode(const QMap<QString, Bson>& tokens) {
    BsonBuilder b;
    for (auto it = tokens.cbegin(); it != tokens.cend(); ++it) {
        if (it.value().isAbsent())
            continue;
        const QByteArray key = it.key().toUtf8();
        bson_t token;
        if (it.value().view(&token))
            bson_append_document(b.get(), key.constData(), int(key.size()), &token);
    }
    return b.take().raw();
}

QMap<QString, Bson> MongoResumeTokens::decode(const QByteArray& token) {
    QMap<QString, Bson> out;
    bson_t doc;
    if (token.size() < 5 ||
        !bson_init_static(&doc, reinterpret_cast<const uint8_t*>(token.constData()), size_t(token.size())) ||
        !bson_validate(&doc, BSON_VALIDATE_NONE, nullptr))
        return out; // not ours (or corrupt): start from now
    for (const bson_iter_t& field : BsonFields(&doc))
        if (BSON_ITER_HOLDS_DOCUMENT(&field))
            out.insert(QString::fromUtf8(bson_iter_key(&field)), copyDocument(&field));
    return out;
}

void MongoResumeTokens::insert(const QString& key, const Bson& token, bool urgent) {
    m_tokens.insert(key, token);
    m_dirty = true;
    if (urgent)
        m_lastFlushMs = 0;
}

bool MongoResumeTokens::remove(const QString& key) {
    if (!m_tokens.remove(key))
        return false;
    m_dirty = true;
    return true;
}

bool MongoResumeTokens::isDue(bool hasData, bool checkpointOnly, qint64 now) const {
    return m_dirty && (hasData || checkpointOnly || now - m_lastFlushMs >= kIdleCheckpointMs);
}

QByteArray MongoResumeTokens::take(qint64 now) {
    m_dirty = false;
    m_lastFlushMs = now;
    return encode(m_tokens);
}

} // namespace tw

#pragma once

#include "model/Bson.h"

#include <QMap>

namespace tw {

// The checkpoint of a MongoSource: a BSON document {scopeKey: resumeToken} holding
// the position after the last event handed over for every scope (scopeKey is
// Namespace::toString(): "db.coll", "db", or "" for the deployment). It is committed
// with the events; at start each stream opens with startAfter its token.
//
// It also decides when the tokens go out with a batch: with any events or state
// change, when the source asks (stop, unwatch), and otherwise, for an idle stream
// whose position advanced, at most every kIdleCheckpointMs.
class MongoResumeTokens {
public:
    static QByteArray encode(const QMap<QString, Bson>& tokens);
    // Anything that is not such a document (not ours, or corrupt) decodes as empty:
    // every scope starts from now.
    static QMap<QString, Bson> decode(const QByteArray& token);

    void restore(const QByteArray& token) { m_tokens = decode(token); }
    Bson value(const QString& key) const { return m_tokens.value(key); }
    bool contains(const QString& key) const { return !m_tokens.value(key).isAbsent(); }
    // Sets the token of a scope. `urgent`: persist it with the next batch even when
    // there is nothing else to send (a stream that starts from now).
    void insert(const QString& key, const Bson& token, bool urgent = false);
    // Forgets a scope's token; true when there was one.
    bool remove(const QString& key);

    // Whether the next batch must carry the tokens (see above); `now` in ms.
    bool isDue(bool hasData, bool checkpointOnly, qint64 now) const;
    // The encoded tokens for a batch; they count as persisted from `now`.
    QByteArray take(qint64 now);
    bool isDirty() const { return m_dirty; }

    // An idle stream's position (postBatchResumeToken) is persisted at most this often:
    // each checkpoint is a journal transaction.
    static constexpr qint64 kIdleCheckpointMs = 5000;

private:
    QMap<QString, Bson> m_tokens; // scopeKey -> resume token
    bool m_dirty = false;
    qint64 m_lastFlushMs = 0;
};

} // namespace tw

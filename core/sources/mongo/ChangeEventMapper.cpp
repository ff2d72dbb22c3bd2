#include "ChangeEventMapper.h"

#include <cstring>

namespace tw {

bool ChangeEventMapper::map(const bson_t* document, ChangeEvent* out, QString* error) const {
    BsonFields fields(document);
    if (!fields.isValid()) {
        if (error)
            *error = QStringLiteral("the change event is not a BSON document");
        return false;
    }
    ChangeEvent e;
    e.setSourceId(m_sourceId);
    bool haveOperation = false;
    BsonBuilder extra;
    bool haveExtra = false;
    for (const bson_iter_t& field : fields) {
        const bson_iter_t* it = &field;
        const char* key = bson_iter_key(it);
        // Ordered by how often the key appears in real events.
        if (!strcmp(key, "_id")) {
            e.setResumeToken(copyDocument(it));
        } else if (!strcmp(key, "operationType") && BSON_ITER_HOLDS_UTF8(it)) {
            uint32_t len = 0;
            const char* name = bson_iter_utf8(it, &len);
            const QByteArrayView view(name, qsizetype(len));
            const std::optional<Operation> op = operationFromName(view);
            if (!op || *op == Operation::Gap) {
                // "gap" is ours; a server never sends it, and an empty name is not an event.
                if (error)
                    *error = QStringLiteral("unknown operationType \"%1\"").arg(QString::fromUtf8(view));
                return false;
            }
            e.setOperation(*op, *op == Operation::Ddl ? view : QByteArrayView());
            haveOperation = true;
        } else if (!strcmp(key, "ns")) {
            e.setNs(namespaceAt(it));
        } else if (!strcmp(key, "documentKey")) {
            e.setDocumentKey(copyDocument(it));
        } else if (!strcmp(key, "fullDocument")) {
            // null for a deleted document under updateLookup: reads as absent
            e.setFullDocument(copyDocument(it));
        } else if (!strcmp(key, "updateDescription")) {
            // Kept whole: updatedFields, removedFields, truncatedArrays and, since 6.1,
            // disambiguatedPaths.
            e.setUpdateDescription(copyDocument(it));
        } else if (!strcmp(key, "fullDocumentBeforeChange")) {
            e.setFullDocumentBeforeChange(copyDocument(it));
        } else if (!strcmp(key, "clusterTime") && BSON_ITER_HOLDS_TIMESTAMP(it)) {
            ClusterTime t;
            bson_iter_timestamp(it, &t.t, &t.i);
            e.setClusterTime(t);
        } else if (!strcmp(key, "wallTime") && BSON_ITER_HOLDS_DATE_TIME(it)) {
            e.setWallTimeMs(bson_iter_date_time(it));
        } else if (!strcmp(key, "to")) {
            e.setRenameTarget(namespaceAt(it));
        } else if (!strcmp(key, "reason") && BSON_ITER_HOLDS_UTF8(it)) {
            // Read as the journal's replay reads it, so the event renders alike both
            // times: kept among the other fields it would move on replay.
            e.setReason(iterString(it));
        } else if (!strcmp(key, "seq") || !strcmp(key, "source")) {
            // Tidewatch's own fields; no server sends them. Carried along they would
            // give a committed event two seq (or source) keys, and replay keeps only
            // Tidewatch's, so the same event would read differently live and replayed.
            continue;
        } else {
            bson_append_iter(extra.get(), key, -1, it);
            haveExtra = true;
        }
    }
    if (!haveOperation) {
        if (error)
            *error = QStringLiteral("the change event has no operationType");
        return false;
    }
    if (haveExtra)
        e.setExtra(extra.take());
    *out = std::move(e);
    return true;
}

} // namespace tw

#pragma once

#include "model/ChangeEvent.h"

#include <bson/bson.h>

namespace tw {

// Turns a MongoDB change event document (as a change stream returns it) into a
// ChangeEvent. Every operationType maps: the CRUD ones, drop, rename (`to`),
// dropDatabase, invalidate, and any DDL event (createIndexes, create, modify, …) as
// Operation::Ddl carrying its name. Fields Tidewatch does not model
// (operationDescription, collectionUUID, txnNumber, lsid, …) are kept verbatim in
// ChangeEvent::extra(), so nothing the server said is lost, but for fields named `seq`
// or `source`: those are Tidewatch's own, and a server's would shadow them.
//
// One pass over the document, one copy per sub-document: the benchmark budget is
// 20 µs per event end to end, and this costs about 1.5 µs for a 300-byte event.
class ChangeEventMapper {
public:
    explicit ChangeEventMapper(const QString& sourceId)
        : m_sourceId(sourceId) {}

    // False (and *error set) when the document has no usable operationType.
    bool map(const bson_t* document, ChangeEvent* out, QString* error = nullptr) const;

private:
    QString m_sourceId;
};

} // namespace tw

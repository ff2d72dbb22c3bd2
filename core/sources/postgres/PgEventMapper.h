#pragma once

#include "model/ChangeEvent.h"
#include "PgOutputDecoder.h"

#include <QStringList>

namespace tw {

// A relation as the replication stream described it, with the columns that name a row.
struct PgRelationInfo {
    pg::PgRelation rel;
    Namespace ns;
    QList<int> keyColumns; // indexes into rel.columns
    bool keysResolved = false;
};

// Turns pgoutput's row messages into change events: documentKey from the key
// columns, fullDocument from the new row, updatedFields against the old row when
// there is one (REPLICA IDENTITY FULL), and unchanged TOASTed values left out.
class PgEventMapper {
public:
    // The primary key (catalogKeys, from PgCatalog) names a row; under REPLICA
    // IDENTITY FULL pgoutput flags every column as identity, so its flags are only the
    // fallback, and all columns the last.
    static void resolveKeys(PgRelationInfo& r, const QStringList& catalogKeys);
    // An Insert, Update or Delete message of relation `r`.
    static ChangeEvent change(const QString& sourceId, const PgRelationInfo& r, const pg::PgMessage& m,
                              qint64 wallTimeMs);
    static ChangeEvent truncate(const QString& sourceId, const Namespace& ns, qint64 wallTimeMs);

    // `tuple` as a document; an unchanged TOASTed value is taken from `fallback` (the
    // old row) or left out.
    static Bson rowDocument(const PgRelationInfo& r, const pg::PgTuple& tuple, const pg::PgTuple* fallback);
    static Bson keyDocument(const PgRelationInfo& r, const pg::PgTuple& tuple);
};

} // namespace tw

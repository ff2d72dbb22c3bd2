#pragma once

#include "sources/Source.h"

namespace tw {

// The server-side $match of a MongoDB change stream: what the Engine says about a
// watch's readers (WatchOptions::readers), turned into one filter the server applies
// before anything crosses the network.
class MongoPushDown {
public:
    // The BSON document for one subscription filter set: absent (no push-down) when
    // any filter matches everything or names a field only Tidewatch adds (seq,
    // source, reason); the filter itself when there is one; {$or: [...]} of the
    // distinct filters otherwise.
    static Bson unionMatch(const QList<Bson>& filters);
    // The union for the readers of a watch on `scope`: a reader that sees all of the
    // scope contributes its filter; one that sees a narrower namespace contributes
    // {$and: [{ns.db, ns.coll}, filter]}. No readers: absent. A reader that takes schema
    // changes only also leaves out the data changes: {$and: [{operationType: {$nin:
    // [insert, update, replace, delete]}}, filter]}. Naming the data operations, a
    // closed set, rather than the schema ones keeps DDL events a newer server adds.
    static Bson matchFor(const Namespace& scope, const QList<WatchOptions::Reader>& readers);
    // What a watch on `scope` opens with: the explicit options.match when there is
    // one, the readers' union otherwise.
    static Bson matchOf(const Namespace& scope, const WatchOptions& options);
};

} // namespace tw

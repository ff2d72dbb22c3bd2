#pragma once

#include "sources/Source.h"

namespace tw {

// The server-side $match of a MongoDB change stream: the filters of the
// subscriptions that read a watch, as one filter the server applies before anything
// crosses the network.
class MongoPushDown {
public:
    // The BSON document for one subscription filter set: absent (no push-down) when
    // any filter matches everything or names a field only Tidewatch adds (seq,
    // source, reason); the filter itself when there is one; {$or: [...]} of the
    // distinct filters otherwise.
    static Bson unionMatch(const QList<Bson>& filters);
};

} // namespace tw

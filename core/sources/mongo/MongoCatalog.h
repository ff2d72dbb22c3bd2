#pragma once

#include "sources/Source.h"

struct _mongoc_client_t;

namespace tw {

class MongoConnection;

// What a deployment holds, read with listDatabases and listCollections (nameOnly):
// the tree the user picks watches from, and the collections a database-wide or
// deployment-wide poll reads. Blocking driver calls, on the source's thread.
class MongoCatalog {
public:
    // admin, config and local: never polled, shown as "system".
    static bool isSystemDatabase(const QString& db);

    // The databases (db empty) or the collections, views and system collections of
    // `db`, sorted by name. On error returns what was read and sets *error to a
    // message naming the URI (redacted by `connection`).
    static QList<NamespaceInfo> list(_mongoc_client_t* client, const QString& db,
                                     const MongoConnection& connection, QString* error);

    // The collections a poll of `scope` reads: the scope itself when it names one;
    // else every collection (not views, not system.*) of its database, or of every
    // non-system database. On error returns nothing and sets *error to the driver's
    // message, not yet redacted.
    static QList<Namespace> pollTargets(_mongoc_client_t* client, const Namespace& scope, QString* error);
};

} // namespace tw

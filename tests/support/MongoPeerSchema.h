#pragma once

#include "MongoPeerWire.h"

namespace tw::test {

class MongoPeerReplies;
class MongoPeerStore;
struct MongoPeerSettings;

// The MongoDB test peer's schema commands: create, createIndexes, dropIndexes, collMod,
// drop, renameCollection, dropDatabase and shardCollection. Each changes the store and,
// on a replica set, appends the change events MongoDB 6.0 documents for it (the
// "expanded" events: create, createIndexes, dropIndexes, modify, shardCollection; and
// drop, rename, dropDatabase), with `operationDescription` and `collectionUUID` as a
// server sends them. Change stream cursors opened without showExpandedEvents do not
// see the expanded ones, nor those two fields (MongoPeerChangeStreams).
//
// Not implemented: options beyond what the events report (validators are stored and
// reported, not enforced), and shardCollection's chunk placement (the peer is not a
// mongos; it answers as if it were, so that the event can be tested).
class MongoPeerSchema {
public:
    using Request = MongoPeerWire::Request;

    // All must outlive this object.
    MongoPeerSchema(const MongoPeerSettings& settings, MongoPeerStore& store,
                    const MongoPeerReplies& replies);

    Bson create(const Request& request);
    Bson createIndexes(const Request& request);
    Bson dropIndexes(const Request& request);
    Bson collMod(const Request& request);
    Bson drop(const Request& request);
    Bson renameCollection(const Request& request);
    Bson dropDatabase(const Request& request);
    Bson shardCollection(const Request& request);

private:
    // Appends an event for db.coll with the collection's UUID (when it has one).
    void log(const QString& db, const QString& coll, const char* operationType, const Bson& description,
             const Bson& extra = {});
    // Creates db.coll if missing, with the create event a server sends for it.
    void ensureCollection(const QString& db, const QString& coll, const Bson& options = {});
    bool producesChanges() const;

    const MongoPeerSettings& m_settings;
    MongoPeerStore& m_store;
    const MongoPeerReplies& m_replies;
};

} // namespace tw::test

#pragma once

#include "MongoPeerWire.h"

namespace tw::test {

class MongoPeerReplies;
class MongoPeerStore;
struct MongoPeerSettings;

// The MongoDB test peer's write commands: insert, update (with upsert) and delete
// against the store, each write also appended to the change log as the matching
// change event (insert, update or replace, delete) when the peer presents a
// replica set and writes produce changes (MongoPeer::setWritesProduceChanges).
//
// Not implemented: update operators other than $set/$unset/$inc on top-level
// fields, and pipeline updates (refused with 9 FailedToParse).
class MongoPeerWrites {
public:
    using Request = MongoPeerWire::Request;

    // All must outlive this object.
    MongoPeerWrites(const MongoPeerSettings& settings, MongoPeerStore& store,
                    const MongoPeerReplies& replies);

    Bson insert(const Request& request);
    Bson update(const Request& request);
    Bson remove(const Request& request); // the delete command

private:
    bool producesChanges() const;

    const MongoPeerSettings& m_settings;
    MongoPeerStore& m_store;
    const MongoPeerReplies& m_replies;
};

} // namespace tw::test

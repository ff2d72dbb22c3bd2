#pragma once

#include "MongoPeerWire.h"

#include <QList>
#include <QString>

#include <optional>

namespace tw::test {

class MongoPeerChangeStreams;
class MongoPeerCursors;
class MongoPeerReplies;
class MongoPeerSchema;
class MongoPeerStore;
class MongoPeerWrites;
struct MongoPeerSettings;

// The MongoDB test peer's command layer: failpoints first, then a table from
// command name to handler (hello/isMaster, ping, buildInfo, listDatabases,
// listCollections, find, aggregate, getMore, killCursors, count; the writes, the
// schema commands and change streams are handed to MongoPeerWrites, MongoPeerSchema
// and MongoPeerChangeStreams). An
// unknown name gets 59 CommandNotFound, as from a server.
//
// Not implemented: awaitable hello (no topologyVersion is sent, so drivers poll),
// sessions and transactions beyond accepting their fields (endSessions is
// answered ok and does nothing).
class MongoPeerCommands {
public:
    using Connection = MongoPeerWire::Connection;
    using Request = MongoPeerWire::Request;

    // All must outlive this object.
    MongoPeerCommands(const MongoPeerSettings& settings, const MongoPeerStore& store,
                      MongoPeerCursors& cursors, MongoPeerChangeStreams& changeStreams,
                      MongoPeerWrites& writes, MongoPeerSchema& schema, MongoPeerWire& wire,
                      const MongoPeerReplies& replies);

    // Answers `request` on `connection`, now or (a parked getMore) later.
    void dispatch(Connection* connection, const Request& request);
    // The next `times` commands named `command` get `errorDoc` as their reply; see
    // MongoPeer::failNextCommand.
    void failNextCommand(const QString& command, const Bson& errorDoc, int times);

private:
    // No value: the request was parked and gets its reply later.
    using Handler = std::optional<Bson> (*)(MongoPeerCommands& self, Connection* connection,
                                            const Request& request);
    static Handler handlerFor(const QString& name); // null for an unknown command
    bool answerFailpoint(Connection* connection, const Request& request);

    Bson ok() const; // {ok: 1}, for ping and endSessions
    Bson hello(Connection* connection, const Request& request, bool legacyName) const;
    Bson buildInfo() const;
    Bson listDatabases(const Request& request) const;
    Bson listCollections(const Request& request) const;
    Bson find(const Request& request);
    Bson aggregate(const Request& request);
    std::optional<Bson> getMore(Connection* connection, const Request& request);
    Bson killCursors(const Request& request);
    Bson count(const Request& request) const;

    const MongoPeerSettings& m_settings;
    const MongoPeerStore& m_store;
    MongoPeerCursors& m_cursors;
    MongoPeerChangeStreams& m_changeStreams;
    MongoPeerWrites& m_writes;
    MongoPeerSchema& m_schema;
    MongoPeerWire& m_wire;
    const MongoPeerReplies& m_replies;

    struct Failure {
        QString command;
        Bson reply;
        int remaining = 0;
    };
    QList<Failure> m_failures;
};

} // namespace tw::test

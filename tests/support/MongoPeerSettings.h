#pragma once

#include <QString>

namespace tw::test {

// What kind of server the MongoDB test peer presents; set through MongoPeer's
// setters (MongoPeer.h says what each does) and read by its parts.
struct MongoPeerSettings {
    // MongoDB 6.0, the first with the expanded change events and showExpandedEvents.
    static constexpr int ExpandedEventsWireVersion = 17;

    bool replicaSet = true;
    bool changeStreamsSupported = true;
    bool writesProduceChanges = true;
    QString setName = QStringLiteral("rs0");
    int maxWireVersion = 17;
    int historyLostCode = 286;
    int defaultAwaitMs = 1000;

    // A standalone never supports change streams, whatever the flag says.
    bool changeStreamsAvailable() const { return replicaSet && changeStreamsSupported; }
};

} // namespace tw::test

#pragma once

#include <QByteArray>

namespace tw::natsheaders {

// The headers a Tidewatch ingest puts on each message of its JetStream stream
// (NatsPublisher) and a gateway reads back (NatsGatewaySource): one spelling for both.
inline constexpr char kJournal[] = "Tidewatch-Journal";     // the ingest journal's id
inline constexpr char kSeq[] = "Tidewatch-Seq";             // the event's seq in that journal
inline constexpr char kOperation[] = "Tidewatch-Operation"; // operationType

// Where an ingest keeps its watch list (NatsWatchList) for its gateways: key kWatchListKey
// of the JetStream key-value bucket "<stream>-watches", beside the stream, so the stream
// holds events only.
inline constexpr char kWatchListKey[] = "watches";
inline QByteArray watchListBucket(const QByteArray& stream) {
    return stream + "-watches";
}

} // namespace tw::natsheaders

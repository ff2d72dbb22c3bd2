#pragma once

namespace tw::natsheaders {

// The headers a Tidewatch ingest puts on each message of its JetStream stream
// (NatsPublisher) and a gateway reads back (NatsGatewaySource): one spelling for both.
inline constexpr char kJournal[] = "Tidewatch-Journal";     // the ingest journal's id
inline constexpr char kSeq[] = "Tidewatch-Seq";             // the event's seq in that journal
inline constexpr char kOperation[] = "Tidewatch-Operation"; // operationType

} // namespace tw::natsheaders

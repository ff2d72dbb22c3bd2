#pragma once

#include "model/ChangeEvent.h"

#include <QByteArrayView>
#include <QString>

namespace tw {

// Reads the body of an ingest's message (NatsEventMessage: the event's JSON as the
// ingest rendered it, its seq first) back into the event a gateway commits.
struct NatsEventReader {
    // The event of seq `seq` that `json` renders, its toJson() those very bytes, so
    // SSE, long poll and MCP send what the ingest sent; its document is read with
    // libbson's Extended JSON parser. An event that cannot be read sets *error, which
    // says why, and is not to be used.
    static ChangeEvent read(QByteArrayView json, qint64 seq, QString* error);
};

} // namespace tw

#pragma once

#include "sources/Source.h"

#include <QJsonObject>
#include <QString>

namespace tw {

// A watch's options as the HTTP API, the MCP front end and the workspace spell them:
// {"fullDocument": "updateLookup", "fullDocumentBeforeChange": "off", "capture": true,
//  "pollField": "updatedAt", "pollIntervalMs": 500, "batchSize": 100, "maxAwaitTimeMs": 500,
//  "showExpandedEvents": false}. Every key is optional; the one reader of that object.
struct WatchOptionsJson {
    // Reads `json` over `base` (the connection's defaults). False with a message naming
    // the key and what it accepts when a key is unknown or a value is wrong.
    static bool read(const QJsonObject& json, const WatchOptions& base, WatchOptions* out, QString* error);
    static bool isValid(const QJsonObject& json, QString* error);
};

} // namespace tw

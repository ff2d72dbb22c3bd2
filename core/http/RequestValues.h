#pragma once

#include "http/HttpAdapter.h"

#include <optional>
#include <QString>

namespace tw {

// Numbers the API reads from a request: sequence ids, cursors and counts, each a
// non-negative integer, with a message that names what was wrong.
class RequestValues {
public:
    // A non-negative integer (surrounding blanks allowed); false otherwise.
    static bool parseSeq(const QString& text, qint64* seq);
    // The resume point of a stream: the Last-Event-ID header, or lastEventId in the
    // query (EventSource cannot set headers on its first request). Nothing when
    // neither is there; false with a message when it is not an event id.
    static bool lastEventId(const HttpRequest& request, std::optional<qint64>* lastEventId, QString* error);
};

} // namespace tw

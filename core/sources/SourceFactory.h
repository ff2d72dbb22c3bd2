#pragma once

#include <QString>

namespace tw {

class Source;

// Creates the source a URI names, so that the Source base class knows none of its
// subclasses: the kind comes from SourceUri, and a new kind of source is one case here.
class SourceFactory {
public:
    SourceFactory() = delete;

    // The source for `uri`, not started; the caller owns it. On error returns nullptr
    // and a message a person can act on (password redacted).
    static Source* create(const QString& id, const QString& uri, QString* error);
};

} // namespace tw

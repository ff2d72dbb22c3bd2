#pragma once

#include <QString>

#include <bson/bson.h>

namespace tw {

// What a change stream error means for the watch that hit it.
enum class StreamErrorKind {
    Resumable,   // reopen from the last token (after backoff)
    HistoryLost, // the token is unusable: emit a gap and start from now
    Unsupported, // no change streams here (standalone, 40573, no privilege): poll
    Invalid,     // the watch itself is wrong (bad option, bad pipeline): report, stop it
    Fatal,       // anything else (authentication, TLS): retry slowly, state Error
};

struct StreamError {
    StreamErrorKind kind = StreamErrorKind::Fatal;
    int code = 0;
    QString message; // "code 43 (CursorNotFound): cursor id 7 not found"
};

// Classifies per the change streams specification: network errors and
// CursorNotFound (43) always resume; on servers with wire version >= 9 only the
// ResumableChangeStreamError label does; below 9 the listed codes do. `reply` is the
// server's reply document when there was one (may be null or empty).
StreamError classifyStreamError(const bson_error_t& error, const bson_t* reply, int maxWireVersion);

// Whether the reply carries errorLabels containing `label`.
bool hasErrorLabel(const bson_t* reply, const char* label);

} // namespace tw

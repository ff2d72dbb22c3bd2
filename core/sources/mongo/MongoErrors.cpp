#include "MongoErrors.h"

#include "model/Bson.h"

#include <mongoc/mongoc.h>

#include <cstring>

namespace tw {

namespace {

// The specification's list for servers below wire version 9 (MongoDB < 4.4), which
// do not label resumable errors themselves.
constexpr int kLegacyResumableCodes[] = {6,     7,     89,    91, 189, 262,   9001, 10107, 11600,
                                         11602, 13435, 13436, 63, 150, 13388, 234,  133};

} // namespace

bool hasErrorLabel(const bson_t* reply, const char* label) {
    bson_iter_t it;
    if (!findKey(reply, "errorLabels", &it) || !BSON_ITER_HOLDS_ARRAY(&it))
        return false;
    for (const bson_iter_t& element : BsonFields(&it))
        if (BSON_ITER_HOLDS_UTF8(&element) && !strcmp(bson_iter_utf8(&element, nullptr), label))
            return true;
    return false;
}

StreamError classifyStreamError(const bson_error_t& error, const bson_t* reply, int maxWireVersion) {
    StreamError result;
    result.code = int(error.code);
    const QString text = QString::fromUtf8(error.message);
    const QString name = stringAt(reply, "codeName");
    result.message =
        error.domain == MONGOC_ERROR_SERVER || error.domain == MONGOC_ERROR_WRITE_CONCERN
            ? (name.isEmpty() ? QStringLiteral("code %1: %2").arg(error.code).arg(text)
                              : QStringLiteral("code %1 (%2): %3").arg(error.code).arg(name, text))
            : text;

    // Network and server-selection failures: the deployment may come back. A reply
    // the driver could not read (a size out of range, a body that is not what a
    // server sends) is a network error too, as the change stream specification
    // counts them: the connection is dropped and the stream resumed.
    if (error.domain == MONGOC_ERROR_STREAM || error.domain == MONGOC_ERROR_SERVER_SELECTION ||
        (error.domain == MONGOC_ERROR_CLIENT && error.code == MONGOC_ERROR_CLIENT_NOT_READY) ||
        (error.domain == MONGOC_ERROR_PROTOCOL && error.code == MONGOC_ERROR_PROTOCOL_INVALID_REPLY)) {
        result.kind = StreamErrorKind::Resumable;
        return result;
    }
    if (error.domain == MONGOC_ERROR_CLIENT && error.code == MONGOC_ERROR_CLIENT_AUTHENTICATE) {
        result.kind = StreamErrorKind::Fatal;
        return result;
    }
    if (error.domain != MONGOC_ERROR_SERVER && error.domain != MONGOC_ERROR_QUERY) {
        // Option parsing in the driver (MONGOC_ERROR_COMMAND_INVALID_ARG, …).
        result.kind = error.domain == MONGOC_ERROR_COMMAND || error.domain == MONGOC_ERROR_BSON
                          ? StreamErrorKind::Invalid
                          : StreamErrorKind::Fatal;
        return result;
    }

    const int code = int(error.code);
    switch (code) {
    case 286: // ChangeStreamHistoryLost
    case 260: // InvalidResumeToken
    case 280: // ChangeStreamFatalError (4.0-4.2: "resume token was not found")
        result.kind = StreamErrorKind::HistoryLost;
        return result;
    case 40573: // "The $changeStream stage is only supported on replica sets"
    case 13:    // Unauthorized: no changeStream privilege, find may still be allowed
    case 40324: // Unrecognized pipeline stage name: '$changeStream' (very old or emulating servers)
        result.kind = StreamErrorKind::Unsupported;
        return result;
    case 43: // CursorNotFound: always resumable
        result.kind = StreamErrorKind::Resumable;
        return result;
    default:
        break;
    }
    if (text.contains(QLatin1String("only supported on replica sets")) ||
        text.contains(QLatin1String("not authorized"))) {
        result.kind = StreamErrorKind::Unsupported;
        return result;
    }
    if (maxWireVersion >= 9) {
        result.kind = hasErrorLabel(reply, "ResumableChangeStreamError") ? StreamErrorKind::Resumable
                                                                         : StreamErrorKind::Invalid;
    } else {
        result.kind = StreamErrorKind::Invalid;
        for (int resumable : kLegacyResumableCodes)
            if (code == resumable)
                result.kind = StreamErrorKind::Resumable;
    }
    // Bad values in what we sent (2 BadValue, 9 FailedToParse, 14 TypeMismatch, 40415
    // unknown field) stay Invalid; other non-resumable server errors are retried slowly.
    if (result.kind == StreamErrorKind::Invalid && code != 2 && code != 9 && code != 14 && code != 40415 &&
        code != 40602 && code != 72 && code != 73)
        result.kind = StreamErrorKind::Fatal;
    return result;
}

} // namespace tw

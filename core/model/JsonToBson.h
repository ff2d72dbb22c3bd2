#pragma once

#include <QByteArrayView>

#include <bson/bson.h>

namespace tw {

// Reads JSON text into BSON with simdjson's parser, exactly as libbson's
// bson_init_from_json would, for the documents Tidewatch meets on its hot paths: plain
// JSON objects and the Relaxed Extended JSON our own writer (ExtendedJson.h) produces
// ($oid, $date, $numberLong, $numberDouble, $binary, $timestamp, $minKey, $maxKey,
// $undefined). libbson's reader, jsonsl with a UTF-8 check and an unescaping pass per
// string, took 18–20 µs for a 1 KiB event; this takes a few.
//
// Returns false, leaving `out` empty, for anything else: invalid JSON, a top level that
// is not an object, any other $-prefixed key, a number libbson would read another way
// (past int64, a negative zero), NUL in a string, nesting past 90 levels, non-canonical
// base64, a text past 4 MiB. The caller then asks libbson, which gives the answer, or
// the error, it always gave. `out` must be initialised (bson_init) by the caller, who
// destroys it in either case.
bool jsonToBsonFast(QByteArrayView json, bson_t* out);

} // namespace tw

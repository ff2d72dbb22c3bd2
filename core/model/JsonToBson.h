#pragma once

#include <QByteArray>
#include <QByteArrayView>

namespace tw {

// Reads the JSON our own renderer writes (appendRelaxedJson(): compact Relaxed Extended
// JSON, as an ingest publishes each event) into BSON, byte for byte what libbson's
// bson_init_from_json() makes of the same text, at a fraction of its cost: libbson's
// parser (jsonsl, a state machine per character, its UTF-8 check) was most of a
// gateway's 85-120 us of CPU per 1 KiB event (bench/README.md, "bench_nats").
//
// It takes plain JSON objects, arrays, strings, numbers, true, false and null, and of
// the Extended JSON wrappers only {"$oid"}, {"$date": "<ISO 8601>"} and {"$timestamp"},
// the ones events carry. Anything else (another wrapper or any key that starts with
// '$', a \u escape of a surrogate or NUL, invalid UTF-8, an integer outside int64,
// nesting past 100, malformed JSON) makes it return false and leave *bson unspecified:
// the caller then asks libbson (Bson::fromJson), which handles or rejects it with its
// own error message. Nothing is ever read differently, only faster.
bool relaxedJsonToBson(QByteArrayView json, QByteArray* bson);

} // namespace tw

#pragma once

#include <QByteArray>

#include <bson/bson.h>

namespace tw {

// Appends `doc` to `out` as compact Relaxed Extended JSON v2 ({"a":1,"d":{"$date":"…"}}).
// This is the hot path of every event (rendered once at commit); libbson's own
// renderer spent 60 µs on a 1 KiB document, mostly in strlen over long strings,
// this one about 1 µs. Returns false when the document is malformed (nothing sane
// can be printed then; `out` holds a partial rendering).
bool appendRelaxedJson(QByteArray& out, const bson_t* doc);

// Appends `text` as a JSON string literal (quotes included), escaping as RFC 8259
// requires. Invalid UTF-8 is replaced by U+FFFD so the output is always valid JSON.
void appendJsonString(QByteArray& out, const char* text, size_t length);

} // namespace tw

#pragma once

#include "model/Bson.h"

#include <memory>
#include <QByteArray>
#include <QByteArrayView>
#include <QString>

namespace tw {

// A MongoDB projection over a change event, compiled once: inclusion
// ({"documentKey": 1, "fullDocument.title": 1}) or exclusion ({"fullDocument.password": 0}),
// with MongoDB's rules. Paths are dotted or nested ({"a": {"b": 1}} is {"a.b": 1}); only
// `_id` may differ from the others' mode; inclusion keeps `_id` unless {"_id": 0}; a path
// walks through arrays, and inclusion drops the array elements that are not documents
// ({"a.b": 1} on a: [{b: 1, c: 2}, 3] keeps a: [{b: 1}]). Tidewatch's `seq` is always kept:
// it is the cursor a consumer resumes from. Values are 0, 1, true or false; expressions
// and $-operators are refused.
//
// Implicitly shared and immutable: copies cost a reference count, so a projection travels
// with its Subscription between threads. A default-constructed projection is null and
// keeps every field.
class Projection {
public:
    Projection() = default;
    // `json`: an object, Extended JSON allowed. On error returns null and sets `error` to a
    // message naming the path ("Cannot do exclusion on field fullDocument.password in
    // inclusion projection"). An empty object {} is the null projection.
    static Projection fromJson(QByteArrayView json, QString* error);
    static Projection fromBson(const Bson& spec, QString* error);
    // The "keys" shorthand: every field but fullDocument and fullDocumentBeforeChange.
    static Projection keysOnly();

    bool isNull() const { return !m_d; }
    bool isInclusion() const;
    // The spec as given, one line of Relaxed Extended JSON; empty when null.
    QByteArray json() const;

    // The projected document; `doc` itself when null.
    Bson apply(const Bson& doc) const;

    friend bool operator==(const Projection& a, const Projection& b) { return a.json() == b.json(); }

private:
    struct Data;
    std::shared_ptr<const Data> m_d;
};

} // namespace tw

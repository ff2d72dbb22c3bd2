#pragma once

#include "model/Bson.h"
#include "model/ChangeEvent.h"

#include <memory>
#include <QList>
#include <QMetaType>

namespace tw {

class DocumentIndex;

// A MongoDB query-language predicate over the change-event document
// (operationType, ns.coll, documentKey._id, fullDocument.x,
// updateDescription.updatedFields.x, …). Supports $eq $ne $gt $gte $lt $lte $in
// $nin $exists $type $regex (with $options) $and $or $nor $not $elemMatch $size
// $all with MongoDB's semantics: comparison within BSON type brackets, array
// element matching, dotted paths through arrays, null matching missing.
//
// Compiled once; immutable and cheap to copy (shared), so safe to use from any
// thread. A default-constructed Filter matches everything.
class Filter {
public:
    Filter();
    // On error returns an invalid Filter and sets *error to a message that names the
    // offending operator and path, e.g. "fullDocument.total: $gt needs a value, not an object".
    static Filter compile(QByteArrayView json, QString* error = nullptr);
    static Filter fromBson(const Bson& query, QString* error = nullptr);

    bool isValid() const;
    bool matchesEverything() const; // {} or default
    QByteArray json() const;        // the filter as Relaxed Extended JSON ("{}" for everything)
    Bson query() const;             // the filter document, e.g. for a server-side $match

    bool matches(const bson_t* changeDocument) const;
    bool matches(const ChangeEvent& event) const; // uses event.document()
    // The same answer as matches(document), faster when several filters are evaluated
    // on one event: the index is built once and each path is one hash probe.
    bool matches(const DocumentIndex& index) const;

    // Top-level equality conjuncts usable by a hash index: for {"a": 1, "b": {"$eq": 2},
    // "c": {"$gt": 3}} returns a=1 and b=2 (never values that are arrays, documents
    // with operators, regexes or null). Matching an event still needs matches().
    struct Equality {
        QByteArray path;
        Bson value; // {"v": <value>}: the value wrapped in a one-field document
    };
    QList<Equality> equalities() const;

private:
    struct Program;
    std::shared_ptr<const Program> m_program;
};

} // namespace tw

Q_DECLARE_METATYPE(tw::Filter)

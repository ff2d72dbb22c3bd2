#pragma once

#include "model/Bson.h"

#include <QList>
#include <QString>

namespace tw::test {

// The MongoDB test peer's own query evaluation: filters for find, count, the
// listDatabases/listCollections filters, update and delete selectors and a change
// stream's $match stages, plus the few aggregation stages drivers send.
//
// It is independent of core/filter/ on purpose: a peer that used the code under
// test to decide what matches would agree with that code's bugs, and the
// MongoSource tests would pass for the wrong reason. It follows MongoDB's BSON
// comparison order, type bracketing and array semantics only as far as the tests
// need.
//
// Not implemented: query operators outside $eq $ne $gt $gte $lt $lte $in $nin
// $exists $not $and $or $nor (unknown ones are treated as "matches" with a warning,
// where a real server would reject them), and aggregation stages other than $match
// $sort $skip $limit $project $count and the countDocuments $group.
class MongoPeerMatcher {
public:
    // An absent filter matches everything.
    static bool matches(const Bson& doc, const Bson& filter);
    // Stable sort by a {field: 1|-1, …} spec; a missing value sorts as null.
    static void sort(QList<Bson>* docs, const Bson& sortSpec);
    // Top-level inclusion or exclusion projection; _id is kept unless excluded.
    static Bson project(const Bson& doc, const Bson& projection);
    // Runs the aggregation stages over `docs`. An unknown stage stops the run: the
    // result is empty and `*error` (if given) names the stage.
    static QList<Bson> runPipeline(QList<Bson> docs, const QList<Bson>& stages, QString* error);
    // {$op: …}: a condition rather than a value to compare with.
    static bool isOperatorDocument(const bson_iter_t* it);
};

} // namespace tw::test

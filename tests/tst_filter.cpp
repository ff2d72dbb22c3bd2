#include "filter/DocumentIndex.h"
#include "filter/Filter.h"
#include "model/ChangeEvent.h"

#include <QtEndian>
#include <QtTest>

#include <cstring>
#include <memory>

using namespace tw;

class tst_Filter : public QObject {
    Q_OBJECT

private slots:
    void matches_data();
    void matches();
    void changeEvent_data();
    void changeEvent();
    void invalid_data();
    void invalid();
    void equalities_data();
    void equalities();
    void emptyAndDefault();
    void jsonRoundTrip_data();
    void jsonRoundTrip();
    void keyOrderOfLiteralDocumentsIsKept();
    void sharedAcrossThreads();
    void indexOfAVeryWideDocument();
    void malformedBytesAreNeverReadPastTheirEnd();

private:
    static void row(const char* filter, const char* document, bool expected) {
        QTest::addRow("%s ~ %s", filter, document) << QByteArray(filter) << QByteArray(document) << expected;
    }
};

void tst_Filter::matches_data() {
    QTest::addColumn<QByteArray>("filter");
    QTest::addColumn<QByteArray>("document");
    QTest::addColumn<bool>("expected");

    // Implicit equality and $eq; numbers compare across int32, int64, double, decimal.
    row(R"({"a": 1})", R"({"a": 1})", true);
    row(R"({"a": 1})", R"({"a": 2})", false);
    row(R"({"a": 1})", R"({})", false);
    row(R"({"a": 1})", R"({"a": 1.0})", true);
    row(R"({"a": 1})", R"({"a": {"$numberLong": "1"}})", true);
    row(R"({"a": {"$numberDecimal": "1.0"}})", R"({"a": 1})", true);
    row(R"({"a": {"$numberDecimal": "0.5"}})", R"({"a": 0.5})", true);
    row(R"({"a": {"$numberLong": "9007199254740993"}})", R"({"a": 9007199254740992.0})", false);
    row(R"({"a": 5000000000})", R"({"a": {"$numberLong": "5000000000"}})", true);
    row(R"({"a": "1"})", R"({"a": 1})", false);
    row(R"({"a": 1})", R"({"a": "1"})", false);
    row(R"({"a": true})", R"({"a": 1})", false);
    row(R"({"a": {"$eq": "x"}})", R"({"a": "x"})", true);
    row(R"({"a": {"$eq": "x"}})", R"({"a": "X"})", false);
    row(R"({"a": {"b": 1}})", R"({"a": {"b": 1}})", true);
    row(R"({"a": {"b": 1}})", R"({"a": {"b": 1.0}})", true);
    row(R"({"a": {"b": 1}})", R"({"a": {"b": 1, "c": 2}})", false);
    row(R"({"a": {"x": 1, "y": 2}})", R"({"a": {"y": 2, "x": 1}})", false);
    row(R"({"a": {}})", R"({"a": {}})", true);
    row(R"({"a.b": 1})", R"({"a": {"b": 1}})", true);
    row(R"({"a.b.c": "deep"})", R"({"a": {"b": {"c": "deep"}}})", true);
    row(R"({"a.b": 1})", R"({"a": 1})", false);
    row(R"({"_id": {"$oid": "5f1d7a0e0000000000000001"}})",
        R"({"_id": {"$oid": "5f1d7a0e0000000000000001"}})", true);
    row(R"({"_id": {"$oid": "5f1d7a0e0000000000000001"}})", R"({"_id": "5f1d7a0e0000000000000001"})", false);
    row(R"({"d": {"$date": "2024-01-01T00:00:00Z"}})",
        R"({"d": {"$date": {"$numberLong": "1704067200000"}}})", true);

    // Arrays: any element, or the whole array.
    row(R"({"a": 1})", R"({"a": [1, 2]})", true);
    row(R"({"a": 3})", R"({"a": [1, 2]})", false);
    row(R"({"a": [1, 2]})", R"({"a": [1, 2]})", true);
    row(R"({"a": [1, 2]})", R"({"a": [2, 1]})", false);
    row(R"({"a": [1, 2]})", R"({"a": [[1, 2], 3]})", true);
    row(R"({"a": 1})", R"({"a": [[1]]})", false);
    row(R"({"a": []})", R"({"a": []})", true);
    row(R"({"a": []})", R"({"a": [[]]})", true);

    // Dotted paths through arrays and numeric components.
    row(R"({"a.b": 2})", R"({"a": [{"b": 1}, {"b": 2}]})", true);
    row(R"({"a.b": 3})", R"({"a": [{"b": 1}, {"b": 2}]})", false);
    row(R"({"a.b": 2})", R"({"a": [{"b": [1, 2]}]})", true);
    row(R"({"a.b.c": 1})", R"({"a": [{"b": [{"c": 1}]}]})", true);
    row(R"({"a.b": 1})", R"({"a": [[{"b": 1}]]})", false);
    row(R"({"a.1": "y"})", R"({"a": ["x", "y"]})", true);
    row(R"({"a.0": "y"})", R"({"a": ["x", "y"]})", false);
    row(R"({"a.0.b": 1})", R"({"a": [{"b": 1}]})", true);
    row(R"({"a.1.b": 1})", R"({"a": [{"b": 1}, {"b": 2}]})", false);
    row(R"({"a.0": 1})", R"({"a": [[1, 2]]})", true);
    row(R"({"a.0": 1})", R"({"a": {"0": 1}})", true);
    row(R"({"a.01": 1})", R"({"a": [5, 1]})", false);

    // $ne and $nin negate $eq and $in over the same array semantics.
    row(R"({"a": {"$ne": 1}})", R"({"a": 2})", true);
    row(R"({"a": {"$ne": 1}})", R"({"a": 1})", false);
    row(R"({"a": {"$ne": 1}})", R"({})", true);
    row(R"({"a": {"$ne": 1}})", R"({"a": [1, 2]})", false);
    row(R"({"a": {"$ne": 1}})", R"({"a": [2, 3]})", true);
    row(R"({"a": {"$ne": 1}})", R"({"a": "1"})", true);
    row(R"({"a": {"$nin": [1, 2]}})", R"({"a": 3})", true);
    row(R"({"a": {"$nin": [1, 2]}})", R"({"a": 1.0})", false);
    row(R"({"a": {"$nin": [1, 2]}})", R"({})", true);
    row(R"({"a": {"$nin": [1, 2]}})", R"({"a": [3, 1]})", false);
    row(R"({"a": {"$nin": [null]}})", R"({})", false);

    // $gt $gte $lt $lte: only within one type bracket.
    row(R"({"a": {"$gt": 5}})", R"({"a": 6})", true);
    row(R"({"a": {"$gt": 5}})", R"({"a": 5})", false);
    row(R"({"a": {"$gt": 5}})", R"({"a": "6"})", false);
    row(R"({"a": {"$gt": 5}})", R"({"a": 5.5})", true);
    row(R"({"a": {"$gt": 5}})", R"({"a": {"$numberLong": "6"}})", true);
    row(R"({"a": {"$gt": 5}})", R"({"a": {"$numberDecimal": "5.01"}})", true);
    row(R"({"a": {"$gt": 5}})", R"({"a": [1, 10]})", true);
    row(R"({"a": {"$gt": 5}})", R"({"a": [1, 2]})", false);
    row(R"({"a": {"$gt": 5}})", R"({})", false);
    row(R"({"a": {"$gt": 5}})", R"({"a": null})", false);
    row(R"({"a": {"$gt": 5}})", R"({"a": true})", false);
    row(R"({"a": {"$gt": 0}})", R"({"a": {"$numberDouble": "NaN"}})", false);
    row(R"({"a": {"$gte": 5}})", R"({"a": 5.0})", true);
    row(R"({"a": {"$gte": 5}})", R"({"a": 4.999})", false);
    row(R"({"a": {"$lt": 5}})", R"({"a": -1})", true);
    row(R"({"a": {"$lt": 5}})", R"({"a": "1"})", false);
    row(R"({"a": {"$lte": 5}})", R"({"a": {"$numberDecimal": "5"}})", true);
    row(R"({"a": {"$lt": "b"}})", R"({"a": "a"})", true);
    row(R"({"a": {"$lt": "b"}})", R"({"a": "ba"})", false);
    row(R"({"a": {"$lt": "b"}})", R"({"a": 1})", false);
    row(R"({"a": {"$gt": {"$numberLong": "9007199254740992"}}})",
        R"({"a": {"$numberLong": "9007199254740993"}})", true);
    row(R"({"a": {"$gt": 9007199254740992.0}})", R"({"a": {"$numberLong": "9007199254740993"}})", true);
    row(R"({"a": {"$lt": 1e300}})", R"({"a": {"$numberLong": "9223372036854775807"}})", true);
    row(R"({"a": {"$gt": 1, "$lt": 5}})", R"({"a": [0, 10]})", true);
    row(R"({"a": {"$gt": 1, "$lt": 5}})", R"({"a": 7})", false);
    row(R"({"a": {"$lte": null}})", R"({})", true);
    row(R"({"a": {"$gte": null}})", R"({"a": null})", true);
    row(R"({"a": {"$gt": null}})", R"({"a": null})", false);
    row(R"({"d": {"$gt": {"$date": "2024-01-01T00:00:00Z"}}})", R"({"d": {"$date": "2024-06-01T00:00:00Z"}})",
        true);
    row(R"({"d": {"$gt": {"$date": "2024-01-01T00:00:00Z"}}})", R"({"d": "2025-01-01"})", false);
    row(R"({"d": {"$gt": {"$date": "2024-01-01T00:00:00Z"}}})", R"({"d": 1900000000000})", false);
    row(R"({"_id": {"$gt": {"$oid": "000000000000000000000001"}}})",
        R"({"_id": {"$oid": "000000000000000000000002"}})", true);
    row(R"({"t": {"$gte": {"$timestamp": {"t": 10, "i": 2}}}})",
        R"({"t": {"$timestamp": {"t": 10, "i": 1}}})", false);
    row(R"({"t": {"$gte": {"$timestamp": {"t": 10, "i": 2}}}})",
        R"({"t": {"$timestamp": {"t": 11, "i": 0}}})", true);
    row(R"({"o": {"$gt": {"a": 1}}})", R"({"o": {"a": 2}})", true);
    row(R"({"o": {"$gt": {"a": 1}}})", R"({"o": {"a": "x"}})",
        true); // strings sort after numbers inside a document
    row(R"({"o": {"$gt": {"a": 1}}})", R"({"o": 5})", false);
    row(R"({"b": {"$lt": true}})", R"({"b": false})", true);

    // $in.
    row(R"({"a": {"$in": [1, 2]}})", R"({"a": 2})", true);
    row(R"({"a": {"$in": [1, 2]}})", R"({"a": 2.0})", true);
    row(R"({"a": {"$in": [1, 2]}})", R"({"a": 3})", false);
    row(R"({"a": {"$in": [1, 2]}})", R"({"a": [3, 2]})", true);
    row(R"({"a": {"$in": [1, 2]}})", R"({})", false);
    row(R"({"a": {"$in": []}})", R"({"a": 1})", false);
    row(R"({"a": {"$in": [null]}})", R"({})", true);
    row(R"({"a": {"$in": [null, 1]}})", R"({"a": null})", true);
    row(R"({"a": {"$in": [[1, 2]]}})", R"({"a": [1, 2]})", true);
    row(R"({"a": {"$in": [{"$regex": "^x"}]}})", R"({"a": "xyz"})", true);
    row(R"({"a": {"$in": [{"$regex": "^X", "$options": "i"}]}})", R"({"a": "xyz"})", true);
    row(R"({"a": {"$in": [{"$regex": "^x"}]}})", R"({"a": "yx"})", false);
    // More than eight values: the hashed path must agree with compare().
    row(R"({"a": {"$in": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}})", R"({"a": 15.0})", true);
    row(R"({"a": {"$in": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}})", R"({"a": {"$numberLong": "7"}})", true);
    row(R"({"a": {"$in": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}})", R"({"a": 16})", false);
    row(R"({"a": {"$in": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}})", R"({"a": "15"})", false);
    row(R"({"a": {"$in": [1,2,3,4,5,6,7,8,9,10,11,12,{"b": 1}]}})", R"({"a": {"b": 1.0}})", true);
    row(R"({"a": {"$in": ["a","b","c","d","e","f","g","h","i",{"$regex": "^z"}]}})", R"({"a": "zz"})", true);
    row(R"({"a": {"$in": ["a","b","c","d","e","f","g","h","i",null]}})", R"({})", true);

    // $exists.
    row(R"({"a": {"$exists": true}})", R"({"a": null})", true);
    row(R"({"a": {"$exists": true}})", R"({})", false);
    row(R"({"a": {"$exists": 1}})", R"({"a": 0})", true);
    row(R"({"a": {"$exists": false}})", R"({})", true);
    row(R"({"a": {"$exists": false}})", R"({"a": 1})", false);
    row(R"({"a.b": {"$exists": true}})", R"({"a": [{"c": 1}, {"b": 2}]})", true);
    row(R"({"a.b": {"$exists": false}})", R"({"a": [1, 2]})", true);
    row(R"({"a.b": {"$exists": false}})", R"({"a": [{"c": 1}, {"b": 2}]})", false);
    row(R"({"a.1": {"$exists": true}})", R"({"a": [5]})", false);
    row(R"({"a.1": {"$exists": true}})", R"({"a": [5, 6]})", true);

    // null matches null and missing, not other values.
    row(R"({"a": null})", R"({})", true);
    row(R"({"a": null})", R"({"a": null})", true);
    row(R"({"a": null})", R"({"a": 0})", false);
    row(R"({"a": null})", R"({"a": ""})", false);
    row(R"({"a": null})", R"({"a": [1, null]})", true);
    row(R"({"a": null})", R"({"a": []})", false);
    row(R"({"a.b": null})", R"({"a": 5})", true);
    row(R"({"a.b": null})", R"({"a": [{"b": 1}, {"c": 1}]})", true);
    row(R"({"a.b": null})", R"({"a": [{"b": 1}]})", false);
    row(R"({"a": {"$ne": null}})", R"({})", false);
    row(R"({"a": {"$ne": null}})", R"({"a": 1})", true);
    row(R"({"a": {"$eq": null}})", R"({"b": 1})", true);

    // $type: names, numbers, "number", arrays of types.
    row(R"({"a": {"$type": "string"}})", R"({"a": "x"})", true);
    row(R"({"a": {"$type": "string"}})", R"({"a": 1})", false);
    row(R"({"a": {"$type": 2}})", R"({"a": "x"})", true);
    row(R"({"a": {"$type": 16}})", R"({"a": 1})", true);
    row(R"({"a": {"$type": "number"}})", R"({"a": {"$numberDecimal": "1"}})", true);
    row(R"({"a": {"$type": "number"}})", R"({"a": 2.5})", true);
    row(R"({"a": {"$type": "number"}})", R"({"a": "1"})", false);
    row(R"({"a": {"$type": ["string", "null"]}})", R"({"a": null})", true);
    row(R"({"a": {"$type": ["string", 10]}})", R"({"a": true})", false);
    row(R"({"a": {"$type": "array"}})", R"({"a": []})", true);
    row(R"({"a": {"$type": "array"}})", R"({"a": {}})", false);
    row(R"({"a": {"$type": "int"}})", R"({"a": [1]})", true);
    row(R"({"a": {"$type": "long"}})", R"({"a": 1})", false);
    row(R"({"a": {"$type": "long"}})", R"({"a": {"$numberLong": "1"}})", true);
    row(R"({"a": {"$type": "double"}})", R"({"a": 1.5})", true);
    row(R"({"a": {"$type": "decimal"}})", R"({"a": {"$numberDecimal": "1.5"}})", true);
    row(R"({"a": {"$type": "objectId"}})", R"({"a": {"$oid": "5f1d7a0e0000000000000001"}})", true);
    row(R"({"a": {"$type": "date"}})", R"({"a": {"$date": "2024-01-01T00:00:00Z"}})", true);
    row(R"({"a": {"$type": "bool"}})", R"({"a": false})", true);
    row(R"({"a": {"$type": "object"}})", R"({"a": {}})", true);
    row(R"({"a": {"$type": "null"}})", R"({})", false);
    row(R"({"a": {"$type": "timestamp"}})", R"({"a": {"$timestamp": {"t": 1, "i": 1}}})", true);
    row(R"({"a": {"$type": "binData"}})", R"({"a": {"$binary": {"base64": "AA==", "subType": "00"}}})", true);
    row(R"({"a": {"$type": "minKey"}})", R"({"a": {"$minKey": 1}})", true);
    row(R"({"a": {"$type": -1}})", R"({"a": {"$minKey": 1}})", true);
    row(R"({"a": {"$type": 127}})", R"({"a": {"$maxKey": 1}})", true);

    // $regex with options, implicit BSON regex, and the value forms.
    row(R"({"a": {"$regex": "^ab"}})", R"({"a": "abc"})", true);
    row(R"({"a": {"$regex": "^ab"}})", R"({"a": "xab"})", false);
    row(R"({"a": {"$regex": "^ab"}})", R"({"a": 1})", false);
    row(R"({"a": {"$regex": "^ab"}})", R"({})", false);
    row(R"({"a": {"$regex": "^ab"}})", R"({"a": ["x", "abz"]})", true);
    row(R"({"a": {"$regex": "^AB", "$options": "i"}})", R"({"a": "abc"})", true);
    row(R"({"a": {"$regex": "^AB"}})", R"({"a": "abc"})", false);
    row(R"({"a": {"$options": "i", "$regex": "^AB"}})", R"({"a": "abc"})", true);
    row(R"({"a": {"$regex": "^b", "$options": "m"}})", R"({"a": "a\nb"})", true);
    row(R"({"a": {"$regex": "^b"}})", R"({"a": "a\nb"})", false);
    row(R"({"a": {"$regex": "a.b", "$options": "s"}})", R"({"a": "a\nb"})", true);
    row(R"({"a": {"$regex": "a.b"}})", R"({"a": "a\nb"})", false);
    row(R"({"a": {"$regex": "a b # letters", "$options": "x"}})", R"({"a": "ab"})", true);
    row(R"({"a": {"$regex": "a b"}})", R"({"a": "ab"})", false);
    row(R"({"a": {"$regex": "^a", "$options": "im"}})", R"({"a": "x\nA"})", true);
    row(R"({"a": {"$regex": "caf\u00e9$"}})", R"({"a": "un caf\u00e9"})", true);
    row(R"({"a": {"$regex": "^a", "$options": "i", "$ne": "abc"}})", R"({"a": "Abd"})", true);
    row(R"({"a": {"$regex": "^a", "$options": "i", "$ne": "abc"}})", R"({"a": "abc"})", false);
    row(R"({"a": {"$regularExpression": {"pattern": "^a", "options": "i"}}})", R"({"a": "Abc"})", true);
    row(R"({"a": {"$regularExpression": {"pattern": "^a", "options": ""}}})", R"({"a": "Abc"})", false);
    row(R"({"a": {"$regex": {"$regularExpression": {"pattern": "^a", "options": "i"}}}})", R"({"a": "ABC"})",
        true);
    row(R"({"a": {"$regularExpression": {"pattern": "^a", "options": ""}}})",
        R"({"a": {"$regularExpression": {"pattern": "^a", "options": ""}}})", true);

    // $not around operators and regular expressions.
    row(R"({"a": {"$not": {"$gt": 5}}})", R"({"a": 3})", true);
    row(R"({"a": {"$not": {"$gt": 5}}})", R"({"a": 6})", false);
    row(R"({"a": {"$not": {"$gt": 5}}})", R"({})", true);
    row(R"({"a": {"$not": {"$gt": 5}}})", R"({"a": "x"})", true);
    row(R"({"a": {"$not": {"$gt": 1, "$lt": 5}}})", R"({"a": 3})", false);
    row(R"({"a": {"$not": {"$gt": 1, "$lt": 5}}})", R"({"a": 7})", true);
    row(R"({"a": {"$not": {"$regex": "^a"}}})", R"({"a": "b"})", true);
    row(R"({"a": {"$not": {"$regex": "^a"}}})", R"({"a": "abc"})", false);
    row(R"({"a": {"$not": {"$regex": "^A", "$options": "i"}}})", R"({"a": "abc"})", false);
    row(R"({"a": {"$not": {"$regularExpression": {"pattern": "^a", "options": ""}}}})", R"({"a": "b"})",
        true);
    row(R"({"a": {"$not": {"$in": [1, 2]}}})", R"({"a": [3, 4]})", true);
    row(R"({"a": {"$not": {"$size": 1}}})", R"({"a": [1]})", false);

    // $and, $or, $nor, nested, and mixed with fields.
    row(R"({"$and": [{"a": 1}, {"b": 2}]})", R"({"a": 1, "b": 2})", true);
    row(R"({"$and": [{"a": 1}, {"b": 2}]})", R"({"a": 1})", false);
    row(R"({"$or": [{"a": 1}, {"b": 2}]})", R"({"b": 2})", true);
    row(R"({"$or": [{"a": 1}, {"b": 2}]})", R"({})", false);
    row(R"({"$nor": [{"a": 1}, {"b": 2}]})", R"({"a": 3})", true);
    row(R"({"$nor": [{"a": 1}, {"b": 2}]})", R"({"a": 1})", false);
    row(R"({"$or": [{"$and": [{"a": 1}, {"b": {"$gt": 1}}]}, {"$nor": [{"c": {"$exists": true}}]}]})",
        R"({"a": 1, "b": 2, "c": 1})", true);
    row(R"({"$or": [{"$and": [{"a": 1}, {"b": {"$gt": 1}}]}, {"$nor": [{"c": {"$exists": true}}]}]})",
        R"({"a": 1, "b": 0, "c": 1})", false);
    row(R"({"$or": [{"$and": [{"a": 1}, {"b": {"$gt": 1}}]}, {"$nor": [{"c": {"$exists": true}}]}]})",
        R"({"a": 1, "b": 0})", true);
    row(R"({"a": 1, "$or": [{"b": 1}, {"c": 1}]})", R"({"a": 1, "c": 1})", true);
    row(R"({"a": 1, "$or": [{"b": 1}, {"c": 1}]})", R"({"a": 2, "c": 1})", false);
    row(R"({"$and": [{"$or": [{"a": 1}, {"a": 2}]}, {"$or": [{"b": 1}, {"b": 2}]}]})", R"({"a": 2, "b": 1})",
        true);
    row(R"({"a": 1, "$comment": "ignored"})", R"({"a": 1})", true);

    // $elemMatch on documents and on values.
    row(R"({"items": {"$elemMatch": {"sku": "x", "qty": {"$gt": 2}}}})",
        R"({"items": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 5}]})", false);
    row(R"({"items.sku": "x", "items.qty": {"$gt": 2}})",
        R"({"items": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 5}]})", true);
    row(R"({"items": {"$elemMatch": {"sku": "x", "qty": {"$gt": 2}}}})",
        R"({"items": [{"sku": "x", "qty": 3}]})", true);
    row(R"({"items": {"$elemMatch": {"sku": "x"}}})", R"({"items": {"sku": "x"}})", false);
    row(R"({"a": {"$elemMatch": {"$gte": 80, "$lt": 85}}})", R"({"a": [82]})", true);
    row(R"({"a": {"$elemMatch": {"$gte": 80, "$lt": 85}}})", R"({"a": [90, 70]})", false);
    row(R"({"a": {"$elemMatch": {"$gte": 80, "$lt": 85}}})", R"({"a": 82})", false);
    row(R"({"a": {"$elemMatch": {"$or": [{"b": 1}, {"c": 1}]}}})", R"({"a": [{"c": 1}]})", true);
    row(R"({"a": {"$elemMatch": {"b.c": 1}}})", R"({"a": [{"b": {"c": 1}}]})", true);
    row(R"({"a": {"$elemMatch": {"b": {"$elemMatch": {"$eq": 2}}}}})", R"({"a": [{"b": [1, 2]}]})", true);
    row(R"({"a": {"$elemMatch": {"$in": [[1]]}}})", R"({"a": [[1], 2]})", true);
    row(R"({"a.b": {"$elemMatch": {"$eq": 3}}})", R"({"a": [{"b": [1]}, {"b": [3]}]})", true);
    row(R"({"a": {"$elemMatch": {}}})", R"({"a": [{"x": 1}]})", true);
    row(R"({"a": {"$elemMatch": {}}})", R"({"a": [1]})", false);

    // $size.
    row(R"({"a": {"$size": 2}})", R"({"a": [1, 2]})", true);
    row(R"({"a": {"$size": 2}})", R"({"a": [1]})", false);
    row(R"({"a": {"$size": 2}})", R"({"a": "xy"})", false);
    row(R"({"a": {"$size": 2}})", R"({})", false);
    row(R"({"a": {"$size": 0}})", R"({"a": []})", true);
    row(R"({"a": {"$size": 2.0}})", R"({"a": [[1, 2, 3], 4]})", true);
    row(R"({"a.b": {"$size": 1}})", R"({"a": [{"b": [1, 2]}, {"b": [3]}]})", true);

    // $all.
    row(R"({"a": {"$all": [1, 2]}})", R"({"a": [2, 3, 1]})", true);
    row(R"({"a": {"$all": [1, 2]}})", R"({"a": [1]})", false);
    row(R"({"a": {"$all": [1]}})", R"({"a": 1})", true);
    row(R"({"a": {"$all": []}})", R"({"a": []})", false);
    row(R"({"a": {"$all": [[1, 2]]}})", R"({"a": [[1, 2], 3]})", true);
    row(R"({"a": {"$all": [{"$regularExpression": {"pattern": "^x", "options": ""}}, "y"]}})",
        R"({"a": ["xa", "y"]})", true);
    row(R"({"a": {"$all": [{"$elemMatch": {"b": 1}}, {"$elemMatch": {"c": 2}}]}})",
        R"({"a": [{"b": 1}, {"c": 2}]})", true);
    row(R"({"a": {"$all": [{"$elemMatch": {"b": 1}}, {"$elemMatch": {"c": 2}}]}})", R"({"a": [{"b": 1}]})",
        false);

    // Repeated keys: the first one counts, below it too.
    row(R"({"a.x": 1})", R"({"a": {"x": 1}, "a": {"y": 2}})", true);
    row(R"({"a.y": 2})", R"({"a": {"x": 1}, "a": {"y": 2}})", false);
    row(R"({"a": 1})", R"({"a": 1, "a": 2})", true);
    row(R"({"a": 2})", R"({"a": 1, "a": 2})", false);
    // A field whose name contains a dot is not what a dotted path reaches.
    row(R"({"a.b": 2})", R"({"a.b": 1, "a": {"b": 2}})", true);
    row(R"({"a.b": 1})", R"({"a.b": 1, "a": {"b": 2}})", false);
    row(R"({"a.b": 1})", R"({"a.b": 1})", false);
    // Deep paths: past the index's depth the filter scans.
    row(R"({"a.b.c.d.e.f": {"g": 1}})", R"({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}})", true);
    row(R"({"a.b.c.d.e.f.g": 1})", R"({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}})", true);
    row(R"({"a.b.c.d.e.f.g": 2})", R"({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}})", false);
    row(R"({"a.b.c.d.e.f.h": {"$exists": false}})", R"({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}})",
        true);
    // A scalar or an array part-way.
    row(R"({"a.b.c": {"$exists": false}})", R"({"a": {"b": 5}})", true);
    row(R"({"a.b.c": 3})", R"({"a": [{"b": [{"c": 1}, {"c": 3}]}]})", true);
    row(R"({"a.1.c": 3})", R"({"a": [{"c": 1}, {"c": 3}]})", true);
    // The flat path (ANDs of simple tests on strings and numbers) and where it hands
    // over to the general evaluation: null, other types, arrays, scalars part-way.
    row(R"({"a": {"$ne": "x"}, "b": 1})", R"({"a": null, "b": 1})", true);
    row(R"({"a": {"$ne": null}, "b": 1})", R"({"a": null, "b": 1})", false);
    row(R"({"a": {"$gt": 5}, "b": 1})", R"({"a": "7", "b": 1})", false);
    row(R"({"a": {"$in": ["x", 5]}, "b": 1})", R"({"a": 5.0, "b": 1})", true);
    row(R"({"a": {"$in": ["x", 5]}, "b": 1})", R"({"a": "5", "b": 1})", false);
    row(R"({"a": {"$in": ["x", null]}, "b": 1})", R"({"b": 1})", true);
    row(R"({"a.b": 1, "c": 1})", R"({"a": 5, "c": 1})", false);
    row(R"({"a.b": {"$ne": 1}, "c": 1})", R"({"a": 5, "c": 1})", true);
    row(R"({"a": {"$exists": true, "$ne": 3}})", R"({"a": 4})", true);
    row(R"({"a": {"$exists": true, "$ne": 3}})", R"({})", false);
    row(R"({"a": {"$lte": 2.5}, "b": {"$lt": "n"}})", R"({"a": {"$numberLong": "2"}, "b": "m"})", true);
    row(R"({"a": {"$lte": 2.5}, "b": {"$lt": "n"}})", R"({"a": {"$numberLong": "2"}, "b": "n"})", false);
    row(R"({"a": "x", "b": 1})", R"({"a": ["y", "x"], "b": 1})", true);
    row(R"({"a.b": "x", "c": 1})", R"({"a": [{"b": "x"}], "c": 1})", true);
    row(R"({"a": {"$ne": "x"}, "b": 1})", R"({"a": ["x"], "b": 1})", false);
    row(R"({"a": "é", "b": {"$gte": -1}})", R"({"a": "é", "b": -1})", true);
}

void tst_Filter::matches() {
    QFETCH(QByteArray, filter);
    QFETCH(QByteArray, document);
    QFETCH(bool, expected);

    QString error;
    const Filter f = Filter::compile(filter, &error);
    QVERIFY2(f.isValid(), qPrintable(error));
    QVERIFY(error.isEmpty());
    QString docError;
    const Bson doc = Bson::fromJson(document, &docError);
    QVERIFY2(!doc.isAbsent(), qPrintable(docError));
    bson_t view;
    QVERIFY(doc.view(&view));
    QCOMPARE(f.matches(&view), expected);
    // Routing evaluates through an index of the document shared by all filters; it
    // must give the same answer on every row.
    const DocumentIndex index(&view);
    QCOMPARE(f.matches(index), expected);
}

static ChangeEvent orderUpdate() {
    ChangeEvent e;
    e.setSourceId(QStringLiteral("shop-db"));
    e.setNs({QStringLiteral("shop"), QStringLiteral("orders")});
    e.setOperation(Operation::Update);
    e.setDocumentKey(Bson::fromJson(R"({"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}})"));
    e.setUpdateDescription(ChangeEvent::makeUpdateDescription(
        Bson::fromJson(R"({"status": "paid", "total": 120.5})"), {QByteArrayLiteral("coupon")}));
    e.setFullDocument(
        Bson::fromJson(R"({"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "customer": {"name": "Ana",
        "country": "PT"}, "status": "paid", "total": 120.5, "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7",
        "qty": 1}], "tags": ["gift", "express"]})"));
    e.setClusterTime({1700000000, 3});
    e.setWallTimeMs(1700000000123);
    return e;
}

void tst_Filter::changeEvent_data() {
    QTest::addColumn<QByteArray>("filter");
    QTest::addColumn<bool>("finalized");
    QTest::addColumn<bool>("expected");

    const auto both = [](const char* name, const char* filter, bool expected) {
        QTest::addRow("%s", name) << QByteArray(filter) << true << expected;
        QTest::addRow("%s (not finalized)", name) << QByteArray(filter) << false << expected;
    };
    both("operationType", R"({"operationType": "update"})", true);
    both("operationType other", R"({"operationType": "insert"})", false);
    both("operationType $in", R"({"operationType": {"$in": ["insert", "update", "replace"]}})", true);
    both("ns.coll", R"({"ns.coll": "orders"})", true);
    both("ns document", R"({"ns": {"db": "shop", "coll": "orders"}})", true);
    both("ns.db regex", R"({"ns.db": {"$regex": "^SH", "$options": "i"}})", true);
    both("source", R"({"source": "shop-db"})", true);
    both("updatedFields.status", R"({"updateDescription.updatedFields.status": "paid"})", true);
    both("updatedFields.status missing", R"({"updateDescription.updatedFields.status": "void"})", false);
    both("removedFields", R"({"updateDescription.removedFields": "coupon"})", true);
    both("updatedFields key exists", R"({"updateDescription.updatedFields.total": {"$exists": true}})", true);
    both("documentKey._id $oid", R"({"documentKey._id": {"$oid": "65a1b2c3d4e5f60718293a4b"}})", true);
    both("documentKey._id other", R"({"documentKey._id": {"$oid": "65a1b2c3d4e5f60718293a4c"}})", false);
    both("fullDocument nested", R"({"fullDocument.customer.country": "PT"})", true);
    both("fullDocument items",
         R"({"fullDocument.items": {"$elemMatch": {"sku": "A-1", "qty": {"$gte": 2}}}})", true);
    both("fullDocument tags $all", R"({"fullDocument.tags": {"$all": ["express", "gift"]}})", true);
    both(
        "five predicates",
        R"({"operationType": {"$in": ["insert", "update"]}, "ns.coll": "orders", "fullDocument.total": {"$gte": 100},
             "fullDocument.status": {"$ne": "cancelled"}, "fullDocument.customer.country": "PT"})",
        true);
    both("clusterTime", R"({"clusterTime": {"$gt": {"$timestamp": {"t": 1600000000, "i": 0}}}})", true);
    both("wallTime", R"({"wallTime": {"$lt": {"$date": "2020-01-01T00:00:00Z"}}})", false);
    both("seq", R"({"seq": {"$gt": 41}})", true);
}

void tst_Filter::changeEvent() {
    QFETCH(QByteArray, filter);
    QFETCH(bool, finalized);
    QFETCH(bool, expected);

    ChangeEvent e = orderUpdate();
    if (finalized)
        e.finalize(42);
    else if (filter.contains("seq"))
        e.finalize(42); // seq only exists once committed
    QString error;
    const Filter f = Filter::compile(filter, &error);
    QVERIFY2(f.isValid(), qPrintable(error));
    QCOMPARE(f.matches(e), expected);
    const Bson document = e.document();
    bson_t view;
    QVERIFY(document.view(&view));
    const DocumentIndex index(&view);
    QVERIFY(index.usable());
    QCOMPARE(f.matches(index), expected);
}

void tst_Filter::invalid_data() {
    QTest::addColumn<QByteArray>("filter");
    QTest::addColumn<QString>("message");
    QTest::addColumn<bool>("exact"); // false: the message starts with `message`

    const auto add = [](const char* filter, const char* message, bool exact = true) {
        QTest::addRow("%s", filter) << QByteArray(filter) << QString::fromUtf8(message) << exact;
    };
    add(R"({"fullDocument.total": {"$gtx": 5}})", "fullDocument.total: unknown operator $gtx");
    add(R"({"a": {"$gt": 1, "b": 2}})", "a: unknown operator b");
    add(R"({"a": {"$in": 5}})", "a: $in needs an array");
    add(R"({"a": {"$nin": {"b": 1}}})", "a: $nin needs an array");
    add(R"({"a": {"$in": [{"$gt": 1}]}})", "a: $in cannot hold an operator ($gt)");
    add(R"({"$and": []})", "$and must be a non-empty array");
    add(R"({"$and": {}})", "$and must be a non-empty array");
    add(R"({"$nor": 1})", "$nor must be a non-empty array");
    add(R"({"$or": [{"a": 1}, 5]})", "$or.1 must be a document");
    add(R"({"$or": [{"$and": []}]})", "$or.0.$and must be a non-empty array");
    add(R"({"$or": [{"x.y": {"$foo": 1}}]})", "x.y: unknown operator $foo");
    add(R"({"a": {"$size": 1.5}})", "a: $size needs a non-negative integer");
    add(R"({"a": {"$size": -1}})", "a: $size needs a non-negative integer");
    add(R"({"a": {"$size": "2"}})", "a: $size needs a non-negative integer");
    add(R"({"a": {"$regex": "(unclosed"}})", "a: $regex: invalid regular expression: ", false);
    add(R"({"a": {"$regex": "x", "$options": "q"}})", "a: $regex: unknown option 'q' (use i, m, s or x)");
    add(R"({"a": {"$options": "i"}})", "a: $options needs $regex");
    add(R"({"a": {"$regex": 5}})", "a: $regex needs a string or a regular expression");
    add(R"({"a": {"$regex": "x", "$options": 1}})", "a: $options needs a string");
    add(R"({"a": {"$not": {"$regex": "["}}})", "a: $regex: invalid regular expression: ", false);
    add(R"({"a": {"$type": "strin"}})", "a: $type: unknown type name \"strin\"");
    add(R"({"a": {"$type": 42}})", "a: $type: unknown type code 42");
    add(R"({"a": {"$type": []}})", "a: $type needs at least one type");
    add(R"({"a": {"$type": true}})", "a: $type needs a type name, a type number or an array of them");
    add(R"({"$where": "this.a > 1"})", "unknown top-level operator $where");
    add(R"({"$or": [{"$expr": {}}]})", "$or.0: unknown top-level operator $expr");
    add(R"({"a": {"$not": {}}})", "a: $not cannot be empty");
    add(R"({"a": {"$not": 5}})", "a: $not needs a regular expression or a document of operators");
    add(R"({"a": {"$not": {"b": 1}}})", "a: $not needs a regular expression or a document of operators");
    add(R"({"a": {"$elemMatch": 5}})", "a: $elemMatch needs a document");
    add(R"({"items": {"$elemMatch": {"qty": {"$foo": 1}}}})", "items.qty: unknown operator $foo");
    add(R"({"items": {"$elemMatch": {"$foo": 1}}})", "items.$elemMatch: unknown operator $foo");
    add(R"({"a": {"$gt": {"$regularExpression": {"pattern": "x", "options": ""}}}})",
        "a: $gt cannot take a regular expression");
    add(R"({"a": {"$all": 5}})", "a: $all needs an array");
    add(R"({"a": {"$all": [{"$gt": 1}]}})", "a: $all cannot hold an operator ($gt)");
    add(R"([1, 2])", "filter must be a JSON object");
    add(R"("a")", "filter must be a JSON object");
    add(R"(42)", "filter must be a JSON object");
    add(R"({"a":)", "JSON syntax error at offset 5: unexpected end of input");
    add(R"({"a" 1})", "JSON syntax error at offset 5: expected ':' after a field name");
    add(R"({"a": 1}})", "JSON syntax error at offset 8: unexpected text after the closing '}'");
    add(R"({"a": tru})", "JSON syntax error at offset 6: unexpected character");
    add(R"({"a": 01})", "JSON syntax error at offset 6: leading zero in number");
    add(R"({'a': 1})", "JSON syntax error at offset 1: expected a string");
    add(R"({"a": {"$gt": {"$date": "not a date"}}})",
        "a.$gt: invalid Extended JSON value at offset 14: ", false);
}

void tst_Filter::invalid() {
    QFETCH(QByteArray, filter);
    QFETCH(QString, message);
    QFETCH(bool, exact);

    QString error;
    const Filter f = Filter::compile(filter, &error);
    QVERIFY(!f.isValid());
    if (exact)
        QCOMPARE(error, message);
    else
        QVERIFY2(error.startsWith(message) && error.size() > message.size(), qPrintable(error));
    // An invalid filter matches nothing and gives back what was typed.
    const Bson doc = Bson::fromJson(R"({"a": 1})");
    bson_t view;
    QVERIFY(doc.view(&view));
    QVERIFY(!f.matches(&view));
    QCOMPARE(f.json(), filter);
    QVERIFY(!f.matchesEverything());
}

void tst_Filter::equalities_data() {
    QTest::addColumn<QByteArray>("filter");
    QTest::addColumn<QStringList>("expected"); // "path=<value as relaxed JSON>"

    QTest::newRow("plain and $eq, not $gt") << QByteArray(R"({"a": 1, "b": {"$eq": "x"}, "c": {"$gt": 3}})")
                                            << QStringList{R"(a={"v":1})", R"(b={"v":"x"})"};
    QTest::newRow("inside top-level $and")
        << QByteArray(R"({"$and": [{"documentKey._id": {"$oid": "65a1b2c3d4e5f60718293a4b"}}, {"d": null}]})")
        << QStringList{R"(documentKey._id={"v":{"$oid":"65a1b2c3d4e5f60718293a4b"}})"};
    QTest::newRow("not arrays, documents, null, regex")
        << QByteArray(R"({"e": [1], "f": {"g": 1}, "h": {"$regex": "x"}, "i": null, "j": {"$eq": null},
                          "k": {"$regularExpression": {"pattern": "x", "options": ""}}, "l": {"$eq": [1]}})")
        << QStringList{};
    QTest::newRow("not inside $or or $not")
        << QByteArray(R"({"$or": [{"a": 1}, {"b": 2}], "c": {"$not": {"$eq": 1}}})") << QStringList{};
    QTest::newRow("$eq next to other operators")
        << QByteArray(R"({"a": {"$eq": 5,"$gt": 3}})") << QStringList{R"(a={"v":5})"};
    QTest::newRow("int64 and date") << QByteArray(
                                           R"({"n": 5000000000, "d": {"$date": "2024-01-01T00:00:00Z"}})")
                                    << QStringList{R"(n={"v":5000000000})",
                                                   R"(d={"v":{"$date":"2024-01-01T00:00:00Z"}})"};
    QTest::newRow("everything") << QByteArray("{}") << QStringList{};
}

void tst_Filter::equalities() {
    QFETCH(QByteArray, filter);
    QFETCH(QStringList, expected);

    QString error;
    const Filter f = Filter::compile(filter, &error);
    QVERIFY2(f.isValid(), qPrintable(error));
    QStringList actual;
    for (const Filter::Equality& e : f.equalities())
        actual << QString::fromUtf8(e.path + '=' + e.value.toJson());
    QCOMPARE(actual, expected);
}

void tst_Filter::emptyAndDefault() {
    const Bson doc = Bson::fromJson(R"({"a": 1})");
    bson_t view;
    QVERIFY(doc.view(&view));

    const Filter byDefault;
    QVERIFY(byDefault.isValid());
    QVERIFY(byDefault.matchesEverything());
    QVERIFY(byDefault.matches(&view));
    QCOMPARE(byDefault.json(), QByteArray("{}"));
    QVERIFY(byDefault.query().isEmptyDocument());

    for (const char* text : {"{}", "", "   ", " { } "}) {
        QString error = QStringLiteral("stale");
        const Filter f = Filter::compile(text, &error);
        QVERIFY2(f.isValid(), text);
        QVERIFY(error.isEmpty());
        QVERIFY(f.matchesEverything());
        QVERIFY(f.matches(&view));
        QVERIFY(f.matches(ChangeEvent()));
    }
    QVERIFY(!Filter::compile(R"({"a": 1})").matchesEverything());
    QVERIFY(Filter::compile(R"({"$comment": "x"})").matchesEverything());

    const Filter fromBson = Filter::fromBson(Bson::fromJson(R"({"a": {"$gte": 1}})"));
    QVERIFY(fromBson.isValid());
    QVERIFY(fromBson.matches(&view));
}

void tst_Filter::jsonRoundTrip_data() {
    QTest::addColumn<QByteArray>("filter");
    QTest::newRow("type number") << QByteArray(R"({"a": {"$type": 2}})");
    QTest::newRow("type array") << QByteArray(R"({"a": {"$type": ["string", 16]}})");
    QTest::newRow("regex and $ne") << QByteArray(R"({"a": {"$regex": "^a", "$options": "i", "$ne": "abc"}})");
    QTest::newRow("extended json") << QByteArray(
        R"({"documentKey._id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "n": {"$numberLong": "5000000000"},
            "d": {"$gt": {"$date": "2024-01-01T00:00:00Z"}}, "x": {"$numberDecimal": "1.5"}})");
    QTest::newRow("in with regex") << QByteArray(R"({"a": {"$in": [1, {"$regex": "^x", "$options": "i"}]}})");
}

void tst_Filter::jsonRoundTrip() {
    QFETCH(QByteArray, filter);
    const Filter first = Filter::compile(filter);
    QVERIFY(first.isValid());
    QString error;
    const Filter second = Filter::compile(first.json(), &error);
    QVERIFY2(second.isValid(), qPrintable(error + QLatin1String(" in ") + QString::fromUtf8(first.json())));
    QCOMPARE(second.query(), first.query());
}

void tst_Filter::keyOrderOfLiteralDocumentsIsKept() {
    const Filter f = Filter::compile(R"({"a": {"y": 1, "x": 2}})");
    QVERIFY(f.isValid());
    QCOMPARE(f.json(), QByteArray(R"({"a":{"y":1,"x":2}})"));
}

// More fields than the index holds: it says it cannot be used, and the filter scans.
void tst_Filter::indexOfAVeryWideDocument() {
    BsonBuilder wide;
    for (int i = 0; i < 1500; ++i) {
        const QByteArray key = "f" + QByteArray::number(i);
        bson_append_int32(wide.get(), key.constData(), int(key.size()), i);
    }
    const Bson doc = wide.take();
    bson_t view;
    QVERIFY(doc.view(&view));
    const DocumentIndex index(&view);
    QVERIFY(!index.usable());
    QVERIFY(Filter::compile(R"({"f1499": 1499})").matches(index));
    QVERIFY(!Filter::compile(R"({"f1499": 1})").matches(index));
    QVERIFY(Filter::compile(R"({"f3": {"$lt": 4}, "f1200": {"$gte": 1200}})").matches(index));
}

// An event's bytes come from a journal file or a socket. A nested document whose length
// field overruns its container must read as missing (libbson would not read it either),
// never make a filter read past the buffer: the sanitizer build checks the "never".
void tst_Filter::malformedBytesAreNeverReadPastTheirEnd() {
    const Bson good = Bson::fromJson(R"({"a": {"b": 1, "c": "x"}, "z": 1})");
    const QByteArray raw = good.raw();
    // Offset of a's length: 4 (document length) + 1 (type) + 2 ("a\0").
    const qsizetype inner = 7;
    for (const quint32 badLength : {quint32(0x7fffffff), quint32(raw.size()), quint32(4)}) {
        // Exactly the document's size on the heap, so one byte too far is caught.
        std::unique_ptr<uint8_t[]> bytes(new uint8_t[size_t(raw.size())]);
        std::memcpy(bytes.get(), raw.constData(), size_t(raw.size()));
        const quint32 le = qToLittleEndian(badLength);
        std::memcpy(bytes.get() + inner, &le, sizeof le);
        bson_t view;
        QVERIFY(bson_init_static(&view, bytes.get(), size_t(raw.size())));
        const DocumentIndex index(&view);
        for (const char* text : {R"({"a.b": 1})", R"({"a.c": "x"})", R"({"a.b": {"$exists": true}})"}) {
            const Filter f = Filter::compile(text);
            QVERIFY(f.isValid());
            QVERIFY2(!f.matches(&view), text);
            QVERIFY2(!f.matches(index), text);
        }
        // Fields before the damage are still there; what lies after it cannot be trusted.
        QVERIFY(Filter::compile(R"({"a.q": {"$exists": false}})").matches(&view));
    }
    // A boolean whose byte is neither 0 nor 1: libbson refuses it, so it reads as
    // missing on every path, the flat one included.
    QByteArray flag = Bson::fromJson(R"({"f": true, "g": 1})").raw();
    flag[4 + 1 + 2] = 2; // type, "f\0", then the value byte
    bson_t view;
    QVERIFY(bson_init_static(&view, reinterpret_cast<const uint8_t*>(flag.constData()), size_t(flag.size())));
    const DocumentIndex index(&view);
    for (const char* text : {R"({"f": {"$exists": true}, "g": 1})", R"({"f": {"$exists": true}})"}) {
        const Filter f = Filter::compile(text);
        QVERIFY2(!f.matches(&view), text);
        QVERIFY2(!f.matches(index), text);
    }
    QVERIFY(Filter::compile(R"({"f": {"$exists": false}, "g": 1})").matches(&view));
}

void tst_Filter::sharedAcrossThreads() {
    // One compiled filter (with a regex and a hashed $in) used from several threads.
    const Filter f = Filter::compile(
        R"({"s": {"$regex": "^ab", "$options": "i"}, "n": {"$in": [1,2,3,4,5,6,7,8,9,10,11,12]}})");
    QVERIFY(f.isValid());
    const Bson yes = Bson::fromJson(R"({"s": "ABc", "n": 12})");
    const Bson no = Bson::fromJson(R"({"s": "ABc", "n": 13})");
    std::atomic<int> wrong{0};
    QList<QThread*> threads;
    for (int t = 0; t < 4; ++t) {
        threads << QThread::create([&] {
            bson_t a, b;
            yes.view(&a);
            no.view(&b);
            for (int i = 0; i < 2000; ++i)
                if (!f.matches(&a) || f.matches(&b))
                    ++wrong;
        });
        threads.last()->start();
    }
    for (QThread* thread : threads) {
        thread->wait();
        delete thread;
    }
    QCOMPARE(wrong.load(), 0);
}

QTEST_GUILESS_MAIN(tst_Filter)
#include "tst_filter.moc"

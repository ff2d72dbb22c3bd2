#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <string>

// Value semantics shared by Filter and SubscriptionIndex: MongoDB's comparison order
// and the canonical bytes that make equal values hash alike. Private to core/.
namespace tw::bsonvalue {

// MongoDB's canonical type rank: values compare only within one rank ("bracket"), and
// brackets order as MinKey < null < numbers < strings < objects < arrays < binData <
// ObjectId < bool < date < timestamp < regex < … < MaxKey.
int bracket(bson_type_t type);

// A number read from int32, int64, double or decimal128. Decimal128 goes through
// double (libbson has no decimal arithmetic), so decimals beyond 15-17 significant
// digits compare approximately; integral decimals that fit int64 stay exact.
struct Number {
    bool isInt = true;
    int64_t i = 0;
    double d = 0;
};
bool isNumber(bson_type_t type);
Number toNumber(const bson_iter_t* it);
// MongoDB order: NaN equals NaN and sorts below every other number.
int compareNumbers(const Number& a, const Number& b);

// Three-way comparison in MongoDB's total order (bracket first, then value; objects and
// arrays field by field). Both iterators must point at an element.
int compare(const bson_iter_t* a, const bson_iter_t* b);
inline bool equal(const bson_iter_t* a, const bson_iter_t* b) {
    return bracket(bson_type_t(a->raw[a->type])) == bracket(bson_type_t(b->raw[b->type])) &&
           compare(a, b) == 0;
}

// Appends bytes such that two scalars have the same key exactly when equal() holds:
// int32 5, int64 5, double 5.0 and decimal 5 share a key; strings and symbols too.
// Returns false (and appends nothing) for documents, arrays, null, undefined and
// regexes, which are not hashed.
bool appendKey(const bson_iter_t* it, std::string& out);

// Number of elements of an array or document element.
uint32_t childCount(const bson_iter_t* it);

} // namespace tw::bsonvalue

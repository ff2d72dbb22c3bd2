#pragma once

#include "FilterProgram.h"
#include "PrefixCache.h"

#include <bson/bson.h>

// Private to core/filter.
namespace tw::filterimpl {

// The flat path: a filter that is an AND of simple tests ($eq, $ne, comparisons,
// $in, $exists against strings and plain numbers) on paths of the prefix cache is
// evaluated in one loop over those tests, reading each value's bytes directly.
// Anything it does not read that way (an array, a value of another type, bytes
// libbson would refuse) makes it say "undecided", and the general evaluation
// decides, with the cache it filled. Every filter test runs through it.

// Fills program.flat when the whole compiled filter fits the flat path; leaves it
// empty otherwise.
void buildFlat(Program& program);

// Whether the program matches the document: on the flat path when the program has
// one, and what that leaves undecided by the general evaluation, with the prefix
// cache the flat path filled. Here rather than in Filter.cpp so that the flat loop
// is inlined into it, as it was when one file held everything: one call fewer on the
// hot path.
bool matchDocument(const Program& program, const bson_t* document);

} // namespace tw::filterimpl

#pragma once

#include "FilterProgram.h"
#include "PrefixCache.h"

#include <cstdint>

// Private to core/filter.
namespace tw::filterimpl {

// The general evaluation of a compiled program, with MongoDB's comparison and array
// semantics: whether the document-level node `node` holds on the document `data`
// (`len` bytes). `cache` is the prefix cache of the event's root document, or nullptr
// for a document that is not the root (an $elemMatch element); it may already hold
// what the flat path found.
bool evaluateDocument(const Program& program, uint32_t node, const uint8_t* data, uint32_t len,
                      PrefixCache* cache);

} // namespace tw::filterimpl

#pragma once

#include "model/Bson.h"

namespace tw::test {

// The MongoDB test peer's resume tokens: {_data: "<16 hex digits>"}, a position in
// the change log (MongoPeerStore) in upper-case hex. An invalidate token has "01"
// appended: it names the same position and still tells the two apart, since a
// stream may start after an invalidate but not resume after one.
class MongoPeerResumeToken {
public:
    static Bson forPosition(qint64 position);
    static Bson invalidateFor(qint64 position);
    // Parses {_data: "<16 hex>"} or an invalidate token "<16 hex>01". Returns false
    // for anything else.
    static bool parse(const Bson& token, qint64* position, bool* invalidate);
};

} // namespace tw::test

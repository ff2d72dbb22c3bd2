#pragma once

#include "model/Bson.h"

#include <QByteArrayView>
#include <QString>

namespace tw {

// Reads a query written as JSON (MongoDB Extended JSON values allowed: {"$oid": …},
// {"$date": …}, {"$numberDecimal": …}, …) into BSON.
//
// Not Bson::fromJson: libbson's reader takes {"$type": 2} for legacy binary and refuses
// {"$regex": "^a", "$options": "i", "$ne": "b"}, and QJsonObject sorts keys, which
// would break document equality ({"a": {"x": 1, "y": 2}} is order-sensitive). So this
// parser keeps key order, treats operator documents as documents, and hands only the
// type wrappers to libbson. Inside arrays (as in $in lists) {"$regex": …, "$options": …}
// becomes a BSON regular expression.
//
// Errors name the byte offset: "JSON syntax error at offset 12: expected ':'".
bool parseQueryJson(QByteArrayView text, Bson* out, QString* error);

} // namespace tw

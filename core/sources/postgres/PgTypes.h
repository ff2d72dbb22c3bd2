#pragma once

#include <QByteArrayView>

#include <bson/bson.h>

namespace tw::pg {

// Built-in type OIDs (pg_type.dat) that map to a BSON type of their own.
namespace oid {
constexpr quint32 Bool = 16, Bytea = 17, Int8 = 20, Int2 = 21, Int4 = 23, Text = 25, Oid = 26, Json = 114,
                  Float4 = 700, Float8 = 701, Bpchar = 1042, Varchar = 1043, Date = 1082, Timestamp = 1114,
                  TimestampTz = 1184, Numeric = 1700, Uuid = 2950, Jsonb = 3802;
} // namespace oid

// Appends the value `text`, in PostgreSQL's text output format for type `typeOid`,
// under `key`: int2/int4 → int32, int8 → int64, float4/float8 → double, numeric →
// Decimal128, bool, timestamptz/timestamp/date → date (timestamp without zone read
// as UTC), uuid → UUID binary, bytea → binary, json/jsonb → the embedded value,
// arrays of these → arrays; anything else (text, varchar, enums, intervals, …), or a
// value the mapping cannot hold (numeric beyond 34 digits, 'infinity' dates), → its
// text as a string. The text must come from a session with DateStyle ISO, TimeZone
// UTC and bytea_output hex (PgConnection sets them).
void appendValue(bson_t* doc, const char* key, int keyLength, quint32 typeOid, QByteArrayView text);

// For an array type, the type of its elements; 0 for any other type.
quint32 arrayElementType(quint32 typeOid);

// Milliseconds since the epoch for "YYYY-MM-DD[ HH:MM:SS[.ffffff]][+HH[:MM[:SS]]]";
// false when `text` is not one.
bool parseTimestamp(QByteArrayView text, qint64* epochMs);

} // namespace tw::pg

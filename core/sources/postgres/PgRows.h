#pragma once

#include "model/Bson.h"

#include <QByteArray>
#include <QList>
#include <QStringList>

struct pg_result;
typedef struct pg_result PGresult;

namespace tw {

// Rows of a libpq result (text format) as BSON, with the type mapping replication
// uses (PgTypes): what the polling fallback and capture mode read tables with. A
// column range [first, first + count) picks one row image out of a result that holds
// two side by side (capture mode's before and after).
namespace PgRows {

// The columns of `result` named `names`, as indexes inside the range; a name not there
// is left out.
QList<int> columnIndexes(const PGresult* result, const QStringList& names, int first, int count);
// The row as a document, each column under its name; SQL NULL is BSON null.
Bson document(const PGresult* result, int row, int first, int count);
// Only the columns `columns` (absolute indexes), in that order: a documentKey.
Bson keyDocument(const PGresult* result, int row, const QList<int>& columns);
// Per column: its name, NUL, an 8-byte hash of its type and text (NULL hashes apart
// from every text). Two rows compare equal exactly when every column does; the hashes
// go into the journal's source state, so they are stable across runs (FNV-1a).
QByteArray hashTable(const PGresult* result, int row, int first, int count);
// The names of the columns whose hash differs between two tables, and those only in
// `before` (dropped since).
void diff(const QByteArray& before, const QByteArray& after, QList<QByteArray>* changed,
          QList<QByteArray>* removed);

} // namespace PgRows

} // namespace tw

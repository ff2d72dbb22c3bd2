#pragma once

#include "model/ChangeBatch.h"

#include <QByteArray>
#include <QString>

struct sqlite3;

namespace tw {

class SqlitePending;
struct SqliteTable;

// Diff mode of an SQLite source: the file is only read. After each commit a watched
// table is read in rowid order and merged against its baseline (a hash per column and
// row), which yields insert, update (the changed columns in updatedFields) and
// delete. A dropped or altered table is re-snapshotted; SqliteSchema reports the
// schema change itself (drop, rename, modify).
//
// The per-row hashes are the checkpoint: they go into the journal with the events
// (stateKey → hashes, schemaKey → CREATE statement), so after a restart the first
// diff reports what changed while Tidewatch was closed, or a `gap` when the table
// changed shape and it cannot tell.
class SqliteDiff {
public:
    SqliteDiff() = delete;

    static QByteArray stateKey(const QString& table, qint64 rowid);
    static QByteArray schemaKey(const QString& table);

    // Takes `table`'s baseline from what the journal holds when its shape is the one
    // the journal saw (table.sql), else queues a gap; queues the shape either way.
    static void resume(SqliteTable& table, const SourceRestore& restore, SqlitePending& out);
    // Compares `table` with the file (inside the caller's read transaction), queues the
    // changes and their row state in `out`, and makes the file's state the baseline.
    // The first diff of a table takes the baseline without events. False, with a
    // message, when the table cannot be read.
    static bool diffTable(sqlite3* db, SqliteTable& table, SqlitePending& out, QString* error);
};

} // namespace tw

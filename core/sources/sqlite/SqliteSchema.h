#pragma once

#include "model/ChangeEvent.h"

#include <QByteArray>
#include <QHash>
#include <QJsonArray>
#include <QJsonObject>
#include <QString>

#include <functional>

struct sqlite3;

namespace tw {

// The user tables and indexes of an SQLite file as sqlite_master lists them, with the
// columns of each table (PRAGMA table_xinfo) and the key of each index (PRAGMA
// index_xinfo). Two snapshots compared give the schema events, in MongoDB's expanded
// change-event vocabulary: create, drop, rename (same root page, new name), modify
// (a changed definition: operationDescription.columns and .previousColumns),
// createIndexes and dropIndexes (operationDescription.indexes as index specs).
//
// The source keeps the last snapshot it reported in its checkpoint (stateKey()), so
// after a restart the first comparison reports what changed while Tidewatch was closed.
class SqliteSchema {
public:
    struct Entry {
        bool isIndex = false;
        QString name;
        QString table; // tbl_name: the table itself, or the table an index is on
        qint64 rootPage = 0;
        QString sql;
        QJsonArray columns; // tables: [{name, type, notNull, primaryKey, default?}]
        QJsonArray key;     // indexes: [[column, 1 | -1], …] in key order
        bool unique = false;
    };

    // The checkpoint key of the snapshot. It cannot collide with SqliteDiff's keys:
    // those end in 0x1e, or carry 0x1f and eight bytes after the table name.
    static QByteArray stateKey();

    bool isNull() const { return m_null; }
    // Reads the file's schema (inside the caller's read transaction). Columns and keys
    // of entries whose definition `previous` already holds are taken from it. False,
    // with a message, when sqlite_master cannot be read.
    bool read(sqlite3* db, const SqliteSchema& previous, QString* error);
    QByteArray serialize() const;
    // A null schema when `bytes` is empty or unreadable (a checkpoint from before
    // schema events): the source then takes the file's schema as it is, without events.
    static SqliteSchema deserialize(const QByteArray& bytes);

    const QHash<QString, Entry>& entries() const { return m_entries; }
    bool hasTable(const QString& name) const;
    QStringList tableNames() const;

    // What changed from `before` to `after`, as events of source `sourceId`, for the
    // tables `inScope` accepts (a rename: when either name is accepted). Order: index
    // drops, table drops, renames, creates, modifies, index creates, so a table's
    // `create` precedes its indexes and its rows.
    static ChangeEventList diff(const SqliteSchema& before, const SqliteSchema& after,
                                const QString& sourceId, qint64 wallTimeMs,
                                const std::function<bool(const QString&)>& inScope);
    // The renames in that difference, old name → new name.
    static QHash<QString, QString> renames(const SqliteSchema& before, const SqliteSchema& after);

private:
    bool m_null = true;
    QHash<QString, Entry> m_entries; // by name: tables and indexes share SQLite's namespace
};

} // namespace tw

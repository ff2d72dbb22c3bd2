#pragma once

#include <QString>
#include <QStringList>

#include <vector>

namespace tw {

// One watched table of an SQLite source: its shape, and in diff mode the last
// committed state of its rows.
struct SqliteTable {
    // The last committed state of a table: rowids ascending, and `columns` hashes per
    // row in one contiguous array. A scan reads rows in rowid order and merges against
    // it; the hash table it replaced spent a third of each 100 000-row scan in look-ups.
    struct Baseline {
        int columns = 0;
        std::vector<qint64> rowids;
        std::vector<quint64> hashes;
        void clear() {
            rowids.clear();
            hashes.clear();
        }
    };

    QString name;
    QString sql; // from sqlite_master: the shape we snapshotted
    QStringList columns;
    bool hasIdColumn = false; // a column literally named _id becomes the key
    bool present = true;
    bool capture = false;
    bool snapshotted = false;
    Baseline base;
};

} // namespace tw

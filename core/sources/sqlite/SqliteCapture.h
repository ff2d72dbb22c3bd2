#pragma once

#include "SqliteTable.h"

#include <QByteArray>
#include <QHash>
#include <QString>

struct sqlite3;

namespace tw {

class SqlitePending;

// Capture mode of an SQLite source (WatchOptions::captureMode), the one case where
// Tidewatch writes to a watched file: triggers on each captured table record exact
// before/after images in a changelog table, which the source reads after each commit.
// The checkpoint token is "capture:<last changelog id read>"; rows up to a committed
// token are pruned from the file.
class SqliteCapture {
public:
    // The changelog table, in the watched file.
    static constexpr char kChangelogTable[] = "_tidewatch_changelog";

    explicit SqliteCapture(const QString& path);

    // Continues after the changelog id of a restored checkpoint token.
    void restore(const QByteArray& restored);
    // The token valid after everything read so far.
    QByteArray token() const;
    bool isInstalled() const { return m_installed; }

    // Creates the changelog and (re)creates `table`'s triggers, on a connection of
    // its own that may write. Marks the table snapshotted: it needs no baseline.
    bool install(SqliteTable& table, QString* error);
    // Queues the changelog rows after the last one read that belong to captured
    // tables of `tables`, on the source's read connection `db`, and sets the token.
    void read(sqlite3* db, const QHash<QString, SqliteTable>& tables, SqlitePending& out);
    // The journal committed up to token `committed`: delete the changelog rows it holds.
    void pruneCommitted(const QByteArray& committed);

private:
    static constexpr char kTokenPrefix[] = "capture:";

    QString m_path;
    qint64 m_changelogSeen = 0; // highest changelog id emitted
    bool m_installed = false;
    qint64 m_lastPruneMs = 0;
};

} // namespace tw

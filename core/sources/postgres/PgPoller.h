#pragma once

#include "model/ChangeBatch.h"

#include <QHash>
#include <QStringList>

#include <algorithm>

namespace tw {

class PgConnection;

// The polling fallback for one PostgreSQL table, for when logical replication cannot
// be used (PgFallback drives it). Each poll reads the table on an ordinary SQL
// connection and compares every row, by its primary key, with the row hashes of the
// previous poll: a new key is an insert, a changed hash an update whose updatedFields
// are the columns whose hash changed, a key gone a delete.
//
// Incremental mode (the watch's pollField names a monotonic column, e.g. updated_at):
// a poll reads only rows whose column is >= the highest value seen, so it costs what
// changed, not the table; deletes are not seen in this mode.
//
// The row hashes are the source's checkpoint state (one entry per row, like SQLite's
// SqliteDiff; in incremental mode at most kDefaultMaxRows, see there), so after a restart the first poll
// reports what changed while Tidewatch was closed. Values map to BSON as replication maps them (PgTypes).
class PgPoller {
public:
    // Every state key of a poller starts with it.
    static constexpr char kStatePrefix[] = "pgpoll\x1f";

    // qualified: "schema"."table"; keyColumns: the primary key, or empty when the
    // table has none (then only incremental mode works, and a row is its own key).
    PgPoller(const QString& sourceId, const Namespace& ns, const QString& qualified,
             const QStringList& keyColumns, const QString& pollColumn);

    Namespace ns() const { return m_ns; }
    bool isIncremental() const { return !m_pollColumn.isEmpty(); }
    bool hasBaseline() const { return m_hasBaseline; }
    int rowCount() const { return int(m_rows.size()); }
    // Incremental mode: past this many remembered rows, only those at the high-water
    // mark are kept (see kDefaultMaxRows).
    void setMaxRows(int rows) { m_maxRows = std::max(1, rows); }

    // Incremental mode reads only rows at or above the mark, so it needs only their
    // hashes to tell a new row from one already seen; the hashes of older rows serve
    // one purpose, exact updatedFields when such a row moves its column up again.
    // Kept without bound they were one hash per row ever inserted, in memory and in
    // the journal (a table polled by a serial id grew both for ever). 10 000 rows of
    // 200 bytes is 2 MB; a row changed after it was forgotten is reported as an
    // insert with its whole row, since its old values are gone.
    static constexpr int kDefaultMaxRows = 10000;

    // Loads the baseline from the restored state (entries under this table's prefix).
    void restore(const QHash<QByteArray, QByteArray>& state);
    // One poll: the events and the state changes go to `out`. The first poll without a
    // baseline only takes it. False with the server's message (nothing is changed).
    bool poll(PgConnection& conn, ChangeBatch& out, QString* error);
    // Forgets the baseline (unwatch): the state removals go to `out`.
    void clear(SourceCheckpoint& out);

private:
    QByteArray stateKey(const QByteArray& key) const { return m_prefix + key; }
    ChangeEvent makeEvent(Operation op, const Bson& key, qint64 nowMs) const;
    // Incremental mode: forgets every row below the high-water mark (state removals
    // into `checkpoint`); readAt: this poll's rows with their poll column's text.
    void keepOnlyTheMark(const QList<std::pair<QByteArray, QString>>& readAt, SourceCheckpoint& checkpoint);

    QString m_sourceId;
    Namespace m_ns;
    QString m_qualified;
    QStringList m_keyColumns;
    QString m_pollColumn;
    QByteArray m_prefix;                  // "pgpoll\x1f<schema.table>\x1f" + raw documentKey
    QByteArray m_markerKey;               // "pgpoll\x1f<schema.table>": the baseline exists
    QByteArray m_highKey;                 // "pgpoll\x1f<schema.table>\x1e": the highest pollColumn text
    QHash<QByteArray, QByteArray> m_rows; // raw documentKey -> PgRows::hashTable
    bool m_hasBaseline = false;
    QString m_high;
    qsizetype m_maxRows = kDefaultMaxRows;
};

} // namespace tw

#pragma once

#include "model/ChangeBatch.h"

#include <QHash>
#include <QString>
#include <QStringList>

namespace tw {

class PgConnection;

// Capture mode of a PostgreSQL source (WatchOptions::captureMode) where logical
// replication cannot be used: exact before/after images without the REPLICATION
// attribute. Row triggers (AFTER INSERT/UPDATE/DELETE) on each captured table write
// to_jsonb(OLD) and to_jsonb(NEW) into tidewatch.changelog and pg_notify the channel
// kChannel, which PgFallback LISTENs on; a statement trigger AFTER TRUNCATE logs one
// row per truncated table, read back as one `truncate` event. The images are read back through
// jsonb_populate_record with the table's own row type, so values map to BSON
// exactly as replication maps them (PgTypes).
//
// The position is a transaction id, not a changelog id: ids are taken when a row is
// written, not when its transaction commits, so a transaction that took a lower id
// but committed later would be skipped by "after the last id". Instead each read
// takes the oldest transaction still running (pg_snapshot_xmin) as its bound and reads
// the rows of transactions from the last bound up to it: every one of them has ended,
// so its rows are all visible or rolled back, and none is read twice. A long-running
// transaction anywhere on the server holds the bound back, and so delays the events
// (never loses them). The checkpoint token is "capture:<bound>"; rows below a
// committed bound are deleted (pruneCommitted).
//
// Installing needs CREATE on the database (for the tidewatch schema) and ownership of
// the table (for its trigger); the message says so when the server refuses. One
// capturing source per database: pruning deletes what this source has committed.
class PgCapture {
public:
    static constexpr char kChannel[] = "tidewatch_changelog";

    explicit PgCapture(const QString& sourceId);

    // Continues from a restored checkpoint token (any other token: from now).
    void restore(const QByteArray& token);
    QByteArray token() const;
    static bool boundOf(const QByteArray& token, qint64* bound);
    bool isEmpty() const { return m_tables.isEmpty(); }

    // Creates the schema, the changelog and the trigger function when missing, and
    // (re)creates `ns`'s trigger. keyColumns name a row in documentKey (empty: all).
    bool install(PgConnection& conn, const Namespace& ns, const QString& qualified,
                 const QStringList& keyColumns, QString* error);
    // Drops `ns`'s triggers and its rows in the changelog: its changes are no longer
    // logged, and nobody reads those logged.
    void remove(PgConnection& conn, const Namespace& ns);
    // The changes of every transaction that ended since the last read, in changelog
    // order, with the new token. False with the server's message. `inSnapshot`: the
    // connection reads in an imported snapshot (the switch to replication), and every
    // row it shows is read, with no bound: its transactions committed before the
    // snapshot, and those that did not are streamed by the slot instead.
    bool read(PgConnection& conn, ChangeBatch& out, QString* error, bool inSnapshot = false);
    // The journal committed up to `token`: delete the rows it holds.
    bool pruneCommitted(PgConnection& conn, const QByteArray& token, QString* error);

private:
    struct Table {
        Namespace ns;
        QString qualified;
        QStringList keyColumns;
        // Read from here rather than m_bound once: a table watched again after a
        // restart, when the tables watched before it have already moved m_bound on
        // past the journal's bound (its rows in between were never read).
        qint64 from = -1;
    };
    static constexpr char kTokenPrefix[] = "capture:";

    bool readTable(PgConnection& conn, const Table& t, qint64 upTo, QList<QPair<qint64, ChangeEvent>>* out,
                   QString* error) const;

    QString m_sourceId;
    QHash<QString, Table> m_tables; // by coll ("schema.table")
    qint64 m_bound = -1;            // transactions below it have been read; -1: not yet known
    qint64 m_pruned = 0;
    qint64 m_restoredBound = -1; // the journal's bound at start
};

} // namespace tw

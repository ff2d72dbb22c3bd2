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
// (never loses them). The checkpoint token is "capture:<bound>"; rows below the
// committed bounds of all the table's readers are deleted (pruneCommitted).
//
// Installing needs CREATE on the database (for the tidewatch schema) and ownership of
// the table (for its trigger); the message says so when the server refuses.
//
// One trigger and one changelog serve every capturing source of a table (two journals,
// or two sources of one journal, on the same database): each is a reader, registered
// per table in tidewatch.readers with the bound its journal has committed. A row goes
// only once every reader of its table has committed past it, and a table's triggers
// only with its last reader. A reader is named like the source's slot (PgSlotName: one
// per journal and source), so a later run finds what an earlier one left.
class PgCapture {
public:
    static constexpr char kChannel[] = "tidewatch_changelog";

    // reader: the name this source and journal register under (its slot name).
    PgCapture(const QString& sourceId, const QString& reader);

    // Continues from a restored checkpoint token (any other token: from now).
    void restore(const QByteArray& token);
    QByteArray token() const;
    static bool boundOf(const QByteArray& token, qint64* bound);
    bool isEmpty() const { return m_tables.isEmpty(); }

    // Creates the schema, the changelog and the trigger function when missing, and
    // (re)creates `ns`'s trigger. keyColumns name a row in documentKey (empty: all).
    bool install(PgConnection& conn, const Namespace& ns, const QString& qualified,
                 const QStringList& keyColumns, QString* error);
    // This reader no longer reads `ns`: the rows no other reader needs go, and with
    // the last reader the table's triggers.
    void remove(PgConnection& conn, const Namespace& ns);
    // Removes what `reader` registered on any table, as remove() does: a source that
    // streams from its slot again left capture behind when it stopped (a crash between
    // the journal's commit of the switch and the removal). True when there was
    // nothing, or it is gone; `tables` gets the tables released.
    static bool release(PgConnection& conn, const QString& reader, QStringList* tables, QString* error);
    // The changes of every transaction that ended since the last read, in changelog
    // order, with the new token. False with the server's message. `inSnapshot`: the
    // connection reads in an imported snapshot (the switch to replication), and every
    // row it shows is read, with no bound: its transactions committed before the
    // snapshot, and those that did not are streamed by the slot instead.
    bool read(PgConnection& conn, ChangeBatch& out, QString* error, bool inSnapshot = false);
    // The journal committed up to `token`: this reader's bound moves there, and the
    // rows below every reader's bound are deleted.
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
    QString m_reader;
    QHash<QString, Table> m_tables; // by coll ("schema.table")
    qint64 m_bound = -1;            // transactions below it have been read; -1: not yet known
    qint64 m_pruned = 0;
    qint64 m_restoredBound = -1; // the journal's bound at start
};

} // namespace tw

#pragma once

#include "PgSchema.h"

#include "model/ChangeBatch.h"

#include <QElapsedTimer>

namespace tw {

// When the PostgreSQL source compares catalog snapshots, and what it does with the
// difference. pgoutput sends no DDL: a Relation message tells that a watched table's
// columns changed (its events then go in the transaction, ahead of its rows), and a
// poll every kIntervalMs on the ordinary connection sees creates, drops, renames and
// index changes. The snapshot travels in the checkpoint, so a restart first reports
// what changed while Tidewatch was closed.
class PgSchemaWatch {
public:
    // ≤ 2 s from a DDL statement to its event; one catalog read of the watched schemas
    // (about 1 ms for a few dozen tables) per poll.
    static constexpr qint64 kIntervalMs = 2000;

    void restore(const QHash<QByteArray, QByteArray>& state);
    bool isDue() const { return !m_sinceCheck.isValid() || m_sinceCheck.elapsed() >= kIntervalMs; }
    // True when `columns` (names in order, as a Relation message lists them) differ
    // from what the snapshot holds for `table`, which it knows.
    bool columnsDiffer(const QString& table, const QStringList& columns) const;
    const PgSchema& snapshot() const { return m_schema; }

    // Reads the catalog of `schemas` and appends the events for the tables `inScope`
    // accepts; the first read without a stored snapshot is a baseline, without events.
    // The snapshot goes into `checkpoint` when it changed. False with the server's
    // message when the catalog could not be read.
    bool check(PgConnection& conn, const QSet<QString>& schemas, const QString& sourceId,
               const QString& database, const std::function<bool(const QString&)>& inScope,
               ChangeEventList* events, SourceCheckpoint* checkpoint, QString* error);

private:
    PgSchema m_schema;
    QByteArray m_serialized; // m_schema as last put in a checkpoint
    QElapsedTimer m_sinceCheck;
};

} // namespace tw

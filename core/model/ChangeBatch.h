#pragma once

#include "ChangeEvent.h"

#include <QHash>
#include <QMetaType>

namespace tw {

// What a source must remember to resume exactly where the journal stands. It is
// committed in the same transaction as the events it follows, so after a crash the
// journal and the checkpoint always agree.
struct SourceCheckpoint {
    // Opaque resume position (MongoDB resume token, LSN, changelog id, …); kept as is
    // when the batch leaves it empty.
    QByteArray token;
    // Per-source key/value state (e.g. SQLite "table/rowid" -> row hash). Upserts,
    // removals and removals by key prefix, applied in this order.
    QHash<QByteArray, QByteArray> stateUpserts;
    QList<QByteArray> stateRemovals;
    QList<QByteArray> stateRemovedPrefixes;

    bool isEmpty() const {
        return token.isEmpty() && stateUpserts.isEmpty() && stateRemovals.isEmpty() &&
               stateRemovedPrefixes.isEmpty();
    }
};

// What a source gets back at start: its last committed token and state.
struct SourceRestore {
    QByteArray token;
    QHash<QByteArray, QByteArray> state;
};

// A source that journals only what its subscriptions want (a MongoDB $match push-down,
// a NATS gateway's narrowed consumer) says what it reads from a point of a batch on, so
// that a replay from before that point can tell a subscription the journal lacks its
// events (CoverageLog in the engine). `reading` is a SourceReading (sources/) as JSON:
// the journal stores it and never reads it.
struct SourceNarrowing {
    int atEvent = 0; // applies to the events of the batch from this index on
    QByteArray reading;
};

// Events from one source plus the checkpoint valid after the last of them. A batch
// may carry no events (a checkpoint advance, or a first snapshot).
struct ChangeBatch {
    QString sourceId;
    ChangeEventList events;
    SourceCheckpoint checkpoint;
    // The events carry their seqs already (finalized by the source) and the journal
    // keeps them instead of assigning its own: a NATS gateway keeps the ingest's seq so
    // that one event has one SSE id on every gateway. They must be strictly increasing
    // past the journal's last seq (a jump is fine: the ingest may have pruned), else the
    // whole append is refused (Journal::Error::SeqNotIncreasing).
    bool keepSeqs = false;
    // In order of atEvent; committed in the same transaction as the events.
    QList<SourceNarrowing> narrowings;
};

// What the Engine publishes after a commit: every event with its final seq, and the
// same events routed to each subscription that matched them.
struct CommittedBatch {
    ChangeEventList events;
    QHash<QString, ChangeEventList> bySubscription;
    qint64 lastSeq = 0;
};

} // namespace tw

Q_DECLARE_METATYPE(tw::ChangeBatch)
Q_DECLARE_METATYPE(tw::CommittedBatch)
Q_DECLARE_METATYPE(tw::SourceRestore)

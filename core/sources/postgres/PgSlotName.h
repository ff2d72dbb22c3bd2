#pragma once

#include <QString>

namespace tw {

// The name of the replication slot and publication a PostgreSQL source keeps on the
// server. One pair per journal and source: two journals watching one database, or two
// sources of one journal on it, must never share a slot, since each confirms its own
// position. A PostgreSQL identifier as Tidewatch makes it is lowercase [a-z0-9_] and at
// most 63 bytes (NAMEDATALEN - 1), so nothing needs quoting.
class PgSlotName {
public:
    static constexpr int kMaxLength = 63;

    // "tidewatch_<first 12 hex digits of the journal id>_<source id>"; a source id too
    // long for the rest is cut and ends in 8 hex digits of its hash, so two long ids
    // that share a beginning still differ. Without a journal id: legacy(sourceId).
    static QString forJournal(const QString& journalId, const QString& sourceId);
    // What Tidewatch named the slot before names carried the journal:
    // "tidewatch_<source id>". A slot of that name that holds the journal's position is
    // reused rather than replaced, so an upgrade loses nothing.
    static QString legacy(const QString& sourceId);
    // Lowercase, every run of other characters than [a-z0-9_] one '_'.
    static QString sanitize(const QString& text);
};

} // namespace tw

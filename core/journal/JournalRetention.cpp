// Journal: retention (pruning the oldest events) and the figures it is decided on.
#include "Journal.h"

#include "JournalSqlite.h"

#include <algorithm>
#include <QLoggingCategory>

#include <sqlite3.h>

Q_DECLARE_LOGGING_CATEGORY(lcJournal)

namespace tw {

using namespace journaldb;

qint64 Journal::firstSeq() {
    sqlite3_stmt* s = prepare("SELECT min(seq) FROM events");
    qint64 seq = 0;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        seq = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return seq;
}

qint64 Journal::firstSeqAtOrAfterTime(qint64 cutoffMs) {
    // committed_ms never decreases with seq (one writer, stamped at commit), so a
    // binary search over seq finds the cut without an index on time.
    sqlite3_stmt* s = prepare("SELECT seq, committed_ms FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1");
    if (!s)
        return 0;
    qint64 lo = firstSeq(), hi = m_lastSeq + 1;
    while (lo < hi) {
        const qint64 mid = lo + (hi - lo) / 2;
        sqlite3_bind_int64(s, 1, mid);
        qint64 foundSeq = hi, foundMs = 0;
        if (sqlite3_step(s) == SQLITE_ROW) {
            foundSeq = sqlite3_column_int64(s, 0);
            foundMs = sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (foundSeq >= hi)
            hi = mid;
        else if (foundMs < cutoffMs)
            lo = foundSeq + 1;
        else
            hi = mid;
    }
    sqlite3_finalize(s);
    return lo;
}

qint64 Journal::deleteThrough(qint64 seq) {
    if (seq <= m_prunedThrough)
        return 0;
    qint64 removed = 0;
    // Chunks of 50 000 rows keep each write transaction short, so appends queued
    // behind a large prune wait milliseconds, not seconds.
    sqlite3_stmt* del = prepare("DELETE FROM events WHERE seq <= ?1");
    qint64 start = std::max(m_prunedThrough, firstSeq() - 1);
    while (del && start < seq) {
        const qint64 upto = std::min(seq, start + 50000);
        exec("BEGIN IMMEDIATE");
        sqlite3_bind_int64(del, 1, upto);
        sqlite3_step(del);
        removed += sqlite3_changes(m_db);
        sqlite3_reset(del);
        Statement st(m_setMeta);
        sqlite3_bind_text(st.s, 1, "pruned_through", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st.s, 2, upto);
        sqlite3_step(st.s);
        if (!exec("COMMIT")) {
            exec("ROLLBACK");
            break;
        }
        m_prunedThrough = upto;
        start = upto;
    }
    sqlite3_finalize(del);
    pruneNarrowings();
    return removed;
}

void Journal::pruneNarrowings() {
    // A period that ends at or before the prune mark says nothing any reader can use: a
    // reader from before the mark gets retention's gap, one from after it is past the
    // period. A source's period ends where its next one starts; a period that reads
    // nothing (a source removed, SourceReading "[]") covers everything, so it goes too
    // once it starts before the mark and no later one follows. Every answer of
    // CoverageLog for a cursor at or after the mark stays the same; the table, read whole
    // by every replay and every live SSE client that joins, stays as small as the
    // sources' changes of the retained history.
    sqlite3_stmt* s = prepare(
        "DELETE FROM narrowings WHERE EXISTS (SELECT 1 FROM narrowings AS later WHERE later.source = "
        "narrowings.source AND later.rowid > narrowings.rowid AND later.after_seq <= ?1) OR (reading = "
        "X'5B5D' AND after_seq <= ?1 AND NOT EXISTS (SELECT 1 FROM narrowings AS later WHERE later.source = "
        "narrowings.source AND later.rowid > narrowings.rowid))");
    if (!s)
        return;
    sqlite3_bind_int64(s, 1, m_prunedThrough);
    if (sqlite3_step(s) != SQLITE_DONE)
        qCWarning(lcJournal).noquote() << "cannot prune the narrowings:" << sqliteMessage(m_db);
    sqlite3_finalize(s);
}

qint64 Journal::prune(const RetentionPolicy& policy, qint64 nowMs) {
    if (!m_db || m_lastSeq == 0)
        return 0;
    qint64 cut = 0; // delete every seq <= cut
    if (policy.maxAgeSeconds > 0)
        cut = std::max(cut, firstSeqAtOrAfterTime(nowMs - policy.maxAgeSeconds * 1000) - 1);
    if (policy.maxBytes > 0) {
        const qint64 used = sizeBytes();
        if (used > policy.maxBytes) {
            // Drop the oldest share of events that brings the file to 90% of the cap;
            // freed pages are reused by later appends.
            const qint64 first = firstSeq();
            const qint64 count = m_lastSeq - first + 1;
            const double share = double(used - policy.maxBytes * 9 / 10) / double(used);
            cut = std::max(cut, first - 1 + qint64(double(count) * share) + 1);
        }
    }
    cut = std::min(cut, m_lastSeq);
    return cut > 0 ? deleteThrough(cut) : 0;
}

qint64 Journal::eventCount() {
    sqlite3_stmt* s = m_db ? prepare("SELECT count(*) FROM events") : nullptr;
    qint64 n = 0;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

qint64 Journal::sizeBytes() {
    if (!m_db)
        return 0;
    auto pragma = [this](const char* sql) {
        sqlite3_stmt* s = prepare(sql);
        qint64 v = 0;
        if (s && sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return v;
    };
    return (pragma("PRAGMA page_count") - pragma("PRAGMA freelist_count")) * pragma("PRAGMA page_size");
}

} // namespace tw

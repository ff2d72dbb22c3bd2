#pragma once

#include "engine/Subscription.h"
#include "journal/Journal.h"
#include "model/ChangeEvent.h"

#include <functional>
#include <optional>

namespace tw {

// Replay from the journal, then live, with no gap and no duplicate: the one copy of it,
// used by the SSE stream (Last-Event-ID), the long poll (`after`) and headless
// --from-seq. It reads the events after a cursor through a matcher, a chunk at a time,
// and says with a gap event when history after the cursor was removed by retention.
//
// The cursor is the promise: every seq <= cursor() was returned by next() or does not
// match. A caller that registered for live events before its first read switches to
// live once isAtHead(): it drops the live events with seq <= cursor() (the journal read
// covered them) and sends the rest in order, so nothing is lost and nothing is sent
// twice. One thread at a time, like the JournalReader it reads through.
class Replay {
public:
    using Matcher = std::function<bool(const ChangeEvent&)>;

    // A gap, and the id it stands at in a stream keyed by seq (an SSE event id): the
    // last seq lost, so a client that resumes from it resumes after the gap (a coverage
    // notice loses nothing: it stands at the cursor).
    struct Gap {
        ChangeEvent event; // operationType "gap", not sequenced (seq 0)
        qint64 id = 0;
    };
    struct Chunk {
        std::optional<Gap> gap; // comes before `events`
        // Matching events, ascending by seq. A stored event that cannot be read comes
        // as a gap at its own seq (JournalReader), whatever the matcher says.
        ChangeEventList events;
        QString error; // the journal could not be read; the cursor did not move
    };

    // `reader` is not owned and must outlive the replay; `after` is the cursor (0: from
    // the first event). An empty matcher takes every event.
    Replay(JournalReader* reader, Matcher match, qint64 after);
    // The matcher of a subscription, on a copy of it.
    static Matcher matching(const Subscription& subscription);
    // The notice that events `from` to `through` may be missing for a subscription (its
    // source then read only what the subscriptions of that time wanted), at `cursor`: it
    // skips nothing, so a client that resumes from its id reads every stored event after
    // the cursor again. A replay sends it (limitToCoverage), and so does a live SSE
    // client whose subscription a narrowing source had not read yet when it joined.
    static Gap coverageNotice(qint64 cursor, qint64 from, qint64 through);

    // Learns which part of the journal holds every event `subscription` can match
    // (CoverageLog): a cursor from before that gets one gap notice that says so (at the
    // cursor: it skips nothing), then every stored matching event after the cursor, as
    // without coverage. One notice per Replay, however many chunks the replay takes.
    // Read once, when called; a journal whose record cannot be read fails the next read.
    void limitToCoverage(const Subscription& subscription);
    // The seq after which the journal covers the subscription (0: from the start).
    qint64 coveredAfter() const { return m_coveredAfter; }
    // Whether a read from `cursor` still owes the notice of limitToCoverage().
    bool owesCoverageNotice(qint64 cursor) const { return !m_coverageNoticed && cursor < m_coveredAfter; }

    // Reads up to `limit` matching events after the cursor and moves the cursor past
    // everything looked at.
    Chunk next(int limit);
    qint64 cursor() const { return m_cursor; }
    // The last read reached the journal's head: what commits from now on comes live.
    bool isAtHead() const { return m_atHead; }
    // The caller kept the last chunk's events only up to and including `seq` (it stopped
    // at a write limit): the next read starts after it.
    void rewindTo(qint64 seq);
    // A cursor beyond the journal's head is one this journal never issued (a journal
    // that was reset, a client of another instance). Returns the gap that says so and
    // moves the cursor to the head, which then counts as reached; nothing when the
    // cursor is known. Only the SSE stream asks: a long poll or --from-seq beyond the
    // head waits for that id instead, as it always did.
    std::optional<Gap> skipUnknownCursor();

private:
    JournalReader* m_reader; // not owned
    Matcher m_match;
    qint64 m_cursor = 0;
    bool m_atHead = false;
    qint64 m_coveredAfter = 0;
    bool m_coverageNoticed = false;
    QString m_coverageError;
};

} // namespace tw

#pragma once

#include "engine/Subscription.h"
#include "journal/JournalReader.h"
#include "sources/SourceReading.h"

namespace tw {

// Which part of the journal holds every event a subscription can match. A source that
// narrows what it reads to its readers (ChangeBatch::narrowings) leaves out the events
// nobody subscribed to; a subscription made later that replays from before then must
// learn that with a gap, not miss them in silence. Kept simple and conservative: a
// period of a source covers a subscription when, for every part of the subscription's
// namespaces that one of the source's watched scopes overlaps, the scope was read whole,
// or a reader of a namespace containing that part took everything or had the
// subscription's very filter. A period that cannot be read covers nothing.
class CoverageLog {
public:
    // The seq after which the journal holds every event `subscription` could match,
    // given the narrowings recorded (oldest first) and the journal's head: 0 when it
    // always did; `head` when a period still running does not cover it.
    static qint64 coveredAfter(const QList<JournalReader::Narrowing>& narrowings,
                               const Subscription& subscription, qint64 head);
    // Whether every period still running covers `subscription`: what commits from now on
    // holds every event it could match, until a source narrows again.
    static bool coversFromNowOn(const QList<JournalReader::Narrowing>& narrowings,
                                const Subscription& subscription);
    // Whether `sourceId` reading `scopes` journals every event `subscription` could match.
    static bool covers(const QString& sourceId, const QList<ScopeReading>& scopes,
                       const Subscription& subscription);
};

} // namespace tw

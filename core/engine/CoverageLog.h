#pragma once

#include "engine/Subscription.h"
#include "journal/JournalReader.h"
#include "sources/SourceReading.h"

#include <limits>

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
    // The narrowings recorded (oldest first), each read once: one log answers for any
    // number of subscriptions.
    explicit CoverageLog(const QList<JournalReader::Narrowing>& narrowings);

    // The seq after which the journal holds every event `subscription` could match,
    // given the journal's head: 0 when it always did; `head` when a period still running
    // does not cover it. With kNoHead, that value says the running periods do not.
    static constexpr qint64 kNoHead = std::numeric_limits<qint64>::max();
    qint64 coveredAfter(const Subscription& subscription, qint64 head) const;

    static qint64 coveredAfter(const QList<JournalReader::Narrowing>& narrowings,
                               const Subscription& subscription, qint64 head) {
        return CoverageLog(narrowings).coveredAfter(subscription, head);
    }
    // Whether every period still running covers `subscription`: what commits from now on
    // holds every event it could match, until a source narrows again.
    static bool coversFromNowOn(const QList<JournalReader::Narrowing>& narrowings,
                                const Subscription& subscription) {
        return CoverageLog(narrowings).coveredAfter(subscription, kNoHead) < kNoHead;
    }
    // Whether `sourceId` reading `scopes` journals every event `subscription` could match.
    static bool covers(const QString& sourceId, const QList<ScopeReading>& scopes,
                       const Subscription& subscription);

private:
    // One source's reading from its row's seq to the next row's (or on, while `running`).
    struct Period {
        QString sourceId;
        qint64 end = 0;
        bool running = false;
        bool readable = false; // a reading that cannot be parsed covers nothing
        QList<ScopeReading> scopes;
    };
    QList<Period> m_periods;
};

} // namespace tw

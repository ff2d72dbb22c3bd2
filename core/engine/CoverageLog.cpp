#include "CoverageLog.h"

#include <limits>
#include <QHash>

namespace tw {

namespace {

bool serves(const WatchOptions::Reader& reader, const Subscription& subscription) {
    const bool filterOk = reader.matchesEverything || reader.filter == subscription.filter.query();
    const bool kindOk = !reader.schemaOnly || subscription.changes == Subscription::Changes::Schema;
    return filterOk && kindOk;
}

} // namespace

bool CoverageLog::covers(const QString& sourceId, const QList<ScopeReading>& scopes,
                         const Subscription& subscription) {
    for (const ScopeReading& scope : scopes) {
        QList<Namespace> parts; // what the subscription reads of this scope's source
        if (subscription.namespaces.isEmpty())
            parts.append(Namespace{});
        for (const SourceNamespace& sn : subscription.namespaces)
            if (scope.anySource || sn.sourceId.isEmpty() || sn.sourceId == sourceId)
                parts.append(sn.ns);
        for (const Namespace& part : std::as_const(parts)) {
            if (!scope.scope.contains(part) && !part.contains(scope.scope))
                continue; // a scope the subscription does not see
            if (scope.readers.isEmpty())
                continue; // read whole
            const Namespace visible = scope.scope.contains(part) ? part : scope.scope;
            const bool served =
                std::any_of(scope.readers.cbegin(), scope.readers.cend(), [&](const WatchOptions::Reader& r) {
                    return r.ns.contains(visible) && serves(r, subscription);
                });
            if (!served)
                return false;
        }
    }
    return true;
}

qint64 CoverageLog::coveredAfter(const QList<JournalReader::Narrowing>& narrowings,
                                 const Subscription& subscription, qint64 head) {
    // Each source's periods in order: one runs from its afterSeq to the next one's.
    QHash<QString, QList<const JournalReader::Narrowing*>> bySource;
    for (const JournalReader::Narrowing& n : narrowings)
        bySource[n.sourceId].append(&n);
    qint64 floor = 0;
    for (auto it = bySource.cbegin(); it != bySource.cend(); ++it) {
        const QList<const JournalReader::Narrowing*>& periods = it.value();
        for (qsizetype i = 0; i < periods.size(); ++i) {
            // A period that ends where it begins read nothing (a source declares once
            // per watch it starts, all at the same seq).
            if (i + 1 < periods.size() && periods[i + 1]->afterSeq == periods[i]->afterSeq)
                continue;
            QList<ScopeReading> scopes;
            if (SourceReading::fromJson(periods[i]->reading, &scopes) &&
                covers(it.key(), scopes, subscription))
                continue;
            const qint64 end = i + 1 < periods.size() ? periods[i + 1]->afterSeq : head;
            floor = std::max(floor, end);
        }
    }
    return std::min(floor, head);
}

bool CoverageLog::coversFromNowOn(const QList<JournalReader::Narrowing>& narrowings,
                                  const Subscription& subscription) {
    // A period still running ends at the head: with no head, only it reaches that far.
    constexpr qint64 kNoHead = std::numeric_limits<qint64>::max();
    return coveredAfter(narrowings, subscription, kNoHead) < kNoHead;
}

} // namespace tw

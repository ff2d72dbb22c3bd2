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

CoverageLog::CoverageLog(const QList<JournalReader::Narrowing>& narrowings) {
    // Each source's periods in order: one runs from its afterSeq to the next one's.
    QHash<QString, QList<const JournalReader::Narrowing*>> bySource;
    for (const JournalReader::Narrowing& n : narrowings)
        bySource[n.sourceId].append(&n);
    for (auto it = bySource.cbegin(); it != bySource.cend(); ++it) {
        const QList<const JournalReader::Narrowing*>& rows = it.value();
        for (qsizetype i = 0; i < rows.size(); ++i) {
            const bool running = i + 1 == rows.size();
            // A period that ends where it begins read nothing (a source declares once
            // per watch it starts, all at the same seq).
            if (!running && rows[i + 1]->afterSeq == rows[i]->afterSeq)
                continue;
            Period period;
            period.sourceId = it.key();
            period.running = running;
            period.end = running ? 0 : rows[i + 1]->afterSeq;
            period.readable = SourceReading::fromJson(rows[i]->reading, &period.scopes);
            m_periods.append(std::move(period));
        }
    }
}

qint64 CoverageLog::coveredAfter(const Subscription& subscription, qint64 head) const {
    qint64 floor = 0;
    for (const Period& period : m_periods) {
        const qint64 end = period.running ? head : period.end;
        if (end <= floor)
            continue; // cannot raise the floor, covered or not
        if (!period.readable || !covers(period.sourceId, period.scopes, subscription))
            floor = end;
    }
    return std::min(floor, head);
}

} // namespace tw

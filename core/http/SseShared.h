#pragma once

#include "http/ReplayCache.h"

#include <atomic>
#include <memory>
#include <QDateTime>
#include <QHash>
#include <QMutex>
#include <QObject>
#include <QString>

namespace tw {

// What the HTTP thread shares with SseServer's thread: counters and client statistics
// read by clients() and the metrics, written with relaxed atomics on the hot path; the
// mutex only guards adding and removing entries.
struct SseShared {
    struct ClientStats {
        quint64 id = 0;
        QString peer;
        QString subscriptionId;
        QDateTime connectedAt;
        std::atomic<qint64> lastSent{0};
        std::atomic<qint64> pending{0};
    };
    mutable QMutex mutex;
    QHash<quint64, std::shared_ptr<ClientStats>> clients;
    // The HTTP thread's HttpApi while it may receive posted calls; cleared under `mutex`
    // before it is deleted, so the engine thread never posts to a dead object.
    QObject* worker = nullptr;
    std::atomic<qint64> eventsSent{0};
    std::atomic<qint64> slowDisconnects{0};
    // A copy of the HTTP thread's ReplayCache::Stats, under `mutex`.
    ReplayCache::Stats replayCache;
};

} // namespace tw

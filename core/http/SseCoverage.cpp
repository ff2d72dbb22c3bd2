#include "SseStreams.h"

#include "engine/CoverageLog.h"
#include "journal/JournalReader.h"

#include <QLoggingCategory>

Q_DECLARE_LOGGING_CATEGORY(lcSse)

// What live SSE clients are told of coverage: a subscription changed, or a narrowing
// source now reads (or no longer reads) what one of them asks for. The rest of
// SseStreams is in SseStreams.cpp.

namespace tw {

void SseStreams::refreshSubscriptions(const QList<Subscription>& subscriptions) {
    QList<Client*> live;
    for (const Subscription& subscription : subscriptions) {
        const QByteArray definition = subscription.toJson();
        bool changed = false;
        for (quint64 clientId : m_clientsBySubscription.value(subscription.id)) {
            const auto client = m_clients.value(clientId);
            if (!client || client->subscription.toJson() == definition)
                continue; // unchanged: nothing it was told or will be told moves
            changed = true;
            client->subscription = subscription;
            if (client->shapeFollowsSubscription)
                client->shape = subscription.shape(client->shape.isCanonical());
            client->cacheKey = cacheKeyOf(client->subscription, client->shape);
            if (client->state == State::Live) {
                // What it was sent so far it was sent under the old definition; a client
                // still waiting for coverage is still owed the notice of what it missed.
                if (!client->coverageWaiting)
                    client->coverageTold = std::max(client->coverageTold, client->cursor);
                live.append(client.get());
            }
        }
        // What matched before may not match now: the old blocks are of no use to anyone.
        if (changed)
            m_cache.removeKeys(subscription.id.toUtf8() + '\n');
    }
    // A namespace added to one may not be read yet.
    if (!live.isEmpty())
        settleCoverage(live);
}

void SseStreams::onCoverageChanged() {
    // Every live client, not only those still waiting: a source whose readers change one
    // at a time may narrow past a subscription before it reads it.
    QList<Client*> live;
    for (const auto& client : std::as_const(m_clients))
        if (client->state == State::Live)
            live.append(client.get());
    if (!live.isEmpty())
        settleCoverage(live);
}

void SseStreams::settleCoverage(const QList<Client*>& clients) {
    // Read when asked, not cached: a narrowing committed since a client's cursor was read
    // is in it, and every one committed later comes with an onCoverageChanged().
    QString error;
    qint64 head = 0;
    const QList<JournalReader::Narrowing> narrowings = m_reader->narrowings(&error, &head);
    if (!error.isEmpty()) {
        // Asked again with the next change of coverage.
        qCWarning(lcSse).noquote() << "cannot read what the sources read from the journal:" << error;
        return;
    }
    const CoverageLog log(narrowings);
    QHash<QString, qint64> bySubscription; // clients of one subscription share its snapshot
    for (Client* client : clients) {
        if (client->state != State::Live)
            continue;
        auto it = bySubscription.find(client->subscription.id);
        if (it == bySubscription.end())
            it = bySubscription.insert(client->subscription.id,
                                       log.coveredAfter(client->subscription, CoverageLog::kNoHead));
        // A period still running does not cover it: not read yet, told once it is.
        client->coverageWaiting = *it == CoverageLog::kNoHead;
        if (client->coverageWaiting)
            continue;
        const qint64 after = std::min(*it, head);
        if (after > client->coverageTold) {
            // Read now; from where the client was last known covered, it was read less.
            const Replay::Gap notice =
                Replay::coverageNotice(client->cursor, client->coverageTold + 1, after);
            writeFrame(client, EventRenderer::renderFrame(notice.event, client->shape, notice.id), 0);
        }
        // Everything through the head is in the journal, or the client was told.
        client->coverageTold = std::max({client->coverageTold, after, head});
    }
}

} // namespace tw

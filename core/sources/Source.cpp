#include "Source.h"

#include "sources/SourceUri.h"

namespace tw {

Source::Source(const QString& id, QObject* parent)
    : QObject(parent)
    , m_id(id) {}

Source::~Source() = default;

QString SourceStatus::stateName(State state) {
    switch (state) {
    case State::Stopped:
        return QStringLiteral("stopped");
    case State::Connecting:
        return QStringLiteral("connecting");
    case State::Watching:
        return QStringLiteral("watching");
    case State::Polling:
        return QStringLiteral("polling");
    case State::Backoff:
        return QStringLiteral("backoff");
    case State::Error:
        return QStringLiteral("error");
    }
    return QStringLiteral("unknown");
}

void Source::setStatus(SourceStatus::State state, const QString& reason, const QDateTime& nextRetry) {
    if (m_status.state == state && m_status.reason == reason && m_status.nextRetry == nextRetry)
        return;
    m_status.state = state;
    m_status.reason = reason;
    m_status.nextRetry = nextRetry;
    Q_EMIT statusChanged(m_id, m_status);
}

QString Source::redactUri(const QString& uri) {
    return SourceUri::redact(uri);
}

void Source::setBodyCodec(std::shared_ptr<const BodyCodec> codec) {
    m_codec = std::move(codec);
}

void Source::publishBatch(const ChangeBatch& batch) {
    // Render each event here, on the source's thread, before the batch leaves: the
    // engine thread then only splices in the seq, and rendering of several sources
    // runs in parallel. Before the emit, so no receiver ever sees an event while it is
    // being rendered. prepare() is const (it fills a cache): a non-const one would detach,
    // and so deep-copy, every event of a batch the caller still holds.
    for (const ChangeEvent& event : batch.events)
        event.prepare(m_codec.get());
    Q_EMIT batchReady(batch);
}

} // namespace tw

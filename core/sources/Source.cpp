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

} // namespace tw

#include "Source.h"

#include "sources/mongo/MongoSource.h"
#include "sources/SourceUri.h"
#include "sources/sqlite/SqliteSource.h"

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

Source* Source::create(const QString& id, const QString& uri, QString* error) {
    const SourceUri parsed(uri);
    switch (parsed.kind()) {
    case SourceUri::Kind::MongoDb:
        return MongoSource::create(id, uri, error);
    case SourceUri::Kind::Sqlite:
        return SqliteSource::create(id, uri, error);
    case SourceUri::Kind::Postgres:
        if (error)
            *error = QStringLiteral("PostgreSQL sources (%1) are not in this version of Tidewatch yet; watch "
                                    "SQLite files (sqlite:PATH) or MongoDB (mongodb://HOST[:PORT]).")
                         .arg(parsed.redacted());
        return nullptr;
    case SourceUri::Kind::Unknown:
        break;
    }
    if (error)
        *error = QStringLiteral("Unsupported source URI \"%1\": use sqlite:PATH or mongodb://HOST[:PORT].")
                     .arg(parsed.redacted());
    return nullptr;
}

} // namespace tw

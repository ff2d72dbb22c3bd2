#include "Source.h"

#include "sources/mongo/MongoSource.h"
#include "sources/sqlite/SqliteSource.h"

#include <QRegularExpression>
#include <QUrl>

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
    // scheme://user:password@host → scheme://user:****@host, without parsing the rest,
    // so even a malformed URI never shows its password.
    static const QRegularExpression re(QStringLiteral("^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):([^@/]*)@"));
    QString out = uri;
    out.replace(re, QStringLiteral("\\1:****@"));
    static const QRegularExpression param(QStringLiteral("([?&](password|sslpassword)=)[^&]*"),
                                          QRegularExpression::CaseInsensitiveOption);
    out.replace(param, QStringLiteral("\\1****"));
    return out;
}

Source* Source::create(const QString& id, const QString& uri, QString* error) {
    // Before the SQLite suffix test: a MongoDB URI may end in ".db" (…/?appname=orders.db).
    if (uri.startsWith(QLatin1String("mongodb://")) || uri.startsWith(QLatin1String("mongodb+srv://")))
        return MongoSource::create(id, uri, error);
    if (uri.startsWith(QLatin1String("sqlite:")) || uri.endsWith(QLatin1String(".sqlite")) ||
        uri.endsWith(QLatin1String(".db")) || uri.endsWith(QLatin1String(".sqlite3")))
        return SqliteSource::create(id, uri, error);
    if (error) {
        if (uri.startsWith(QLatin1String("postgres")))
            *error = QStringLiteral("PostgreSQL sources (%1) are not in this version of Tidewatch yet; watch "
                                    "SQLite files (sqlite:PATH) or MongoDB (mongodb://HOST[:PORT]).")
                         .arg(redactUri(uri));
        else
            *error =
                QStringLiteral("Unsupported source URI \"%1\": use sqlite:PATH or mongodb://HOST[:PORT].")
                    .arg(redactUri(uri));
    }
    return nullptr;
}

} // namespace tw

#include "SourceFactory.h"

#include "sources/mongo/MongoSource.h"
#include "sources/postgres/PostgresSource.h"
#include "sources/SourceUri.h"
#include "sources/sqlite/SqliteSource.h"

namespace tw {

Source* SourceFactory::create(const QString& id, const QString& uri, QString* error) {
    const SourceUri parsed(uri);
    switch (parsed.kind()) {
    case SourceUri::Kind::MongoDb:
        return MongoSource::create(id, uri, error);
    case SourceUri::Kind::Sqlite:
        return SqliteSource::create(id, uri, error);
    case SourceUri::Kind::Postgres:
        return PostgresSource::create(id, uri, error);
    case SourceUri::Kind::Unknown:
        break;
    }
    if (error)
        *error = QStringLiteral("Unsupported source URI \"%1\": use sqlite:PATH, mongodb://HOST[:PORT] or "
                                "postgresql://USER@HOST[:PORT]/DATABASE.")
                     .arg(parsed.redacted());
    return nullptr;
}

} // namespace tw

#include "SourceFactory.h"

#include "sources/mongo/MongoSource.h"
#include "sources/nats/NatsGatewaySource.h"
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
    case SourceUri::Kind::Nats:
        return NatsGatewaySource::create(id, uri, error);
    case SourceUri::Kind::Unknown:
        break;
    }
    if (error)
        *error = QStringLiteral("Unsupported source URI \"%1\": use sqlite:PATH, mongodb://HOST[:PORT], "
                                "postgresql://USER@HOST[:PORT]/DATABASE or nats://HOST:PORT[/STREAM] (a "
                                "gateway on an ingest's JetStream stream).")
                     .arg(parsed.redacted());
    return nullptr;
}

} // namespace tw

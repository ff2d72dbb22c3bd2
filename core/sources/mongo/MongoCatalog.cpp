#include "MongoCatalog.h"

#include "MongoConnection.h"

#include <mongoc/mongoc.h>

#include <algorithm>

namespace tw {

bool MongoCatalog::isSystemDatabase(const QString& db) {
    return db == QLatin1String("admin") || db == QLatin1String("config") || db == QLatin1String("local");
}

QList<NamespaceInfo> MongoCatalog::list(mongoc_client_t* client, const QString& db,
                                        const MongoConnection& connection, QString* error) {
    QList<NamespaceInfo> result;
    bson_error_t err;
    const QString uri = connection.redactedUri();
    if (db.isEmpty()) {
        char** names = mongoc_client_get_database_names_with_opts(client, nullptr, &err);
        if (!names) {
            *error = QStringLiteral("Cannot list the databases of %1: %2")
                         .arg(uri, connection.redact(QString::fromUtf8(err.message)));
        } else {
            for (char** name = names; *name; ++name) {
                const QString n = QString::fromUtf8(*name);
                result.append({Namespace{n, {}},
                               isSystemDatabase(n) ? QStringLiteral("system") : QStringLiteral("database")});
            }
            bson_strfreev(names);
        }
    } else {
        const QByteArray name = db.toUtf8();
        mongoc_database_t* database = mongoc_client_get_database(client, name.constData());
        BsonBuilder opts;
        bson_append_bool(opts.get(), "nameOnly", -1, true);
        mongoc_cursor_t* cursor = mongoc_database_find_collections_with_opts(database, opts.get());
        const bson_t* doc = nullptr;
        while (mongoc_cursor_next(cursor, &doc)) {
            const QString coll = stringAt(doc, "name");
            const QString type = stringAt(doc, "type");
            if (coll.isEmpty())
                continue;
            QString kind = QStringLiteral("collection");
            if (coll.startsWith(QLatin1String("system.")))
                kind = QStringLiteral("system");
            else if (type == QLatin1String("view"))
                kind = QStringLiteral("view");
            result.append({Namespace{db, coll}, kind});
        }
        if (mongoc_cursor_error(cursor, &err))
            *error = QStringLiteral("Cannot list the collections of %1 on %2: %3")
                         .arg(db, uri, connection.redact(QString::fromUtf8(err.message)));
        mongoc_cursor_destroy(cursor);
        mongoc_database_destroy(database);
    }
    std::sort(result.begin(), result.end(), [](const NamespaceInfo& a, const NamespaceInfo& b) {
        return a.ns.toString() < b.ns.toString();
    });
    return result;
}

QList<Namespace> MongoCatalog::pollTargets(mongoc_client_t* client, const Namespace& scope, QString* error) {
    if (!scope.coll.isEmpty())
        return {scope};
    QStringList databases;
    bson_error_t err;
    if (scope.isDeployment()) {
        char** names = mongoc_client_get_database_names_with_opts(client, nullptr, &err);
        if (!names) {
            *error = QString::fromUtf8(err.message);
            return {};
        }
        for (char** name = names; *name; ++name) {
            const QString db = QString::fromUtf8(*name);
            if (!isSystemDatabase(db))
                databases.append(db);
        }
        bson_strfreev(names);
    } else {
        databases.append(scope.db);
    }
    QList<Namespace> targets;
    for (const QString& db : std::as_const(databases)) {
        mongoc_database_t* database = mongoc_client_get_database(client, db.toUtf8().constData());
        BsonBuilder opts;
        bson_append_bool(opts.get(), "nameOnly", -1, true);
        bson_t filter;
        bson_append_document_begin(opts.get(), "filter", -1, &filter);
        bson_append_utf8(&filter, "type", -1, "collection", -1);
        bson_append_document_end(opts.get(), &filter);
        mongoc_cursor_t* cursor = mongoc_database_find_collections_with_opts(database, opts.get());
        const bson_t* doc = nullptr;
        while (mongoc_cursor_next(cursor, &doc)) {
            const QString name = stringAt(doc, "name");
            if (!name.isEmpty() && !name.startsWith(QLatin1String("system.")))
                targets.append(Namespace{db, name});
        }
        if (mongoc_cursor_error(cursor, &err))
            *error = QString::fromUtf8(err.message);
        mongoc_cursor_destroy(cursor);
        mongoc_database_destroy(database);
        if (!error->isEmpty())
            return {};
    }
    return targets;
}

} // namespace tw

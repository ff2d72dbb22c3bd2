#include "MongoPeerSchema.h"

#include "MongoPeerBson.h"
#include "MongoPeerReplies.h"
#include "MongoPeerSettings.h"
#include "MongoPeerStore.h"

#include <QStringList>

#include <cstring>

namespace tw::test {

using namespace peerbson;

namespace {

// Fields every command may carry that are no option of it.
bool isGenericField(const char* key) {
    if (key[0] == '$')
        return true;
    for (const char* generic : {"lsid", "txnNumber", "writeConcern", "comment", "maxTimeMS", "apiVersion"})
        if (!strcmp(key, generic))
            return true;
    return false;
}

// The command's own options: every field but its name and the generic ones.
Bson optionsOf(const Bson& command, const char* name) {
    BsonBuilder b;
    View view(command);
    bson_iter_t it;
    if (view.isValid() && bson_iter_init(&it, view.get()))
        while (bson_iter_next(&it))
            if (strcmp(bson_iter_key(&it), name) && !isGenericField(bson_iter_key(&it)))
                bson_append_iter(b.get(), bson_iter_key(&it), -1, &it);
    return b.take();
}

// {v: 2, key, name, …}: an index spec as listIndexes and the change events show it.
Bson indexSpec(const Bson& given) {
    BsonBuilder b;
    bson_append_int32(b.get(), "v", 1, 2);
    View view(given);
    bson_iter_t it;
    if (view.isValid() && bson_iter_init(&it, view.get()))
        while (bson_iter_next(&it))
            if (strcmp(bson_iter_key(&it), "v"))
                bson_append_iter(b.get(), bson_iter_key(&it), -1, &it);
    return b.take();
}

// {indexes: [specs]}, the operationDescription of createIndexes and dropIndexes.
Bson indexesDescription(const QList<Bson>& specs) {
    BsonBuilder b;
    appendArray(b.get(), "indexes", specs);
    return b.take();
}

// "db.coll" into its parts; false without a dot.
bool splitNamespace(const QString& ns, QString* db, QString* coll) {
    const qsizetype dot = ns.indexOf(QLatin1Char('.'));
    if (dot <= 0 || dot == ns.size() - 1)
        return false;
    *db = ns.left(dot);
    *coll = ns.mid(dot + 1);
    return true;
}

Bson namespaceDocument(const QString& db, const QString& coll) {
    BsonBuilder b;
    appendUtf8(b.get(), "db", db);
    appendUtf8(b.get(), "coll", coll);
    return b.take();
}

} // namespace

MongoPeerSchema::MongoPeerSchema(const MongoPeerSettings& settings, MongoPeerStore& store,
                                 const MongoPeerReplies& replies)
    : m_settings(settings)
    , m_store(store)
    , m_replies(replies) {}

bool MongoPeerSchema::producesChanges() const {
    return m_settings.replicaSet && m_settings.writesProduceChanges;
}

void MongoPeerSchema::log(const QString& db, const QString& coll, const char* operationType,
                          const Bson& description, const Bson& extra) {
    if (!producesChanges())
        return;
    BsonBuilder b;
    bson_append_utf8(b.get(), "operationType", -1, operationType, -1);
    if (!coll.isEmpty()) {
        if (const std::shared_ptr<MongoPeerStore::Collection> c = m_store.collection(db, coll))
            bson_append_binary(b.get(), "collectionUUID", -1, BSON_SUBTYPE_UUID,
                               reinterpret_cast<const uint8_t*>(c->uuid.constData()),
                               uint32_t(c->uuid.size()));
    }
    View more(extra);
    if (more.isValid())
        bson_concat(b.get(), more.get());
    if (!description.isAbsent())
        appendDocument(b.get(), "operationDescription", description);
    m_store.appendChange(db, coll, b.take(), {}, {});
}

void MongoPeerSchema::ensureCollection(const QString& db, const QString& coll, const Bson& options) {
    if (m_store.collection(db, coll))
        return;
    m_store.createCollection(db, coll);
    m_store.collection(db, coll)->options = options;
    // 6.0 reports the options given and the _id index the collection got.
    BsonBuilder description;
    View given(options);
    if (given.isValid())
        bson_concat(description.get(), given.get());
    appendDocument(description.get(), "idIndex", Bson::fromJson(R"({"v":2,"key":{"_id":1},"name":"_id_"})"));
    log(db, coll, "create", description.take());
}

Bson MongoPeerSchema::create(const Request& request) {
    const QString coll = stringField(request.body, "create");
    if (m_store.collection(request.db, coll))
        return m_replies.error(48, QStringLiteral("NamespaceExists"),
                               QStringLiteral("Collection %1.%2 already exists.").arg(request.db, coll));
    ensureCollection(request.db, coll, optionsOf(request.body, "create"));
    BsonBuilder b;
    return m_replies.finish(b.get());
}

Bson MongoPeerSchema::createIndexes(const Request& request) {
    const QString coll = stringField(request.body, "createIndexes");
    const bool existed = bool(m_store.collection(request.db, coll));
    ensureCollection(request.db, coll);
    const std::shared_ptr<MongoPeerStore::Collection> c = m_store.collection(request.db, coll);
    const qsizetype before = c->indexes.size() + 1;
    bson_iter_t it;
    QList<Bson> created;
    if (findField(request.body, "indexes", &it) && BSON_ITER_HOLDS_ARRAY(&it)) {
        for (const Bson& given : arrayDocuments(&it)) {
            const QString name = stringField(given, "name");
            if (name.isEmpty() || documentField(given, "key").isAbsent())
                return m_replies.error(
                    9, QStringLiteral("FailedToParse"),
                    QStringLiteral(
                        "Error in specification %1 :: caused by :: The 'key' and 'name' fields are "
                        "required")
                        .arg(QString::fromUtf8(given.toJson())));
            bool known = false;
            for (const Bson& spec : std::as_const(c->indexes))
                known = known || stringField(spec, "name") == name;
            if (!known)
                created.append(indexSpec(given));
        }
    }
    c->indexes.append(created);
    if (!created.isEmpty())
        log(request.db, coll, "createIndexes", indexesDescription(created));
    BsonBuilder b;
    bson_append_int32(b.get(), "numIndexesBefore", -1, int(before));
    bson_append_int32(b.get(), "numIndexesAfter", -1, int(c->indexes.size() + 1));
    bson_append_bool(b.get(), "createdCollectionAutomatically", -1, !existed);
    return m_replies.finish(b.get());
}

Bson MongoPeerSchema::dropIndexes(const Request& request) {
    const QString coll = stringField(request.body, "dropIndexes");
    const std::shared_ptr<MongoPeerStore::Collection> c = m_store.collection(request.db, coll);
    if (!c)
        return m_replies.error(26, QStringLiteral("NamespaceNotFound"),
                               QStringLiteral("ns not found %1.%2").arg(request.db, coll));
    QStringList names;
    bson_iter_t it;
    if (findField(request.body, "index", &it)) {
        if (BSON_ITER_HOLDS_UTF8(&it)) {
            names.append(iterString(&it));
        } else if (BSON_ITER_HOLDS_ARRAY(&it)) {
            bson_iter_t element;
            if (bson_iter_recurse(&it, &element))
                while (bson_iter_next(&element))
                    names.append(iterString(&element));
        }
    }
    const int before = int(c->indexes.size() + 1);
    QList<Bson> dropped;
    for (const QString& name : std::as_const(names)) {
        if (name == QLatin1String("*")) {
            dropped.append(c->indexes);
            c->indexes.clear();
            continue;
        }
        qsizetype found = -1;
        for (qsizetype i = 0; i < c->indexes.size(); ++i)
            if (stringField(c->indexes.at(i), "name") == name)
                found = i;
        if (found < 0)
            return m_replies.error(27, QStringLiteral("IndexNotFound"),
                                   QStringLiteral("index not found with name [%1]").arg(name));
        dropped.append(c->indexes.takeAt(found));
    }
    // One event per index dropped, as a 6.0 server sends them.
    for (const Bson& spec : std::as_const(dropped))
        log(request.db, coll, "dropIndexes", indexesDescription({spec}));
    BsonBuilder b;
    bson_append_int32(b.get(), "nIndexesWas", -1, before);
    return m_replies.finish(b.get());
}

Bson MongoPeerSchema::collMod(const Request& request) {
    const QString coll = stringField(request.body, "collMod");
    const std::shared_ptr<MongoPeerStore::Collection> c = m_store.collection(request.db, coll);
    if (!c)
        return m_replies.error(26, QStringLiteral("NamespaceNotFound"),
                               QStringLiteral("ns does not exist: %1.%2").arg(request.db, coll));
    const Bson changes = optionsOf(request.body, "collMod");
    // stateBeforeChange: the collection's options before, or the index's (hidden).
    BsonBuilder before;
    const Bson index = documentField(changes, "index");
    if (!index.isAbsent()) {
        BsonBuilder indexOptions;
        bson_append_bool(indexOptions.get(), "hidden", -1, !boolField(index, "hidden"));
        appendDocument(before.get(), "indexOptions", indexOptions.take());
    } else {
        appendDocument(before.get(), "collectionOptions", c->options.isAbsent() ? Bson::empty() : c->options);
        c->options = changes;
    }
    BsonBuilder extra;
    appendDocument(extra.get(), "stateBeforeChange", before.take());
    log(request.db, coll, "modify", changes, extra.take());
    BsonBuilder b;
    return m_replies.finish(b.get());
}

Bson MongoPeerSchema::drop(const Request& request) {
    const QString coll = stringField(request.body, "drop");
    const std::shared_ptr<MongoPeerStore::Collection> c = m_store.collection(request.db, coll);
    BsonBuilder b;
    if (!c)
        return m_replies.finish(b.get()); // 7.0: dropping what is not there succeeds
    bson_append_int32(b.get(), "nIndexesWas", -1, int(c->indexes.size() + 1));
    appendUtf8(b.get(), "ns", request.db + QLatin1Char('.') + coll);
    log(request.db, coll, "drop", {});
    m_store.dropCollection(request.db, coll);
    return m_replies.finish(b.get());
}

Bson MongoPeerSchema::renameCollection(const Request& request) {
    QString db, coll, toDb, toColl;
    if (request.db != QLatin1String("admin"))
        return m_replies.error(
            13, QStringLiteral("Unauthorized"),
            QStringLiteral("renameCollection may only be run against the admin database."));
    if (!splitNamespace(stringField(request.body, "renameCollection"), &db, &coll) ||
        !splitNamespace(stringField(request.body, "to"), &toDb, &toColl))
        return m_replies.error(73, QStringLiteral("InvalidNamespace"),
                               QStringLiteral("Invalid source or target namespace"));
    if (!m_store.collection(db, coll))
        return m_replies.error(26, QStringLiteral("NamespaceNotFound"),
                               QStringLiteral("Source collection %1.%2 does not exist").arg(db, coll));
    if (m_store.collection(toDb, toColl) && !boolField(request.body, "dropTarget"))
        return m_replies.error(48, QStringLiteral("NamespaceExists"),
                               QStringLiteral("target namespace exists"));
    const Bson to = namespaceDocument(toDb, toColl);
    BsonBuilder description;
    appendDocument(description.get(), "to", to);
    BsonBuilder extra;
    appendDocument(extra.get(), "to", to);
    log(db, coll, "rename", description.take(), extra.take());
    m_store.dropCollection(toDb, toColl);
    m_store.renameCollection(db, coll, toDb, toColl);
    BsonBuilder b;
    return m_replies.finish(b.get());
}

Bson MongoPeerSchema::dropDatabase(const Request& request) {
    // Each collection's drop first, then the database's, as a server reports them.
    QStringList names;
    for (const std::shared_ptr<MongoPeerStore::Collection>& c : m_store.collections())
        if (c->db == request.db)
            names.append(c->name);
    names.sort();
    for (const QString& coll : std::as_const(names)) {
        log(request.db, coll, "drop", {});
        m_store.dropCollection(request.db, coll);
    }
    log(request.db, {}, "dropDatabase", {});
    BsonBuilder b;
    appendUtf8(b.get(), "dropped", request.db);
    return m_replies.finish(b.get());
}

Bson MongoPeerSchema::shardCollection(const Request& request) {
    QString db, coll;
    if (!splitNamespace(stringField(request.body, "shardCollection"), &db, &coll))
        return m_replies.error(73, QStringLiteral("InvalidNamespace"), QStringLiteral("Invalid namespace"));
    const Bson key = documentField(request.body, "key");
    if (key.isAbsent())
        return m_replies.error(
            40414, QStringLiteral("Location40414"),
            QStringLiteral("BSON field 'shardCollection.key' is missing but a required field"));
    ensureCollection(db, coll);
    BsonBuilder description;
    appendDocument(description.get(), "shardKey", key);
    bson_append_bool(description.get(), "unique", -1, boolField(request.body, "unique"));
    bson_append_bool(description.get(), "presplitHashedZones", -1,
                     boolField(request.body, "presplitHashedZones"));
    log(db, coll, "shardCollection", description.take());
    BsonBuilder b;
    appendUtf8(b.get(), "collectionsharded", db + QLatin1Char('.') + coll);
    return m_replies.finish(b.get());
}

} // namespace tw::test

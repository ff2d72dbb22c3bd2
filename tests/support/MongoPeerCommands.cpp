#include "MongoPeerCommands.h"

#include "MongoPeerBson.h"
#include "MongoPeerChangeStreams.h"
#include "MongoPeerCursors.h"
#include "MongoPeerMatcher.h"
#include "MongoPeerReplies.h"
#include "MongoPeerSchema.h"
#include "MongoPeerSettings.h"
#include "MongoPeerStore.h"
#include "MongoPeerWrites.h"

#include <QDateTime>
#include <QHash>
#include <QMap>

#include <algorithm>
#include <memory>

namespace tw::test {

using namespace peerbson;

namespace {

QString versionForWire(int wire) {
    if (wire >= 21)
        return QStringLiteral("7.0.0");
    if (wire >= 17)
        return QStringLiteral("6.0.0");
    if (wire >= 13)
        return QStringLiteral("5.0.0");
    if (wire >= 9)
        return QStringLiteral("4.4.0");
    if (wire >= 8)
        return QStringLiteral("4.2.0");
    if (wire >= 7)
        return QStringLiteral("4.0.0");
    return QStringLiteral("3.6.0");
}

bool isHelloName(const QString& name) {
    return name == QLatin1String("hello") ||
           name.compare(QLatin1String("isMaster"), Qt::CaseInsensitive) == 0;
}

} // namespace

MongoPeerCommands::MongoPeerCommands(const MongoPeerSettings& settings, const MongoPeerStore& store,
                                     MongoPeerCursors& cursors, MongoPeerChangeStreams& changeStreams,
                                     MongoPeerWrites& writes, MongoPeerSchema& schema, MongoPeerWire& wire,
                                     const MongoPeerReplies& replies)
    : m_settings(settings)
    , m_store(store)
    , m_cursors(cursors)
    , m_changeStreams(changeStreams)
    , m_writes(writes)
    , m_schema(schema)
    , m_wire(wire)
    , m_replies(replies) {}

void MongoPeerCommands::failNextCommand(const QString& command, const Bson& errorDoc, int times) {
    m_failures.append({command, errorDoc, times});
}

void MongoPeerCommands::dispatch(Connection* connection, const Request& request) {
    if (connection->closing)
        return;
    if (answerFailpoint(connection, request))
        return;

    const QString& name = request.name;
    std::optional<Bson> reply;
    if (request.opCode == MongoPeerWire::OpQuery && !isHelloName(name) && m_settings.maxWireVersion >= 14) {
        // Since 5.1 OP_QUERY carries only the handshake.
        reply = m_replies.error(
            352, QStringLiteral("UnsupportedOpQueryCommand"),
            QStringLiteral("Unsupported OP_QUERY command: %1. The client driver may require an "
                           "upgrade. For more details see https://dochub.mongodb.org/core/"
                           "legacy-opcode-removal")
                .arg(name));
    } else if (request.opCode == MongoPeerWire::OpMsg && request.db.isEmpty()) {
        reply = m_replies.error(40571, QStringLiteral("Location40571"),
                                QStringLiteral("OP_MSG requests require a $db argument"));
    } else if (const Handler handler = handlerFor(name)) {
        reply = handler(*this, connection, request);
        if (!reply)
            return; // parked until events arrive or maxTimeMS passes
    } else {
        reply = m_replies.error(59, QStringLiteral("CommandNotFound"),
                                QStringLiteral("no such command: '%1'").arg(name));
    }
    m_wire.sendReply(connection, request, *reply);
}

MongoPeerCommands::Handler MongoPeerCommands::handlerFor(const QString& name) {
    struct Entry {
        QString name;
        Qt::CaseSensitivity caseSensitivity;
        Handler handler;
    };
    // Names match exactly, except isMaster and buildInfo, which match in any case
    // (drivers send both isMaster and ismaster). Keyed by the lower-cased name so
    // that one lookup serves both kinds.
    using Reply = std::optional<Bson>;
    using Self = MongoPeerCommands;
    static const QHash<QString, Entry> table = [] {
        const QList<Entry> entries = {
            {QStringLiteral("hello"), Qt::CaseSensitive,
             [](Self& self, Connection* c, const Request& r) { return Reply(self.hello(c, r, false)); }},
            {QStringLiteral("isMaster"), Qt::CaseInsensitive,
             [](Self& self, Connection* c, const Request& r) { return Reply(self.hello(c, r, true)); }},
            {QStringLiteral("ping"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request&) { return Reply(self.ok()); }},
            {QStringLiteral("endSessions"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request&) { return Reply(self.ok()); }},
            {QStringLiteral("buildInfo"), Qt::CaseInsensitive,
             [](Self& self, Connection*, const Request&) { return Reply(self.buildInfo()); }},
            {QStringLiteral("listDatabases"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.listDatabases(r)); }},
            {QStringLiteral("listCollections"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.listCollections(r)); }},
            {QStringLiteral("find"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.find(r)); }},
            {QStringLiteral("aggregate"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.aggregate(r)); }},
            {QStringLiteral("getMore"), Qt::CaseSensitive,
             [](Self& self, Connection* c, const Request& r) { return self.getMore(c, r); }},
            {QStringLiteral("killCursors"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.killCursors(r)); }},
            {QStringLiteral("insert"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.m_writes.insert(r)); }},
            {QStringLiteral("update"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.m_writes.update(r)); }},
            {QStringLiteral("delete"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.m_writes.remove(r)); }},
            {QStringLiteral("count"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.count(r)); }},
            {QStringLiteral("create"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.m_schema.create(r)); }},
            {QStringLiteral("createIndexes"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.m_schema.createIndexes(r)); }},
            {QStringLiteral("dropIndexes"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.m_schema.dropIndexes(r)); }},
            {QStringLiteral("collMod"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.m_schema.collMod(r)); }},
            {QStringLiteral("drop"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.m_schema.drop(r)); }},
            {QStringLiteral("renameCollection"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) {
                 return Reply(self.m_schema.renameCollection(r));
             }},
            {QStringLiteral("dropDatabase"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) { return Reply(self.m_schema.dropDatabase(r)); }},
            {QStringLiteral("shardCollection"), Qt::CaseSensitive,
             [](Self& self, Connection*, const Request& r) {
                 return Reply(self.m_schema.shardCollection(r));
             }},
        };
        QHash<QString, Entry> byName;
        for (const Entry& entry : entries)
            byName.insert(entry.name.toLower(), entry);
        return byName;
    }();
    const auto found = table.constFind(name.toLower());
    if (found == table.cend())
        return nullptr;
    if (found->caseSensitivity == Qt::CaseSensitive && found->name != name)
        return nullptr;
    return found->handler;
}

// A failpoint set by failNextCommand answers (or closes the connection) instead
// of the command. Returns whether one did.
bool MongoPeerCommands::answerFailpoint(Connection* connection, const Request& request) {
    const QString& name = request.name;
    for (qsizetype i = 0; i < m_failures.size(); ++i) {
        Failure& failure = m_failures[i];
        if (failure.command.compare(name, Qt::CaseInsensitive) != 0 || failure.remaining <= 0)
            continue;
        const Bson reply = failure.reply;
        if (--failure.remaining == 0)
            m_failures.removeAt(i);
        if (boolField(reply, "closeConnection")) {
            m_wire.closeConnection(connection);
            return true;
        }
        const QString broken = stringField(reply, "brokenReply");
        if (!broken.isEmpty()) {
            // The command is not run (a getMore would park and answer later on the
            // same connection): its cursor stays where it was, as on a server whose
            // reply was lost on the way.
            if (!m_wire.sendBrokenReply(connection, request, ok(), broken))
                qFatal("MongoPeer: unknown brokenReply kind %s", qPrintable(broken));
            return true;
        }
        BsonBuilder b;
        bson_iter_t it;
        if (!findField(reply, "ok", &it))
            bson_append_double(b.get(), "ok", 2, 0.0);
        View view(reply);
        bson_concat(b.get(), view.get());
        if (!findField(reply, "$clusterTime", &it))
            m_replies.appendClusterTime(b.get());
        m_wire.sendReply(connection, request, b.take());
        return true;
    }
    return false;
}

Bson MongoPeerCommands::ok() const {
    BsonBuilder b;
    return m_replies.finish(b.get());
}

Bson MongoPeerCommands::hello(Connection* connection, const Request& request, bool legacyName) const {
    BsonBuilder b;
    bson_t* d = b.get();
    const QString me = m_wire.hostAndPort();
    bson_append_bool(d, legacyName ? "ismaster" : "isWritablePrimary", -1, true);
    if (boolField(request.body, "helloOk"))
        bson_append_bool(d, "helloOk", -1, true);
    if (m_settings.replicaSet) {
        bson_append_bool(d, "secondary", -1, false);
        appendUtf8(d, "setName", m_settings.setName);
        bson_append_int32(d, "setVersion", -1, 1);
        bson_t hosts;
        bson_append_array_begin(d, "hosts", -1, &hosts);
        appendUtf8(&hosts, "0", me);
        bson_append_array_end(d, &hosts);
        appendUtf8(d, "primary", me);
        appendUtf8(d, "me", me);
        bson_oid_t election;
        bson_oid_init_from_string(&election, "7fffffff0000000000000001");
        bson_append_oid(d, "electionId", -1, &election);
        quint32 t = 0, i = 0;
        m_store.currentClusterTime(&t, &i);
        const qint64 nowMs = QDateTime::currentMSecsSinceEpoch();
        bson_t lastWrite, opTime, majority;
        bson_append_document_begin(d, "lastWrite", -1, &lastWrite);
        bson_append_document_begin(&lastWrite, "opTime", -1, &opTime);
        bson_append_timestamp(&opTime, "ts", -1, t, i);
        bson_append_int64(&opTime, "t", -1, 1);
        bson_append_document_end(&lastWrite, &opTime);
        bson_append_date_time(&lastWrite, "lastWriteDate", -1, nowMs);
        bson_append_document_begin(&lastWrite, "majorityOpTime", -1, &majority);
        bson_append_timestamp(&majority, "ts", -1, t, i);
        bson_append_int64(&majority, "t", -1, 1);
        bson_append_document_end(&lastWrite, &majority);
        bson_append_date_time(&lastWrite, "majorityWriteDate", -1, nowMs);
        bson_append_document_end(d, &lastWrite);
    }
    bson_append_int32(d, "maxBsonObjectSize", -1, MongoPeerWire::MaxBsonObjectSize);
    bson_append_int32(d, "maxMessageSizeBytes", -1, MongoPeerWire::MaxMessageSizeBytes);
    bson_append_int32(d, "maxWriteBatchSize", -1, 100000);
    bson_append_date_time(d, "localTime", -1, QDateTime::currentMSecsSinceEpoch());
    bson_append_int32(d, "logicalSessionTimeoutMinutes", -1, 30);
    bson_append_int32(d, "connectionId", -1, connection->id);
    bson_append_int32(d, "minWireVersion", -1, 0);
    bson_append_int32(d, "maxWireVersion", -1, m_settings.maxWireVersion);
    bson_append_bool(d, "readOnly", -1, false);
    return m_replies.finish(d);
}

Bson MongoPeerCommands::buildInfo() const {
    const QString version = versionForWire(m_settings.maxWireVersion);
    BsonBuilder b;
    appendUtf8(b.get(), "version", version);
    appendUtf8(b.get(), "gitVersion", QStringLiteral("0000000000000000000000000000000000000000"));
    bson_t array;
    bson_append_array_begin(b.get(), "versionArray", -1, &array);
    const QStringList parts = version.split(QLatin1Char('.'));
    for (int i = 0; i < 4; ++i)
        bson_append_int32(&array, QByteArray::number(i).constData(), -1,
                          i < parts.size() ? parts.at(i).toInt() : 0);
    bson_append_array_end(b.get(), &array);
    bson_append_int32(b.get(), "bits", -1, 64);
    bson_append_bool(b.get(), "debug", -1, false);
    bson_append_int32(b.get(), "maxBsonObjectSize", -1, MongoPeerWire::MaxBsonObjectSize);
    return m_replies.finish(b.get());
}

Bson MongoPeerCommands::listDatabases(const Request& request) const {
    QMap<QString, int> databases; // name -> collections, sorted by name
    for (const QString& name : {QStringLiteral("admin"), QStringLiteral("config"), QStringLiteral("local")})
        databases.insert(name, 1);
    for (const auto& c : m_store.collections())
        databases[c->db] += 1;
    const bool nameOnly = boolField(request.body, "nameOnly");
    const Bson filter = documentField(request.body, "filter");
    BsonBuilder b;
    bson_t array;
    bson_append_array_begin(b.get(), "databases", -1, &array);
    qint64 total = 0;
    int index = 0;
    for (auto it = databases.cbegin(); it != databases.cend(); ++it) {
        BsonBuilder entry;
        appendUtf8(entry.get(), "name", it.key());
        const qint64 size = qint64(it.value()) * 8192;
        if (!nameOnly) {
            bson_append_int64(entry.get(), "sizeOnDisk", -1, size);
            bson_append_bool(entry.get(), "empty", -1, false);
        }
        const Bson doc = entry.take();
        if (!MongoPeerMatcher::matches(doc, filter))
            continue;
        total += size;
        appendDocument(&array, QByteArray::number(index++).constData(), doc);
    }
    bson_append_array_end(b.get(), &array);
    if (!nameOnly) {
        bson_append_int64(b.get(), "totalSize", -1, total);
        bson_append_int64(b.get(), "totalSizeMb", -1, total / (1024 * 1024));
    }
    return m_replies.finish(b.get());
}

Bson MongoPeerCommands::listCollections(const Request& request) const {
    const bool nameOnly = boolField(request.body, "nameOnly");
    const Bson filter = documentField(request.body, "filter");
    QList<std::shared_ptr<MongoPeerStore::Collection>> collections;
    for (const auto& c : m_store.collections()) {
        if (c->db == request.db)
            collections.append(c);
    }
    std::sort(collections.begin(), collections.end(),
              [](const auto& a, const auto& b) { return a->name < b->name; });
    QList<Bson> docs;
    for (const auto& c : std::as_const(collections)) {
        BsonBuilder e;
        appendUtf8(e.get(), "name", c->name);
        bson_append_utf8(e.get(), "type", -1, c->isView ? "view" : "collection", -1);
        if (!nameOnly) {
            bson_t options, info;
            bson_append_document_begin(e.get(), "options", -1, &options);
            if (c->isView) {
                appendUtf8(&options, "viewOn", c->viewOn);
                appendArray(&options, "pipeline", c->pipeline);
            }
            bson_append_document_end(e.get(), &options);
            bson_append_document_begin(e.get(), "info", -1, &info);
            bson_append_bool(&info, "readOnly", -1, c->isView);
            if (!c->isView)
                bson_append_binary(&info, "uuid", -1, BSON_SUBTYPE_UUID,
                                   reinterpret_cast<const uint8_t*>(c->uuid.constData()), 16);
            bson_append_document_end(e.get(), &info);
            if (!c->isView) {
                bson_t idIndex, key;
                bson_append_document_begin(e.get(), "idIndex", -1, &idIndex);
                bson_append_int32(&idIndex, "v", -1, 2);
                bson_append_document_begin(&idIndex, "key", -1, &key);
                bson_append_int32(&key, "_id", -1, 1);
                bson_append_document_end(&idIndex, &key);
                bson_append_utf8(&idIndex, "name", -1, "_id_", -1);
                bson_append_document_end(e.get(), &idIndex);
            }
        }
        const Bson doc = e.take();
        if (MongoPeerMatcher::matches(doc, filter))
            docs.append(doc);
    }
    // The whole list fits in the first batch: a cursor id of 0 tells the driver so.
    MongoPeerCursors::Cursor cursor;
    cursor.ns = request.db + QStringLiteral(".$cmd.listCollections");
    return m_cursors.reply(cursor, docs, true, 0);
}

Bson MongoPeerCommands::find(const Request& request) {
    const QString coll = stringField(request.body, "find");
    QList<Bson> viewStages;
    QList<Bson> docs = m_store.collectionDocuments(request.db, coll, &viewStages);
    QString error;
    docs = MongoPeerMatcher::runPipeline(docs, viewStages, &error);
    const Bson filter = documentField(request.body, "filter");
    QList<Bson> selected;
    for (const Bson& doc : std::as_const(docs)) {
        if (MongoPeerMatcher::matches(doc, filter))
            selected.append(doc);
    }
    MongoPeerMatcher::sort(&selected, documentField(request.body, "sort"));
    const qint64 skip = intField(request.body, "skip").value_or(0);
    selected.remove(0, std::min<qsizetype>(skip, selected.size()));
    qint64 limit = intField(request.body, "limit").value_or(0);
    bool singleBatch = boolField(request.body, "singleBatch");
    if (limit < 0) {
        limit = -limit;
        singleBatch = true;
    }
    if (limit > 0 && selected.size() > limit)
        selected.resize(limit);
    const Bson projection = documentField(request.body, "projection");
    for (Bson& doc : selected)
        doc = MongoPeerMatcher::project(doc, projection);
    return m_cursors.openFind(request.db + QLatin1Char('.') + coll, selected,
                              MongoPeerCursors::batchSizeOf(request.body, nullptr), singleBatch);
}

Bson MongoPeerCommands::aggregate(const Request& request) {
    bson_iter_t it;
    if (!findField(request.body, "pipeline", &it) || !BSON_ITER_HOLDS_ARRAY(&it))
        return m_replies.error(14, QStringLiteral("TypeMismatch"),
                               QStringLiteral("'pipeline' option must be specified as an array"));
    const QList<Bson> stages = arrayDocuments(&it);
    if (documentField(request.body, "cursor").isAbsent() && !boolField(request.body, "explain"))
        return m_replies.error(
            9, QStringLiteral("FailedToParse"),
            QStringLiteral("The 'cursor' option is required, except for aggregate with the explain "
                           "argument"));
    for (qsizetype i = 1; i < stages.size(); ++i) {
        if (firstKey(stages.at(i)) == QLatin1String("$changeStream"))
            return m_replies.error(
                40602, QStringLiteral("Location40602"),
                QStringLiteral("$changeStream is only valid as the first stage in a pipeline"));
    }
    QString coll;
    if (findField(request.body, "aggregate", &it) && BSON_ITER_HOLDS_UTF8(&it))
        coll = iterString(&it);
    if (!stages.isEmpty() && firstKey(stages.first()) == QLatin1String("$changeStream"))
        return m_changeStreams.open(request, coll, stages);
    if (coll.isEmpty())
        return m_replies.error(
            73, QStringLiteral("InvalidNamespace"),
            QStringLiteral("{aggregate: 1} is not valid for '%1'; a collection is required.")
                .arg(stages.isEmpty() ? QString() : firstKey(stages.first())));
    QList<Bson> viewStages;
    const QList<Bson> docs = m_store.collectionDocuments(request.db, coll, &viewStages);
    QString unknown;
    const QList<Bson> result = MongoPeerMatcher::runPipeline(docs, viewStages + stages, &unknown);
    if (!unknown.isEmpty())
        return m_replies.error(40324, QStringLiteral("Location40324"),
                               QStringLiteral("Unrecognized pipeline stage name: '%1'").arg(unknown));
    return m_cursors.openFind(request.db + QLatin1Char('.') + coll, result,
                              MongoPeerCursors::batchSizeOf(request.body, "cursor"), false);
}

std::optional<Bson> MongoPeerCommands::getMore(Connection* connection, const Request& request) {
    bson_iter_t it;
    const qint64 id = findField(request.body, "getMore", &it) ? bson_iter_as_int64(&it) : 0;
    MongoPeerCursors::Cursor* cursor = m_cursors.find(id);
    if (!cursor)
        return m_replies.error(43, QStringLiteral("CursorNotFound"),
                               QStringLiteral("cursor id %1 not found").arg(id));
    const int batchSize = MongoPeerCursors::batchSizeOf(request.body, nullptr);
    if (cursor->kind == MongoPeerCursors::Cursor::Kind::Find)
        return m_cursors.findGetMore(*cursor, batchSize);
    Bson reply;
    if (!m_changeStreams.getMore(connection, request, *cursor, batchSize, &reply))
        return std::nullopt;
    return reply;
}

Bson MongoPeerCommands::killCursors(const Request& request) {
    bson_iter_t it, child;
    QList<qint64> killed, notFound;
    if (findField(request.body, "cursors", &it) && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &child)) {
        while (bson_iter_next(&child)) {
            const qint64 id = bson_iter_as_int64(&child);
            if (m_cursors.erase(id))
                killed.append(id);
            else
                notFound.append(id);
        }
    }
    BsonBuilder b;
    const auto appendIds = [&](const char* key, const QList<qint64>& ids) {
        bson_t array;
        bson_append_array_begin(b.get(), key, -1, &array);
        for (qsizetype i = 0; i < ids.size(); ++i)
            bson_append_int64(&array, QByteArray::number(i).constData(), -1, ids.at(i));
        bson_append_array_end(b.get(), &array);
    };
    appendIds("cursorsKilled", killed);
    appendIds("cursorsNotFound", notFound);
    appendIds("cursorsAlive", {});
    appendIds("cursorsUnknown", {});
    const Bson reply = m_replies.finish(b.get());
    m_changeStreams.wakeWaitingGetMores(); // a parked getMore on a killed cursor gets CursorKilled
    return reply;
}

Bson MongoPeerCommands::count(const Request& request) const {
    const QString coll = stringField(request.body, "count");
    QList<Bson> viewStages;
    QList<Bson> docs = m_store.collectionDocuments(request.db, coll, &viewStages);
    docs = MongoPeerMatcher::runPipeline(docs, viewStages, nullptr);
    const Bson query = documentField(request.body, "query");
    const qsizetype n = std::count_if(docs.cbegin(), docs.cend(),
                                      [&](const Bson& d) { return MongoPeerMatcher::matches(d, query); });
    BsonBuilder b;
    bson_append_int32(b.get(), "n", -1, int(n));
    return m_replies.finish(b.get());
}

} // namespace tw::test

#include "MongoPushDown.h"

#include "model/Operation.h"

#include <cstring>

namespace tw {

namespace {

// Field names only Tidewatch puts into the event document: a server-side $match on
// them would drop everything. Descends through $and/$or/$nor/$not; paths inside
// $elemMatch are relative to an array element and cannot name them.
bool namesLocalField(const bson_t* query, bool isArray = false) {
    for (const bson_iter_t& field : BsonFields(query)) {
        const char* key = bson_iter_key(&field);
        const bool isOperator = key[0] == '$';
        if (!isArray && !isOperator) {
            const char* dot = strchr(key, '.');
            const size_t len = dot ? size_t(dot - key) : strlen(key);
            for (const char* local : {"seq", "source", "reason"})
                if (len == strlen(local) && !strncmp(key, local, len))
                    return true;
        }
        bson_t child;
        if ((isArray || isOperator) && iterView(&field, &child) &&
            namesLocalField(&child, BSON_ITER_HOLDS_ARRAY(&field)))
            return true;
    }
    return false;
}

// `filter`, limited to events that are no data change.
Bson schemaOnly(const Bson& filter) {
    BsonBuilder notData;
    bson_t condition, names;
    bson_append_document_begin(notData.get(), "operationType", 13, &condition);
    bson_append_array_begin(&condition, "$nin", 4, &names);
    const char* index[] = {"0", "1", "2", "3"};
    int i = 0;
    for (const Operation op : {Operation::Insert, Operation::Update, Operation::Replace, Operation::Delete}) {
        const QByteArray name = operationName(op);
        bson_append_utf8(&names, index[i++], 1, name.constData(), int(name.size()));
    }
    bson_append_array_end(&condition, &names);
    bson_append_document_end(notData.get(), &condition);
    if (filter.isAbsent() || filter.isEmptyDocument())
        return notData.take();
    BsonBuilder b;
    bson_t conditions;
    bson_append_array_begin(b.get(), "$and", 4, &conditions);
    appendDocument(&conditions, "0", notData.take());
    appendDocument(&conditions, "1", filter);
    bson_append_array_end(b.get(), &conditions);
    return b.take();
}

} // namespace

Bson MongoPushDown::unionMatch(const QList<Bson>& filters) {
    QList<Bson> distinct;
    for (const Bson& filter : filters) {
        bson_t view;
        if (!filter.view(&view) || bson_empty(&view) || namesLocalField(&view))
            return {}; // someone wants everything, or something the server cannot see
        if (!distinct.contains(filter))
            distinct.append(filter);
    }
    if (distinct.isEmpty())
        return {};
    if (distinct.size() == 1)
        return distinct.first();
    BsonBuilder b;
    bson_t array;
    bson_append_array_begin(b.get(), "$or", 3, &array);
    for (int i = 0; i < distinct.size(); ++i) {
        const QByteArray index = QByteArray::number(i);
        appendDocument(&array, index.constData(), distinct.at(i));
    }
    bson_append_array_end(b.get(), &array);
    return b.take();
}

Bson MongoPushDown::matchFor(const Namespace& scope, const QList<WatchOptions::Reader>& readers) {
    // Nobody subscribed: everything is journaled, so a subscription made later can replay it.
    if (readers.isEmpty())
        return {};
    QList<Bson> terms;
    for (const WatchOptions::Reader& reader : readers) {
        const Bson given = reader.matchesEverything ? Bson::empty() : reader.filter;
        const Bson filter = reader.schemaOnly ? schemaOnly(given) : given;
        if (reader.ns == scope) {
            terms.append(filter);
            continue;
        }
        // Narrower than the watch: only its own namespace, and only what it matches.
        BsonBuilder b;
        bson_t conditions;
        bson_append_array_begin(b.get(), "$and", 4, &conditions);
        BsonBuilder where;
        const QByteArray db = reader.ns.db.toUtf8(), coll = reader.ns.coll.toUtf8();
        bson_append_utf8(where.get(), "ns.db", 5, db.constData(), int(db.size()));
        if (!coll.isEmpty())
            bson_append_utf8(where.get(), "ns.coll", 7, coll.constData(), int(coll.size()));
        appendDocument(&conditions, "0", where.take());
        appendDocument(&conditions, "1", filter);
        bson_append_array_end(b.get(), &conditions);
        terms.append(b.take());
    }
    return unionMatch(terms);
}

Bson MongoPushDown::matchOf(const Namespace& scope, const WatchOptions& options) {
    return options.match.isAbsent() ? matchFor(scope, options.readers) : options.match;
}

} // namespace tw

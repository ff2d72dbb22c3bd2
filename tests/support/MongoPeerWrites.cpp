#include "MongoPeerWrites.h"

#include "MongoPeerBson.h"
#include "MongoPeerMatcher.h"
#include "MongoPeerReplies.h"
#include "MongoPeerSettings.h"
#include "MongoPeerStore.h"

#include <algorithm>

namespace tw::test {

using namespace peerbson;

namespace {

// An ordered list of top-level fields, for building update results.
struct Fields {
    QList<QByteArray> keys;
    QList<Bson> values; // each {"v": value}

    static Fields from(const Bson& doc) {
        Fields f;
        View view(doc);
        bson_iter_t it;
        if (view.isValid() && bson_iter_init(&it, view.get())) {
            while (bson_iter_next(&it))
                f.set(bson_iter_key(&it), &it);
        }
        return f;
    }
    void set(const QByteArray& key, const bson_iter_t* valueIt) {
        BsonBuilder b;
        bson_append_iter(b.get(), "v", 1, valueIt);
        setWrapped(key, b.take());
    }
    void setWrapped(const QByteArray& key, const Bson& wrapped) {
        const qsizetype i = keys.indexOf(key);
        if (i >= 0) {
            values[i] = wrapped;
        } else {
            keys.append(key);
            values.append(wrapped);
        }
    }
    bool remove(const QByteArray& key) {
        const qsizetype i = keys.indexOf(key);
        if (i < 0)
            return false;
        keys.removeAt(i);
        values.removeAt(i);
        return true;
    }
    Bson build() const {
        BsonBuilder b;
        for (qsizetype i = 0; i < keys.size(); ++i) {
            bson_iter_t it;
            if (findField(values.at(i), "v", &it))
                bson_append_iter(b.get(), keys.at(i).constData(), int(keys.at(i).size()), &it);
        }
        return b.take();
    }
};

Bson idKey(const Bson& doc) {
    BsonBuilder key;
    bson_iter_t it;
    if (findField(doc, "_id", &it))
        bson_append_iter(key.get(), "_id", 3, &it);
    return key.take();
}

Bson changeEvent(const char* operationType, const QString& db, const QString& coll, const Bson& documentKey) {
    BsonBuilder b;
    bson_append_utf8(b.get(), "operationType", -1, operationType, -1);
    bson_t ns;
    bson_append_document_begin(b.get(), "ns", -1, &ns);
    appendUtf8(&ns, "db", db);
    appendUtf8(&ns, "coll", coll);
    bson_append_document_end(b.get(), &ns);
    appendDocument(b.get(), "documentKey", documentKey);
    return b.take();
}

Bson withField(const Bson& doc, const char* key, const Bson& value) {
    BsonBuilder b;
    View view(doc);
    bson_concat(b.get(), view.get());
    appendDocument(b.get(), key, value);
    return b.take();
}

bool sameId(const Bson& a, const Bson& b) {
    return idKey(a) == idKey(b);
}

// Applies an update document (operators $set/$unset/$inc on top-level fields, or
// a replacement) to `doc`. Fills the update description for change events.
bool applyUpdate(const Bson& doc, const Bson& update, Bson* result, Bson* updatedFields,
                 QList<QByteArray>* removedFields, bool* replacement, QString* error) {
    const QString first = firstKey(update);
    *replacement = !first.startsWith(QLatin1Char('$'));
    if (*replacement) {
        BsonBuilder b;
        bson_iter_t it;
        if (!findField(update, "_id", &it) && findField(doc, "_id", &it))
            bson_append_iter(b.get(), "_id", 3, &it);
        View view(update);
        bson_concat(b.get(), view.get());
        *result = b.take();
        return true;
    }
    Fields fields = Fields::from(doc);
    BsonBuilder updated;
    View spec(update);
    bson_iter_t op;
    bson_iter_init(&op, spec.get());
    while (bson_iter_next(&op)) {
        const QByteArrayView name(bson_iter_key(&op));
        bson_iter_t field;
        if (!BSON_ITER_HOLDS_DOCUMENT(&op) || !bson_iter_recurse(&op, &field)) {
            *error = QStringLiteral("Modifiers operate on fields but we found another type instead");
            return false;
        }
        while (bson_iter_next(&field)) {
            const QByteArray key(bson_iter_key(&field));
            if (name == "$set") {
                fields.set(key, &field);
                bson_append_iter(updated.get(), key.constData(), int(key.size()), &field);
            } else if (name == "$unset") {
                if (fields.remove(key))
                    removedFields->append(key);
            } else if (name == "$inc") {
                const qsizetype i = fields.keys.indexOf(key);
                bson_iter_t current;
                double sum = bson_iter_as_double(&field);
                bool integral = !BSON_ITER_HOLDS_DOUBLE(&field);
                if (i >= 0 && findField(fields.values.at(i), "v", &current)) {
                    sum += bson_iter_as_double(&current);
                    integral = integral && !BSON_ITER_HOLDS_DOUBLE(&current);
                }
                BsonBuilder v;
                if (integral)
                    bson_append_int64(v.get(), "v", 1, qint64(sum));
                else
                    bson_append_double(v.get(), "v", 1, sum);
                const Bson wrapped = v.take();
                fields.setWrapped(key, wrapped);
                bson_iter_t value;
                findField(wrapped, "v", &value);
                bson_append_iter(updated.get(), key.constData(), int(key.size()), &value);
            } else {
                *error = QStringLiteral("Unknown modifier: %1").arg(QString::fromUtf8(name.toByteArray()));
                return false;
            }
        }
    }
    *result = fields.build();
    *updatedFields = updated.take();
    return true;
}

} // namespace

MongoPeerWrites::MongoPeerWrites(const MongoPeerSettings& settings, MongoPeerStore& store,
                                 const MongoPeerReplies& replies)
    : m_settings(settings)
    , m_store(store)
    , m_replies(replies) {}

bool MongoPeerWrites::producesChanges() const {
    return m_settings.writesProduceChanges && m_settings.changeStreamsAvailable();
}

Bson MongoPeerWrites::insert(const Request& request) {
    const QString coll = stringField(request.body, "insert");
    m_store.createCollection(request.db, coll);
    const auto collection = m_store.collection(request.db, coll);
    bson_iter_t it;
    QList<Bson> docs;
    if (findField(request.body, "documents", &it))
        docs = arrayDocuments(&it);
    const bool ordered = !findField(request.body, "ordered", &it) || bson_iter_as_bool(&it);
    int n = 0;
    QList<Bson> writeErrors;
    for (qsizetype index = 0; index < docs.size(); ++index) {
        Bson doc = docs.at(index);
        if (!findField(doc, "_id", &it)) {
            BsonBuilder b;
            bson_oid_t oid;
            bson_oid_init(&oid, nullptr);
            bson_append_oid(b.get(), "_id", 3, &oid);
            View view(doc);
            bson_concat(b.get(), view.get());
            doc = b.take();
        }
        const bool duplicate = std::any_of(collection->documents.cbegin(), collection->documents.cend(),
                                           [&](const Bson& existing) { return sameId(existing, doc); });
        if (duplicate) {
            BsonBuilder e;
            bson_append_int32(e.get(), "index", -1, int(index));
            bson_append_int32(e.get(), "code", -1, 11000);
            appendUtf8(e.get(), "errmsg",
                       QStringLiteral("E11000 duplicate key error collection: %1.%2 index: _id_ dup key: %3")
                           .arg(request.db, coll, QString::fromUtf8(idKey(doc).toJson())));
            writeErrors.append(e.take());
            if (ordered)
                break;
            continue;
        }
        collection->documents.append(doc);
        ++n;
        if (producesChanges())
            m_store.appendChange(
                request.db, coll,
                withField(changeEvent("insert", request.db, coll, idKey(doc)), "fullDocument", doc), {}, doc);
    }
    BsonBuilder b;
    bson_append_int32(b.get(), "n", -1, n);
    if (!writeErrors.isEmpty())
        appendArray(b.get(), "writeErrors", writeErrors);
    return m_replies.finish(b.get());
}

Bson MongoPeerWrites::update(const Request& request) {
    const QString coll = stringField(request.body, "update");
    m_store.createCollection(request.db, coll);
    const auto collection = m_store.collection(request.db, coll);
    bson_iter_t it;
    QList<Bson> updates;
    if (findField(request.body, "updates", &it))
        updates = arrayDocuments(&it);
    int n = 0, modified = 0;
    QList<Bson> upserted, writeErrors;
    for (qsizetype index = 0; index < updates.size(); ++index) {
        const Bson& spec = updates.at(index);
        const Bson query = documentField(spec, "q");
        bson_iter_t u;
        if (!findField(spec, "u", &u) || !BSON_ITER_HOLDS_DOCUMENT(&u)) {
            return m_replies.error(9, QStringLiteral("FailedToParse"),
                                   QStringLiteral("the peer supports only document updates, not pipelines"));
        }
        const Bson update = iterDocument(&u);
        const bool multi = boolField(spec, "multi");
        bool matchedAny = false;
        for (Bson& doc : collection->documents) {
            if (!MongoPeerMatcher::matches(doc, query))
                continue;
            matchedAny = true;
            Bson result, updatedFields;
            QList<QByteArray> removed;
            bool replacement = false;
            QString error;
            if (!applyUpdate(doc, update, &result, &updatedFields, &removed, &replacement, &error)) {
                BsonBuilder e;
                bson_append_int32(e.get(), "index", -1, int(index));
                bson_append_int32(e.get(), "code", -1, 9);
                appendUtf8(e.get(), "errmsg", error);
                writeErrors.append(e.take());
                break;
            }
            ++n;
            const Bson before = doc;
            if (!(result == doc))
                ++modified;
            doc = result;
            if (producesChanges()) {
                if (replacement) {
                    m_store.appendChange(request.db, coll,
                                         withField(changeEvent("replace", request.db, coll, idKey(result)),
                                                   "fullDocument", result),
                                         before, result);
                } else {
                    BsonBuilder desc;
                    appendDocument(desc.get(), "updatedFields",
                                   updatedFields.isAbsent() ? Bson::empty() : updatedFields);
                    bson_t removedArray, truncated;
                    bson_append_array_begin(desc.get(), "removedFields", -1, &removedArray);
                    for (qsizetype r = 0; r < removed.size(); ++r)
                        bson_append_utf8(&removedArray, QByteArray::number(r).constData(), -1,
                                         removed.at(r).constData(), int(removed.at(r).size()));
                    bson_append_array_end(desc.get(), &removedArray);
                    bson_append_array_begin(desc.get(), "truncatedArrays", -1, &truncated);
                    bson_append_array_end(desc.get(), &truncated);
                    m_store.appendChange(request.db, coll,
                                         withField(changeEvent("update", request.db, coll, idKey(result)),
                                                   "updateDescription", desc.take()),
                                         before, result);
                }
            }
            if (!multi)
                break;
        }
        if (!matchedAny && boolField(spec, "upsert")) {
            Bson base = Bson::empty();
            Bson result, updatedFields;
            QList<QByteArray> removed;
            bool replacement = false;
            QString error;
            // Equality fields of the query seed the new document, as on the server.
            Fields seed = Fields::from(query);
            for (qsizetype k = seed.keys.size() - 1; k >= 0; --k) {
                bson_iter_t v;
                if (seed.keys.at(k).startsWith('$') || !findField(seed.values.at(k), "v", &v) ||
                    MongoPeerMatcher::isOperatorDocument(&v))
                    seed.remove(seed.keys.at(k));
            }
            base = seed.build();
            if (!applyUpdate(base, update, &result, &updatedFields, &removed, &replacement, &error))
                continue;
            if (!findField(result, "_id", &it)) {
                BsonBuilder b;
                bson_oid_t oid;
                bson_oid_init(&oid, nullptr);
                bson_append_oid(b.get(), "_id", 3, &oid);
                View view(result);
                bson_concat(b.get(), view.get());
                result = b.take();
            }
            collection->documents.append(result);
            ++n;
            BsonBuilder up;
            bson_append_int32(up.get(), "index", -1, int(index));
            findField(result, "_id", &it);
            bson_append_iter(up.get(), "_id", 3, &it);
            upserted.append(up.take());
            if (producesChanges())
                m_store.appendChange(
                    request.db, coll,
                    withField(changeEvent("insert", request.db, coll, idKey(result)), "fullDocument", result),
                    {}, result);
        }
    }
    BsonBuilder b;
    bson_append_int32(b.get(), "n", -1, n);
    bson_append_int32(b.get(), "nModified", -1, modified);
    if (!upserted.isEmpty())
        appendArray(b.get(), "upserted", upserted);
    if (!writeErrors.isEmpty())
        appendArray(b.get(), "writeErrors", writeErrors);
    return m_replies.finish(b.get());
}

Bson MongoPeerWrites::remove(const Request& request) {
    const QString coll = stringField(request.body, "delete");
    const auto collection = m_store.collection(request.db, coll);
    bson_iter_t it;
    QList<Bson> deletes;
    if (findField(request.body, "deletes", &it))
        deletes = arrayDocuments(&it);
    int n = 0;
    for (const Bson& spec : std::as_const(deletes)) {
        if (!collection)
            break;
        const Bson query = documentField(spec, "q");
        const bool one = intField(spec, "limit").value_or(0) == 1;
        for (qsizetype i = 0; i < collection->documents.size();) {
            const Bson doc = collection->documents.at(i);
            if (!MongoPeerMatcher::matches(doc, query)) {
                ++i;
                continue;
            }
            collection->documents.removeAt(i);
            ++n;
            if (producesChanges())
                m_store.appendChange(request.db, coll, changeEvent("delete", request.db, coll, idKey(doc)),
                                     doc, {});
            if (one)
                break;
        }
    }
    BsonBuilder b;
    bson_append_int32(b.get(), "n", -1, n);
    return m_replies.finish(b.get());
}

} // namespace tw::test

#include "Bson.h"

#include "ExtendedJson.h"
#include "JsonToBson.h"

namespace tw {

Bson Bson::fromRaw(QByteArray raw) {
    return Bson(std::move(raw));
}

Bson Bson::fromBsonT(const bson_t* doc) {
    if (!doc)
        return {};
    return Bson(QByteArray(reinterpret_cast<const char*>(bson_get_data(doc)), qsizetype(doc->len)));
}

Bson Bson::fromJson(QByteArrayView json, QString* error) {
    bson_t doc;
    bson_init(&doc);
    if (jsonToBsonFast(json, &doc)) {
        Bson result = fromBsonT(&doc);
        bson_destroy(&doc);
        return result;
    }
    bson_destroy(&doc);
    // Anything the fast reader leaves: libbson reads it, or says why not.
    bson_error_t err;
    if (!bson_init_from_json(&doc, json.data(), json.size(), &err)) {
        if (error)
            *error = QString::fromUtf8(err.message);
        return {};
    }
    Bson result = fromBsonT(&doc);
    bson_destroy(&doc);
    return result;
}

Bson Bson::empty() {
    bson_t doc = BSON_INITIALIZER;
    Bson result = fromBsonT(&doc);
    bson_destroy(&doc);
    return result;
}

bool Bson::view(bson_t* out) const {
    if (isAbsent())
        return false;
    return bson_init_static(out, data(), size());
}

QByteArray Bson::toJson(JsonMode mode) const {
    bson_t doc;
    if (!view(&doc))
        return QByteArrayLiteral("null");
    if (mode == JsonMode::Relaxed) {
        QByteArray out;
        out.reserve(qsizetype(size()) + qsizetype(size() / 4) + 16);
        if (appendRelaxedJson(out, &doc))
            return out;
        return QByteArrayLiteral("null");
    }
    size_t length = 0;
    char* text = mode == JsonMode::Canonical ? bson_as_canonical_extended_json(&doc, &length)
                                             : bson_as_relaxed_extended_json(&doc, &length);
    if (!text)
        return QByteArrayLiteral("null");
    QByteArray result(text, qsizetype(length));
    bson_free(text);
    return result;
}

void appendDocument(bson_t* parent, const char* key, const Bson& value) {
    bson_t doc;
    if (value.view(&doc))
        bson_append_document(parent, key, -1, &doc);
    else
        bson_append_null(parent, key, -1);
}

bool findKey(const bson_t* doc, const char* key, bson_iter_t* out) {
    return doc && bson_iter_init_find(out, doc, key);
}

QString stringAt(const bson_t* doc, const char* key) {
    bson_iter_t it;
    return findKey(doc, key, &it) ? iterString(&it) : QString();
}

qint64 intAt(const bson_t* doc, const char* key, qint64 fallback) {
    bson_iter_t it;
    if (findKey(doc, key, &it) && BSON_ITER_HOLDS_INT(&it))
        return bson_iter_as_int64(&it);
    return fallback;
}

QString iterString(const bson_iter_t* it) {
    if (!BSON_ITER_HOLDS_UTF8(it))
        return {};
    uint32_t len = 0;
    const char* s = bson_iter_utf8(it, &len);
    return QString::fromUtf8(s, qsizetype(len));
}

Bson copyDocument(const bson_iter_t* it) {
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return {};
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    bson_iter_document(it, &len, &data);
    return Bson::fromRaw(QByteArray(reinterpret_cast<const char*>(data), qsizetype(len)));
}

Bson copyContainer(const bson_iter_t* it) {
    bson_t view;
    if (!iterView(it, &view))
        return {};
    return Bson::fromRaw(
        QByteArray(reinterpret_cast<const char*>(bson_get_data(&view)), qsizetype(view.len)));
}

Namespace namespaceAt(const bson_iter_t* it) {
    Namespace ns;
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return ns;
    for (const bson_iter_t& child : BsonFields(it)) {
        const char* key = bson_iter_key(&child);
        if (!strcmp(key, "db"))
            ns.db = iterString(&child);
        else if (!strcmp(key, "coll"))
            ns.coll = iterString(&child);
    }
    return ns;
}

bool iterView(const bson_iter_t* it, bson_t* out) {
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    if (BSON_ITER_HOLDS_DOCUMENT(it))
        bson_iter_document(it, &len, &data);
    else if (BSON_ITER_HOLDS_ARRAY(it))
        bson_iter_array(it, &len, &data);
    else
        return false;
    return bson_init_static(out, data, len);
}

QByteArray iterElement(const char* key, const bson_iter_t* it) {
    bson_t one = BSON_INITIALIZER;
    bson_append_iter(&one, key, -1, it);
    QByteArray out(reinterpret_cast<const char*>(bson_get_data(&one)), qsizetype(one.len));
    bson_destroy(&one);
    return out;
}

} // namespace tw

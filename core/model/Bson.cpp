#include "Bson.h"

#include "ExtendedJson.h"

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
    bson_error_t err;
    bson_t doc;
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

} // namespace tw

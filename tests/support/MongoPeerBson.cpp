#include "MongoPeerBson.h"

Q_LOGGING_CATEGORY(lcMongoPeer, "tidewatch.test.mongopeer")

namespace tw::test::peerbson {

Bson iterDocument(const bson_iter_t* it) {
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    if (BSON_ITER_HOLDS_DOCUMENT(it))
        bson_iter_document(it, &len, &data);
    else if (BSON_ITER_HOLDS_ARRAY(it))
        bson_iter_array(it, &len, &data);
    else
        return {};
    return Bson::fromRaw(QByteArray(reinterpret_cast<const char*>(data), qsizetype(len)));
}

QString iterString(const bson_iter_t* it) {
    if (!BSON_ITER_HOLDS_UTF8(it))
        return {};
    uint32_t len = 0;
    const char* s = bson_iter_utf8(it, &len);
    return QString::fromUtf8(s, qsizetype(len));
}

bool findField(const Bson& doc, const char* key, bson_iter_t* it) {
    View view(doc);
    return view.isValid() && bson_iter_init_find(it, view.get(), key);
}

QString stringField(const Bson& doc, const char* key) {
    bson_iter_t it;
    return findField(doc, key, &it) ? iterString(&it) : QString();
}

Bson documentField(const Bson& doc, const char* key) {
    bson_iter_t it;
    return findField(doc, key, &it) ? iterDocument(&it) : Bson();
}

bool isNumber(const bson_iter_t* it) {
    return BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_INT64(it) || BSON_ITER_HOLDS_DOUBLE(it);
}

std::optional<qint64> intField(const Bson& doc, const char* key) {
    bson_iter_t it;
    if (!findField(doc, key, &it) || !isNumber(&it))
        return std::nullopt;
    return qint64(bson_iter_as_int64(&it));
}

bool boolField(const Bson& doc, const char* key) {
    bson_iter_t it;
    return findField(doc, key, &it) && bson_iter_as_bool(&it);
}

QString firstKey(const Bson& doc) {
    View view(doc);
    bson_iter_t it;
    if (!view.isValid() || !bson_iter_init(&it, view.get()) || !bson_iter_next(&it))
        return {};
    return QString::fromUtf8(bson_iter_key(&it));
}

QList<Bson> arrayDocuments(const bson_iter_t* arrayIt) {
    QList<Bson> out;
    bson_iter_t child;
    if (!BSON_ITER_HOLDS_ARRAY(arrayIt) || !bson_iter_recurse(arrayIt, &child))
        return out;
    while (bson_iter_next(&child)) {
        if (BSON_ITER_HOLDS_DOCUMENT(&child))
            out.append(iterDocument(&child));
    }
    return out;
}

void appendArray(bson_t* parent, const char* key, const QList<Bson>& docs) {
    bson_t array;
    bson_append_array_begin(parent, key, -1, &array);
    for (qsizetype i = 0; i < docs.size(); ++i)
        appendDocument(&array, QByteArray::number(i).constData(), docs.at(i));
    bson_append_array_end(parent, &array);
}

void appendUtf8(bson_t* doc, const char* key, const QString& value) {
    const QByteArray utf8 = value.toUtf8();
    bson_append_utf8(doc, key, -1, utf8.constData(), int(utf8.size()));
}

} // namespace tw::test::peerbson

#pragma once

#include "model/Bson.h"

#include <QString>

// Reading values out of BSON documents by dotted path ("cursor.firstBatch.0._id"),
// for tests that check what a MongoDB peer received or sent.
namespace tw::test {

inline Bson json(const char* text) {
    QString error;
    const Bson doc = Bson::fromJson(text, &error);
    if (doc.isAbsent())
        qFatal("bad test JSON %s: %s", text, qPrintable(error));
    return doc;
}

inline bool lookup(const Bson& doc, const char* path, bson_iter_t* out) {
    bson_t view;
    bson_iter_t it;
    return doc.view(&view) && bson_iter_init(&it, &view) && bson_iter_find_descendant(&it, path, out);
}

inline QString str(const Bson& doc, const char* path) {
    bson_iter_t it;
    if (!lookup(doc, path, &it) || !BSON_ITER_HOLDS_UTF8(&it))
        return QStringLiteral("<missing>");
    return QString::fromUtf8(bson_iter_utf8(&it, nullptr));
}

inline qint64 num(const Bson& doc, const char* path) {
    bson_iter_t it;
    return lookup(doc, path, &it) ? bson_iter_as_int64(&it) : -1;
}

inline bool has(const Bson& doc, const char* path) {
    bson_iter_t it;
    return lookup(doc, path, &it);
}

// The sub-document or array at `path` (absent when there is none).
inline Bson sub(const Bson& doc, const char* path) {
    bson_iter_t it;
    if (!lookup(doc, path, &it))
        return {};
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    if (BSON_ITER_HOLDS_DOCUMENT(&it))
        bson_iter_document(&it, &len, &data);
    else if (BSON_ITER_HOLDS_ARRAY(&it))
        bson_iter_array(&it, &len, &data);
    else
        return {};
    return Bson::fromRaw(QByteArray(reinterpret_cast<const char*>(data), qsizetype(len)));
}

} // namespace tw::test

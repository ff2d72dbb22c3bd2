#pragma once

#include <QByteArrayView>

#include <bson/bson.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

// What every fuzz target shares: cutting one input into its parts, and failing loudly.
namespace tw::fuzz {

// A broken invariant is a crash, so libFuzzer keeps the input that showed it. Not
// Q_ASSERT: the fuzz build is not a debug build.
inline void check(bool condition, const char* what) {
    if (condition)
        return;
    std::fprintf(stderr, "tidewatch fuzz: %s\n", what);
    std::abort();
}

// The input as text up to its first NUL and the bytes after it: text formats (JSON
// filters, templates) never contain a NUL, so one input carries a text and a document.
// Without a NUL, the whole input is the text and the rest is empty.
struct TextAndBytes {
    QByteArrayView text;
    QByteArrayView bytes;
};

inline TextAndBytes splitAtNul(const uint8_t* data, size_t size) {
    const QByteArrayView input(data, qsizetype(size));
    const qsizetype cut = input.indexOf('\0');
    if (cut < 0)
        return {input, {}};
    return {input.first(cut), input.sliced(cut + 1)};
}

// A read-only view of `bytes` as a BSON document when its length prefix and terminator
// are consistent (what libbson checks before anyone reads it); the fields inside may
// still be malformed, as a hostile peer's would be.
inline bool viewBson(QByteArrayView bytes, bson_t* out) {
    return !bytes.isEmpty() &&
           bson_init_static(out, reinterpret_cast<const uint8_t*>(bytes.data()), size_t(bytes.size()));
}

// Whether every element of the container `it` is on, nested ones included, can be
// walked to its end: what bson_iter_recurse and bson_iter_next accept.
inline bool walksToTheEnd(bson_iter_t* it) {
    while (bson_iter_next(it)) {
        if (BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it)) {
            // Also as a view, as Bson::view() and bson_append_document read it.
            uint32_t length = 0;
            const uint8_t* data = nullptr;
            if (BSON_ITER_HOLDS_ARRAY(it))
                bson_iter_array(it, &length, &data);
            else
                bson_iter_document(it, &length, &data);
            bson_t view;
            bson_iter_t child;
            if (!bson_init_static(&view, data, length) || !bson_iter_recurse(it, &child) ||
                !walksToTheEnd(&child))
                return false;
        } else if (BSON_ITER_HOLDS_CODEWSCOPE(it)) {
            uint32_t length = 0, scopeLength = 0;
            const uint8_t* scope = nullptr;
            bson_iter_codewscope(it, &length, &scopeLength, &scope);
            bson_t doc;
            bson_iter_t child;
            if (!bson_init_static(&doc, scope, scopeLength) || !bson_iter_init(&child, &doc) ||
                !walksToTheEnd(&child))
                return false;
        }
    }
    return it->err_off == 0;
}

// Whether every field of the document, nested ones included, is well-formed: libbson
// validates it, every container reads as a view and iterates to its end, and libbson
// renders it. All of them, because
// bson_validate (libbson 1.23) passes documents whose nested containers iteration then
// stops in, part-way (libbson's own renderer prints `"_id" : ,` for one): the fuzz
// targets found several. Such a document is malformed, and only the absence of a
// crash is asked of the code that reads it.
inline bool isWellFormed(const bson_t* doc) {
    size_t offset = 0;
    if (!bson_validate(doc, BSON_VALIDATE_NONE, &offset))
        return false;
    bson_iter_t it;
    if (!bson_iter_init(&it, doc) || !walksToTheEnd(&it))
        return false;
    char* json = bson_as_canonical_extended_json(doc, nullptr);
    bson_free(json);
    return json != nullptr;
}

} // namespace tw::fuzz

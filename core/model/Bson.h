#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <QMetaType>
#include <QString>

#include "model/Namespace.h"

#include <bson/bson.h>

namespace tw {

// An immutable BSON document held as its raw bytes in an implicitly shared
// QByteArray: cheap to copy and safe to hand across threads. A default-constructed
// Bson is "absent" (no document), which is different from an empty document {}.
class Bson {
public:
    enum class JsonMode { Relaxed, Canonical };

    Bson() = default;
    static Bson fromRaw(QByteArray raw);      // raw must be a valid BSON document
    static Bson fromBsonT(const bson_t* doc); // copies
    static Bson fromJson(QByteArrayView json, QString* error = nullptr);
    static Bson empty(); // {}

    bool isAbsent() const { return m_raw.isEmpty(); }
    bool isEmptyDocument() const { return m_raw.size() == 5; }
    const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(m_raw.constData()); }
    size_t size() const { return size_t(m_raw.size()); }
    const QByteArray& raw() const { return m_raw; }

    // Initialises *out as a read-only view on these bytes (bson_init_static). The view
    // stays valid while this Bson (or a copy of it) lives. Returns false when absent.
    bool view(bson_t* out) const;

    // Extended JSON v2, one line. Absent renders as "null".
    QByteArray toJson(JsonMode mode = JsonMode::Relaxed) const;

    friend bool operator==(const Bson& a, const Bson& b) { return a.m_raw == b.m_raw; }

private:
    explicit Bson(QByteArray raw)
        : m_raw(std::move(raw)) {}
    QByteArray m_raw;
};

// Appends `value` under `key` as a sub-document (or null when absent).
void appendDocument(bson_t* parent, const char* key, const Bson& value);

// RAII owner for a heap or stack bson_t being built.
class BsonBuilder {
public:
    BsonBuilder() { bson_init(&m_doc); }
    ~BsonBuilder() { bson_destroy(&m_doc); }
    BsonBuilder(const BsonBuilder&) = delete;
    BsonBuilder& operator=(const BsonBuilder&) = delete;
    bson_t* get() { return &m_doc; }
    Bson take() const { return Bson::fromBsonT(&m_doc); }

private:
    bson_t m_doc;
};

// --- Reading through libbson iterators ------------------------------------------
// One set of helpers for what every BSON reader repeats: walking the fields of a
// document, finding a key, reading a string, an integer or a sub-document. The
// filter's hot paths read the bytes themselves on purpose and do not use them.

// The fields of a document, or the elements of the document or array an iterator
// stands on, for a range-for that yields each field's iterator:
//     for (const bson_iter_t& field : BsonFields(doc))
//         use(bson_iter_key(&field), &field);
// A null or unreadable document, or an iterator on anything but a document or an
// array, yields nothing; isValid() tells that case from an empty document. Walk it
// once: it is an input range over one libbson iterator, no copy per field.
class BsonFields {
public:
    explicit BsonFields(const bson_t* doc)
        : m_valid(doc && bson_iter_init(&m_it, doc)) {}
    explicit BsonFields(const bson_iter_t* container)
        : m_valid(container && (BSON_ITER_HOLDS_DOCUMENT(container) || BSON_ITER_HOLDS_ARRAY(container)) &&
                  bson_iter_recurse(container, &m_it)) {}
    BsonFields(const BsonFields&) = delete;
    BsonFields& operator=(const BsonFields&) = delete;

    bool isValid() const { return m_valid; }

    class Iterator {
    public:
        const bson_iter_t& operator*() const { return *m_it; }
        Iterator& operator++() {
            if (!bson_iter_next(m_it))
                m_it = nullptr;
            return *this;
        }
        friend bool operator==(const Iterator& a, const Iterator& b) { return a.m_it == b.m_it; }

    private:
        friend class BsonFields;
        explicit Iterator(bson_iter_t* it)
            : m_it(it) {}
        bson_iter_t* m_it; // the range's iterator; null past the last field
    };
    Iterator begin() { return Iterator(m_valid && bson_iter_next(&m_it) ? &m_it : nullptr); }
    Iterator end() { return Iterator(nullptr); }

private:
    bson_iter_t m_it{};
    bool m_valid;
};

// Finds the top-level `key` of `doc` into *out; false when doc is null or has no such key.
bool findKey(const bson_t* doc, const char* key, bson_iter_t* out);
// The string under the top-level `key`; empty when missing or not a string.
QString stringAt(const bson_t* doc, const char* key);
// The int32 or int64 under the top-level `key`; `fallback` when missing or of
// another type.
qint64 intAt(const bson_t* doc, const char* key, qint64 fallback = 0);

// The string at `it`; empty unless it holds UTF-8.
QString iterString(const bson_iter_t* it);
// A copy of the document at `it`; absent unless it holds a document (a null
// fullDocument, say, reads as absent).
Bson copyDocument(const bson_iter_t* it);
// The same for a document or an array (an event read back from the journal keeps
// whatever container it was stored with).
Bson copyContainer(const bson_iter_t* it);
// The {db, coll} document at `it` (MongoDB's `ns` and a rename's `to`); the parts
// that are not strings read as empty.
Namespace namespaceAt(const bson_iter_t* it);
// A read-only view on the document or array at `it` (bson_init_static), valid while
// the document being iterated lives; false for any other type.
bool iterView(const bson_iter_t* it, bson_t* out);
// The raw bytes of the one-field document {key: value at `it`}: an element kept on
// its own, type and all (a document's `_id`, a high-water mark).
QByteArray iterElement(const char* key, const bson_iter_t* it);

} // namespace tw

Q_DECLARE_METATYPE(tw::Bson)

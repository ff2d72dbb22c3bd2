#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <QMetaType>
#include <QString>

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

} // namespace tw

Q_DECLARE_METATYPE(tw::Bson)

#pragma once

#include "model/Bson.h"

#include <QList>
#include <QLoggingCategory>
#include <QString>

#include <optional>

Q_DECLARE_LOGGING_CATEGORY(lcMongoPeer)

// Reading and writing the fields of command documents, shared by the parts of the
// MongoDB test peer (MongoPeer.h). Plain libbson over tw::Bson; nothing here knows
// about commands.
namespace tw::test::peerbson {

// A read-only bson_t over a Bson's bytes, valid while the Bson lives.
class View {
public:
    explicit View(const Bson& bson)
        : m_ok(bson.view(&m_doc)) {}
    const bson_t* get() const { return m_ok ? &m_doc : nullptr; }
    bool isValid() const { return m_ok; }

private:
    bson_t m_doc;
    bool m_ok = false;
};

Bson iterDocument(const bson_iter_t* it); // a document or an array, else absent
QString iterString(const bson_iter_t* it);
bool findField(const Bson& doc, const char* key, bson_iter_t* it);
QString stringField(const Bson& doc, const char* key);
Bson documentField(const Bson& doc, const char* key);
bool isNumber(const bson_iter_t* it);
// Numeric fields come as int32, int64 or double depending on the driver.
std::optional<qint64> intField(const Bson& doc, const char* key);
bool boolField(const Bson& doc, const char* key);
QString firstKey(const Bson& doc);
QList<Bson> arrayDocuments(const bson_iter_t* arrayIt);
void appendArray(bson_t* parent, const char* key, const QList<Bson>& docs);
void appendUtf8(bson_t* doc, const char* key, const QString& value);

} // namespace tw::test::peerbson

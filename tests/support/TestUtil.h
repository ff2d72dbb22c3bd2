#pragma once

#include "model/ChangeBatch.h"

#include <QByteArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRandomGenerator>

#include <iterator>
#include <QString>
#include <QStringList>

namespace tw::test {

// Runs the sqlite3 program on `path` with `sql`: a separate process writing to the
// watched file, as another application would. Returns its stderr on failure.
inline QString runSqlite3(const QString& path, const QString& sql) {
    QProcess p;
    p.start(QStringLiteral("sqlite3"), {QStringLiteral("-bail"), path, sql});
    if (!p.waitForFinished(30000))
        return QStringLiteral("sqlite3 did not finish");
    if (p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0)
        return QStringLiteral("sqlite3 failed: ") + QString::fromUtf8(p.readAllStandardError());
    return {};
}

inline QJsonObject parseJson(const QByteArray& json) {
    return QJsonDocument::fromJson(json).object();
}

// A change event with a fullDocument {_id: i, n: i, pad: <size bytes>}.
inline ChangeEvent makeEvent(const QString& source, const QString& coll, int i, int padBytes = 16) {
    ChangeEvent e;
    e.setSourceId(source);
    e.setNs(Namespace{QStringLiteral("main"), coll});
    e.setOperation(Operation::Insert);
    BsonBuilder key;
    bson_append_int32(key.get(), "_id", 3, i);
    e.setDocumentKey(key.take());
    BsonBuilder doc;
    bson_append_int32(doc.get(), "_id", 3, i);
    bson_append_int32(doc.get(), "n", 1, i);
    const QByteArray pad(padBytes, 'x');
    bson_append_utf8(doc.get(), "pad", 3, pad.constData(), int(pad.size()));
    e.setFullDocument(doc.take());
    e.setWallTimeMs(1700000000000 + i);
    return e;
}

// An update to an order whose fullDocument is about 1 KiB of BSON, as a shop's
// database holds them: a customer with an address, one to five items, tags, dates and a
// free-text note. Deterministic in `i`, and different for each `i` (names, numbers,
// prices, the note's words), so that compression figures are not flattered by
// repetition.
inline ChangeEvent makeOrderEvent(int i) {
    static const char* const kFirst[] = {"Ana",   "Bruno", "Chiara",  "Dmitri", "Elif", "Farah",  "Goran",
                                         "Hanna", "Ivo",   "Jonas",   "Keiko",  "Lena", "Mateus", "Nadia",
                                         "Oskar", "Priya", "Quentin", "Rosa",   "Sven", "Tomasz"};
    static const char* const kLast[] = {"Sousa",  "Keller", "Rossi",  "Ivanov",  "Yilmaz",
                                        "Haddad", "Novak",  "Berg",   "Horvat",  "Lund",
                                        "Tanaka", "Meyer",  "Costa",  "Petrova", "Nilsson",
                                        "Raman",  "Dubois", "Garcia", "Larsen",  "Kowalski"};
    static const char* const kCities[] = {"Lisbon", "Porto", "Berlin", "Hamburg", "Lyon",   "Nantes", "Turin",
                                          "Leeds",  "Cork",  "Ghent",  "Malmo",   "Krakow", "Brno",   "Graz"};
    static const char* const kCountries[] = {"PT", "DE", "FR", "IT", "GB", "IE",
                                             "BE", "SE", "PL", "CZ", "AT"};
    static const char* const kStatus[] = {"pending", "paid", "packed", "shipped", "delivered", "refunded"};
    static const char* const kProducts[] = {"Green tea 250 g",  "Stoneware mug", "Steel kettle 1 l",
                                            "Cup set of four",  "Paper filters", "Oak spoons",
                                            "Cast-iron teapot", "Bamboo tray",   "Linen napkins",
                                            "Honey jar 500 g",  "Grinder",       "Milk frother"};
    static const char* const kWords[] = {
        "please",    "leave",   "the",       "parcel",   "at",       "back",     "door",    "ring",
        "bell",      "twice",   "gift",      "wrap",     "fragile",  "handle",   "with",    "care",
        "deliver",   "after",   "six",       "call",     "on",       "arrival",  "no",      "plastic",
        "neighbour", "can",     "sign",      "for",      "it",       "office",   "closed",  "weekends",
        "second",    "floor",   "code",      "gate",     "is",       "birthday", "present", "do",
        "not",       "open",    "invoice",   "needed",   "company",  "name",     "on",      "receipt",
        "reuse",     "box",     "if",        "possible", "morning",  "only",     "dog",     "friendly",
        "knock",     "loudly",  "reception", "desk",     "building", "entrance", "left",    "side",
        "courier",   "already", "paid",      "duties",   "thanks"};
    QRandomGenerator rng(quint32(i) * 2654435761u + 17);
    auto pick = [&rng](const auto& list) { return list[rng.bounded(int(std::size(list)))]; };
    const QByteArray first = pick(kFirst);
    const QByteArray last = pick(kLast);

    BsonBuilder doc;
    bson_t* d = doc.get();
    bson_append_int32(d, "_id", 3, i);
    const QByteArray number = "SO-" + QByteArray::number(100000 + rng.bounded(900000));
    bson_append_utf8(d, "number", -1, number.constData(), int(number.size()));
    bson_t customer, address;
    bson_append_document_begin(d, "customer", -1, &customer);
    bson_append_int64(&customer, "id", -1, 10000 + rng.bounded(90000));
    const QByteArray name = first + ' ' + last;
    bson_append_utf8(&customer, "name", -1, name.constData(), int(name.size()));
    const QByteArray email =
        first.toLower() + '.' + last.toLower() + QByteArray::number(rng.bounded(1000)) + "@example.org";
    bson_append_utf8(&customer, "email", -1, email.constData(), int(email.size()));
    const QByteArray phone = "+351 9" + QByteArray::number(10000000 + rng.bounded(89999999));
    bson_append_utf8(&customer, "phone", -1, phone.constData(), int(phone.size()));
    bson_append_document_begin(&customer, "address", -1, &address);
    const QByteArray street = QByteArray::number(1 + rng.bounded(300)) + ' ' + pick(kLast) + " Street";
    bson_append_utf8(&address, "street", -1, street.constData(), int(street.size()));
    bson_append_utf8(&address, "city", -1, pick(kCities), -1);
    const QByteArray zip = QByteArray::number(10000 + rng.bounded(89999));
    bson_append_utf8(&address, "zip", -1, zip.constData(), int(zip.size()));
    bson_append_utf8(&address, "country", -1, pick(kCountries), -1);
    bson_append_document_end(&customer, &address);
    bson_append_document_end(d, &customer);
    bson_append_utf8(d, "status", -1, pick(kStatus), -1);
    bson_append_utf8(d, "currency", -1, "EUR", 3);
    bson_t items;
    bson_append_array_begin(d, "items", -1, &items);
    double total = 0;
    const int count = 1 + rng.bounded(5);
    for (int k = 0; k < count; ++k) {
        bson_t item;
        const QByteArray index = QByteArray::number(k);
        bson_append_document_begin(&items, index.constData(), int(index.size()), &item);
        const QByteArray sku = "SKU-" + QByteArray::number(1000 + rng.bounded(9000));
        bson_append_utf8(&item, "sku", -1, sku.constData(), int(sku.size()));
        bson_append_utf8(&item, "name", -1, pick(kProducts), -1);
        const int qty = 1 + rng.bounded(4);
        const double price = rng.bounded(100, 20000) / 100.0;
        bson_append_int32(&item, "qty", -1, qty);
        bson_append_double(&item, "price", -1, price);
        total += qty * price;
        bson_append_document_end(&items, &item);
    }
    bson_append_array_end(d, &items);
    bson_append_double(d, "total", -1, total);
    bson_t tags;
    bson_append_array_begin(d, "tags", -1, &tags);
    bson_append_utf8(&tags, "0", 1, rng.bounded(2) ? "gift" : "standard", -1);
    bson_append_utf8(&tags, "1", 1, rng.bounded(2) ? "express" : "economy", -1);
    bson_append_array_end(d, &tags);
    const qint64 created = 1763800000000 + qint64(i) * 1000 + rng.bounded(1000);
    bson_append_date_time(d, "createdAt", -1, created);
    bson_append_date_time(d, "updatedAt", -1, created + rng.bounded(3600000));
    const QByteArray tracking = "TRK" + QByteArray::number(rng.generate64(), 36).toUpper();
    bson_append_utf8(d, "tracking", -1, tracking.constData(), int(tracking.size()));
    // The note fills the document up to about 1 KiB.
    QByteArray note;
    while (doc.get()->len + note.size() < 1000)
        note.append(pick(kWords)).append(' ');
    note.chop(1);
    bson_append_utf8(d, "note", -1, note.constData(), int(note.size()));

    ChangeEvent e;
    e.setSourceId(QStringLiteral("shop"));
    e.setNs(Namespace{QStringLiteral("shop"), QStringLiteral("orders")});
    e.setOperation(Operation::Update);
    BsonBuilder key;
    bson_append_int32(key.get(), "_id", 3, i);
    e.setDocumentKey(key.take());
    e.setFullDocument(doc.take());
    e.setWallTimeMs(created);
    return e;
}

} // namespace tw::test

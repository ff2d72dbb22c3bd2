// The libbson reading helpers of model/Bson.h: walking fields, finding keys, reading
// strings, integers and sub-documents, and what each gives for a missing key or a
// value of another type.

#include "model/Bson.h"

#include <QtTest>

using namespace tw;

namespace {

Bson json(const char* text) {
    QString error;
    const Bson doc = Bson::fromJson(text, &error);
    if (doc.isAbsent())
        qFatal("bad test JSON %s: %s", text, qPrintable(error));
    return doc;
}

} // namespace

class TestBson : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void fieldsWalksTopLevelInOrder();
    void fieldsRecursesIntoDocumentsAndArrays();
    void fieldsOfNothingIsInvalidAndEmpty();
    void readsAtKey();
    void readsAtIterator();
    void elementKeepsTypeUnderNewKey();
};

void TestBson::fieldsWalksTopLevelInOrder() {
    const Bson doc = json(R"({"b": 1, "a": {"x": 2}, "c": [3]})");
    bson_t view;
    QVERIFY(doc.view(&view));
    QStringList keys;
    BsonFields fields(&view);
    QVERIFY(fields.isValid());
    for (const bson_iter_t& field : fields)
        keys.append(QString::fromUtf8(bson_iter_key(&field)));
    QCOMPARE(keys, (QStringList{QStringLiteral("b"), QStringLiteral("a"), QStringLiteral("c")}));

    // An empty document is valid and has no fields.
    const Bson empty = Bson::empty();
    QVERIFY(empty.view(&view));
    BsonFields none(&view);
    QVERIFY(none.isValid());
    QVERIFY(none.begin() == none.end());
}

void TestBson::fieldsRecursesIntoDocumentsAndArrays() {
    const Bson doc = json(R"({"d": {"x": 1, "y": 2}, "a": ["p", "q", "r"], "s": "text"})");
    bson_t view;
    QVERIFY(doc.view(&view));
    bson_iter_t it;
    QVERIFY(findKey(&view, "d", &it));
    int n = 0;
    for (const bson_iter_t& field : BsonFields(&it)) {
        QVERIFY(BSON_ITER_HOLDS_INT32(&field));
        ++n;
    }
    QCOMPARE(n, 2);
    QVERIFY(findKey(&view, "a", &it));
    QStringList elements;
    for (const bson_iter_t& element : BsonFields(&it))
        elements.append(iterString(&element));
    QCOMPARE(elements, (QStringList{QStringLiteral("p"), QStringLiteral("q"), QStringLiteral("r")}));
    // Not a container: nothing to walk.
    QVERIFY(findKey(&view, "s", &it));
    BsonFields scalar(&it);
    QVERIFY(!scalar.isValid());
    QVERIFY(scalar.begin() == scalar.end());
}

void TestBson::fieldsOfNothingIsInvalidAndEmpty() {
    BsonFields none(static_cast<const bson_t*>(nullptr));
    QVERIFY(!none.isValid());
    QVERIFY(none.begin() == none.end());
    bson_iter_t it;
    QVERIFY(!findKey(nullptr, "a", &it));
    QCOMPARE(stringAt(nullptr, "a"), QString());
    QCOMPARE(intAt(nullptr, "a", 7), qint64(7));
}

void TestBson::readsAtKey() {
    const Bson doc =
        json(R"({"s": "héllo", "i": 5, "l": {"$numberLong": "9000000000"}, "d": 1.5, "n": null})");
    bson_t view;
    QVERIFY(doc.view(&view));
    QCOMPARE(stringAt(&view, "s"), QStringLiteral("héllo"));
    QCOMPARE(stringAt(&view, "i"), QString()); // not a string
    QCOMPARE(stringAt(&view, "missing"), QString());
    QCOMPARE(intAt(&view, "i"), qint64(5));
    QCOMPARE(intAt(&view, "l"), Q_INT64_C(9000000000));
    QCOMPARE(intAt(&view, "d", -1), qint64(-1)); // a double is not an integer
    QCOMPARE(intAt(&view, "n", -1), qint64(-1));
    QCOMPARE(intAt(&view, "missing", 3), qint64(3));
}

void TestBson::readsAtIterator() {
    const Bson doc = json(R"({"d": {"x": 1}, "a": [1, 2], "n": null, "s": "v"})");
    bson_t view;
    QVERIFY(doc.view(&view));
    bson_iter_t it;
    QVERIFY(findKey(&view, "d", &it));
    QCOMPARE(copyDocument(&it), json(R"({"x": 1})"));
    QCOMPARE(iterString(&it), QString());
    bson_t child;
    QVERIFY(iterView(&it, &child));
    QCOMPARE(intAt(&child, "x"), qint64(1));

    QVERIFY(findKey(&view, "a", &it));
    QVERIFY(copyDocument(&it).isAbsent()); // an array is not a document
    QVERIFY(iterView(&it, &child));
    QCOMPARE(int(bson_count_keys(&child)), 2);

    QVERIFY(findKey(&view, "n", &it));
    QVERIFY(copyDocument(&it).isAbsent());
    QVERIFY(!iterView(&it, &child));

    QVERIFY(findKey(&view, "s", &it));
    QCOMPARE(iterString(&it), QStringLiteral("v"));
    QVERIFY(!iterView(&it, &child));
}

void TestBson::elementKeepsTypeUnderNewKey() {
    const Bson doc =
        json(R"({"_id": {"$oid": "5f0c4c7e8f1b2a3c4d5e6f70"}, "t": {"$date": "2024-01-02T03:04:05Z"}})");
    bson_t view;
    QVERIFY(doc.view(&view));
    bson_iter_t it;
    QVERIFY(findKey(&view, "_id", &it));
    QCOMPARE(Bson::fromRaw(iterElement("_id", &it)),
             json(R"({"_id": {"$oid": "5f0c4c7e8f1b2a3c4d5e6f70"}})"));
    QVERIFY(findKey(&view, "t", &it));
    QCOMPARE(Bson::fromRaw(iterElement("v", &it)), json(R"({"v": {"$date": "2024-01-02T03:04:05Z"}})"));
}

QTEST_GUILESS_MAIN(TestBson)
#include "tst_bson.moc"

#include "filter/Projection.h"

#include <QtTest>

using namespace tw;

// MongoDB's projection rules over a change event's document: one table of specs, inputs
// and the documents MongoDB's find() returns for them, and one of the specs it refuses.
class tst_Projection : public QObject {
    Q_OBJECT

private slots:
    void apply_data();
    void apply();
    void errors_data();
    void errors();
    void emptyIsNull();
    void keysShorthandDropsFullDocuments();
    void specKeepsItsText();
};

static QByteArray normalized(const QByteArray& json) {
    QString error;
    const Bson doc = Bson::fromJson(json, &error);
    if (!error.isEmpty())
        qFatal("bad test JSON %s: %s", json.constData(), qPrintable(error));
    return doc.toJson();
}

void tst_Projection::apply_data() {
    QTest::addColumn<QByteArray>("spec");
    QTest::addColumn<QByteArray>("input");
    QTest::addColumn<QByteArray>("expected");

    QTest::newRow("inclusion keeps _id")
        << QByteArray(R"({"a": 1})") << QByteArray(R"({"_id": 1, "a": 1, "b": 2})")
        << QByteArray(R"({"_id": 1, "a": 1})");
    QTest::newRow("inclusion without _id")
        << QByteArray(R"({"_id": 0, "a": 1})") << QByteArray(R"({"_id": 1, "a": 1, "b": 2})")
        << QByteArray(R"({"a": 1})");
    QTest::newRow("_id alone") << QByteArray(R"({"_id": 1})") << QByteArray(R"({"_id": 1, "a": 1})")
                               << QByteArray(R"({"_id": 1})");
    QTest::newRow("true and false") << QByteArray(R"({"a": true, "_id": false})")
                                    << QByteArray(R"({"_id": 1, "a": 1, "b": 2})")
                                    << QByteArray(R"({"a": 1})");
    QTest::newRow("one as a double") << QByteArray(R"({"b": 1.0})") << QByteArray(R"({"a": 1, "b": 2})")
                                     << QByteArray(R"({"b": 2})");
    QTest::newRow("document order, not spec order")
        << QByteArray(R"({"c": 1, "a": 1})") << QByteArray(R"({"a": 1, "b": 2, "c": 3})")
        << QByteArray(R"({"a": 1, "c": 3})");
    QTest::newRow("dotted") << QByteArray(R"({"a.b": 1})") << QByteArray(R"({"a": {"b": 1, "c": 2}, "d": 1})")
                            << QByteArray(R"({"a": {"b": 1}})");
    QTest::newRow("nested spec is dotted")
        << QByteArray(R"({"a": {"b": 1}})") << QByteArray(R"({"a": {"b": 1, "c": 2}, "d": 1})")
        << QByteArray(R"({"a": {"b": 1}})");
    QTest::newRow("two paths under one field")
        << QByteArray(R"({"a.b": 1, "a.c.d": 1})")
        << QByteArray(R"({"a": {"b": 1, "c": {"d": 2, "e": 3}, "f": 4}})")
        << QByteArray(R"({"a": {"b": 1, "c": {"d": 2}}})");
    QTest::newRow("whole sub-document")
        << QByteArray(R"({"a": 1})") << QByteArray(R"({"a": {"x": [1, 2]}, "b": 1})")
        << QByteArray(R"({"a": {"x": [1, 2]}})");
    QTest::newRow("inclusion through an array")
        << QByteArray(R"({"a.b": 1})") << QByteArray(R"({"a": [{"b": 1, "c": 2}, 3]})")
        << QByteArray(R"({"a": [{"b": 1}]})");
    QTest::newRow("inclusion through nested arrays")
        << QByteArray(R"({"a.b": 1})") << QByteArray(R"({"a": [[{"b": 1, "c": 2}, 4], {"c": 3}]})")
        << QByteArray(R"({"a": [[{"b": 1}], {}]})");
    QTest::newRow("inclusion through a scalar")
        << QByteArray(R"({"a.b": 1})") << QByteArray(R"({"a": 5, "c": 1})") << QByteArray(R"({})");
    QTest::newRow("inclusion of a missing field keeps the document")
        << QByteArray(R"({"a.b": 1})") << QByteArray(R"({"a": {"c": 1}})") << QByteArray(R"({"a": {}})");
    QTest::newRow("exclusion") << QByteArray(R"({"b": 0})") << QByteArray(R"({"_id": 1, "a": 1, "b": 2})")
                               << QByteArray(R"({"_id": 1, "a": 1})");
    QTest::newRow("exclusion dotted")
        << QByteArray(R"({"fullDocument.password": 0})")
        << QByteArray(R"({"fullDocument": {"user": "ana", "password": "x"}, "documentKey": {"_id": 1}})")
        << QByteArray(R"({"fullDocument": {"user": "ana"}, "documentKey": {"_id": 1}})");
    QTest::newRow("exclusion through an array")
        << QByteArray(R"({"a.b": 0})") << QByteArray(R"({"a": [{"b": 1, "c": 2}, 3, [{"b": 4, "d": 5}]]})")
        << QByteArray(R"({"a": [{"c": 2}, 3, [{"d": 5}]]})");
    QTest::newRow("exclusion through a scalar")
        << QByteArray(R"({"a.b": 0})") << QByteArray(R"({"a": 5, "c": 1})")
        << QByteArray(R"({"a": 5, "c": 1})");
    QTest::newRow("exclusion of _id")
        << QByteArray(R"({"_id": 0})") << QByteArray(R"({"_id": {"_data": "82"}, "a": 1})")
        << QByteArray(R"({"a": 1})");
    QTest::newRow("exclusion with _id kept")
        << QByteArray(R"({"_id": 1, "b": 0})") << QByteArray(R"({"_id": 1, "a": 1, "b": 2})")
        << QByteArray(R"({"_id": 1, "a": 1})");
    QTest::newRow("inclusion keeps seq")
        << QByteArray(R"({"documentKey": 1, "fullDocument.title": 1, "fullDocument.user_id": 1})")
        << QByteArray(R"({"seq": 5, "source": "demo", "operationType": "insert", "documentKey": {"_id": 1},
                         "fullDocument": {"_id": 1, "title": "t", "user_id": 9, "body": "long"}})")
        << QByteArray(
               R"({"seq": 5, "documentKey": {"_id": 1}, "fullDocument": {"title": "t", "user_id": 9}})");
    QTest::newRow("exclusion keeps seq")
        << QByteArray(R"({"seq": 0, "a": 0})") << QByteArray(R"({"seq": 5, "a": 1, "b": 2})")
        << QByteArray(R"({"seq": 5, "b": 2})");
    QTest::newRow("inclusion of a part of seq keeps all of it")
        << QByteArray(R"({"seq.x": 1})") << QByteArray(R"({"seq": 5, "a": 1})")
        << QByteArray(R"({"seq": 5})");
}

void tst_Projection::apply() {
    QFETCH(QByteArray, spec);
    QFETCH(QByteArray, input);
    QFETCH(QByteArray, expected);
    QString error;
    const Projection projection = Projection::fromJson(spec, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QVERIFY(!projection.isNull());
    QCOMPARE(projection.apply(Bson::fromJson(input)).toJson(), normalized(expected));
}

void tst_Projection::errors_data() {
    QTest::addColumn<QByteArray>("spec");
    QTest::addColumn<QString>("message");
    QTest::newRow("exclusion in inclusion")
        << QByteArray(R"({"fullDocument.title": 1, "fullDocument.password": 0})")
        << QStringLiteral(
               "projection: Cannot do exclusion on field fullDocument.password in inclusion projection");
    QTest::newRow("inclusion in exclusion")
        << QByteArray(R"({"a": 0, "b.c": 1})")
        << QStringLiteral("projection: Cannot do inclusion on field b.c in exclusion projection");
    QTest::newRow("_id does not decide the mode")
        << QByteArray(R"({"_id": 0, "a": 1, "b": 0})")
        << QStringLiteral("projection: Cannot do exclusion on field b in inclusion projection");
    QTest::newRow("collision below a field")
        << QByteArray(R"({"a": 1, "a.b": 1})")
        << QStringLiteral("projection: Path collision at a.b: a is projected already");
    QTest::newRow("collision above a path")
        << QByteArray(R"({"a.b": 1, "a": 1})")
        << QStringLiteral("projection: Path collision at a: a is projected already");
    QTest::newRow("collision of nested and dotted")
        << QByteArray(R"({"a": {"b": 1}, "a.b": 1})")
        << QStringLiteral("projection: Path collision at a.b: a.b is projected already");
    QTest::newRow("empty name") << QByteArray(R"({"": 1})")
                                << QStringLiteral(
                                       "projection: \"\": field names may not be empty; write a dotted "
                                       "path such as \"fullDocument.title\"");
    QTest::newRow("empty part") << QByteArray(R"({"a..b": 1})")
                                << QStringLiteral(
                                       "projection: \"a..b\": field names may not be empty; write a "
                                       "dotted path such as \"fullDocument.title\"");
    QTest::newRow("trailing dot") << QByteArray(R"({"a.": 1})")
                                  << QStringLiteral(
                                         "projection: \"a.\": field names may not be empty; write a "
                                         "dotted path such as \"fullDocument.title\"");
    QTest::newRow("dollar name") << QByteArray(R"({"$where": 1})")
                                 << QStringLiteral(
                                        "projection: \"$where\": field names may not start with '$' "
                                        "(operators such as $slice and $elemMatch are not supported)");
    QTest::newRow("operator in a sub-projection")
        << QByteArray(R"({"a": {"$slice": 1}})")
        << QStringLiteral(
               "projection: \"a.$slice\": field names may not start with '$' (operators such as $slice "
               "and $elemMatch are not supported)");
    QTest::newRow("positional") << QByteArray(R"({"a.$": 1})")
                                << QStringLiteral(
                                       "projection: \"a.$\": field names may not start with '$' "
                                       "(operators such as $slice and $elemMatch are not supported)");
    QTest::newRow("two") << QByteArray(R"({"a": 2})")
                         << QStringLiteral(
                                "projection: \"a\": must be 0, 1, true or false (expressions are not "
                                "supported)");
    QTest::newRow("string") << QByteArray(R"({"a.b": "x"})")
                            << QStringLiteral(
                                   "projection: \"a.b\": must be 0, 1, true or false (expressions are "
                                   "not supported)");
    QTest::newRow("array") << QByteArray(R"({"a": [1]})")
                           << QStringLiteral(
                                  "projection: \"a\": must be 0, 1, true or false (expressions are not "
                                  "supported)");
    QTest::newRow("null") << QByteArray(R"({"a": null})")
                          << QStringLiteral(
                                 "projection: \"a\": must be 0, 1, true or false (expressions are not "
                                 "supported)");
    QTest::newRow("empty sub-projection")
        << QByteArray(R"({"a": {}})")
        << QStringLiteral(
               "projection: an empty sub-projection is not a valid value; found an empty object at path a");
    QTest::newRow("not an object")
        << QByteArray(R"([1])")
        << QStringLiteral("projection: must be \"full\", \"keys\" or an object such as {\"documentKey\": 1, "
                          "\"fullDocument.title\": 1}");
}

void tst_Projection::errors() {
    QFETCH(QByteArray, spec);
    QFETCH(QString, message);
    QString error;
    const Projection projection = Projection::fromJson(spec, &error);
    QCOMPARE(error, message);
    QVERIFY(projection.isNull());
}

void tst_Projection::emptyIsNull() {
    QString error;
    const Projection projection = Projection::fromJson("{}", &error);
    QVERIFY(error.isEmpty());
    QVERIFY(projection.isNull());
    const Bson doc = Bson::fromJson(R"({"a": 1})");
    QCOMPARE(projection.apply(doc), doc);
}

void tst_Projection::keysShorthandDropsFullDocuments() {
    const Bson doc = Bson::fromJson(R"({"seq": 1, "operationType": "update", "documentKey": {"_id": 1},
        "updateDescription": {"updatedFields": {"a": 1}}, "fullDocument": {"_id": 1, "a": 1},
        "fullDocumentBeforeChange": {"_id": 1, "a": 0}, "_id": {"_data": "82"}})");
    QCOMPARE(Projection::keysOnly().apply(doc).toJson(),
             normalized(R"({"seq": 1, "operationType": "update", "documentKey": {"_id": 1},
        "updateDescription": {"updatedFields": {"a": 1}}, "_id": {"_data": "82"}})"));
}

void tst_Projection::specKeepsItsText() {
    QString error;
    const Projection projection =
        Projection::fromJson(R"({"fullDocument.total": 1, "documentKey": true})", &error);
    QVERIFY(error.isEmpty());
    QVERIFY(projection.isInclusion());
    QCOMPARE(projection.json(), QByteArray(R"({"fullDocument.total":1,"documentKey":true})"));
    QCOMPARE(Projection::fromJson(projection.json(), &error), projection);
}

QTEST_GUILESS_MAIN(tst_Projection)
#include "tst_projection.moc"

#include "model/Bson.h"
#include "model/ExtendedJson.h"
#include "model/JsonToBson.h"

#include "TestUtil.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>

using namespace tw;

// The relaxed renderer must say what libbson says (compared as parsed JSON, since the
// spacing differs), and its output must always be valid JSON.
class TestExtendedJson : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void agreesWithLibbson_data();
    void agreesWithLibbson();
    void exactForms_data();
    void exactForms();
    void invalidUtf8BecomesReplacementCharacter();
    void roundTripsThroughTheParser();
    void escapesAtEveryOffsetOfLongStrings();
    void fastReaderMakesWhatLibbsonMakes_data();
    void fastReaderMakesWhatLibbsonMakes();
    void fastReaderLeavesTheRestToLibbson_data();
    void fastReaderLeavesTheRestToLibbson();
};

// Strings are scanned eight bytes at a time; put each character that needs escaping
// (and a multi-byte one, and invalid UTF-8) at every offset of strings of several
// lengths, and check that parsing the output gives the string back.
void TestExtendedJson::escapesAtEveryOffsetOfLongStrings() {
    const QList<QByteArray> specials = {"\"", "\\", "\n", "\x01", "\x1f", "\x7f", "\xc3\xa9", " ", "\xff"};
    for (int length : {1, 7, 8, 9, 15, 16, 17, 40}) {
        for (int at = 0; at < length; ++at) {
            for (const QByteArray& special : specials) {
                QByteArray text(length, 'a');
                text.replace(at, 1, special);
                QByteArray json("{\"s\":");
                appendJsonString(json, text.constData(), size_t(text.size()));
                json.append('}');
                QJsonParseError error;
                const QJsonDocument parsed = QJsonDocument::fromJson(json, &error);
                QVERIFY2(error.error == QJsonParseError::NoError, json.constData());
                const QString expected = QString::fromUtf8(text); // \xff becomes U+FFFD
                QCOMPARE(parsed.object().value(QStringLiteral("s")).toString(), expected);
            }
        }
    }
}

void TestExtendedJson::agreesWithLibbson_data() {
    QTest::addColumn<QByteArray>("canonical");
    QTest::newRow("numbers") << QByteArray(
        R"({"i": {"$numberInt": "-7"}, "l": {"$numberLong": "9007199254740993"}, "d": {"$numberDouble": "3.25"}, "z": {"$numberDouble": "20.0"}})");
    QTest::newRow("strings") << QByteArray(
        R"({"s": "plain", "q": "quote \" back \\ slash", "c": "tab\tnl\ncr\r\u0001", "u": "é中😀"})");
    QTest::newRow("nesting") << QByteArray(
        R"({"a": [1, [2, {"b": null}], {"c": true, "d": false}], "e": {}, "f": []})");
    QTest::newRow("oid date ts") << QByteArray(
        R"({"o": {"$oid": "5f1a2b3c4d5e6f7081920a1b"}, "t": {"$date": {"$numberLong": "1763800000123"}}, "ts": {"$timestamp": {"t": 1700000000, "i": 3}}})");
    QTest::newRow("binary regex decimal") << QByteArray(
        R"({"b": {"$binary": {"base64": "AAEC/w==", "subType": "04"}}, "r": {"$regularExpression": {"pattern": "^a.*\"", "options": "im"}}, "n": {"$numberDecimal": "1.5E+3"}})");
    QTest::newRow("keys that need escaping") << QByteArray(R"({"we\"ird": 1, "new\nline": 2})");
    QTest::newRow("min max undefined code") << QByteArray(
        R"json({"min": {"$minKey": 1}, "max": {"$maxKey": 1}, "u": {"$undefined": true}, "c": {"$code": "x()"}})json");
}

void TestExtendedJson::agreesWithLibbson() {
    QFETCH(QByteArray, canonical);
    QString error;
    const Bson doc = Bson::fromJson(canonical, &error);
    QVERIFY2(!doc.isAbsent(), qPrintable(error));
    bson_t view;
    QVERIFY(doc.view(&view));
    size_t len = 0;
    char* theirs = bson_as_relaxed_extended_json(&view, &len);
    const QByteArray mine = doc.toJson();
    QJsonParseError e1, e2;
    const QJsonDocument a = QJsonDocument::fromJson(mine, &e1);
    const QJsonDocument b = QJsonDocument::fromJson(QByteArray(theirs, qsizetype(len)), &e2);
    bson_free(theirs);
    QVERIFY2(e1.error == QJsonParseError::NoError, qPrintable(QString::fromUtf8(mine)));
    QCOMPARE(e2.error, QJsonParseError::NoError);
    QCOMPARE(a, b);
}

void TestExtendedJson::exactForms_data() {
    QTest::addColumn<QByteArray>("canonical");
    QTest::addColumn<QByteArray>("relaxed");
    QTest::newRow("integral double keeps .0")
        << QByteArray(R"({"d": {"$numberDouble": "20.0"}})") << QByteArray(R"({"d":20.0})");
    QTest::newRow("shortest double") << QByteArray(R"({"d": {"$numberDouble": "0.1"}})")
                                     << QByteArray(R"({"d":0.1})");
    QTest::newRow("negative zero") << QByteArray(R"({"d": {"$numberDouble": "-0.0"}})")
                                   << QByteArray(R"({"d":{"$numberDouble":"-0.0"}})");
    QTest::newRow("infinity") << QByteArray(R"({"d": {"$numberDouble": "-Infinity"}})")
                              << QByteArray(R"({"d":{"$numberDouble":"-Infinity"}})");
    QTest::newRow("nan") << QByteArray(R"({"d": {"$numberDouble": "NaN"}})")
                         << QByteArray(R"({"d":{"$numberDouble":"NaN"}})");
    QTest::newRow("date with ms") << QByteArray(R"({"t": {"$date": {"$numberLong": "1763800000123"}}})")
                                  << QByteArray(R"({"t":{"$date":"2025-11-22T08:26:40.123Z"}})");
    QTest::newRow("date epoch") << QByteArray(R"({"t": {"$date": {"$numberLong": "0"}}})")
                                << QByteArray(R"({"t":{"$date":"1970-01-01T00:00:00Z"}})");
    QTest::newRow("date leap day") << QByteArray(R"({"t": {"$date": {"$numberLong": "951782400000"}}})")
                                   << QByteArray(R"({"t":{"$date":"2000-02-29T00:00:00Z"}})");
    QTest::newRow("date before 1970") << QByteArray(R"({"t": {"$date": {"$numberLong": "-1"}}})")
                                      << QByteArray(R"({"t":{"$date":{"$numberLong":"-1"}}})");
    QTest::newRow("int64 relaxed") << QByteArray(R"({"l": {"$numberLong": "-9223372036854775808"}})")
                                   << QByteArray(R"({"l":-9223372036854775808})");
    QTest::newRow("control char") << QByteArray(R"({"s": "a\u001fb"})") << QByteArray(R"({"s":"a\u001fb"})");
}

void TestExtendedJson::exactForms() {
    QFETCH(QByteArray, canonical);
    QFETCH(QByteArray, relaxed);
    QString error;
    const Bson doc = Bson::fromJson(canonical, &error);
    QVERIFY2(!doc.isAbsent(), qPrintable(error));
    QCOMPARE(doc.toJson(), relaxed);
}

void TestExtendedJson::invalidUtf8BecomesReplacementCharacter() {
    bson_t doc = BSON_INITIALIZER;
    const char bad[] = {'o', 'k', char(0xff), char(0xc3), '"'};
    bson_append_utf8(&doc, "s", 1, bad, sizeof bad);
    QByteArray out;
    QVERIFY(appendRelaxedJson(out, &doc));
    bson_destroy(&doc);
    QJsonParseError e;
    const QJsonDocument parsed = QJsonDocument::fromJson(out, &e);
    QCOMPARE(e.error, QJsonParseError::NoError);
    QVERIFY(parsed.object().value(QLatin1String("s")).toString().startsWith(QString::fromUtf16(u"ok\uFFFD")));
    QVERIFY(parsed.object().value(QLatin1String("s")).toString().endsWith(QLatin1Char('"')));
}

void TestExtendedJson::roundTripsThroughTheParser() {
    const QByteArray canonical =
        R"({"a": {"$numberLong": "5000000000"}, "b": [1.5, "x", {"c": {"$oid": "5f1a2b3c4d5e6f7081920a1b"}}], "t": {"$date": {"$numberLong": "1763800000123"}}})";
    const Bson doc = Bson::fromJson(canonical);
    const Bson again = Bson::fromJson(doc.toJson());
    QVERIFY(!again.isAbsent());
    QCOMPARE(again.toJson(Bson::JsonMode::Canonical), doc.toJson(Bson::JsonMode::Canonical));
}

// The gateway's reader (relaxedJsonToBson) on what our renderer writes: the same BSON,
// byte for byte, as libbson's parser makes of the same text.
void TestExtendedJson::fastReaderMakesWhatLibbsonMakes_data() {
    QTest::addColumn<QByteArray>("json");
    // Rendered by appendRelaxedJson from canonical input, as an ingest renders events.
    const QList<QPair<const char*, QByteArray>> canonical = {
        {"numbers",
         R"({"i": {"$numberInt": "-7"}, "big": {"$numberInt": "2147483647"}, "small": {"$numberInt": "-2147483648"}, "l": {"$numberLong": "9007199254740993"}, "l2": {"$numberLong": "2147483648"}, "l3": {"$numberLong": "-9223372036854775808"}, "d": {"$numberDouble": "3.25"}, "z": {"$numberDouble": "20.0"}, "e": {"$numberDouble": "1e+300"}, "t": {"$numberDouble": "1.5e-7"}, "p": {"$numberDouble": "0.1"}})"},
        {"strings",
         R"({"s": "plain", "q": "quote \" back \\ slash / ", "c": "tab\tnl\ncr\r\u0001\u001f\b\f", "u": "é中😀", "": "empty key"})"},
        {"nesting",
         R"({"a": [1, [2, {"b": null}], {"c": true, "d": false}], "e": {}, "f": [], "g": [[[]]]})"},
        {"oid date ts",
         R"({"o": {"$oid": "5f1a2b3c4d5e6f7081920a1b"}, "t": {"$date": {"$numberLong": "1763800000123"}}, "t0": {"$date": {"$numberLong": "0"}}, "leap": {"$date": {"$numberLong": "951782400000"}}, "last": {"$date": {"$numberLong": "253402300799999"}}, "ts": {"$timestamp": {"t": 4294967295, "i": 3}}})"},
        {"keys that need escaping", R"({"we\"ird": 1, "new\nline": 2, "é": 3})"},
    };
    for (const auto& [name, text] : canonical) {
        const Bson doc = Bson::fromJson(text);
        QVERIFY2(!doc.isAbsent(), name);
        QTest::newRow(name) << doc.toJson();
    }
    for (int i : {0, 1, 7, 42})
        QTest::newRow(qPrintable(QStringLiteral("order %1").arg(i))) << tw::test::makeOrderEvent(i).toJson();
    QTest::newRow("spaces between tokens")
        << QByteArray(" {\n \"a\" : [ 1 , 2.5 ,\t{ } ] , \"b\":{\"$oid\" : \"5F1A2B3C4D5E6F7081920A1B\"} } ");
    QTest::newRow("minus zero integer") << QByteArray(R"({"z":-0})");
    QTest::newRow("exponent forms") << QByteArray(R"({"a":1E2,"b":-2e-3,"c":0.5E+1})");
    QTest::newRow("escaped BMP characters") << QByteArray(R"({"s":"\u00e9\u4e2d\u0041"})");
}

void TestExtendedJson::fastReaderMakesWhatLibbsonMakes() {
    QFETCH(QByteArray, json);
    QString error;
    const Bson theirs = Bson::fromJson(json, &error);
    QVERIFY2(!theirs.isAbsent(), qPrintable(error));
    QByteArray mine;
    QVERIFY2(relaxedJsonToBson(json, &mine), json.constData());
    QCOMPARE(mine.toHex(), theirs.raw().toHex());
}

// What the fast reader does not take, it must refuse (and libbson then decides), never
// read some other way.
void TestExtendedJson::fastReaderLeavesTheRestToLibbson_data() {
    QTest::addColumn<QByteArray>("json");
    QTest::newRow("$numberDouble") << QByteArray(R"({"d":{"$numberDouble":"NaN"}})");
    QTest::newRow("$date before 1970") << QByteArray(R"({"t":{"$date":{"$numberLong":"-1"}}})");
    QTest::newRow("$date with offset") << QByteArray(R"({"t":{"$date":"2025-11-22T08:26:40+01:00"}})");
    QTest::newRow("$date 30 February") << QByteArray(R"({"t":{"$date":"2025-02-30T00:00:00Z"}})");
    QTest::newRow("$binary") << QByteArray(R"({"b":{"$binary":{"base64":"AAEC/w==","subType":"04"}}})");
    QTest::newRow("$numberDecimal") << QByteArray(R"({"n":{"$numberDecimal":"1.5E+3"}})");
    QTest::newRow("$ key after the first")
        << QByteArray(R"({"a":{"x":1,"$oid":"5f1a2b3c4d5e6f7081920a1b"}})");
    QTest::newRow("$oid not hex") << QByteArray(R"({"o":{"$oid":"5f1a2b3c4d5e6f7081920a1z"}})");
    QTest::newRow("$timestamp i first") << QByteArray(R"({"ts":{"$timestamp":{"i":1,"t":2}}})");
    QTest::newRow("surrogate pair") << QByteArray(R"({"s":"\ud83d\ude00"})");
    QTest::newRow("escaped NUL") << QByteArray(R"({"s":"a\u0000b"})");
    QTest::newRow("invalid UTF-8") << QByteArray("{\"s\":\"a\xff\"}");
    QTest::newRow("raw control character") << QByteArray("{\"s\":\"a\x01\"}");
    QTest::newRow("integer past int64") << QByteArray(R"({"i":9223372036854775808})");
    QTest::newRow("double past range") << QByteArray(R"({"d":1e400})");
    QTest::newRow("leading zero") << QByteArray(R"({"i":01})");
    QTest::newRow("trailing comma") << QByteArray(R"({"a":1,})");
    QTest::newRow("text after the object") << QByteArray(R"({"a":1} x)");
    QTest::newRow("not an object") << QByteArray(R"([1,2])");
    QTest::newRow("cut short") << QByteArray(R"({"a":"xy)");
    QTest::newRow("65 levels")
        << QByteArray(65, '[').prepend("{\"a\":").append(QByteArray(65, ']')).append('}');
}

void TestExtendedJson::fastReaderLeavesTheRestToLibbson() {
    QFETCH(QByteArray, json);
    QByteArray mine;
    QVERIFY(!relaxedJsonToBson(json, &mine));
}

QTEST_GUILESS_MAIN(TestExtendedJson)
#include "tst_extendedjson.moc"

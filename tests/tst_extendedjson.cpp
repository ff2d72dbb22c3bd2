#include "model/Bson.h"
#include "model/ExtendedJson.h"
#include "model/JsonToBson.h"

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
    void fastReaderMatchesLibbson_data();
    void fastReaderMatchesLibbson();
    void fastReaderReadsWhatTheWriterWrites();
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

// The fast reader gives libbson's very bytes, or leaves the text to libbson; what it
// takes is named, so a reader that took nothing would fail.
void TestExtendedJson::fastReaderMatchesLibbson_data() {
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<bool>("fast");
    QTest::newRow("plain")
        << QByteArray(
               R"({"s": "a \" \\ \n \u00e9 \ud83d\ude00", "t": true, "f": false, "n": null, "a": [1, [2, {}], []], "e": {}})")
        << true;
    QTest::newRow("int32 edges") << QByteArray(R"({"a": 2147483647, "b": -2147483648, "c": 0})") << true;
    QTest::newRow("int64 edges")
        << QByteArray(
               R"({"a": 2147483648, "b": -2147483649, "c": 9223372036854775807, "d": -9223372036854775808})")
        << true;
    QTest::newRow("doubles")
        << QByteArray(R"({"a": 20.0, "b": 0.1, "c": 1e2, "d": -1.5E-3, "e": 1.7976931348623157e308})")
        << true;
    QTest::newRow("duplicate keys") << QByteArray(R"({"a": 1, "a": 2})") << true;
    QTest::newRow("writer's wrappers")
        << QByteArray(
               R"({"o": {"$oid": "5f1a2b3c4d5e6f7081920A1B"}, "d": {"$date": "2025-11-22T08:26:40.123Z"}, )"
               R"("d0": {"$date": "1970-01-01T00:00:00Z"}, "leap": {"$date": "2000-02-29T23:59:59.999Z"}, )"
               R"("dl": {"$date": {"$numberLong": "-1"}}, "l": {"$numberLong": "-42"}, )"
               R"("nan": {"$numberDouble": "NaN"}, "inf": {"$numberDouble": "Infinity"}, )"
               R"("ninf": {"$numberDouble": "-Infinity"}, "nz": {"$numberDouble": "-0.0"}, )"
               R"("b": {"$binary": {"base64": "AAEC/w==", "subType": "04"}}, "b0": {"$binary": {"base64": "", "subType": "00"}}, )"
               R"("bu": {"$binary": {"base64": "AQID", "subType": "80"}}, "ts": {"$timestamp": {"t": 4294967295, "i": 0}}, )"
               R"("min": {"$minKey": 1}, "max": {"$maxKey": 1}, "u": {"$undefined": true}, "in": [{"$oid": "000000000000000000000000"}]})")
        << true;
    QTest::newRow("past int64") << QByteArray(R"({"a": 9223372036854775808})") << false;
    QTest::newRow("negative zero") << QByteArray(R"({"a": -0.0})") << false;
    QTest::newRow("negative zero integer") << QByteArray(R"({"a": -0})") << true;
    QTest::newRow("nul in a string") << QByteArray(R"({"a": "x\u0000y"})") << false;
    QTest::newRow("nul in a key") << QByteArray(R"({"x\u0000y": 1})") << false;
    QTest::newRow("regex") << QByteArray(
                                  R"({"r": {"$regularExpression": {"pattern": "a", "options": "mi"}}})")
                           << false;
    QTest::newRow("decimal") << QByteArray(R"({"n": {"$numberDecimal": "1.5"}})") << false;
    QTest::newRow("dbref") << QByteArray(R"({"r": {"$ref": "c", "$id": 1}})") << false;
    QTest::newRow("dollar key later") << QByteArray(R"({"a": {"x": 1, "$y": 2}})") << false;
    QTest::newRow("date of another shape")
        << QByteArray(R"({"d": {"$date": "2025-11-22T08:26:40+01:00"}})") << false;
    QTest::newRow("date before 1970") << QByteArray(R"({"d": {"$date": "1969-12-31T23:59:59Z"}})") << false;
    QTest::newRow("no such day") << QByteArray(R"({"d": {"$date": "2023-02-29T00:00:00Z"}})") << false;
    QTest::newRow("oid too short") << QByteArray(R"({"o": {"$oid": "5f1a"}})") << false;
    QTest::newRow("base64 unpadded") << QByteArray(
                                            R"({"b": {"$binary": {"base64": "AAE", "subType": "00"}}})")
                                     << false;
    // Found by fuzz_jsontobson: Qt decodes it, libbson refuses it.
    QTest::newRow("base64 with stray bits before the padding")
        << QByteArray(R"({"b": {"$binary": {"base64": "AAEC/v==", "subType": "04"}}})") << false;
    QTest::newRow("base64 with stray bits, one byte")
        << QByteArray(R"({"b": {"$binary": {"base64": "AB==", "subType": "00"}}})") << false;
    QTest::newRow("base64 with stray bits, two bytes")
        << QByteArray(R"({"b": {"$binary": {"base64": "AAB=", "subType": "00"}}})") << false;
    QTest::newRow("signed subType") << QByteArray(R"({"b": {"$binary": {"base64": "", "subType": "-1"}}})")
                                    << false;
    QTest::newRow("numberLong leading zero") << QByteArray(R"({"l": {"$numberLong": "007"}})") << false;
    QTest::newRow("top-level array") << QByteArray("[1, 2]") << false;
    QTest::newRow("trailing text") << QByteArray(R"({"a": 1} x)") << false;
    QTest::newRow("truncated") << QByteArray(R"({"a": [1, 2)") << false;
    QTest::newRow("invalid utf-8") << QByteArray("{\"a\": \"\xff\"}") << false;
    QTest::newRow("empty") << QByteArray() << false;
    QByteArray deep = "{\"a\":";
    for (int i = 0; i < 95; ++i)
        deep += "{\"a\":";
    deep += "1" + QByteArray(96, '}');
    QTest::newRow("deep") << deep << false;
}

void TestExtendedJson::fastReaderMatchesLibbson() {
    QFETCH(QByteArray, json);
    QFETCH(bool, fast);
    bson_t mine;
    bson_init(&mine);
    const bool took = jsonToBsonFast(json, &mine);
    const QByteArray mineBytes(reinterpret_cast<const char*>(bson_get_data(&mine)), qsizetype(mine.len));
    bson_destroy(&mine);
    QCOMPARE(took, fast);
    if (!took) {
        QCOMPARE(mineBytes, Bson::empty().raw()); // left empty
        return;
    }
    bson_t theirs;
    bson_error_t error;
    QVERIFY2(bson_init_from_json(&theirs, json.constData(), json.size(), &error), error.message);
    const QByteArray theirBytes(reinterpret_cast<const char*>(bson_get_data(&theirs)), qsizetype(theirs.len));
    bson_destroy(&theirs);
    QCOMPARE(mineBytes.toHex(), theirBytes.toHex());
    QCOMPARE(Bson::fromJson(json).raw(), theirBytes);
}

// What the writer writes for a document of every type it writes in wrappers the fast
// reader knows comes back byte for byte.
void TestExtendedJson::fastReaderReadsWhatTheWriterWrites() {
    bson_t doc = BSON_INITIALIZER;
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "5f1a2b3c4d5e6f7081920a1b");
    BSON_APPEND_OID(&doc, "_id", &oid);
    BSON_APPEND_INT32(&doc, "i", -7);
    BSON_APPEND_INT64(&doc, "l", 5000000000LL);
    BSON_APPEND_DOUBLE(&doc, "d", 20.0);
    BSON_APPEND_DOUBLE(&doc, "pi", 3.141592653589793);
    BSON_APPEND_DOUBLE(&doc, "nz", -0.0);
    BSON_APPEND_DOUBLE(&doc, "inf", std::numeric_limits<double>::infinity());
    BSON_APPEND_DATE_TIME(&doc, "t", 1763800000123LL);
    BSON_APPEND_DATE_TIME(&doc, "old", -86400000LL);
    BSON_APPEND_DATE_TIME(&doc, "far", 253402300799999LL);
    BSON_APPEND_TIMESTAMP(&doc, "ts", 1700000000, 3);
    const uint8_t bytes[] = {0, 1, 2, 0xff};
    BSON_APPEND_BINARY(&doc, "bin", BSON_SUBTYPE_UUID, bytes, sizeof bytes);
    BSON_APPEND_UTF8(&doc, "s", "caf\xc3\xa9 \"quoted\"\n");
    bson_t child;
    BSON_APPEND_ARRAY_BEGIN(&doc, "arr", &child);
    BSON_APPEND_NULL(&child, "0");
    BSON_APPEND_BOOL(&child, "1", true);
    BSON_APPEND_MINKEY(&child, "2");
    BSON_APPEND_MAXKEY(&child, "3");
    BSON_APPEND_UNDEFINED(&child, "4");
    bson_append_array_end(&doc, &child);
    QByteArray json;
    QVERIFY(appendRelaxedJson(json, &doc));
    const Bson original = Bson::fromBsonT(&doc);
    bson_destroy(&doc);
    bson_t read;
    bson_init(&read);
    QVERIFY2(jsonToBsonFast(json, &read), json.constData());
    const Bson back = Bson::fromBsonT(&read);
    bson_destroy(&read);
    QCOMPARE(back.toJson(Bson::JsonMode::Canonical), original.toJson(Bson::JsonMode::Canonical));
    QCOMPARE(back.raw().toHex(), original.raw().toHex());
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

QTEST_GUILESS_MAIN(TestExtendedJson)
#include "tst_extendedjson.moc"

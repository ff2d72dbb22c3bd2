#include "model/JsonWriter.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>

using namespace tw;

// The one writer for JSON that is not an event: separators, escaping, and splicing
// already-rendered values.
class TestJsonWriter : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void separatorsAtEveryLevel();
    void stringsAreEscapedAsJsonRequires_data();
    void stringsAreEscapedAsJsonRequires();
    void rawValuesAreSplicedAsTheyAre();
};

void TestJsonWriter::separatorsAtEveryLevel() {
    JsonWriter w;
    w.beginObject().key("a").number(1).key("b").beginArray();
    w.number(-2).boolean(true).null().beginObject().endObject().beginArray().endArray();
    w.endArray().key("c").boolean(false).endObject();
    QCOMPARE(w.take(), QByteArray(R"({"a":1,"b":[-2,true,null,{},[]],"c":false})"));
}

void TestJsonWriter::stringsAreEscapedAsJsonRequires_data() {
    QTest::addColumn<QString>("text");
    QTest::newRow("plain") << QStringLiteral("orders");
    QTest::newRow("quote and backslash") << QStringLiteral("a\"b\\c");
    QTest::newRow("control characters") << QStringLiteral("line\nnext\ttab\x01");
    QTest::newRow("non-ASCII") << QStringLiteral("caf\u00e9 \u65e5\u672c");
    QTest::newRow("empty") << QString();
}

void TestJsonWriter::stringsAreEscapedAsJsonRequires() {
    QFETCH(QString, text);
    JsonWriter w;
    w.beginObject().key("k\"ey").string(text).endObject();
    QJsonParseError error;
    const QJsonDocument doc = QJsonDocument::fromJson(w.bytes(), &error);
    QCOMPARE(error.error, QJsonParseError::NoError);
    QCOMPARE(doc.object().value(QStringLiteral("k\"ey")).toString(), text);
}

void TestJsonWriter::rawValuesAreSplicedAsTheyAre() {
    const QByteArray event = R"({"seq":7,"operationType":"insert"})";
    JsonWriter w;
    w.beginObject().key("changes").beginArray().raw(event).raw(event).endArray();
    w.key("next").string(QByteArray::number(7)).key("hasMore").boolean(false).endObject();
    QCOMPARE(w.take(),
             QByteArray(R"({"changes":[)") + event + ',' + event + R"(],"next":"7","hasMore":false})");
}

QTEST_GUILESS_MAIN(TestJsonWriter)
#include "tst_jsonwriter.moc"

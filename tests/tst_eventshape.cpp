#include "filter/EventShape.h"

#include <QtTest>

using namespace tw;

// Event names and shaped JSON of one committed event.
class tst_EventShape : public QObject {
    Q_OBJECT

private slots:
    void names_data();
    void names();
    void templateErrors_data();
    void templateErrors();
    void defaultShapeIsTheCommittedJson();
    void projectedAndNamed();
    void gapIsNeverShaped();
    void keys();
    void operationTypeWithLineBreakStaysOneLine_data();
    void operationTypeWithLineBreakStaysOneLine();
};

static ChangeEvent orderInsert() {
    ChangeEvent e;
    e.setSourceId(QStringLiteral("demo"));
    e.setNs(Namespace{QStringLiteral("main"), QStringLiteral("orders")});
    e.setOperation(Operation::Insert);
    e.setDocumentKey(Bson::fromJson(R"({"_id": 42})"));
    e.setFullDocument(Bson::fromJson(
        R"({"_id": 42, "title": "line\nbreak", "user_id": 7, "paid": true, "total": 12.5, "items": [1]})"));
    e.finalize(9);
    return e;
}

void tst_EventShape::names_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<QByteArray>("name");
    QTest::newRow("default") << QString() << QByteArray("insert");
    QTest::newRow("default spelled out") << QStringLiteral("{operationType}") << QByteArray("insert");
    QTest::newRow("constant") << QStringLiteral("notification_received")
                              << QByteArray("notification_received");
    QTest::newRow("namespace and operation")
        << QStringLiteral("{ns.coll}.{operationType}") << QByteArray("orders.insert");
    QTest::newRow("db") << QStringLiteral("{ns.db}/{source}") << QByteArray("main/demo");
    QTest::newRow("numbers and booleans")
        << QStringLiteral("u{fullDocument.user_id}-{fullDocument.paid}-{fullDocument.total}-{seq}")
        << QByteArray("u7-true-12.5-9");
    QTest::newRow("line breaks become spaces")
        << QStringLiteral("{fullDocument.title}") << QByteArray("line break");
    QTest::newRow("missing field renders as nothing")
        << QStringLiteral("x{fullDocument.nothing}y") << QByteArray("xy");
    QTest::newRow("array renders as nothing") << QStringLiteral("a{fullDocument.items}") << QByteArray("a");
}

void tst_EventShape::names() {
    QFETCH(QString, text);
    QFETCH(QByteArray, name);
    QString error;
    const EventTemplate compiled = EventTemplate::compile(text, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(compiled.render(orderInsert()), name);
}

void tst_EventShape::templateErrors_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<QString>("message");
    QTest::newRow("unclosed") << QStringLiteral("{ns.coll}.{operationType")
                              << QStringLiteral(
                                     "event: unclosed { at offset 10; a field is written {ns.coll}");
    QTest::newRow("unmatched") << QStringLiteral("a}b")
                               << QStringLiteral(
                                      "event: unmatched } at offset 1; a field is written {ns.coll}");
    QTest::newRow("empty field")
        << QStringLiteral("x{}")
        << QStringLiteral("event: empty field {} at offset 1; name a field such as {operationType}");
    QTest::newRow("empty part") << QStringLiteral("{ns..coll}")
                                << QStringLiteral("event: {ns..coll}: field names may not be empty");
    QTest::newRow("unknown") << QStringLiteral("{operation}")
                             << QStringLiteral(
                                    "event: {operation}: a change event has no field operation (try "
                                    "{operationType}, {ns.db}, {ns.coll}, {source} or "
                                    "{fullDocument.FIELD})");
    QTest::newRow("line break") << QStringLiteral("a\nb")
                                << QStringLiteral("event: an event name cannot contain a line break");
    QTest::newRow("carriage return") << QStringLiteral("{ns.coll}\r")
                                     << QStringLiteral("event: an event name cannot contain a line break");
    QTest::newRow("line separator") << QStringLiteral("a\u2028b")
                                    << QStringLiteral("event: an event name cannot contain a line break");
    QTest::newRow("next line") << QStringLiteral("a\u0085b")
                               << QStringLiteral("event: an event name cannot contain a line break");
    QTest::newRow("control character")
        << QStringLiteral("a\u001bb")
        << QStringLiteral("event: an event name cannot contain control character U+001b (at offset 1)");
}

void tst_EventShape::templateErrors() {
    QFETCH(QString, text);
    QFETCH(QString, message);
    QString error;
    const EventTemplate compiled = EventTemplate::compile(text, &error);
    QCOMPARE(error, message);
    QVERIFY(compiled.isDefault());
}

void tst_EventShape::defaultShapeIsTheCommittedJson() {
    const ChangeEvent e = orderInsert();
    const EventShape shape;
    QCOMPARE(shape.json(e), e.toJson());
    QCOMPARE(shape.namedJson(e), e.toJson());
    QCOMPARE(shape.eventName(e), QByteArray("insert"));
    QCOMPARE(EventShape(Projection(), EventTemplate(), true).json(e), e.toCanonicalJson());
    QVERIFY(EventShape().key() != EventShape(Projection(), EventTemplate(), true).key());
}

void tst_EventShape::projectedAndNamed() {
    QString error;
    const Projection projection =
        Projection::fromJson(R"({"documentKey": 1, "fullDocument.user_id": 1})", &error);
    const EventShape shape(projection,
                           EventTemplate::compile(QStringLiteral("order_{operationType}"), &error), false);
    const ChangeEvent e = orderInsert();
    QCOMPARE(shape.json(e), QByteArray(R"({"seq":9,"documentKey":{"_id":42},"fullDocument":{"user_id":7}})"));
    QCOMPARE(shape.namedJson(e),
             QByteArray(R"({"event":"order_insert","data":{"seq":9,"documentKey":{"_id":42},)"
                        R"("fullDocument":{"user_id":7}}})"));
    const EventShape same(Projection::fromJson(projection.json(), &error),
                          EventTemplate::compile(QStringLiteral("order_{operationType}"), &error), false);
    QCOMPARE(same.key(), shape.key());
    QCOMPARE(same.json(e), shape.json(e));
}

void tst_EventShape::gapIsNeverShaped() {
    QString error;
    const EventShape shape(Projection::fromJson(R"({"documentKey": 1})", &error),
                           EventTemplate::compile(QStringLiteral("notification_received"), &error), false);
    const ChangeEvent gap = ChangeEvent::makeGap(QStringLiteral("demo"), Namespace(), QStringLiteral("lost"));
    QCOMPARE(shape.json(gap), gap.toJson());
    QCOMPARE(shape.eventName(gap), QByteArray("gap"));
}

void tst_EventShape::keys() {
    const EventShape shape(Projection::keysOnly(), EventTemplate(), false);
    const QByteArray json = shape.json(orderInsert());
    QVERIFY(!json.contains("fullDocument"));
    QVERIFY(json.startsWith(R"({"seq":9,"source":"demo","operationType":"insert")"));
}

void tst_EventShape::operationTypeWithLineBreakStaysOneLine_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<QByteArray>("name");
    QTest::newRow("default") << QString() << QByteArray("upd te");
    QTest::newRow("in a template") << QStringLiteral("{ns.coll}.{operationType}")
                                   << QByteArray("orders.upd te");
    QTest::newRow("a field") << QStringLiteral("{fullDocument.status}") << QByteArray("p   a d");
}

// Found by fuzz_projection (corpus/fuzz_projection/operation-type-with-cr): an
// operationType is whatever the server or the journal says, and "upd\rte" went into
// the SSE event: line as it was, so a reader saw an event named "upd" and a stray line.
// Every character that ends a line somewhere (CR, LF, NEL, U+2028) becomes a space.
void tst_EventShape::operationTypeWithLineBreakStaysOneLine() {
    QFETCH(QString, text);
    QFETCH(QByteArray, name);
    const Bson change = Bson::fromJson(R"({"operationType": "upd\rte", "ns": {"db": "shop", "coll": "orders"},
        "documentKey": {"_id": 1}, "fullDocument": {"_id": 1, "status": "p\r\n\u2028a\u0085d"}})");
    const ChangeEvent e = ChangeEvent::fromDocument(change, 3);
    QCOMPARE(e.operationType(), QByteArray("upd\rte"));
    QString error;
    const EventTemplate compiled = EventTemplate::compile(text, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(compiled.render(e), name);
    QCOMPARE(EventShape(Projection(), compiled, false).eventName(e), name);
}

QTEST_GUILESS_MAIN(tst_EventShape)
#include "tst_eventshape.moc"

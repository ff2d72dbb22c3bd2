#include "model/Bson.h"
#include "model/ChangeEvent.h"
#include "sources/mongo/ChangeEventMapper.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>

using namespace tw;

// ChangeEvent's committed rendering on what a source can hand it, including the
// malformed documents the fuzz targets (tests/fuzz/) found.
class TestChangeEvent : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void committedEventIsJsonWithItsSeq();
    void renderedEventKeepsItsBytes();
    void malformedFullDocumentStillRendersAsJson();
    void serverFieldsNamedLikeOursReplayAlike_data();
    void serverFieldsNamedLikeOursReplayAlike();
};

void TestChangeEvent::committedEventIsJsonWithItsSeq() {
    ChangeEvent e;
    e.setSourceId(QStringLiteral("shop-db"));
    e.setNs({QStringLiteral("shop"), QStringLiteral("orders")});
    e.setOperation(Operation::Insert);
    e.setDocumentKey(Bson::fromJson(R"({"_id": 7})"));
    e.setFullDocument(Bson::fromJson(R"({"_id": 7, "status": "paid"})"));
    e.finalize(12);
    QJsonParseError error;
    const QJsonObject o = QJsonDocument::fromJson(e.toJson(), &error).object();
    QCOMPARE(error.error, QJsonParseError::NoError);
    QCOMPARE(o.value(QLatin1String("seq")).toInteger(), 12);
    QCOMPARE(o.value(QLatin1String("fullDocument")).toObject().value(QLatin1String("status")).toString(),
             QStringLiteral("paid"));
}

// A gateway's event (fromRendered) sends the ingest's bytes as they are, and is the
// same event as fromDocument() makes of them otherwise; bytes that are not the
// rendering of that seq are rendered again.
void TestChangeEvent::renderedEventKeepsItsBytes() {
    ChangeEvent e;
    e.setSourceId(QStringLiteral("shop-db"));
    e.setNs({QStringLiteral("shop"), QStringLiteral("orders")});
    e.setOperation(Operation::Update);
    e.setFullDocument(Bson::fromJson(R"({"_id": 7, "total": {"$numberDouble": "5.0"}})"));
    e.finalize(12);
    // Spacing the renderer never writes, so a rendering of the event again would differ.
    QByteArray json = e.toJson();
    json.replace(",\"", ", \"");
    const Bson doc = Bson::fromJson(json);
    QString error;
    const ChangeEvent kept = ChangeEvent::fromRendered(doc, 12, json, &error);
    QCOMPARE(error, QString());
    QCOMPARE(kept.toJson(), json);
    const ChangeEvent read = ChangeEvent::fromDocument(doc, 12);
    QCOMPARE(kept.document(), read.document());
    QCOMPARE(kept.ns().coll, QStringLiteral("orders"));
    QCOMPARE(kept.operationType(), QByteArray("update"));
    QVERIFY(kept.toJson() != read.toJson());
    // Another seq than the one rendered: rendered again, with the right one.
    const ChangeEvent other = ChangeEvent::fromRendered(doc, 120, json, &error);
    QCOMPARE(other.toJson(), ChangeEvent::fromDocument(doc, 120).toJson());
    QVERIFY(other.toJson().startsWith("{\"seq\":120,"));
    QCOMPARE(ChangeEvent::fromRendered(doc, 1, json, &error).toJson(),
             ChangeEvent::fromDocument(doc, 1).toJson());
}

// Found by fuzz_changeeventmapper: a change event whose fullDocument is malformed inside
// (a string claiming more bytes than its document holds; the lengths around it are
// right, so libbson hands it over) rendered as "null", and finalize() spliced the seq
// into that: {"seq":7,ull went out on every stream.
void TestChangeEvent::malformedFullDocumentStillRendersAsJson() {
    // {"s": "ab"} with the string's length set to 100.
    QByteArray inner("\x0f\x00\x00\x00\x02s\x00\x64\x00\x00\x00"
                     "ab\x00\x00",
                     15);
    BsonBuilder change;
    bson_append_utf8(change.get(), "operationType", -1, "insert", -1);
    bson_t ns;
    bson_append_document_begin(change.get(), "ns", -1, &ns);
    bson_append_utf8(&ns, "db", -1, "shop", -1);
    bson_append_utf8(&ns, "coll", -1, "orders", -1);
    bson_append_document_end(change.get(), &ns);
    bson_t full;
    QVERIFY(
        bson_init_static(&full, reinterpret_cast<const uint8_t*>(inner.constData()), size_t(inner.size())));
    bson_append_document(change.get(), "fullDocument", -1, &full);
    const Bson document = change.take();
    bson_t view;
    QVERIFY(document.view(&view));

    ChangeEvent e;
    QString error;
    QVERIFY2(ChangeEventMapper(QStringLiteral("shop-db")).map(&view, &e, &error), qPrintable(error));
    // The case that broke: the body cannot be rendered.
    QCOMPARE(e.document().toJson(), QByteArrayLiteral("null"));
    e.finalize(7);
    QJsonParseError parseError;
    const QJsonObject o = QJsonDocument::fromJson(e.toJson(), &parseError).object();
    QVERIFY2(parseError.error == QJsonParseError::NoError, e.toJson().constData());
    QCOMPARE(o.value(QLatin1String("seq")).toInteger(), 7);
}

void TestChangeEvent::serverFieldsNamedLikeOursReplayAlike_data() {
    QTest::addColumn<QByteArray>("change");
    QTest::addColumn<QByteArray>("field");
    // The input fuzz_changeeventmapper found (corpus/fuzz_changeeventmapper/seq-field).
    QTest::newRow("seq") << QByteArray(R"({"seq": {"_data": "84"}, "operationType": "rename",
        "clusterTime": {"$timestamp": {"t": 1, "i": 2}}, "ns": {"db": "shop", "coll": "a"},
        "to": {"db": "shop", "coll": "b"}})")
                         << QByteArray("seq");
    QTest::newRow("source") << QByteArray(R"({"operationType": "insert", "source": "elsewhere",
        "ns": {"db": "shop", "coll": "a"}, "documentKey": {"_id": 1}})")
                            << QByteArray("source");
    QTest::newRow("reason after other fields")
        << QByteArray(R"({"operationType": "invalidate", "txnNumber": 4, "reason": "dropped",
        "lsid": {"id": 1}})")
        << QByteArray("reason");
}

// Found by fuzz_changeeventmapper: a server field named seq was kept among the extra
// fields, so the committed event carried two "seq" keys, and the journal's replay kept
// only the first: the same event read differently live and replayed. A "reason" string
// moved on replay (the replay reads it as the event's reason) for the same cause.
void TestChangeEvent::serverFieldsNamedLikeOursReplayAlike() {
    QFETCH(QByteArray, change);
    QFETCH(QByteArray, field);
    const Bson document = Bson::fromJson(change);
    bson_t view;
    QVERIFY(document.view(&view));
    ChangeEvent e;
    QString error;
    QVERIFY2(ChangeEventMapper(QStringLiteral("shop-db")).map(&view, &e, &error), qPrintable(error));
    e.finalize(7);
    const QByteArray json = e.toJson();
    QCOMPARE(json.count(QByteArray("\"") + field + "\":"), 1);
    QCOMPARE(ChangeEvent::fromDocument(e.document(), 7, &error).toJson(), json);
    const QJsonObject o = QJsonDocument::fromJson(json).object();
    QCOMPARE(o.value(QLatin1String("seq")).toInteger(), 7);
    QCOMPARE(o.value(QLatin1String("source")).toString(), QStringLiteral("shop-db"));
}

QTEST_GUILESS_MAIN(TestChangeEvent)
#include "tst_changeevent.moc"

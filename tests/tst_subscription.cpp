#include "engine/Subscription.h"

#include <QtTest>

using namespace tw;

class tst_Subscription : public QObject {
    Q_OBJECT

private slots:
    void roundTrip();
    void filterKeepsKeyOrderAndTypes();
    void filterAsString();
    void minimal();
    void shapeRoundTrip();
    void shapeShorthands();
    void errors_data();
    void errors();
};

void tst_Subscription::roundTrip() {
    Subscription s;
    s.id = QStringLiteral("sub-1");
    s.name = QStringLiteral("Paid orders");
    s.namespaces = {{QStringLiteral("demo"), Namespace::fromString(QStringLiteral("main.orders"))},
                    {QString(), Namespace::fromString(QStringLiteral("shop"))}};
    s.filter = Filter::compile(R"({"fullDocument.status": "paid", "fullDocument.total": {"$gte": 100}})");
    s.projection = Subscription::Projection::KeysOnly;
    s.created = QDateTime(QDate(2024, 6, 1), QTime(12, 30, 5, 250), Qt::UTC);
    s.persistent = false;
    s.changes = Subscription::Changes::Schema;
    s.options = QJsonObject{{QStringLiteral("polling_interval"), 5}, {QStringLiteral("include_data"), true}};

    QString error;
    const Subscription back = Subscription::fromJson(s.toJson(), &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(back.id, s.id);
    QCOMPARE(back.name, s.name);
    QCOMPARE(back.namespaces.size(), 2);
    QCOMPARE(back.namespaces[0], s.namespaces[0]);
    QCOMPARE(back.namespaces[0].ns.coll, QStringLiteral("orders"));
    QCOMPARE(back.namespaces[1], s.namespaces[1]);
    QCOMPARE(back.filter.query(), s.filter.query());
    QCOMPARE(back.projection, Subscription::Projection::KeysOnly);
    QCOMPARE(back.created, s.created);
    QCOMPARE(back.persistent, false);
    QCOMPARE(back.options, s.options);
    QCOMPARE(back.changes, Subscription::Changes::Schema);

    const QJsonObject envelope = QJsonDocument::fromJson(s.toJson()).object();
    QCOMPARE(envelope.value(QStringLiteral("projection")).toString(), QStringLiteral("keys"));
    QCOMPARE(
        envelope.value(QStringLiteral("namespaces")).toArray().at(0).toObject().value(QStringLiteral("ns")),
        QJsonValue(QStringLiteral("main.orders")));
    QVERIFY(envelope.value(QStringLiteral("filter")).isObject());
}

void tst_Subscription::filterKeepsKeyOrderAndTypes() {
    const QByteArray json =
        R"({"id": "x", "filter": {"fullDocument.address": {"zip": "1000", "city": "Lisboa"},
        "fullDocument.n": {"$numberLong": "9007199254740993"}, "fullDocument.t": {"$type": 2}}})";
    QString error;
    const Subscription s = Subscription::fromJson(json, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(s.filter.query(), Filter::compile(R"({"fullDocument.address": {"zip": "1000", "city": "Lisboa"},
        "fullDocument.n": {"$numberLong": "9007199254740993"}, "fullDocument.t": {"$type": 2}})")
                                   .query());
    const Subscription again = Subscription::fromJson(s.toJson(), &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(again.filter.query(), s.filter.query());
}

void tst_Subscription::filterAsString() {
    QString error;
    const Subscription s =
        Subscription::fromJson(R"({"id": "x", "filter": "{\"operationType\": \"insert\"}"})", &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(s.filter.query(), Filter::compile(R"({"operationType": "insert"})").query());
}

void tst_Subscription::minimal() {
    QString error;
    const Subscription s = Subscription::fromJson(R"({"id": "only"})", &error);
    QVERIFY(error.isEmpty());
    QCOMPARE(s.id, QStringLiteral("only"));
    QVERIFY(s.namespaces.isEmpty());
    QVERIFY(s.filter.matchesEverything());
    QCOMPARE(s.projection, Subscription::Projection::FullDocument);
    QVERIFY(!s.created.isValid());
    QVERIFY(s.persistent);
}

void tst_Subscription::shapeRoundTrip() {
    QString error;
    const QByteArray json = R"({"id": "n", "event": "{ns.coll}.{operationType}",
        "projection": {"fullDocument.title": 1, "documentKey": 1, "fullDocument.user_id": {"$numberInt": "1"}}})";
    const Subscription s = Subscription::fromJson(json, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(s.event.text(), QStringLiteral("{ns.coll}.{operationType}"));
    QVERIFY(s.fieldProjection.isInclusion());
    // The paths keep the order they were written in.
    QCOMPARE(s.fieldProjection.json(),
             QByteArray(R"({"fullDocument.title":1,"documentKey":1,"fullDocument.user_id":1})"));

    const QByteArray text = s.toJson();
    const QJsonObject envelope = QJsonDocument::fromJson(text).object();
    QCOMPARE(envelope.value(QStringLiteral("event")).toString(), QStringLiteral("{ns.coll}.{operationType}"));
    QVERIFY(envelope.value(QStringLiteral("projection")).isObject());
    const Subscription back = Subscription::fromJson(text, &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(back.event, s.event);
    QCOMPARE(back.fieldProjection, s.fieldProjection);
    QCOMPARE(back.shape().key(), s.shape().key());
    QCOMPARE(back.toJson(), text);
}

void tst_Subscription::shapeShorthands() {
    QString error;
    Subscription s =
        Subscription::fromJson(R"({"id": "k", "projection": "keys", "event": "changed"})", &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(s.projection, Subscription::Projection::KeysOnly);
    QVERIFY(s.fieldProjection.isNull());
    QCOMPARE(s.projectionJson(), QByteArray("keys"));
    QCOMPARE(s.shape().projection(), Projection::keysOnly());
    QVERIFY(s.setProjection(R"({"fullDocument.password": 0})", &error));
    QCOMPARE(s.projection, Subscription::Projection::FullDocument);
    QCOMPARE(s.projectionJson(), QByteArray(R"({"fullDocument.password":0})"));
    QVERIFY(!s.setProjection(R"({"a": 1, "b": 0})", &error));
    QCOMPARE(error, QStringLiteral("projection: Cannot do exclusion on field b in inclusion projection"));
    QCOMPARE(s.projectionJson(), QByteArray(R"({"fullDocument.password":0})"));
    QVERIFY(s.setProjection("full", &error));
    QVERIFY(s.fieldProjection.isNull());
    QVERIFY(s.shape().projection().isNull());
    // The default name is not written, so subscriptions stored before names existed read
    // back unchanged.
    const Subscription plain = Subscription::fromJson(R"({"id": "p"})", &error);
    QVERIFY(plain.event.isDefault());
    QVERIFY(!QJsonDocument::fromJson(plain.toJson()).object().contains(QStringLiteral("event")));
}

void tst_Subscription::errors_data() {
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<QString>("message");
    QTest::newRow("not an object") << QByteArray("[]")
                                   << QStringLiteral("a subscription must be a JSON object");
    QTest::newRow("syntax") << QByteArray(R"({"id": )")
                            << QStringLiteral("JSON syntax error at offset 7: unterminated object");
    QTest::newRow("id") << QByteArray(R"({"id": 5})") << QStringLiteral("id: must be a string");
    QTest::newRow("changes") << QByteArray(R"({"changes": "ddl"})")
                             << QStringLiteral(
                                    "changes: must be \"all\", \"data\" or \"schema\", not \"ddl\"");
    QTest::newRow("options") << QByteArray(R"({"options": [1]})")
                             << QStringLiteral("options: must be an object");
    QTest::newRow("namespaces") << QByteArray(R"({"namespaces": "main.orders"})")
                                << QStringLiteral(
                                       "namespaces: must be an array of {\"source\", \"ns\"} objects");
    QTest::newRow("namespace entry")
        << QByteArray(R"({"namespaces": [{"ns": "a.b"}, 3]})")
        << QStringLiteral(
               "namespaces[1]: must be an object like {\"source\": \"demo\", \"ns\": \"main.orders\"}");
    QTest::newRow("namespace ns") << QByteArray(R"({"namespaces": [{"source": "demo", "ns": 1}]})")
                                  << QStringLiteral("namespaces[0].ns: must be a string");
    QTest::newRow("projection") << QByteArray(R"({"projection": "half"})")
                                << QStringLiteral("projection: must be \"full\" or \"keys\", not \"half\"");
    QTest::newRow("projection object")
        << QByteArray(R"({"projection": {"fullDocument.title": 1, "fullDocument.password": 0}})")
        << QStringLiteral(
               "projection: Cannot do exclusion on field fullDocument.password in inclusion projection");
    QTest::newRow("projection path") << QByteArray(R"({"projection": {"fullDocument..x": 1}})")
                                     << QStringLiteral(
                                            "projection: \"fullDocument..x\": field names may not be "
                                            "empty; write a dotted path such as \"fullDocument.title\"");
    QTest::newRow("projection type") << QByteArray(R"({"projection": 1})")
                                     << QStringLiteral(
                                            "projection: must be \"full\", \"keys\" or a projection "
                                            "object such as {\"documentKey\": 1}");
    QTest::newRow("event type") << QByteArray(R"({"event": 3})") << QStringLiteral("event: must be a string");
    QTest::newRow("event unclosed") << QByteArray(R"({"event": "{ns.coll"})")
                                    << QStringLiteral(
                                           "event: unclosed { at offset 0; a field is written {ns.coll}");
    QTest::newRow("event unknown field")
        << QByteArray(R"({"event": "{nss.coll}"})")
        << QStringLiteral("event: {nss.coll}: a change event has no field nss (try {operationType}, {ns.db}, "
                          "{ns.coll}, {source} or {fullDocument.FIELD})");
    QTest::newRow("created") << QByteArray(R"({"created": "yesterday"})")
                             << QStringLiteral("created: \"yesterday\" is not an ISO 8601 date");
    QTest::newRow("filter operator") << QByteArray(R"({"filter": {"fullDocument.total": {"$gtx": 1}}})")
                                     << QStringLiteral("filter: fullDocument.total: unknown operator $gtx");
    QTest::newRow("filter type") << QByteArray(R"({"filter": 3})")
                                 << QStringLiteral("filter: must be a query object");
    QTest::newRow("filter string") << QByteArray(R"({"filter": "{\"$and\": []}"})")
                                   << QStringLiteral("filter: $and must be a non-empty array");
}

void tst_Subscription::errors() {
    QFETCH(QByteArray, json);
    QFETCH(QString, message);
    QString error;
    Subscription::fromJson(json, &error);
    QCOMPARE(error, message);
}

QTEST_GUILESS_MAIN(tst_Subscription)
#include "tst_subscription.moc"

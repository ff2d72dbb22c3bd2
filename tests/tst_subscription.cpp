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

// MongoResumeTokens: the MongoDB checkpoint {scopeKey: resumeToken}, and when it goes
// out with a batch.

#include "BsonPaths.h"
#include "sources/mongo/MongoResumeTokens.h"

#include <QtTest>

using namespace tw;
using namespace tw::test;

class TestMongoResumeTokens : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void roundTripsEveryScope();
    void unreadableCheckpointStartsFromNow();
    void idlePositionWaitsOutTheCheckpointInterval();
    void urgentOrRequestedGoesOutAtOnce();
};

void TestMongoResumeTokens::roundTripsEveryScope() {
    const QMap<QString, Bson> tokens{{QStringLiteral("shop.orders"), json(R"({"_data": "82A1"})")},
                                     {QStringLiteral("shop"), json(R"({"_data": "82B2"})")},
                                     {QString(), json(R"({"_data": "82C3"})")}};
    QCOMPARE(MongoResumeTokens::decode(MongoResumeTokens::encode(tokens)), tokens);
    MongoResumeTokens restored;
    restored.restore(MongoResumeTokens::encode(tokens));
    QCOMPARE(restored.value(QStringLiteral("shop")), json(R"({"_data": "82B2"})"));
    QVERIFY(restored.contains(QString()));
    QVERIFY(!restored.contains(QStringLiteral("shop.users")));
    QVERIFY(!restored.isDirty());
}

void TestMongoResumeTokens::unreadableCheckpointStartsFromNow() {
    QVERIFY(MongoResumeTokens::decode(QByteArray()).isEmpty());
    QVERIFY(MongoResumeTokens::decode(QByteArrayLiteral("not bson at all")).isEmpty());
    // A document whose values are not documents holds no token.
    QVERIFY(MongoResumeTokens::decode(json(R"({"shop.orders": 5})").raw()).isEmpty());
}

void TestMongoResumeTokens::idlePositionWaitsOutTheCheckpointInterval() {
    MongoResumeTokens tokens;
    QVERIFY(!tokens.isDue(true, true, 0)); // nothing changed
    tokens.insert(QStringLiteral("shop.orders"), json(R"({"_data": "01"})"));
    QVERIFY(tokens.isDue(true, false, 100)); // goes with the events
    tokens.take(100);
    QVERIFY(!tokens.isDirty());
    tokens.insert(QStringLiteral("shop.orders"), json(R"({"_data": "02"})"));
    QVERIFY(!tokens.isDue(false, false, 100 + MongoResumeTokens::kIdleCheckpointMs - 1));
    QVERIFY(tokens.isDue(false, false, 100 + MongoResumeTokens::kIdleCheckpointMs));
    const QByteArray sent = tokens.take(100 + MongoResumeTokens::kIdleCheckpointMs);
    QCOMPARE(MongoResumeTokens::decode(sent).value(QStringLiteral("shop.orders")),
             json(R"({"_data": "02"})"));
}

void TestMongoResumeTokens::urgentOrRequestedGoesOutAtOnce() {
    // `now` is wall-clock milliseconds since the epoch, as the source passes it.
    const qint64 t = Q_INT64_C(1700000000000);
    MongoResumeTokens tokens;
    tokens.insert(QStringLiteral("a.b"), json(R"({"_data": "01"})"));
    tokens.take(t);
    tokens.insert(QStringLiteral("a.b"), json(R"({"_data": "02"})"), true);
    QVERIFY(tokens.isDue(false, false, t + 1));
    tokens.take(t + 1);
    tokens.insert(QStringLiteral("a.b"), json(R"({"_data": "03"})"));
    QVERIFY(!tokens.isDue(false, false, t + 2));
    QVERIFY(tokens.isDue(false, true, t + 2)); // stop or unwatch asks for it
    tokens.take(t + 2);
    QVERIFY(tokens.remove(QStringLiteral("a.b")));
    QVERIFY(tokens.isDirty());
    QVERIFY(!tokens.remove(QStringLiteral("a.b")));
}

QTEST_GUILESS_MAIN(TestMongoResumeTokens)
#include "tst_mongoresumetokens.moc"

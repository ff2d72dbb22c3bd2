// MongoPushDown: the readers the Engine reports for a watch, turned into the $match a
// change stream opens with (no server needed).

#include "BsonPaths.h"
#include "filter/Filter.h"
#include "sources/mongo/MongoPushDown.h"

#include <QtTest>

using namespace tw;
using namespace tw::test;

namespace {

WatchOptions::Reader reader(const Namespace& ns, const char* filter) {
    const Filter f = Filter::compile(filter);
    return WatchOptions::Reader{ns, f.query(), f.matchesEverything()};
}

const Namespace kShop{QStringLiteral("shop"), {}};
const Namespace kOrders{QStringLiteral("shop"), QStringLiteral("orders")};
const Namespace kUsers{QStringLiteral("shop"), QStringLiteral("users")};

} // namespace

class TestMongoPushDown : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void nobodySubscribedNarrowsNothing();
    void readersOfTheWholeScopeGiveTheirFilters();
    void narrowerReadersAreLimitedToTheirNamespace();
    void aReaderWantingEverythingTurnsItOff();
    void explicitMatchWinsOverReaders();
    void aSchemaOnlyReaderLeavesOutDataChanges();
};

void TestMongoPushDown::nobodySubscribedNarrowsNothing() {
    QVERIFY(MongoPushDown::matchFor(kOrders, {}).isAbsent());
    QVERIFY(MongoPushDown::matchOf(kOrders, WatchOptions()).isAbsent());
}

void TestMongoPushDown::readersOfTheWholeScopeGiveTheirFilters() {
    const Bson one =
        MongoPushDown::matchFor(kOrders, {reader(kOrders, R"({"fullDocument.status": "paid"})")});
    QCOMPARE(one, json(R"({"fullDocument.status": "paid"})"));
    const Bson both = MongoPushDown::matchFor(kOrders, {reader(kOrders, R"({"fullDocument.status": "paid"})"),
                                                        reader(kOrders, R"({"operationType": "delete"})")});
    QCOMPARE(sub(both, "$or.0"), json(R"({"fullDocument.status": "paid"})"));
    QCOMPARE(sub(both, "$or.1"), json(R"({"operationType": "delete"})"));
}

void TestMongoPushDown::narrowerReadersAreLimitedToTheirNamespace() {
    // A database watch read by a subscription to one collection, and by one that
    // wants everything of another: each only in its own namespace.
    const Bson match = MongoPushDown::matchFor(
        kShop, {reader(kOrders, R"({"operationType": "insert"})"), reader(kUsers, "{}")});
    QCOMPARE(sub(match, "$or.0.$and.0"), json(R"({"ns.db": "shop", "ns.coll": "orders"})"));
    QCOMPARE(sub(match, "$or.0.$and.1"), json(R"({"operationType": "insert"})"));
    QCOMPARE(sub(match, "$or.1.$and.0"), json(R"({"ns.db": "shop", "ns.coll": "users"})"));
    QCOMPARE(sub(match, "$or.1.$and.1"), Bson::empty());
    // A database inside a deployment watch: ns.db alone.
    const Bson db = MongoPushDown::matchFor(Namespace{}, {reader(kShop, R"({"operationType": "insert"})")});
    QCOMPARE(sub(db, "$and.0"), json(R"({"ns.db": "shop"})"));
}

void TestMongoPushDown::aReaderWantingEverythingTurnsItOff() {
    QVERIFY(MongoPushDown::matchFor(
                kOrders, {reader(kOrders, R"({"fullDocument.status": "paid"})"), reader(kOrders, "{}")})
                .isAbsent());
    // A filter on a field only Tidewatch adds cannot run on the server.
    QVERIFY(MongoPushDown::matchFor(kOrders, {reader(kOrders, R"({"seq": {"$gt": 5}})")}).isAbsent());
}

void TestMongoPushDown::explicitMatchWinsOverReaders() {
    WatchOptions options;
    options.readers = {reader(kOrders, R"({"fullDocument.status": "paid"})")};
    QCOMPARE(MongoPushDown::matchOf(kOrders, options), json(R"({"fullDocument.status": "paid"})"));
    options.match = json(R"({"operationType": "delete"})");
    QCOMPARE(MongoPushDown::matchOf(kOrders, options), json(R"({"operationType": "delete"})"));
}

void TestMongoPushDown::aSchemaOnlyReaderLeavesOutDataChanges() {
    const Bson notData = json(R"({"operationType": {"$nin": ["insert", "update", "replace", "delete"]}})");
    WatchOptions::Reader schema = reader(kOrders, "{}");
    schema.schemaOnly = true;
    QCOMPARE(MongoPushDown::matchFor(kOrders, {schema}), notData);

    WatchOptions::Reader indexes = reader(kOrders, R"({"operationType": "createIndexes"})");
    indexes.schemaOnly = true;
    const Bson narrowed = MongoPushDown::matchFor(kOrders, {indexes});
    QCOMPARE(sub(narrowed, "$and.0"), notData);
    QCOMPARE(sub(narrowed, "$and.1"), json(R"({"operationType": "createIndexes"})"));

    // Beside a reader of data changes, the union keeps what either wants.
    const Bson both =
        MongoPushDown::matchFor(kOrders, {schema, reader(kOrders, R"({"fullDocument.status": "paid"})")});
    QCOMPARE(sub(both, "$or.0"), notData);
    QCOMPARE(sub(both, "$or.1"), json(R"({"fullDocument.status": "paid"})"));
    // Beside one that wants everything, nothing is narrowed.
    QVERIFY(MongoPushDown::matchFor(kOrders, {schema, reader(kOrders, "{}")}).isAbsent());
    // Narrower than the watch: its namespace, then the schema limit.
    const Bson inDb = MongoPushDown::matchFor(kShop, {[] {
                                                  WatchOptions::Reader r = reader(kOrders, "{}");
                                                  r.schemaOnly = true;
                                                  return r;
                                              }()});
    QCOMPARE(sub(inDb, "$and.0"), json(R"({"ns.db": "shop", "ns.coll": "orders"})"));
    QCOMPARE(sub(inDb, "$and.1"), notData);
}

QTEST_GUILESS_MAIN(TestMongoPushDown)
#include "tst_mongopushdown.moc"

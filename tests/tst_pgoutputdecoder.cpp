#include "EngineFixture.h"

#include "sources/postgres/PgOutputDecoder.h"
#include "sources/postgres/PgTypes.h"

#include <QtTest>

using namespace tw;
using namespace tw::pg;
using namespace tw::test;

// pgoutput's messages built by hand, byte by byte as the server writes them, and the
// text-format values of each mapped type.
class TestPgOutputDecoder : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void lsnRoundTrips();
    void beginAndCommit();
    void relationWithKeyColumns();
    void insertUpdateDeleteTuples();
    void truncateListsEveryRelation();
    void keepaliveAndXLogData();
    void shortOrDamagedMessagesAreErrors_data();
    void shortOrDamagedMessagesAreErrors();
    void standbyStatusUpdateLayout();
    void typesMapToBson_data();
    void typesMapToBson();
};

namespace {

struct Bytes {
    QByteArray b;
    Bytes& u8(quint8 v) {
        b.append(char(v));
        return *this;
    }
    Bytes& u16(quint16 v) { return u8(quint8(v >> 8)).u8(quint8(v)); }
    Bytes& u32(quint32 v) { return u16(quint16(v >> 16)).u16(quint16(v)); }
    Bytes& u64(quint64 v) { return u32(quint32(v >> 32)).u32(quint32(v)); }
    Bytes& str(const char* s) {
        b.append(s);
        b.append('\0');
        return *this;
    }
    Bytes& text(const QByteArray& v) {
        u8('t').u32(quint32(v.size()));
        b.append(v);
        return *this;
    }
};

QString mapped(quint32 oid, const QByteArray& text) {
    BsonBuilder b;
    appendValue(b.get(), "v", 1, oid, text);
    const QByteArray json = b.take().toJson(Bson::JsonMode::Canonical);
    return QString::fromUtf8(json);
}

} // namespace

void TestPgOutputDecoder::lsnRoundTrips() {
    quint64 lsn = 0;
    QVERIFY(parseLsn(u"16/B374D848", &lsn));
    QCOMPARE(lsn, (quint64(0x16) << 32) | 0xB374D848u);
    QCOMPARE(lsnToString(lsn), QStringLiteral("16/B374D848"));
    QVERIFY(!parseLsn(u"16B374D848", &lsn));
    QVERIFY(!parseLsn(u"x/1", &lsn));
}

void TestPgOutputDecoder::beginAndCommit() {
    PgMessage m;
    QString error;
    QVERIFY(PgOutputDecoder::decode(Bytes().u8('B').u64(0x100).u64(1000000).u32(77).b, &m, &error));
    QCOMPARE(m.kind, PgMessage::Kind::Begin);
    QCOMPARE(m.finalLsn, 0x100u);
    QCOMPARE(m.timestampUs, 1000000);
    QCOMPARE(m.xid, 77u);
    QCOMPARE(pgMicrosToEpochMs(m.timestampUs), 946684801000LL);

    QVERIFY(PgOutputDecoder::decode(Bytes().u8('C').u8(0).u64(0x100).u64(0x130).u64(5).b, &m, &error));
    QCOMPARE(m.kind, PgMessage::Kind::Commit);
    QCOMPARE(m.commitLsn, 0x100u);
    QCOMPARE(m.endLsn, 0x130u);
}

void TestPgOutputDecoder::relationWithKeyColumns() {
    const QByteArray bytes = Bytes()
                                 .u8('R')
                                 .u32(16384)
                                 .str("public")
                                 .str("orders")
                                 .u8('f')
                                 .u16(2)
                                 .u8(1)
                                 .str("id")
                                 .u32(23)
                                 .u32(0xffffffff)
                                 .u8(0)
                                 .str("note")
                                 .u32(25)
                                 .u32(0xffffffff)
                                 .b;
    PgMessage m;
    QString error;
    QVERIFY2(PgOutputDecoder::decode(bytes, &m, &error), qPrintable(error));
    QCOMPARE(m.kind, PgMessage::Kind::Relation);
    QCOMPARE(m.relation.oid, 16384u);
    QCOMPARE(m.relation.schema, QByteArray("public"));
    QCOMPARE(m.relation.name, QByteArray("orders"));
    QCOMPARE(m.relation.replicaIdentity, 'f');
    QCOMPARE(m.relation.columns.size(), 2);
    QVERIFY(m.relation.columns[0].isKey);
    QCOMPARE(m.relation.columns[0].typeOid, 23u);
    QCOMPARE(m.relation.columns[0].typmod, -1);
    QVERIFY(!m.relation.columns[1].isKey);
    QCOMPARE(m.relation.columns[1].name, QByteArray("note"));
}

void TestPgOutputDecoder::insertUpdateDeleteTuples() {
    PgMessage m;
    QString error;
    QVERIFY(PgOutputDecoder::decode(
        Bytes().u8('I').u32(16384).u8('N').u16(3).text("7").u8('n').text("hello").b, &m, &error));
    QCOMPARE(m.kind, PgMessage::Kind::Insert);
    QCOMPARE(m.relationOid, 16384u);
    QCOMPARE(m.newTuple.size(), 3);
    QCOMPARE(m.newTuple[0].text, QByteArray("7"));
    QCOMPARE(m.newTuple[1].kind, PgValue::Kind::Null);
    QCOMPARE(m.newTuple[2].text, QByteArray("hello"));

    // REPLICA IDENTITY FULL: the old row, then the new one with an unchanged TOAST value.
    QVERIFY(PgOutputDecoder::decode(
        Bytes().u8('U').u32(16384).u8('O').u16(2).text("7").text("old").u8('N').u16(2).text("7").u8('u').b,
        &m, &error));
    QCOMPARE(m.kind, PgMessage::Kind::Update);
    QCOMPARE(m.oldKind, 'O');
    QCOMPARE(m.oldTuple[1].text, QByteArray("old"));
    QCOMPARE(m.newTuple[1].kind, PgValue::Kind::UnchangedToast);

    // DEFAULT identity, key unchanged: no old tuple at all.
    QVERIFY(PgOutputDecoder::decode(Bytes().u8('U').u32(1).u8('N').u16(1).text("1").b, &m, &error));
    QCOMPARE(m.oldKind, 0);
    QVERIFY(m.oldTuple.isEmpty());

    QVERIFY(
        PgOutputDecoder::decode(Bytes().u8('D').u32(16384).u8('K').u16(2).text("7").u8('n').b, &m, &error));
    QCOMPARE(m.kind, PgMessage::Kind::Delete);
    QCOMPARE(m.oldKind, 'K');
    QCOMPARE(m.oldTuple[0].text, QByteArray("7"));
}

void TestPgOutputDecoder::truncateListsEveryRelation() {
    PgMessage m;
    QString error;
    QVERIFY(PgOutputDecoder::decode(Bytes().u8('T').u32(2).u8(1).u32(10).u32(11).b, &m, &error));
    QCOMPARE(m.kind, PgMessage::Kind::Truncate);
    QCOMPARE(m.truncateOptions, quint8(1));
    QCOMPARE(m.truncated, (QList<quint32>{10, 11}));
}

void TestPgOutputDecoder::keepaliveAndXLogData() {
    PgCopyMessage c;
    QString error;
    QVERIFY(PgOutputDecoder::decodeCopyData(Bytes().u8('k').u64(0x500).u64(9).u8(1).b, &c, &error));
    QCOMPARE(c.kind, PgCopyMessage::Kind::Keepalive);
    QCOMPARE(c.walEnd, 0x500u);
    QVERIFY(c.replyRequested);

    const QByteArray data = Bytes().u8('w').u64(0x400).u64(0x500).u64(9).u8('B').u64(1).u64(2).u32(3).b;
    QVERIFY(PgOutputDecoder::decodeCopyData(data, &c, &error));
    QCOMPARE(c.kind, PgCopyMessage::Kind::XLogData);
    QCOMPARE(c.walStart, 0x400u);
    QCOMPARE(c.payload.size(), 21);
    PgMessage m;
    QVERIFY(PgOutputDecoder::decode(c.payload, &m, &error));
    QCOMPARE(m.kind, PgMessage::Kind::Begin);
    QCOMPARE(m.xid, 3u);
}

void TestPgOutputDecoder::shortOrDamagedMessagesAreErrors_data() {
    QTest::addColumn<QByteArray>("bytes");
    QTest::newRow("empty") << QByteArray();
    QTest::newRow("short begin") << Bytes().u8('B').u64(1).b;
    QTest::newRow("relation name unterminated") << QByteArray("R\0\0\0\1public", 11);
    QTest::newRow("text longer than the message") << Bytes().u8('I').u32(1).u8('N').u16(1).u8('t').u32(99).b;
    QTest::newRow("unknown value kind") << Bytes().u8('I').u32(1).u8('N').u16(1).u8('x').b;
    QTest::newRow("insert without N") << Bytes().u8('I').u32(1).u8('K').u16(0).b;
    QTest::newRow("unknown message") << Bytes().u8('Z').b;
}

void TestPgOutputDecoder::shortOrDamagedMessagesAreErrors() {
    QFETCH(QByteArray, bytes);
    PgMessage m;
    QString error;
    QVERIFY(!PgOutputDecoder::decode(bytes, &m, &error));
    QVERIFY(!error.isEmpty());
}

void TestPgOutputDecoder::standbyStatusUpdateLayout() {
    const QByteArray r = PgOutputDecoder::standbyStatusUpdate(0x10, 0x20, 0x30, 0x40, true);
    QCOMPARE(r.size(), 34);
    QCOMPARE(r[0], 'r');
    QCOMPARE(r.mid(1, 8), Bytes().u64(0x10).b);
    QCOMPARE(r.mid(9, 8), Bytes().u64(0x20).b);
    QCOMPARE(r.mid(17, 8), Bytes().u64(0x30).b);
    QCOMPARE(r.mid(25, 8), Bytes().u64(0x40).b);
    QCOMPARE(r[33], '\1');
}

void TestPgOutputDecoder::typesMapToBson_data() {
    QTest::addColumn<quint32>("oid");
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("json");
    QTest::newRow("int2") << 21u << QByteArray("-7") << R"({ "v" : { "$numberInt" : "-7" } })";
    QTest::newRow("int4") << 23u << QByteArray("2147483647")
                          << R"({ "v" : { "$numberInt" : "2147483647" } })";
    QTest::newRow("int8") << 20u << QByteArray("9007199254740993")
                          << R"({ "v" : { "$numberLong" : "9007199254740993" } })";
    QTest::newRow("float8") << 701u << QByteArray("0.25") << R"({ "v" : { "$numberDouble" : "0.25" } })";
    QTest::newRow("float4 nan") << 700u << QByteArray("NaN") << R"({ "v" : { "$numberDouble" : "NaN" } })";
    QTest::newRow("float8 -inf") << 701u << QByteArray("-Infinity")
                                 << R"({ "v" : { "$numberDouble" : "-Infinity" } })";
    QTest::newRow("numeric") << 1700u << QByteArray("12345.678900")
                             << R"({ "v" : { "$numberDecimal" : "12345.678900" } })";
    QTest::newRow("bool") << 16u << QByteArray("t") << R"({ "v" : true })";
    QTest::newRow("text") << 25u << QByteArray("a \"b\"") << R"({ "v" : "a \"b\"" })";
    QTest::newRow("enum is its text") << 99999u << QByteArray("paid") << R"({ "v" : "paid" })";
    QTest::newRow("timestamptz") << 1184u << QByteArray("2026-12-01 11:50:18.123456+00")
                                 << R"({ "v" : { "$date" : { "$numberLong" : "1796125818123" } } })";
    QTest::newRow("timestamptz offset") << 1184u << QByteArray("2026-12-01 13:50:18+02")
                                        << R"({ "v" : { "$date" : { "$numberLong" : "1796125818000" } } })";
    QTest::newRow("timestamp") << 1114u << QByteArray("1969-12-31 23:59:59.5")
                               << R"({ "v" : { "$date" : { "$numberLong" : "-500" } } })";
    QTest::newRow("date") << 1082u << QByteArray("2000-01-01")
                          << R"({ "v" : { "$date" : { "$numberLong" : "946684800000" } } })";
    QTest::newRow("infinity date is text") << 1082u << QByteArray("infinity") << R"({ "v" : "infinity" })";
    QTest::newRow("uuid")
        << 2950u << QByteArray("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        << R"({ "v" : { "$binary" : { "base64" : "oO68mZwLTvi7bWu5vTgKEQ==", "subType" : "04" } } })";
    QTest::newRow("bytea") << 17u << QByteArray("\\x00ff10")
                           << R"({ "v" : { "$binary" : { "base64" : "AP8Q", "subType" : "00" } } })";
    QTest::newRow("jsonb object") << 3802u << QByteArray(R"({"a": [1, "x"]})")
                                  << R"({ "v" : { "a" : [ { "$numberInt" : "1" }, "x" ] } })";
    QTest::newRow("json scalar") << 114u << QByteArray("\"s\"") << R"({ "v" : "s" })";
    QTest::newRow("int4[]") << 1007u << QByteArray("{1,NULL,3}")
                            << R"({ "v" : [ { "$numberInt" : "1" }, null, { "$numberInt" : "3" } ] })";
    QTest::newRow("text[] quoted") << 1009u << QByteArray(R"({a,"b,c","d\"e"})")
                                   << R"({ "v" : [ "a", "b,c", "d\"e" ] })";
    QTest::newRow("int8[][]")
        << 1016u << QByteArray("{{1,2},{3,4}}")
        << R"({ "v" : [ [ { "$numberLong" : "1" }, { "$numberLong" : "2" } ], [ { "$numberLong" : "3" }, { "$numberLong" : "4" } ] ] })";
    QTest::newRow("empty array") << 1007u << QByteArray("{}") << R"({ "v" : [  ] })";
    QTest::newRow("interval is text") << 1186u << QByteArray("P1D") << R"({ "v" : "P1D" })";
}

void TestPgOutputDecoder::typesMapToBson() {
    QFETCH(quint32, oid);
    QFETCH(QByteArray, text);
    QFETCH(QString, json);
    QCOMPARE(mapped(oid, text), json);
}

QTEST_GUILESS_MAIN(TestPgOutputDecoder)
#include "tst_pgoutputdecoder.moc"

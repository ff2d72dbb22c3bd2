// The replication slot and publication a PostgreSQL source keeps on the server: named
// after the journal and the source, its lag in /v1/health and /metrics, dropped on
// request when the source is removed over HTTP, and the slot of the name older
// versions gave kept when it holds the journal's position. Against a real cluster
// (initdb, pg_ctl) and the application session with its HTTP server.
#include "ControlRequest.h"
#include "PgSuite.h"

#include "AppSession.h"
#include "http/SseServer.h"
#include "sources/postgres/PgSlotName.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QRegularExpression>
#include <QtTest>

using namespace tw;
using namespace tw::test;

class TestPostgresSlot : public QObject, public PgSuite {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();
    void namesAreValidIdentifiersOfJournalAndSource_data();
    void namesAreValidIdentifiersOfJournalAndSource();
    void idsThatReadAlikeGetSlotsOfTheirOwn();
    void twoSourcesOfOneJournalHaveTheirOwnSlotWithLagInHealthAndMetrics();
    void removingWithDropSlotDropsSlotAndPublicationWithoutKeepsThem();
    void legacySlotHoldingTheJournalsPositionIsKeptAndLosesNothing();

private:
    std::unique_ptr<AppSession> startSession();
    HttpResult request(const QByteArray& method, const QString& path, const QJsonObject& body = {},
                       bool withBody = false);
    // POST /v1/sources, then PUT the watch of tidewatch.public.items: answers once it is live.
    bool addAndWatch(const QString& id);
    QString slotCount(const QString& name) const {
        return m_cluster->value(
            QStringLiteral("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%1'").arg(name));
    }
    QString publicationCount(const QString& name) const {
        return m_cluster->value(
            QStringLiteral("SELECT count(*) FROM pg_publication WHERE pubname = '%1'").arg(name));
    }

    std::unique_ptr<QNetworkAccessManager> m_nam;
    QUrl m_base;
};

void TestPostgresSlot::initTestCase() {
    const QString error = startCluster();
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(m_cluster->exec(QStringLiteral("CREATE TABLE items(id int PRIMARY KEY, name text)")), QString());
}

void TestPostgresSlot::init() {
    makeCaseDir();
    QVERIFY(m_dir->isValid());
    qputenv("TIDEWATCH_DATA_DIR", m_dir->filePath(QStringLiteral("data")).toLocal8Bit());
    qputenv("TIDEWATCH_TOKEN", "slot-token");
    m_nam = std::make_unique<QNetworkAccessManager>();
}

void TestPostgresSlot::cleanup() {
    m_nam.reset();
    qunsetenv("TIDEWATCH_TOKEN");
    dropSlotsAndPublications();
    m_dir.reset();
}

std::unique_ptr<AppSession> TestPostgresSlot::startSession() {
    AppSession::Options options;
    options.journalPath = journalPath();
    auto session = std::make_unique<AppSession>(options);
    QString error;
    if (!session->start(&error) || !session->startSse(QStringLiteral("127.0.0.1"), 0, &error)) {
        qWarning("%s", qPrintable(error));
        return nullptr;
    }
    m_base = session->sseServer()->baseUrl();
    return session;
}

HttpResult TestPostgresSlot::request(const QByteArray& method, const QString& path, const QJsonObject& body,
                                     bool withBody) {
    return controlRequest(*m_nam, m_base, "slot-token", method, path, body, withBody);
}

bool TestPostgresSlot::addAndWatch(const QString& id) {
    const HttpResult added =
        request("POST", QStringLiteral("/v1/sources"),
                QJsonObject{{QStringLiteral("id"), id}, {QStringLiteral("uri"), m_cluster->uri()}}, true);
    if (added.status != 201) {
        qWarning("add %s: %d %s", qPrintable(id), added.status, added.raw.constData());
        return false;
    }
    const HttpResult watched =
        request("PUT", QStringLiteral("/v1/sources/%1/watches/tidewatch.public.items").arg(id), {}, true);
    if (watched.status != 201) {
        qWarning("watch %s: %d %s", qPrintable(id), watched.status, watched.raw.constData());
        return false;
    }
    return true;
}

void TestPostgresSlot::namesAreValidIdentifiersOfJournalAndSource_data() {
    QTest::addColumn<QString>("journalId");
    QTest::addColumn<QString>("sourceId");
    QTest::addColumn<QString>("expected");
    const QString journal = QStringLiteral("{3F2504E0-4F89-11D3-9A0C-0305E82C3301}");
    QTest::newRow("plain") << journal << QStringLiteral("shop")
                           << QStringLiteral("tidewatch_3f2504e04f89_shop");
    QTest::newRow("dots and dashes") << journal << QStringLiteral("Shop.EU-West")
                                     << QStringLiteral("tidewatch_3f2504e04f89_shop_eu_west_fe9cee6c");
    QTest::newRow("no journal id") << QString() << QStringLiteral("shop") << QStringLiteral("tidewatch_shop");
    const QString longId = QString(50, QLatin1Char('a'));
    QTest::newRow("too long") << journal << longId << QString();
}

void TestPostgresSlot::namesAreValidIdentifiersOfJournalAndSource() {
    QFETCH(QString, journalId);
    QFETCH(QString, sourceId);
    QFETCH(QString, expected);
    const QString name = PgSlotName::forJournal(journalId, sourceId);
    static const QRegularExpression valid(QStringLiteral("^[a-z0-9_]{1,63}$"));
    QVERIFY2(valid.match(name).hasMatch(), qPrintable(name));
    if (!expected.isEmpty()) {
        QCOMPARE(name, expected);
        return;
    }
    // Cut to 63 bytes, and two long ids that share their first 40 characters differ.
    QCOMPARE(name.size(), PgSlotName::kMaxLength);
    QVERIFY(name.startsWith(QLatin1String("tidewatch_3f2504e04f89_aaaa")));
    QVERIFY(name != PgSlotName::forJournal(journalId, sourceId + QLatin1Char('b')));
}

void TestPostgresSlot::idsThatReadAlikeGetSlotsOfTheirOwn() {
    const QString journal = QStringLiteral("3f2504e0-4f89-11d3-9a0c-0305e82c3301");
    const QString plain = PgSlotName::forJournal(journal, QStringLiteral("shop_db"));
    QCOMPARE(plain, QStringLiteral("tidewatch_3f2504e04f89_shop_db"));
    for (const QString& id :
         {QStringLiteral("Shop-DB"), QStringLiteral("shop.db"), QStringLiteral("SHOP_DB")}) {
        const QString other = PgSlotName::forJournal(journal, id);
        QVERIFY2(other != plain, qPrintable(id));
        QVERIFY2(other.startsWith(QLatin1String("tidewatch_3f2504e04f89_shop_db_")), qPrintable(other));
    }
}

void TestPostgresSlot::twoSourcesOfOneJournalHaveTheirOwnSlotWithLagInHealthAndMetrics() {
    auto session = startSession();
    QVERIFY(session);
    QVERIFY(addAndWatch(QStringLiteral("east")));
    QVERIFY(addAndWatch(QStringLiteral("west")));
    const QString journalId = session->engine()->journalId();
    QVERIFY(!journalId.isEmpty());
    const QString east = PgSlotName::forJournal(journalId, QStringLiteral("east"));
    const QString west = PgSlotName::forJournal(journalId, QStringLiteral("west"));
    QVERIFY(east != west);
    QCOMPARE(slotCount(east), QStringLiteral("1"));
    QCOMPARE(slotCount(west), QStringLiteral("1"));
    QCOMPARE(publicationCount(east), QStringLiteral("1"));
    QCOMPARE(publicationCount(west), QStringLiteral("1"));
    QCOMPARE(m_cluster->value(QStringLiteral("SELECT count(*) FROM pg_replication_slots WHERE slot_name "
                                             "LIKE 'tidewatch%%'")),
             QStringLiteral("2"));

    // Health names each slot and, once read from pg_replication_slots, its lag.
    QJsonObject eastHealth;
    const auto eastLagKnown = [&] {
        const QJsonArray sources =
            request("GET", QStringLiteral("/v1/health")).body.value(QLatin1String("sources")).toArray();
        for (const QJsonValue& v : sources)
            if (v.toObject().value(QLatin1String("id")).toString() == QLatin1String("east"))
                eastHealth = v.toObject();
        return eastHealth.contains(QLatin1String("lagBytes"));
    };
    QTRY_VERIFY_WITH_TIMEOUT(eastLagKnown(), 30000);
    QCOMPARE(eastHealth.value(QLatin1String("slot")).toString(), east);
    QVERIFY(eastHealth.value(QLatin1String("lagBytes")).toInteger(-1) >= 0);
    const QByteArray metrics = request("GET", QStringLiteral("/metrics")).raw;
    QVERIFY2(metrics.contains("# TYPE tidewatch_source_lag_bytes gauge"), metrics.constData());
    QVERIFY2(metrics.contains("tidewatch_source_lag_bytes{source=\"east\"} "), metrics.constData());
    QTRY_VERIFY_WITH_TIMEOUT(request("GET", QStringLiteral("/metrics"))
                                 .raw.contains("tidewatch_source_lag_bytes{source=\"west\"} "),
                             30000);
}

void TestPostgresSlot::removingWithDropSlotDropsSlotAndPublicationWithoutKeepsThem() {
    auto session = startSession();
    QVERIFY(session);
    QVERIFY(addAndWatch(QStringLiteral("kept")));
    QVERIFY(addAndWatch(QStringLiteral("dropped")));
    const QString kept = PgSlotName::forJournal(session->engine()->journalId(), QStringLiteral("kept"));
    const QString dropped = PgSlotName::forJournal(session->engine()->journalId(), QStringLiteral("dropped"));
    QCOMPARE(slotCount(dropped), QStringLiteral("1"));

    const HttpResult bad = request("DELETE", QStringLiteral("/v1/sources/dropped?dropSlot=yes"));
    QCOMPARE(bad.status, 400);
    QVERIFY2(bad.body.value(QLatin1String("error")).toString().contains(QLatin1String("dropSlot")),
             bad.raw.constData());
    QCOMPARE(slotCount(dropped), QStringLiteral("1"));

    // 204 comes once the source has stopped, so the slot is gone by then.
    QCOMPARE(request("DELETE", QStringLiteral("/v1/sources/dropped?dropSlot=true")).status, 204);
    QCOMPARE(slotCount(dropped), QStringLiteral("0"));
    QCOMPARE(publicationCount(dropped), QStringLiteral("0"));

    QCOMPARE(request("DELETE", QStringLiteral("/v1/sources/kept")).status, 204);
    QCOMPARE(slotCount(kept), QStringLiteral("1"));
    QCOMPARE(publicationCount(kept), QStringLiteral("1"));
}

void TestPostgresSlot::legacySlotHoldingTheJournalsPositionIsKeptAndLosesNothing() {
    QCOMPARE(m_cluster->exec(QStringLiteral("TRUNCATE items")), QString());
    const QString legacy = PgSlotName::legacy(QStringLiteral("old"));
    QString current;
    {
        EngineFixture f(journalPath());
        QVERIFY(startWatching(f, QStringLiteral("old"), QStringLiteral("items")));
        QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
        QCOMPARE(m_cluster->exec(QStringLiteral("INSERT INTO items VALUES (1, 'before')")), QString());
        QTRY_COMPARE_WITH_TIMEOUT(f.events.size(), 1, 20000);
        current = PgSlotName::forJournal(f.engine->journalId(), QStringLiteral("old"));
        // The slot has confirmed the journal's position before the source stops.
        QTRY_VERIFY_WITH_TIMEOUT(
            m_cluster->value(QStringLiteral("SELECT confirmed_flush_lsn >= pg_current_wal_lsn() - 100000 "
                                            "FROM pg_replication_slots WHERE slot_name = '%1'")
                                 .arg(current)) == QLatin1String("t"),
            20000);
    }
    // What an older Tidewatch left: the same position under the old name, with its
    // publication; the new name not there yet.
    QTRY_COMPARE_WITH_TIMEOUT(
        m_cluster->value(
            QStringLiteral("SELECT active FROM pg_replication_slots WHERE slot_name = '%1'").arg(current)),
        QStringLiteral("f"), 20000);
    QCOMPARE(m_cluster->exec(QStringLiteral("CREATE PUBLICATION %1 FOR TABLE items").arg(legacy)), QString());
    QCOMPARE(m_cluster->exec(
                 QStringLiteral("SELECT pg_copy_logical_replication_slot('%1', '%2')").arg(current, legacy)),
             QString());
    QCOMPARE(m_cluster->exec(
                 QStringLiteral("SELECT pg_drop_replication_slot('%1'); DROP PUBLICATION %1").arg(current)),
             QString());
    // Written while Tidewatch was closed: the old slot holds them.
    QCOMPARE(m_cluster->exec(QStringLiteral("INSERT INTO items VALUES (2, 'while closed')")), QString());

    EngineFixture f(journalPath());
    QVERIFY(startWatching(f, QStringLiteral("old"), QStringLiteral("items")));
    QTRY_COMPARE_WITH_TIMEOUT(f.ready.size(), 1, 20000);
    QCOMPARE(m_cluster->exec(QStringLiteral("INSERT INTO items VALUES (3, 'after')")), QString());
    QTRY_COMPARE_WITH_TIMEOUT(f.ofOperation(Operation::Insert).size(), 2, 20000);
    const QList<ChangeEvent> inserts = f.ofOperation(Operation::Insert);
    QCOMPARE(fieldJson(inserts[0].documentKey(), "id"), QStringLiteral("2"));
    QCOMPARE(fieldJson(inserts[1].documentKey(), "id"), QStringLiteral("3"));
    QVERIFY(f.ofOperation(Operation::Gap).isEmpty());
    QCOMPARE(f.engine->sourceStatuses().value(QStringLiteral("old")).slotName, legacy);
    QCOMPARE(slotCount(current), QStringLiteral("0"));
    QCOMPARE(slotCount(legacy), QStringLiteral("1"));
}

QTEST_GUILESS_MAIN(TestPostgresSlot)
#include "tst_postgresslot.moc"

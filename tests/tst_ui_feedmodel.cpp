// The Live Feed model: batching, the bounded ring, pause, search and tail-follow.
#include "docks/EventDetailDock.h"
#include "engine/Subscription.h"
#include "http/EventRenderer.h"
#include "models/ChangeFeedModel.h"
#include "models/EventFormat.h"
#include "models/FeedExporter.h"
#include "models/FeedSearchProxy.h"
#include "widgets/FeedView.h"
#include "widgets/Icons.h"

#include <QAbstractItemModelTester>
#include <QBuffer>
#include <QScrollBar>
#include <QSignalSpy>
#include <QTest>
#include <QTreeView>
#include <QTreeWidget>

using namespace tw;
using namespace tw::ui;

namespace {

ChangeEvent makeEvent(qint64 seq, Operation op = Operation::Insert,
                      const QString& coll = QStringLiteral("orders")) {
    ChangeEvent e;
    e.setSourceId(QStringLiteral("demo"));
    e.setNs(Namespace{QStringLiteral("main"), coll});
    e.setOperation(op);
    e.setDocumentKey(Bson::fromJson(QStringLiteral(R"({"_id": %1})").arg(seq).toUtf8()));
    e.setFullDocument(
        Bson::fromJson(QStringLiteral(R"({"_id": %1, "status": "paid", "total": 12.5})").arg(seq).toUtf8()));
    if (op == Operation::Update)
        e.setUpdateDescription(ChangeEvent::makeUpdateDescription(Bson::fromJson(R"({"status": "paid"})"),
                                                                  {QByteArray("note")}));
    e.setWallTimeMs(1700000000000 + seq);
    e.finalize(seq);
    return e;
}

ChangeEventList makeEvents(qint64 first, int count, Operation op = Operation::Insert) {
    ChangeEventList list;
    list.reserve(count);
    for (int i = 0; i < count; ++i)
        list.append(makeEvent(first + i, op));
    return list;
}

} // namespace

class tst_UiFeedModel : public QObject {
    Q_OBJECT
private slots:
    void modelTester();
    void tenThousandEventsInOneTickAreOneInsert();
    void timerFlushesAtMostTenTimesASecond();
    void ringKeepsTheNewestRows();
    void pauseKeepsRecording();
    void clear();
    void displayText();
    void searchProxy();
    void tailFollowOnlyAtBottom();
    void exportNdjsonAndCsv();
    void schemaEventsStandOutAndReadInTheDetail();
    void exportNdjsonInASubscriptionsShape();
};

void tst_UiFeedModel::modelTester() {
    ChangeFeedModel model;
    model.setCapacity(100);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.append(makeEvents(1, 60));
    model.flush();
    model.append(makeEvents(61, 60)); // overflows: removal then insertion
    model.flush();
    QCOMPARE(model.rowCount(), 100);
    model.append(makeEvents(121, 250)); // more than the capacity in one go
    model.flush();
    QCOMPARE(model.rowCount(), 100);
    QCOMPARE(model.eventAt(99).seq(), 370);
    for (int row = 0; row < model.rowCount(); row += 17)
        for (int column = 0; column < model.columnCount(); ++column)
            QVERIFY(model.index(row, column).data().isValid() || column == ChangeFeedModel::SummaryColumn);
    model.setCapacity(30);
    QCOMPARE(model.rowCount(), 30);
    model.clear();
    QCOMPARE(model.rowCount(), 0);
}

void tst_UiFeedModel::tenThousandEventsInOneTickAreOneInsert() {
    ChangeFeedModel model;
    model.setCapacity(4000);
    QSignalSpy inserted(&model, &QAbstractItemModel::rowsInserted);
    QSignalSpy removed(&model, &QAbstractItemModel::rowsRemoved);
    model.append(makeEvents(1, 10000));
    QCOMPARE(inserted.count(), 0); // nothing until the flush
    QTRY_COMPARE_WITH_TIMEOUT(inserted.count(), 1, 2000);
    QCOMPARE(removed.count(), 0);
    QCOMPARE(model.rowCount(), 4000);
    QCOMPARE(model.evictedCount(), 6000);
    QCOMPARE(model.eventAt(0).seq(), 6001);
    QCOMPARE(model.eventAt(3999).seq(), 10000);
    // The next tick with 10 000 more: one removal, one insertion, still bounded.
    model.append(makeEvents(10001, 10000));
    model.flush();
    QCOMPARE(inserted.count(), 2);
    QCOMPARE(removed.count(), 1);
    QCOMPARE(model.rowCount(), 4000);
    QCOMPARE(model.eventAt(3999).seq(), 20000);
}

void tst_UiFeedModel::timerFlushesAtMostTenTimesASecond() {
    ChangeFeedModel model;
    QSignalSpy inserted(&model, &QAbstractItemModel::rowsInserted);
    QElapsedTimer clock;
    clock.start();
    qint64 seq = 1;
    while (clock.elapsed() < 1000) {
        model.append(makeEvents(seq, 5)); // 5 events every 2 ms: ~2 500 events/s
        seq += 5;
        QTest::qWait(2);
    }
    QTest::qWait(150);
    QCOMPARE(model.rowCount(), int(seq - 1));
    QVERIFY2(inserted.count() <= 11, qPrintable(QString::number(inserted.count())));
    QVERIFY(inserted.count() >= 5);
}

void tst_UiFeedModel::ringKeepsTheNewestRows() {
    ChangeFeedModel model;
    model.setCapacity(10);
    for (int i = 0; i < 7; ++i) {
        model.append(makeEvents(1 + i * 4, 4));
        model.flush();
    }
    QCOMPARE(model.rowCount(), 10);
    QCOMPARE(model.evictedCount(), 18);
    for (int row = 0; row < 10; ++row)
        QCOMPARE(model.eventAt(row).seq(), 19 + row);
    const ChangeEventList last = model.lastEvents(3);
    QCOMPARE(last.size(), 3);
    QCOMPARE(last.constLast().seq(), 28);
    QCOMPARE(model.events().constFirst().seq(), 19);
}

void tst_UiFeedModel::pauseKeepsRecording() {
    ChangeFeedModel model;
    model.setPaused(true);
    model.append(makeEvents(1, 100));
    model.flush();
    QTest::qWait(150);
    QCOMPARE(model.rowCount(), 0);
    QCOMPARE(model.pendingCount(), 100);
    QCOMPARE(model.receivedCount(), 100);
    model.setPaused(false);
    QTRY_COMPARE(model.rowCount(), 100);
    QCOMPARE(model.pendingCount(), 0);
}

void tst_UiFeedModel::clear() {
    ChangeFeedModel model;
    model.append(makeEvents(1, 10));
    model.flush();
    model.append(makeEvents(11, 5)); // pending ones go too
    model.clear();
    model.flush();
    QCOMPARE(model.rowCount(), 0);
    QCOMPARE(model.evictedCount(), 0);
}

void tst_UiFeedModel::displayText() {
    ChangeFeedModel model;
    model.append({makeEvent(7, Operation::Update), makeEvent(8, Operation::Delete)});
    model.flush();
    QCOMPARE(model.index(0, ChangeFeedModel::OperationColumn).data().toString(), QStringLiteral("update"));
    QCOMPARE(model.index(0, ChangeFeedModel::NamespaceColumn).data().toString(),
             QStringLiteral("demo · main.orders"));
    QCOMPARE(model.index(0, ChangeFeedModel::KeyColumn).data().toString(), QStringLiteral("7"));
    const QString summary = model.index(0, ChangeFeedModel::SummaryColumn).data().toString();
    QVERIFY2(summary.contains(QStringLiteral("status → \"paid\"")), qPrintable(summary));
    QVERIFY2(summary.contains(QStringLiteral("removed: note")), qPrintable(summary));
    // Operations are coloured, and differently.
    const QColor update =
        model.index(0, ChangeFeedModel::OperationColumn).data(Qt::ForegroundRole).value<QColor>();
    const QColor del =
        model.index(1, ChangeFeedModel::OperationColumn).data(Qt::ForegroundRole).value<QColor>();
    QVERIFY(update.isValid());
    QVERIFY(update != del);
    QCOMPARE(model.index(1, 0).data(ChangeFeedModel::SeqRole).toLongLong(), 8);
    QCOMPARE(EventFormat::updatedPaths(makeEvent(1, Operation::Update)),
             QSet<QString>{QStringLiteral("status")});
    QCOMPARE(EventFormat::prettyJson(R"({"a":{"b":[1,2]},"c":{}})"),
             QStringLiteral("{\n  \"a\": {\n    \"b\": [\n      1,\n      2\n    ]\n  },\n  \"c\": {}\n}"));
    // Containers say how many they hold, never in a way that reads as a value ("[2]").
    const Bson containers = Bson::fromJson(R"({"e": [], "one": [7], "two": [1, 2], "d0": {}, "d1": {"x": 1},
        "d2": {"x": 1, "y": 2}})");
    bson_t view;
    QVERIFY(containers.view(&view));
    QStringList shown;
    bson_iter_t it;
    QVERIFY(bson_iter_init(&it, &view));
    while (bson_iter_next(&it))
        shown.append(EventFormat::valueText(&it));
    QCOMPARE(shown, (QStringList{QStringLiteral("[]"), QStringLiteral("[…1 item]"),
                                 QStringLiteral("[…2 items]"), QStringLiteral("{}"),
                                 QStringLiteral("{…1 field}"), QStringLiteral("{…2 fields}")}));
}

void tst_UiFeedModel::searchProxy() {
    ChangeFeedModel model;
    model.append({makeEvent(1, Operation::Insert, QStringLiteral("orders")),
                  makeEvent(2, Operation::Insert, QStringLiteral("customers")),
                  makeEvent(3, Operation::Update, QStringLiteral("orders"))});
    model.flush();
    FeedSearchProxy proxy;
    proxy.setFeed(&model);
    QAbstractItemModelTester tester(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(proxy.rowCount(), 3);
    proxy.setSearchText(QStringLiteral("CUSTOMERS"));
    QCOMPARE(proxy.rowCount(), 1);
    proxy.setSearchText(QStringLiteral("\"update\""));
    QCOMPARE(proxy.rowCount(), 1);
    model.append({makeEvent(4, Operation::Update)});
    model.flush();
    QCOMPARE(proxy.rowCount(), 2);
}

void tst_UiFeedModel::tailFollowOnlyAtBottom() {
    ChangeFeedModel model;
    model.setCapacity(2000);
    FeedView view(&model);
    view.resize(600, 300);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    model.append(makeEvents(1, 500));
    model.flush();
    QScrollBar* bar = view.view()->verticalScrollBar();
    QTRY_VERIFY(bar->maximum() > 0);
    QCOMPARE(bar->value(), bar->maximum()); // followed the tail

    // Scrolled up: new rows do not move the view.
    bar->setValue(300);
    const qint64 topSeq = model.eventAt(view.view()->indexAt(QPoint(5, 5)).row()).seq();
    model.append(makeEvents(501, 300));
    model.flush();
    QCOMPARE(bar->value(), 300);
    QVERIFY(!view.isFollowingTail());

    // Old rows leaving the ring do not move the rows being read either.
    model.append(makeEvents(801, 1500)); // 2 300 rows > 2 000: 300 leave
    model.flush();
    QCOMPARE(model.eventAt(view.view()->indexAt(QPoint(5, 5)).row()).seq(), topSeq);

    // Back at the bottom: following again.
    bar->setValue(bar->maximum());
    model.append(makeEvents(2301, 10));
    model.flush();
    QCOMPARE(bar->value(), bar->maximum());
}

void tst_UiFeedModel::exportNdjsonAndCsv() {
    const ChangeEventList events = {makeEvent(1), makeEvent(2, Operation::Update)};
    QBuffer ndjson;
    ndjson.open(QIODevice::WriteOnly);
    std::atomic<qint64> progress{0};
    QString error;
    QVERIFY(FeedExporter::write(events, FeedExporter::Format::Ndjson, &ndjson, &progress, nullptr, &error));
    const QList<QByteArray> lines = ndjson.data().trimmed().split('\n');
    QCOMPARE(lines.size(), 2);
    QCOMPARE(lines.at(1), events.at(1).toJson());
    QCOMPARE(progress.load(), 2);

    QBuffer csv;
    csv.open(QIODevice::WriteOnly);
    QVERIFY(FeedExporter::write(events, FeedExporter::Format::Csv, &csv, nullptr, nullptr, &error));
    const QList<QByteArray> rows = csv.data().split('\n');
    QVERIFY(rows.at(0).startsWith("seq,time,source,operation,namespace"));
    QVERIFY(rows.at(2).startsWith("2,"));
    QVERIFY(rows.at(2).contains("\"{\"\"_id\"\" : 2 }\"") || rows.at(2).contains("\"\"_id\"\""));

    std::atomic<bool> cancel{true};
    QBuffer cancelled;
    cancelled.open(QIODevice::WriteOnly);
    QVERIFY(!FeedExporter::write(events, FeedExporter::Format::Ndjson, &cancelled, nullptr, &cancel, &error));
}

// A schema event has its own colour across the row and an icon, its summary reads the
// index or columns, and the Event Detail lists the columns before and after.
void tst_UiFeedModel::schemaEventsStandOutAndReadInTheDetail() {
    ChangeEvent index;
    index.setSourceId(QStringLiteral("shop"));
    index.setNs(Namespace{QStringLiteral("main"), QStringLiteral("orders")});
    index.setOperation(Operation::Ddl, "createIndexes");
    index.setExtra(Bson::fromJson(R"({"operationDescription": {"indexes": [{"v": 2, "key": {"status": 1,
        "total": -1}, "name": "by_status", "unique": true}]}})"));
    index.setWallTimeMs(1700000000000);
    index.finalize(2);
    ChangeEvent modify;
    modify.setSourceId(QStringLiteral("shop"));
    modify.setNs(Namespace{QStringLiteral("main"), QStringLiteral("orders")});
    modify.setOperation(Operation::Ddl, "modify");
    modify.setExtra(Bson::fromJson(R"({"operationDescription": {
        "columns": [{"name": "id", "type": "INTEGER"}, {"name": "note", "type": "TEXT", "notNull": true}],
        "previousColumns": [{"name": "id", "type": "INTEGER"}]}})"));
    modify.setWallTimeMs(1700000000001);
    modify.finalize(3);

    ChangeFeedModel model;
    model.setSchemaIcon(Icons::forOperation(Operation::Ddl));
    model.append({makeEvent(1), index, modify});
    model.flush();
    QCOMPARE(model.rowCount(), 3);
    const auto color = [&](int row, int column) {
        return model.index(row, column).data(Qt::ForegroundRole).value<QColor>();
    };
    QVERIFY(color(1, ChangeFeedModel::OperationColumn).isValid());
    QVERIFY(color(1, ChangeFeedModel::OperationColumn) != color(0, ChangeFeedModel::OperationColumn));
    QCOMPARE(color(1, ChangeFeedModel::NamespaceColumn), color(1, ChangeFeedModel::OperationColumn));
    QVERIFY(!model.index(0, ChangeFeedModel::NamespaceColumn).data(Qt::ForegroundRole).isValid());
    QVERIFY(
        !model.index(1, ChangeFeedModel::OperationColumn).data(Qt::DecorationRole).value<QIcon>().isNull());
    QVERIFY(
        model.index(0, ChangeFeedModel::OperationColumn).data(Qt::DecorationRole).value<QIcon>().isNull());
    QCOMPARE(model.index(1, ChangeFeedModel::OperationColumn).data().toString(),
             QStringLiteral("createIndexes"));
    // The key in index order, which a JSON object would have sorted.
    QCOMPARE(model.index(1, ChangeFeedModel::SummaryColumn).data().toString(),
             QStringLiteral("index by_status on status ↑, total ↓ (unique)"));

    EventDetailDock detail;
    detail.setEvent(modify);
    QCOMPARE(detail.schemaText(), QStringLiteral("columns before: id INTEGER\n"
                                                 "columns after: id INTEGER, note TEXT NOT NULL"));
    QTreeWidgetItem* description = nullptr;
    for (int i = 0; i < detail.tree()->topLevelItemCount(); ++i)
        if (detail.tree()->topLevelItem(i)->text(0) == QLatin1String("operationDescription"))
            description = detail.tree()->topLevelItem(i);
    QVERIFY(description);
    QVERIFY(description->isExpanded());
    QVERIFY(description->child(0)->isExpanded()); // "columns", and each column below it
    detail.setEvent(makeEvent(4));
    QCOMPARE(detail.schemaText(), QString());
}

void tst_UiFeedModel::exportNdjsonInASubscriptionsShape() {
    const ChangeEventList events = {makeEvent(1), makeEvent(2, Operation::Update)};
    Subscription s;
    QVERIFY(s.setProjection(R"({"documentKey": 1})", nullptr));
    s.event = EventTemplate::compile(QStringLiteral("{ns.coll}.{operationType}"), nullptr);
    QBuffer ndjson;
    ndjson.open(QIODevice::WriteOnly);
    QString error;
    QVERIFY(FeedExporter::write(events, FeedExporter::Format::Ndjson, &ndjson, nullptr, nullptr, &error,
                                s.shape()));
    const QList<QByteArray> lines = ndjson.data().trimmed().split('\n');
    QCOMPARE(lines.size(), 2);
    // The same bytes a long poll of that subscription returns.
    for (int i = 0; i < 2; ++i)
        QCOMPARE(lines.at(i), EventRenderer::renderJson(events.at(i), s, false));
    QVERIFY(lines.at(1).startsWith(R"({"event":")"));
    QVERIFY(lines.at(1).contains(R"(.update","data":{"seq":2,"documentKey":)"));
    QVERIFY(!lines.at(1).contains("fullDocument"));
}

QTEST_MAIN(tst_UiFeedModel)
#include "tst_ui_feedmodel.moc"

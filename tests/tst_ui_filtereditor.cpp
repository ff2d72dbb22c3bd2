// The filter editor's live validation, and the Filters dock's composition of
// operation check boxes with the JSON and its "N of the last M" preview.
#include "docks/FiltersDock.h"
#include "widgets/FilterEditor.h"

#include <QCheckBox>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QSignalSpy>
#include <QTest>

using namespace tw;
using namespace tw::ui;

namespace {

ChangeEvent makeEvent(qint64 seq, Operation op, const QString& status) {
    ChangeEvent e;
    e.setSourceId(QStringLiteral("demo"));
    e.setNs(Namespace{QStringLiteral("main"), QStringLiteral("orders")});
    e.setOperation(op);
    e.setDocumentKey(Bson::fromJson(QStringLiteral(R"({"_id": %1})").arg(seq).toUtf8()));
    e.setFullDocument(
        Bson::fromJson(QStringLiteral(R"({"_id": %1, "status": "%2"})").arg(seq).arg(status).toUtf8()));
    e.finalize(seq);
    return e;
}

} // namespace

class tst_UiFilterEditor : public QObject {
    Q_OBJECT
private slots:
    void validation_data();
    void validation();
    void validatesAsYouType();
    void combineAndSplit();
    void previewCountsRecentEvents();
    void dataAndSchemaCheckBoxesSetChanges();
    void projectionAndEventNameValidateAsYouType();
};

void tst_UiFilterEditor::validation_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<bool>("valid");
    QTest::addColumn<QString>("messagePart");
    QTest::newRow("empty means everything") << QString() << true << QString();
    QTest::newRow("all") << QStringLiteral("{}") << true << QString();
    QTest::newRow("equality") << QStringLiteral(R"({"operationType": "insert"})") << true << QString();
    QTest::newRow("nested operators")
        << QStringLiteral(R"({"fullDocument.total": {"$gt": 100, "$lt": 500}})") << true << QString();
    QTest::newRow("syntax error has line and column")
        << QStringLiteral("{\n  \"a\": 1,\n  \"b\" 2\n}") << false << QStringLiteral("Line 3, column");
    QTest::newRow("unterminated") << QStringLiteral(R"({"a":)") << false << QStringLiteral("Line 1");
    QTest::newRow("unknown operator names the path")
        << QStringLiteral(R"({"fullDocument.total": {"$foo": 1}})") << false
        << QStringLiteral("fullDocument.total: unknown operator $foo");
    QTest::newRow("bad $size names the path")
        << QStringLiteral(R"({"items": {"$size": -1}})") << false << QStringLiteral("items: $size");
    QTest::newRow("nested path in $or") << QStringLiteral(R"({"$or": [{"x.y": {"$foo": 1}}]})") << false
                                        << QStringLiteral("x.y: unknown operator $foo");
    QTest::newRow("not an object") << QStringLiteral("[1, 2]") << false << QStringLiteral("JSON object");
}

void tst_UiFilterEditor::validation() {
    QFETCH(QString, text);
    QFETCH(bool, valid);
    QFETCH(QString, messagePart);
    FilterEditor editor;
    editor.setText(text);
    QCOMPARE(editor.isValid(), valid);
    if (!valid) {
        QVERIFY2(editor.errorMessage().contains(messagePart), qPrintable(editor.errorMessage()));
        QVERIFY(editor.messageLabel()->text().contains(messagePart));
    } else {
        QVERIFY(editor.filter().isValid());
    }
}

void tst_UiFilterEditor::validatesAsYouType() {
    FilterEditor editor;
    QSignalSpy validated(&editor, &FilterEditor::validated);
    editor.editor()->setPlainText(QStringLiteral(R"({"a": {"$gt": )"));
    QTRY_VERIFY(!validated.isEmpty());
    QCOMPARE(validated.last().at(0).toBool(), false);
    editor.editor()->setPlainText(QStringLiteral(R"({"a": {"$gt": 1}})"));
    QTRY_COMPARE(validated.last().at(0).toBool(), true);
}

void tst_UiFilterEditor::combineAndSplit() {
    QCOMPARE(FiltersDock::combineFilter(QString(), {}), QByteArray("{}"));
    QCOMPARE(FiltersDock::combineFilter(QStringLiteral(R"({"a": 1})"), {}), QByteArray(R"({"a": 1})"));
    const QByteArray opsOnly = FiltersDock::combineFilter(QStringLiteral("{}"), {QStringLiteral("delete")});
    QString error;
    Filter f = Filter::compile(opsOnly, &error);
    QVERIFY2(f.isValid(), qPrintable(error));
    QVERIFY(!f.matches(makeEvent(1, Operation::Delete, QStringLiteral("x"))));
    QVERIFY(f.matches(makeEvent(1, Operation::Insert, QStringLiteral("x"))));

    const QByteArray both = FiltersDock::combineFilter(QStringLiteral(R"({"fullDocument.status": "paid"})"),
                                                       {QStringLiteral("delete"), QStringLiteral("DDL")});
    f = Filter::compile(both, &error);
    QVERIFY2(f.isValid(), qPrintable(error));
    QVERIFY(f.matches(makeEvent(1, Operation::Insert, QStringLiteral("paid"))));
    QVERIFY(!f.matches(makeEvent(1, Operation::Insert, QStringLiteral("pending"))));
    QString user;
    QStringList excluded;
    QVERIFY(FiltersDock::splitFilter(f.json(), &user, &excluded));
    QCOMPARE(excluded, (QStringList{QStringLiteral("delete"), QStringLiteral("DDL")}));
    QVERIFY(user.contains(QStringLiteral("fullDocument.status")));
    QVERIFY(!FiltersDock::splitFilter(R"({"a": 1})", &user, &excluded));
}

void tst_UiFilterEditor::previewCountsRecentEvents() {
    FiltersDock dock;
    ChangeEventList recent;
    for (int i = 1; i <= 40; ++i)
        recent.append(makeEvent(i, i % 4 == 0 ? Operation::Delete : Operation::Insert,
                                i % 2 ? QStringLiteral("paid") : QStringLiteral("pending")));
    dock.setRecentEventsFunction([recent] { return recent; });
    Subscription s;
    s.id = QStringLiteral("s1");
    s.name = QStringLiteral("Orders");
    dock.setSubscriptions({s});
    dock.updatePreview();
    QVERIFY2(dock.previewText().contains(QStringLiteral("<b>40</b> of the last 40")),
             qPrintable(dock.previewText()));

    dock.editor()->setText(QStringLiteral(R"({"fullDocument.status": "paid"})"));
    dock.updatePreview();
    QVERIFY2(dock.previewText().contains(QStringLiteral("<b>20</b> of the last 40")),
             qPrintable(dock.previewText()));
    QVERIFY(dock.previewText().contains(QStringLiteral("not applied")));

    dock.editor()->setText(QStringLiteral(R"({"fullDocument.status": {"$bad": 1}})"));
    dock.updatePreview();
    QVERIFY(dock.previewText().contains(QStringLiteral("Fix the filter")));

    QSignalSpy applied(&dock, &FiltersDock::applyRequested);
    dock.editor()->setText(QStringLiteral(R"({"fullDocument.status": "pending"})"));
    bool valid = false;
    const Subscription edited = dock.editedSubscription(&valid);
    QVERIFY(valid);
    QCOMPARE(edited.id, s.id);
    QVERIFY(edited.filter.matches(recent.at(1)));
    QVERIFY(!edited.filter.matches(recent.at(0)));
}

void tst_UiFilterEditor::dataAndSchemaCheckBoxesSetChanges() {
    FiltersDock dock;
    ChangeEventList recent{makeEvent(1, Operation::Insert, QStringLiteral("paid")),
                           makeEvent(2, Operation::Drop, QStringLiteral("paid"))};
    dock.setRecentEventsFunction([recent] { return recent; });
    Subscription s;
    s.id = QStringLiteral("s1");
    s.changes = Subscription::Changes::Schema;
    dock.setSubscriptions({s});
    QCheckBox* data = nullptr;
    QCheckBox* schema = nullptr;
    for (QCheckBox* box : dock.findChildren<QCheckBox*>()) {
        if (box->text() == QLatin1String("Data changes"))
            data = box;
        else if (box->text() == QLatin1String("Schema changes"))
            schema = box;
    }
    QVERIFY(data && schema);
    // Loaded from the subscription.
    QVERIFY(!data->isChecked());
    QVERIFY(schema->isChecked());
    QCOMPARE(dock.editedSubscription().changes, Subscription::Changes::Schema);
    dock.updatePreview();
    QVERIFY2(dock.previewText().contains(QStringLiteral("<b>1</b> of the last 2")),
             qPrintable(dock.previewText()));

    data->setChecked(true);
    QCOMPARE(dock.editedSubscription().changes, Subscription::Changes::All);
    schema->setChecked(false);
    QCOMPARE(dock.editedSubscription().changes, Subscription::Changes::Data);
    // Neither would match nothing: unticking the last one ticks the other.
    data->setChecked(false);
    QVERIFY(schema->isChecked());
    QCOMPARE(dock.editedSubscription().changes, Subscription::Changes::Schema);
}

void tst_UiFilterEditor::projectionAndEventNameValidateAsYouType() {
    FiltersDock dock;
    Subscription s;
    s.id = QStringLiteral("s1");
    s.event = EventTemplate::compile(QStringLiteral("order_{operationType}"), nullptr);
    QVERIFY(s.setProjection(R"({"fullDocument.status": 1})", nullptr));
    dock.setSubscriptions({s});
    auto* projection = dock.findChild<QLineEdit*>(QStringLiteral("projection"));
    auto* eventName = dock.findChild<QLineEdit*>(QStringLiteral("eventName"));
    auto* error = dock.findChild<QLabel*>(QStringLiteral("shapeError"));
    QVERIFY(projection && eventName && error);
    QCOMPARE(projection->text(), QStringLiteral(R"({"fullDocument.status":1})"));
    QCOMPARE(eventName->text(), QStringLiteral("order_{operationType}"));

    projection->clear();
    QTest::keyClicks(projection, QStringLiteral(R"({"fullDocument.status": 1, "fullDocument.total": 0})"));
    QVERIFY2(error->text().contains(QStringLiteral("Cannot do exclusion on field fullDocument.total")),
             qPrintable(error->text()));
    bool valid = true;
    dock.editedSubscription(&valid);
    QVERIFY(!valid);

    projection->clear();
    QTest::keyClicks(projection, QStringLiteral("keys"));
    QVERIFY(error->text().isEmpty());
    eventName->clear();
    QTest::keyClicks(eventName, QStringLiteral("{ns.coll"));
    QVERIFY2(error->text().contains(QStringLiteral("unclosed {")), qPrintable(error->text()));
    QTest::keyClicks(eventName, QStringLiteral("}.changed"));
    QVERIFY(error->text().isEmpty());
    const Subscription edited = dock.editedSubscription(&valid);
    QVERIFY(valid);
    QCOMPARE(edited.projection, Subscription::Projection::KeysOnly);
    QVERIFY(edited.fieldProjection.isNull());
    QCOMPARE(edited.event.text(), QStringLiteral("{ns.coll}.changed"));
}

QTEST_MAIN(tst_UiFilterEditor)
#include "tst_ui_filtereditor.moc"

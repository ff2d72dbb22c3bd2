// The connection dialog refuses obviously bad URIs with a message, shows the
// engine's error, and passwords stay out of workspace files.
#include "dialogs/ConnectionDialog.h"
#include "Workspace.h"

#include <QLineEdit>
#include <QTemporaryDir>
#include <QTest>

using namespace tw;
using namespace tw::ui;

class tst_UiConnectionDialog : public QObject {
    Q_OBJECT
private slots:
    void validateUri_data();
    void validateUri();
    void dialogRejectsBadUri();
    void dialogShowsCommitError();
    void passwordSplitAndWorkspace();

private:
    QTemporaryDir m_dir;
};

void tst_UiConnectionDialog::validateUri_data() {
    QTest::addColumn<QString>("uri");
    QTest::addColumn<bool>("valid");
    QTest::addColumn<QString>("messagePart");
    QFile existing(m_dir.filePath(QStringLiteral("shop.sqlite")));
    QVERIFY(existing.open(QIODevice::WriteOnly));
    existing.close();
    QTest::newRow("empty") << QString() << false << QStringLiteral("Enter a URI");
    QTest::newRow("blank") << QStringLiteral("   ") << false << QStringLiteral("Enter a URI");
    QTest::newRow("unknown scheme") << QStringLiteral("redis://localhost") << false
                                    << QStringLiteral("Unknown scheme \"redis:\"");
    QTest::newRow("no scheme") << QStringLiteral("localhost") << false << QStringLiteral("not a URI");
    QTest::newRow("sqlite without file")
        << QStringLiteral("sqlite:") << false << QStringLiteral("names no file");
    QTest::newRow("sqlite missing file") << QStringLiteral("sqlite:/nonexistent/dir/x.sqlite") << false
                                         << QStringLiteral("No SQLite file at /nonexistent/dir/x.sqlite");
    QTest::newRow("sqlite folder") << QStringLiteral("sqlite:") + m_dir.path() << false
                                   << QStringLiteral("is a folder");
    QTest::newRow("sqlite ok") << QStringLiteral("sqlite:") + existing.fileName() << true << QString();
    QTest::newRow("mongodb no host") << QStringLiteral("mongodb://") << false
                                     << QStringLiteral("names no host");
    QTest::newRow("mongodb single slash")
        << QStringLiteral("mongodb:/host") << false << QStringLiteral("start with mongodb://");
    QTest::newRow("mongodb ok") << QStringLiteral("mongodb://localhost:27017/?replicaSet=rs0") << true
                                << QString();
    QTest::newRow("mongodb multi-host") << QStringLiteral("mongodb://u:p@a:1,b:2/db") << true << QString();
    QTest::newRow("srv ok") << QStringLiteral("mongodb+srv://cluster0.example.net") << true << QString();
    QTest::newRow("postgres ok") << QStringLiteral("postgresql://app@db:5432/shop") << true << QString();
    QTest::newRow("postgres conninfo ok")
        << QStringLiteral("host=db port=5432 dbname=shop user=app") << true << QString();
    QTest::newRow("nats gateway ok") << QStringLiteral("nats://127.0.0.1:4222/TIDEWATCH") << true
                                     << QString();
    QTest::newRow("nats gateway default stream") << QStringLiteral("nats://nats:4222") << true << QString();
    QTest::newRow("nats gateway no port")
        << QStringLiteral("nats://nats") << false << QStringLiteral("needs nats://HOST:PORT");
    QTest::newRow("nats gateway bad stream")
        << QStringLiteral("nats://nats:4222/a.b") << false << QStringLiteral("a stream name is");
}

void tst_UiConnectionDialog::validateUri() {
    QFETCH(QString, uri);
    QFETCH(bool, valid);
    QFETCH(QString, messagePart);
    QString error;
    QCOMPARE(ConnectionDialog::validateUri(uri, &error), valid);
    if (!valid)
        QVERIFY2(error.contains(messagePart), qPrintable(error));
}

void tst_UiConnectionDialog::dialogRejectsBadUri() {
    ConnectionDialog dialog({QStringLiteral("taken")});
    bool committed = false;
    dialog.setCommitFunction([&](const ConnectionSpec&, QString*) { return committed = true; });
    dialog.uriEdit()->setText(QStringLiteral("ftp://example.com"));
    dialog.accept();
    QCOMPARE(dialog.result(), int(QDialog::Rejected));
    QVERIFY(!committed);
    QVERIFY2(dialog.errorText().contains(QStringLiteral("Unknown scheme")), qPrintable(dialog.errorText()));

    // A name already in use is refused too.
    dialog.uriEdit()->setText(QStringLiteral("mongodb://localhost"));
    dialog.nameEdit()->setText(QStringLiteral("taken"));
    dialog.accept();
    QVERIFY(!committed);
    QVERIFY(dialog.errorText().contains(QStringLiteral("exists already")));

    dialog.nameEdit()->setText(QStringLiteral("local"));
    dialog.accept();
    QVERIFY(committed);
    QCOMPARE(dialog.result(), int(QDialog::Accepted));
}

void tst_UiConnectionDialog::dialogShowsCommitError() {
    ConnectionDialog dialog({});
    dialog.setCommitFunction([](const ConnectionSpec& spec, QString* error) {
        *error = QStringLiteral("cannot reach %1").arg(spec.uri);
        return false;
    });
    dialog.uriEdit()->setText(QStringLiteral("mongodb://admin:hunter2@db.example:27017"));
    dialog.accept();
    QCOMPARE(dialog.result(), int(QDialog::Rejected));
    // The error shows the URI, and the password went to the password field, not the URI.
    QCOMPARE(dialog.errorText(), QStringLiteral("cannot reach mongodb://admin@db.example:27017"));
    const ConnectionSpec spec = dialog.connection();
    QCOMPARE(spec.password, QStringLiteral("hunter2"));
    QCOMPARE(spec.id, QStringLiteral("db-example"));
}

void tst_UiConnectionDialog::passwordSplitAndWorkspace() {
    QString password;
    QCOMPARE(Workspace::splitPassword(QStringLiteral("postgresql://app:s%40cret@db/shop"), &password),
             QStringLiteral("postgresql://app@db/shop"));
    QCOMPARE(password, QStringLiteral("s@cret"));
    QCOMPARE(Workspace::splitPassword(
                 QStringLiteral("postgresql://db/shop?user=a&password=x&sslmode=require"), &password),
             QStringLiteral("postgresql://db/shop?user=a&sslmode=require"));
    QCOMPARE(password, QStringLiteral("x"));
    QCOMPARE(Workspace::insertPassword(QStringLiteral("mongodb://admin@h:1/"), QStringLiteral("p@ss")),
             QStringLiteral("mongodb://admin:p%40ss@h:1/"));

    Workspace w;
    ConnectionSpec c;
    c.id = QStringLiteral("orders");
    c.uri = QStringLiteral("mongodb://admin@db:27017");
    c.password = QStringLiteral("hunter2");
    c.watches = {Namespace{QStringLiteral("shop"), QStringLiteral("orders")}};
    w.connections.append(c);
    Subscription s;
    s.id = QStringLiteral("paid");
    s.name = QStringLiteral("Paid");
    s.filter = Filter::compile(R"({"fullDocument.status": "paid"})");
    w.subscriptions.append(s);
    w.windowState = QByteArray("state");
    const QString path = m_dir.filePath(QStringLiteral("w.json"));
    QString error;
    QVERIFY2(w.save(path, &error), qPrintable(error));
    QFile file(path);
    QVERIFY(file.open(QIODevice::ReadOnly));
    const QByteArray text = file.readAll();
    QVERIFY(!text.contains("hunter2"));
    QVERIFY(text.contains("\"hasPassword\": true"));

    Workspace loaded;
    QVERIFY2(Workspace::load(path, &loaded, &error), qPrintable(error));
    QCOMPARE(loaded.connections.size(), 1);
    QCOMPARE(loaded.connections.at(0).uri, c.uri);
    QVERIFY(loaded.connections.at(0).hasPassword);
    QVERIFY(loaded.connections.at(0).password.isEmpty());
    QCOMPARE(loaded.connections.at(0).watches, c.watches);
    QCOMPARE(loaded.subscriptions.at(0).filter.json(), s.filter.json());
    QCOMPARE(loaded.windowState, QByteArray("state"));
    QVERIFY(!Workspace::fromJson("{\"format\": \"other\"}", &loaded, &error));
    QVERIFY(error.contains(QStringLiteral("not a Tidewatch workspace")));
}

QTEST_MAIN(tst_UiConnectionDialog)
#include "tst_ui_connectiondialog.moc"

// `tidewatch --demo --screenshot FILE.png` renders the window with demo traffic and
// exits 0.
#include <QImage>
#include <QProcess>
#include <QSet>
#include <QTemporaryDir>
#include <QTest>

class tst_UiScreenshot : public QObject {
    Q_OBJECT
private slots:
    void writesNonBlankPng();
};

void tst_UiScreenshot::writesNonBlankPng() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString png = dir.filePath(QStringLiteral("shot.png"));
    QProcess process;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("TIDEWATCH_DATA_DIR"), dir.path());
    if (!env.contains(QStringLiteral("QT_QPA_PLATFORM")))
        env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    process.setProcessEnvironment(env);
    process.start(QStringLiteral(TIDEWATCH_BINARY),
                  {QStringLiteral("--demo"), QStringLiteral("--demo-rate"), QStringLiteral("50"),
                   QStringLiteral("--screenshot"), png, QStringLiteral("--screenshot-delay"),
                   QStringLiteral("2500"), QStringLiteral("--journal"),
                   dir.filePath(QStringLiteral("journal.sqlite"))});
    QVERIFY(process.waitForStarted());
    QVERIFY2(process.waitForFinished(60000), "tidewatch did not exit");
    QCOMPARE(process.exitStatus(), QProcess::NormalExit);
    QVERIFY2(process.exitCode() == 0, process.readAllStandardError().constData());

    QImage image(png);
    QVERIFY(!image.isNull());
    QVERIFY(image.width() >= 800 && image.height() >= 500);
    // Non-blank: a real window has text, icons and coloured operations.
    QSet<QRgb> colours;
    for (int y = 0; y < image.height(); y += 3)
        for (int x = 0; x < image.width(); x += 3)
            colours.insert(image.pixel(x, y));
    QVERIFY2(colours.size() > 50, qPrintable(QString::number(colours.size())));
    // Operation colours (insert green, update blue) from the feed are in the picture.
    const auto near = [&](QColor wanted) {
        for (QRgb c : std::as_const(colours)) {
            const QColor q(c);
            if (std::abs(q.red() - wanted.red()) < 30 && std::abs(q.green() - wanted.green()) < 30 &&
                std::abs(q.blue() - wanted.blue()) < 30)
                return true;
        }
        return false;
    };
    QVERIFY(near(QColor(0x1a, 0x7f, 0x37)));
}

QTEST_MAIN(tst_UiScreenshot)
#include "tst_ui_screenshot.moc"

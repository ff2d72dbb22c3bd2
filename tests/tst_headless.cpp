#include "TestUtil.h"

#include <QJsonArray>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

#include <csignal>

using namespace tw::test;

// The headless command, as a user or a script runs it: real binary, real SQLite file
// written by the sqlite3 program, NDJSON read from stdout.
class TestHeadless : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void filteredNdjsonLineByLine();
    void fromSeqReplaysThenGoesLive();
    void watchStarFollowsANewTableAndFiltersSchemaEvents();
    void projectionAndEventNameShapeLinesReplayAlike();
    void sigtermExitsCleanlyWithJournalCheckpointed();
    void badInputGetsOneLineErrorAndNonZeroExit_data();
    void badInputGetsOneLineErrorAndNonZeroExit();
    void damagedJournalIsExplainedAndCanBeMovedAside();
    void firstRunCreatesTheDataFolder();
    void unwritableJournalFolderIsExplained();
    void demoDatabaseThatCannotBeMadeExitsBeforeTheJournal();
    void workspaceKeepsWhatHttpAddedAcrossARestart();
    void unwritableSettingsFileIsSaidInOneLine();

private:
    QString db() const { return m_dir->filePath(QStringLiteral("shop.sqlite")); }
    QString journal() const { return m_dir->filePath(QStringLiteral("journal.sqlite")); }
    void startHeadless(QProcess& p, const QStringList& extra);
    QList<QJsonObject> readLines(QProcess& p, int count);
    std::unique_ptr<QTemporaryDir> m_dir;
    QByteArray m_pending;
};

void TestHeadless::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    m_pending.clear();
    qputenv("TIDEWATCH_DATA_DIR", m_dir->filePath(QStringLiteral("data")).toLocal8Bit());
    QCOMPARE(runSqlite3(db(),
                        QStringLiteral("PRAGMA journal_mode=WAL;"
                                       "CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT, total REAL);"
                                       "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);")),
             QString());
}

void TestHeadless::startHeadless(QProcess& p, const QStringList& extra) {
    QStringList args{QStringLiteral("--headless"), QStringLiteral("--source"),
                     QStringLiteral("sqlite:") + db(), QStringLiteral("--journal"), journal()};
    args += extra;
    p.setProcessChannelMode(QProcess::SeparateChannels);
    p.start(QStringLiteral(TIDEWATCH_BINARY), args);
    QVERIFY(p.waitForStarted());
    // Ready once every watch has reported that its baseline is taken.
    const int watches = int(extra.count(QStringLiteral("--watch")));
    QByteArray log;
    auto ready = [&] {
        log += p.readAllStandardError();
        return log.count("tidewatch: ready: ") >= watches || p.state() != QProcess::Running;
    };
    QTRY_VERIFY_WITH_TIMEOUT(ready(), 20000);
    QCOMPARE(p.state(), QProcess::Running);
}

#define START_HEADLESS(p, args)                                                                              \
    do {                                                                                                     \
        startHeadless(p, args);                                                                              \
        if (QTest::currentTestFailed())                                                                      \
            return;                                                                                          \
    } while (false)

QList<QJsonObject> TestHeadless::readLines(QProcess& p, int count) {
    QList<QJsonObject> out;
    QElapsedTimer timer;
    timer.start();
    while (out.size() < count && timer.elapsed() < 20000) {
        if (!p.canReadLine() && m_pending.count('\n') == 0)
            p.waitForReadyRead(200);
        m_pending += p.readAllStandardOutput();
        qsizetype nl;
        while (out.size() < count && (nl = m_pending.indexOf('\n')) >= 0) {
            const QByteArray line = m_pending.left(nl);
            m_pending.remove(0, nl + 1);
            QJsonParseError err;
            const QJsonDocument doc = QJsonDocument::fromJson(line, &err);
            if (err.error != QJsonParseError::NoError)
                qWarning() << "not JSON:" << line;
            out.append(doc.object());
        }
    }
    return out;
}

void TestHeadless::filteredNdjsonLineByLine() {
    QProcess p;
    START_HEADLESS(
        p, (QStringList{
               QStringLiteral("--watch"), QStringLiteral("orders"), QStringLiteral("--filter"),
               QStringLiteral(R"({"operationType": {"$in": ["insert", "delete"]}, "ns.coll": "orders"})")}));
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('new', 5);"
                                             "INSERT INTO customers(name) VALUES('not watched');")),
             QString());
    // Diff mode reports the state at each scan: wait for the insert before changing the
    // row again, or insert and update may rightly arrive as one insert of the new state.
    QList<QJsonObject> lines = readLines(p, 1);
    QCOMPARE(lines.size(), 1);
    QCOMPARE(runSqlite3(db(), QStringLiteral("UPDATE orders SET status='paid' WHERE id=1")),
             QString()); // filtered out
    QCOMPARE(runSqlite3(db(), QStringLiteral("DELETE FROM orders WHERE id=1")), QString());
    lines += readLines(p, 1);
    QCOMPARE(lines.size(), 2);
    QCOMPARE(lines[0].value(QLatin1String("operationType")).toString(), QStringLiteral("insert"));
    QCOMPARE(lines[0].value(QLatin1String("ns")).toObject().value(QLatin1String("coll")).toString(),
             QStringLiteral("orders"));
    QCOMPARE(
        lines[0].value(QLatin1String("fullDocument")).toObject().value(QLatin1String("status")).toString(),
        QStringLiteral("new"));
    QCOMPARE(lines[1].value(QLatin1String("operationType")).toString(), QStringLiteral("delete"));
    const double seq0 = lines[0].value(QLatin1String("seq")).toDouble();
    const double seq1 = lines[1].value(QLatin1String("seq")).toDouble();
    QVERIFY(seq0 >= 1);
    QVERIFY(seq1 > seq0 + 0.5); // the filtered-out update took the seq between them
    QCOMPARE(lines[0].value(QLatin1String("source")).toString(), QStringLiteral("shop"));
    p.terminate();
    QVERIFY(p.waitForFinished(10000));
    QCOMPARE(p.exitCode(), 0);
    // Nothing else was printed: the update and the customer insert were filtered out.
    m_pending += p.readAllStandardOutput();
    QCOMPARE(m_pending.trimmed(), QByteArray());
}

// --watch '*' follows a table created after the start; schema events are filtered by
// their MongoDB names like any other operation.
void TestHeadless::watchStarFollowsANewTableAndFiltersSchemaEvents() {
    QProcess p;
    START_HEADLESS(p, (QStringList{QStringLiteral("--watch"), QStringLiteral("*"), QStringLiteral("--filter"),
                                   QStringLiteral(R"({"operationType": {"$in": ["create", "insert"]}})")}));
    QCOMPARE(runSqlite3(db(), QStringLiteral("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT);"
                                             "CREATE INDEX by_name ON items(name);"
                                             "INSERT INTO items(name) VALUES('first');")),
             QString());
    // The second write waits for the first one's events: a scan that finds both
    // commits at once reports them table by table, not commit by commit.
    QList<QJsonObject> lines = readLines(p, 2);
    QCOMPARE(lines.size(), 2);
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('a',1);")), QString());
    lines += readLines(p, 1);
    QCOMPARE(lines.size(), 3);
    const auto coll = [](const QJsonObject& line) {
        return line.value(QLatin1String("ns")).toObject().value(QLatin1String("coll")).toString();
    };
    QCOMPARE(lines[0].value(QLatin1String("operationType")).toString(), QStringLiteral("create"));
    QCOMPARE(coll(lines[0]), QStringLiteral("items"));
    QCOMPARE(lines[1].value(QLatin1String("operationType")).toString(), QStringLiteral("insert"));
    QCOMPARE(coll(lines[1]), QStringLiteral("items"));
    QCOMPARE(lines[1].value(QLatin1String("fullDocument")).toObject().value(QLatin1String("name")).toString(),
             QStringLiteral("first"));
    // The createIndexes between them did not pass the filter.
    QCOMPARE(lines[2].value(QLatin1String("operationType")).toString(), QStringLiteral("insert"));
    QCOMPARE(coll(lines[2]), QStringLiteral("orders"));
}

void TestHeadless::fromSeqReplaysThenGoesLive() {
    {
        QProcess p;
        START_HEADLESS(p, (QStringList{QStringLiteral("--watch"), QStringLiteral("orders")}));
        QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('a',1);")),
                 QString());
        QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('b',2);")),
                 QString());
        QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('c',3);")),
                 QString());
        QCOMPARE(readLines(p, 3).size(), 3);
        p.terminate();
        QVERIFY(p.waitForFinished(10000));
    }
    m_pending.clear();
    QProcess p;
    START_HEADLESS(p, (QStringList{QStringLiteral("--watch"), QStringLiteral("orders"),
                                   QStringLiteral("--from-seq"), QStringLiteral("2")}));
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('d',4);")), QString());
    const QList<QJsonObject> lines = readLines(p, 3);
    QCOMPARE(lines.size(), 3);
    QList<int> seqs;
    QStringList statuses;
    for (const QJsonObject& o : lines) {
        seqs.append(o.value(QLatin1String("seq")).toInt());
        statuses.append(
            o.value(QLatin1String("fullDocument")).toObject().value(QLatin1String("status")).toString());
    }
    QCOMPARE(seqs, (QList<int>{2, 3, 4}));
    QCOMPARE(statuses, (QStringList{QStringLiteral("b"), QStringLiteral("c"), QStringLiteral("d")}));
    p.terminate();
    QVERIFY(p.waitForFinished(10000));
}

void TestHeadless::projectionAndEventNameShapeLinesReplayAlike() {
    const QStringList shape{
        QStringLiteral("--watch"),      QStringLiteral("orders"),
        QStringLiteral("--projection"), QStringLiteral(R"({"documentKey": 1, "fullDocument.status": 1})"),
        QStringLiteral("--event"),      QStringLiteral("{ns.coll}.{operationType}")};
    QList<QJsonObject> live;
    {
        QProcess p;
        START_HEADLESS(p, shape);
        QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('a',1);")),
                 QString());
        live = readLines(p, 1);
        QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('b',2);")),
                 QString());
        live += readLines(p, 1);
        p.terminate();
        QVERIFY(p.waitForFinished(10000));
    }
    QCOMPARE(live.size(), 2);
    for (const QJsonObject& line : std::as_const(live)) {
        QCOMPARE(line.keys(), (QStringList{QStringLiteral("data"), QStringLiteral("event")}));
        QCOMPARE(line.value(QLatin1String("event")).toString(), QStringLiteral("orders.insert"));
        const QJsonObject data = line.value(QLatin1String("data")).toObject();
        QCOMPARE(data.keys(), (QStringList{QStringLiteral("documentKey"), QStringLiteral("fullDocument"),
                                           QStringLiteral("seq")}));
        QCOMPARE(data.value(QLatin1String("fullDocument")).toObject().keys(),
                 QStringList{QStringLiteral("status")});
    }
    QCOMPARE(live[1]
                 .value(QLatin1String("data"))
                 .toObject()
                 .value(QLatin1String("fullDocument"))
                 .toObject()
                 .value(QLatin1String("status"))
                 .toString(),
             QStringLiteral("b"));
    // Replayed from the journal, the lines are the live ones.
    m_pending.clear();
    QProcess p;
    START_HEADLESS(p, (shape + QStringList{QStringLiteral("--from-seq"), QStringLiteral("1")}));
    QCOMPARE(readLines(p, 2), live);
    p.terminate();
    QVERIFY(p.waitForFinished(10000));
}

void TestHeadless::sigtermExitsCleanlyWithJournalCheckpointed() {
    QProcess p;
    START_HEADLESS(p, (QStringList{QStringLiteral("--watch"), QStringLiteral("orders")}));
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('a',1);")), QString());
    QCOMPARE(readLines(p, 1).size(), 1);
    ::kill(pid_t(p.processId()), SIGINT);
    QVERIFY(p.waitForFinished(10000));
    QCOMPARE(p.exitStatus(), QProcess::NormalExit);
    QCOMPARE(p.exitCode(), 0);
    QVERIFY(p.readAllStandardError().contains("journal checkpointed"));
    // Checkpointed: the WAL was folded into the journal file and truncated.
    QFileInfo wal(journal() + QStringLiteral("-wal"));
    QVERIFY(!wal.exists() || wal.size() == 0);
    QVERIFY(!QFile::exists(journal() + QStringLiteral(".lock")));
}

void TestHeadless::badInputGetsOneLineErrorAndNonZeroExit_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QString>("expected");
    QTest::newRow("missing file") << QStringList{QStringLiteral("--headless"), QStringLiteral("--source"),
                                                 QStringLiteral("sqlite:/nonexistent/x.sqlite"),
                                                 QStringLiteral("--watch"), QStringLiteral("t")}
                                  << QStringLiteral("No SQLite file at /nonexistent/x.sqlite");
    QTest::newRow("unknown table") << QStringList{QStringLiteral("--headless"), QStringLiteral("--source"),
                                                  QStringLiteral("DB"), QStringLiteral("--watch"),
                                                  QStringLiteral("ordres")}
                                   << QStringLiteral("No table \"ordres\"");
    QTest::newRow("bad filter json") << QStringList{QStringLiteral("--headless"), QStringLiteral("--source"),
                                                    QStringLiteral("DB"),         QStringLiteral("--watch"),
                                                    QStringLiteral("orders"),     QStringLiteral("--filter"),
                                                    QStringLiteral("{\"a\": ")}
                                     << QStringLiteral("--filter:");
    QTest::newRow("bad filter operator")
        << QStringList{QStringLiteral("--headless"),
                       QStringLiteral("--source"),
                       QStringLiteral("DB"),
                       QStringLiteral("--watch"),
                       QStringLiteral("orders"),
                       QStringLiteral("--filter"),
                       QStringLiteral(R"({"fullDocument.total": {"$gtx": 5}})")}
        << QStringLiteral("fullDocument.total");
    QTest::newRow("bad projection")
        << QStringList{QStringLiteral("--headless"),
                       QStringLiteral("--source"),
                       QStringLiteral("DB"),
                       QStringLiteral("--watch"),
                       QStringLiteral("orders"),
                       QStringLiteral("--projection"),
                       QStringLiteral(R"({"fullDocument.status": 1, "fullDocument.total": 0})")}
        << QStringLiteral("--projection: projection: Cannot do exclusion on field fullDocument.total");
    QTest::newRow("bad event") << QStringList{QStringLiteral("--headless"), QStringLiteral("--source"),
                                              QStringLiteral("DB"),         QStringLiteral("--watch"),
                                              QStringLiteral("orders"),     QStringLiteral("--event"),
                                              QStringLiteral("{ns.coll")}
                               << QStringLiteral("--event: event: unclosed { at offset 0");
    QTest::newRow("no watch") << QStringList{QStringLiteral("--headless"), QStringLiteral("--source"),
                                             QStringLiteral("DB")}
                              << QStringLiteral("--source needs at least one --watch");
    QTest::newRow("unknown option") << QStringList{QStringLiteral("--headless"),
                                                   QStringLiteral("--frobnicate")}
                                    << QStringLiteral("Unknown option 'frobnicate'");
    QTest::newRow("bad uri") << QStringList{QStringLiteral("--headless"), QStringLiteral("--source"),
                                            QStringLiteral("ftp://user:secret@host/x"),
                                            QStringLiteral("--watch"), QStringLiteral("x")}
                             << QStringLiteral("Unsupported source URI \"ftp://user:****@host/x\"");
    QTest::newRow("bad from-seq") << QStringList{QStringLiteral("--headless"), QStringLiteral("--source"),
                                                 QStringLiteral("DB"),         QStringLiteral("--watch"),
                                                 QStringLiteral("orders"),     QStringLiteral("--from-seq"),
                                                 QStringLiteral("soon")}
                                  << QStringLiteral("--from-seq needs a sequence id");
    QTest::newRow("gateway without a port")
        << QStringList{QStringLiteral("--headless"), QStringLiteral("--gateway"),
                       QStringLiteral("nats://host")}
        << QStringLiteral("--gateway needs nats://HOST:PORT");
    QTest::newRow("gateway with a bad stream name")
        << QStringList{QStringLiteral("--headless"), QStringLiteral("--gateway"),
                       QStringLiteral("nats://127.0.0.1:4222"), QStringLiteral("--nats-stream"),
                       QStringLiteral("a.b")}
        << QStringLiteral("a stream name is 1 to 64 letters");
    QTest::newRow("gateway with a source")
        << QStringList{QStringLiteral("--headless"),
                       QStringLiteral("--gateway"),
                       QStringLiteral("nats://127.0.0.1:4222"),
                       QStringLiteral("--source"),
                       QStringLiteral("DB"),
                       QStringLiteral("--watch"),
                       QStringLiteral("orders")}
        << QStringLiteral("--gateway serves the namespaces its ingest publishes");
    QTest::newRow("bad nats storage") << QStringList{QStringLiteral("--headless"),
                                                     QStringLiteral("--source"),
                                                     QStringLiteral("DB"),
                                                     QStringLiteral("--watch"),
                                                     QStringLiteral("orders"),
                                                     QStringLiteral("--publish"),
                                                     QStringLiteral("nats://127.0.0.1:4222"),
                                                     QStringLiteral("--nats-storage"),
                                                     QStringLiteral("disk")}
                                      << QStringLiteral("--nats-storage needs file or memory, not \"disk\"");
    QTest::newRow("nats storage without publish")
        << QStringList{QStringLiteral("--headless"), QStringLiteral("--gateway"),
                       QStringLiteral("nats://127.0.0.1:4222"), QStringLiteral("--nats-storage"),
                       QStringLiteral("memory")}
        << QStringLiteral("--nats-storage needs --publish nats://HOST:PORT");
}

void TestHeadless::badInputGetsOneLineErrorAndNonZeroExit() {
    QFETCH(QStringList, args);
    QFETCH(QString, expected);
    for (QString& a : args)
        if (a == QLatin1String("DB"))
            a = QStringLiteral("sqlite:") + db();
    args << QStringLiteral("--journal") << journal();
    QProcess p;
    p.start(QStringLiteral(TIDEWATCH_BINARY), args);
    QVERIFY(p.waitForFinished(20000));
    QCOMPARE(p.exitStatus(), QProcess::NormalExit);
    QVERIFY(p.exitCode() != 0);
    const QString err = QString::fromUtf8(p.readAllStandardError());
    const QStringList errorLines = err.split(QLatin1Char('\n'), Qt::SkipEmptyParts).filter(expected);
    QVERIFY2(errorLines.size() == 1, qPrintable(err));
    QVERIFY2(!err.contains(QLatin1String("secret")), qPrintable(err));
    QCOMPARE(p.readAllStandardOutput(), QByteArray());
}

void TestHeadless::damagedJournalIsExplainedAndCanBeMovedAside() {
    {
        QFile f(journal());
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(QByteArray(4096, '\x01'));
    }
    QProcess p;
    p.start(QStringLiteral(TIDEWATCH_BINARY),
            {QStringLiteral("--headless"), QStringLiteral("--source"), QStringLiteral("sqlite:") + db(),
             QStringLiteral("--watch"), QStringLiteral("orders"), QStringLiteral("--journal"), journal()});
    QVERIFY(p.waitForFinished(20000));
    QCOMPARE(p.exitCode(), 1);
    const QString err = QString::fromUtf8(p.readAllStandardError());
    QVERIFY2(err.contains(QLatin1String("--move-journal-aside")), qPrintable(err));

    QProcess again;
    START_HEADLESS(again, (QStringList{QStringLiteral("--watch"), QStringLiteral("orders"),
                                       QStringLiteral("--move-journal-aside")}));
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('a',1);")), QString());
    const auto lines = readLines(again, 1);
    QCOMPARE(lines.size(), 1);
    QCOMPARE(lines[0].value(QLatin1String("seq")).toInt(), 1);
    again.terminate();
    QVERIFY(again.waitForFinished(10000));
    const QStringList moved = QDir(m_dir->path()).entryList({QStringLiteral("journal.sqlite.broken-*")});
    QCOMPARE(moved.size(), 1);
}

void TestHeadless::firstRunCreatesTheDataFolder() {
    // No --journal, and a data folder that does not exist yet: a new user's first run.
    const QString data = m_dir->filePath(QStringLiteral("fresh/data"));
    qputenv("TIDEWATCH_DATA_DIR", data.toLocal8Bit());
    QProcess p;
    p.start(QStringLiteral(TIDEWATCH_BINARY),
            {QStringLiteral("--headless"), QStringLiteral("--source"), QStringLiteral("sqlite:") + db(),
             QStringLiteral("--watch"), QStringLiteral("orders")});
    QVERIFY(p.waitForStarted());
    QByteArray log;
    QTRY_VERIFY_WITH_TIMEOUT(
        (log += p.readAllStandardError()).contains("ready: ") || p.state() != QProcess::Running, 20000);
    QVERIFY2(p.state() == QProcess::Running, log.constData());
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('first',1);")),
             QString());
    QCOMPARE(readLines(p, 1).size(), 1);
    p.terminate();
    QVERIFY(p.waitForFinished(10000));
    QVERIFY(QFile::exists(data + QStringLiteral("/journal.sqlite")));
}

void TestHeadless::unwritableJournalFolderIsExplained() {
    // A journal path under a regular file can never be created.
    QFile blocker(m_dir->filePath(QStringLiteral("blocker")));
    QVERIFY(blocker.open(QIODevice::WriteOnly));
    blocker.close();
    QProcess p;
    p.start(QStringLiteral(TIDEWATCH_BINARY),
            {QStringLiteral("--headless"), QStringLiteral("--source"), QStringLiteral("sqlite:") + db(),
             QStringLiteral("--watch"), QStringLiteral("orders"), QStringLiteral("--journal"),
             blocker.fileName() + QStringLiteral("/journal.sqlite")});
    QVERIFY(p.waitForFinished(20000));
    QVERIFY(p.exitCode() != 0);
    const QString err = QString::fromUtf8(p.readAllStandardError());
    QVERIFY2(err.contains(QLatin1String("Cannot create")) && !err.contains(QLatin1String("in use")),
             qPrintable(err));
}

void TestHeadless::demoDatabaseThatCannotBeMadeExitsBeforeTheJournal() {
    // The demo database goes in the data folder, here under a regular file, so it can
    // never be created: a setup failure (exit 1) found before the journal is opened.
    QFile blocker(m_dir->filePath(QStringLiteral("blocker")));
    QVERIFY(blocker.open(QIODevice::WriteOnly));
    blocker.close();
    qputenv("TIDEWATCH_DATA_DIR", (blocker.fileName() + QStringLiteral("/data")).toLocal8Bit());
    QProcess p;
    p.start(QStringLiteral(TIDEWATCH_BINARY),
            {QStringLiteral("--headless"), QStringLiteral("--demo"), QStringLiteral("--journal"), journal()});
    QVERIFY(p.waitForFinished(20000));
    QCOMPARE(p.exitStatus(), QProcess::NormalExit);
    QCOMPARE(p.exitCode(), 1);
    const QString err = QString::fromUtf8(p.readAllStandardError());
    QVERIFY2(err.contains(QLatin1String("Cannot create the demo database")), qPrintable(err));
    QVERIFY2(!QFile::exists(journal()), qPrintable(err));
    QCOMPARE(p.readAllStandardOutput(), QByteArray());
}

namespace {

// Starts `tidewatch --headless --workspace … --sse 127.0.0.1:0` and returns the port it
// logged (0 on failure).
quint16 startWithWorkspace(QProcess& p, const QStringList& args) {
    p.setProcessChannelMode(QProcess::SeparateChannels);
    p.start(QStringLiteral(TIDEWATCH_BINARY), args);
    if (!p.waitForStarted())
        return 0;
    static const QRegularExpression portPattern(
        QStringLiteral("SSE server listening on \\S+ \\(port (\\d+)\\)"));
    QByteArray log;
    quint16 port = 0;
    const bool done = QTest::qWaitFor(
        [&] {
            log += p.readAllStandardError();
            const QRegularExpressionMatch m = portPattern.match(QString::fromUtf8(log));
            if (m.hasMatch())
                port = quint16(m.captured(1).toUInt());
            return port != 0 || p.state() != QProcess::Running;
        },
        20000);
    if (!done || port == 0)
        qWarning("no port logged: %s", log.constData());
    return port;
}

int send(QNetworkAccessManager& nam, quint16 port, const QByteArray& method, const QString& path,
         const QByteArray& body = {}) {
    QNetworkRequest r(QUrl(QStringLiteral("http://127.0.0.1:%1%2").arg(port).arg(path)));
    r.setRawHeader("Authorization", "Bearer headless-token");
    r.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/json"));
    QNetworkReply* reply = nam.sendCustomRequest(r, method, body);
    // A watch answers once the table is read: generous for a loaded machine.
    if (!QTest::qWaitFor([reply] { return reply->isFinished(); }, 40000))
        return 0;
    const int status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    reply->deleteLater();
    return status;
}

} // namespace

void TestHeadless::workspaceKeepsWhatHttpAddedAcrossARestart() {
    qputenv("TIDEWATCH_TOKEN", "headless-token");
    const QString workspace = m_dir->filePath(QStringLiteral("workspace.json")); // not there yet
    const QStringList args{QStringLiteral("--headless"),
                           QStringLiteral("--workspace"),
                           workspace,
                           QStringLiteral("--journal"),
                           journal(),
                           QStringLiteral("--sse"),
                           QStringLiteral("127.0.0.1:0")};
    QNetworkAccessManager nam;
    {
        QProcess p;
        const quint16 port = startWithWorkspace(p, args);
        QVERIFY(port != 0);
        const QByteArray source =
            QJsonDocument(QJsonObject{{QStringLiteral("id"), QStringLiteral("shop")},
                                      {QStringLiteral("uri"), QStringLiteral("sqlite:") + db()}})
                .toJson(QJsonDocument::Compact);
        QCOMPARE(send(nam, port, "POST", QStringLiteral("/v1/sources"), source), 201);
        QCOMPARE(send(nam, port, "PUT", QStringLiteral("/v1/sources/shop/watches/orders")), 201);
        QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('first run',1);")),
                 QString());
        QCOMPARE(readLines(p, 1).size(), 1);
        QVERIFY(QFile::exists(workspace));
        p.terminate();
        QVERIFY(p.waitForFinished(10000));
        QCOMPARE(p.exitCode(), 0);
    }
    QCOMPARE(runSqlite3(db(), QStringLiteral("INSERT INTO orders(status,total) VALUES('while closed',2);")),
             QString());
    m_pending.clear();
    QProcess p;
    const quint16 port = startWithWorkspace(p, args);
    QVERIFY(port != 0);
    // The source and its watch came back from the workspace and resumed from the journal:
    // only the row written while it was closed is new.
    const QList<QJsonObject> lines = readLines(p, 1);
    QCOMPARE(lines.size(), 1);
    QCOMPARE(
        lines[0].value(QLatin1String("fullDocument")).toObject().value(QLatin1String("status")).toString(),
        QStringLiteral("while closed"));
    QCOMPARE(send(nam, port, "PUT", QStringLiteral("/v1/sources/shop/watches/orders")), 200);
    QCOMPARE(send(nam, port, "DELETE", QStringLiteral("/v1/sources/shop")), 204);
    p.terminate();
    QVERIFY(p.waitForFinished(10000));
    qunsetenv("TIDEWATCH_TOKEN");
}

void TestHeadless::unwritableSettingsFileIsSaidInOneLine() {
    qunsetenv("TIDEWATCH_TOKEN");
    // A folder where the settings file should be: no one, root included, can write it.
    const QString data = m_dir->filePath(QStringLiteral("data"));
    QVERIFY(QDir().mkpath(data + QStringLiteral("/tidewatch.ini")));
    QProcess p;
    p.setProcessChannelMode(QProcess::SeparateChannels);
    p.start(QStringLiteral(TIDEWATCH_BINARY),
            {QStringLiteral("--headless"), QStringLiteral("--source"), QStringLiteral("sqlite:") + db(),
             QStringLiteral("--journal"), journal(), QStringLiteral("--watch"), QStringLiteral("orders"),
             QStringLiteral("--sse"), QStringLiteral("127.0.0.1:0")});
    QVERIFY(p.waitForStarted());
    QByteArray log;
    const auto tokenLine = [&] {
        log += p.readAllStandardError();
        const qsizetype at = log.indexOf("SSE bearer token");
        const qsizetype end = at < 0 ? -1 : log.indexOf('\n', at);
        return end < 0 ? QString() : QString::fromUtf8(log.mid(at, end - at));
    };
    QTRY_VERIFY_WITH_TIMEOUT(!tokenLine().isEmpty() || p.state() != QProcess::Running, 20000);
    const QString line = tokenLine();
    QVERIFY2(line.contains(QLatin1String("cannot be written")), qPrintable(QString::fromUtf8(log)));
    QVERIFY2(line.contains(data + QStringLiteral("/tidewatch.ini")), qPrintable(line));
    QVERIFY2(line.contains(QLatin1String("TIDEWATCH_TOKEN")), qPrintable(line));
    // Still serving.
    QCOMPARE(p.state(), QProcess::Running);
    p.terminate();
    QVERIFY(p.waitForFinished(20000));
}

QTEST_GUILESS_MAIN(TestHeadless)
#include "tst_headless.moc"

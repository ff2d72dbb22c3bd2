#include "CommandLine.h"

#include "nats/NatsPublisher.h"
#include "sources/nats/NatsGatewaySource.h"
#include "sources/SourceUri.h"

#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QRegularExpression>
#include <QUrl>

#include <cstdio>

namespace tw {

QString defaultSourceId(const QString& uri) {
    QString base;
    if (const SourceUri parsed(uri); parsed.isSqlite()) {
        base = QFileInfo(parsed.sqlitePath()).completeBaseName();
    } else {
        const QUrl url(uri);
        base = url.host().isEmpty() ? uri.section(QLatin1Char(':'), 0, 0) : url.host();
        const QString path = url.path().mid(1);
        if (!path.isEmpty())
            base += QLatin1Char('-') + path;
    }
    base.replace(QRegularExpression(QStringLiteral("[^A-Za-z0-9_-]+")), QStringLiteral("-"));
    return base.isEmpty() ? QStringLiteral("source") : base;
}

bool parseCommandLine(const QStringList& arguments, AppOptions* o, QString* error, bool* exitNow) {
    *exitNow = false;
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Watch databases change, live: MongoDB change streams, PostgreSQL logical replication and SQLite "
        "files, filtered and shared over Server-Sent Events."));
    const QCommandLineOption help(QStringList{QStringLiteral("h"), QStringLiteral("help")},
                                  QStringLiteral("Show this help."));
    const QCommandLineOption version(QStringLiteral("version"), QStringLiteral("Show the version."));
    const QCommandLineOption headless(
        QStringLiteral("headless"),
        QStringLiteral("Run without a window; print committed events as NDJSON."));
    const QCommandLineOption mcp(
        QStringLiteral("mcp"),
        QStringLiteral("Serve the Model Context Protocol on stdin/stdout (logs on stderr)."));
    const QCommandLineOption demo(QStringLiteral("demo"),
                                  QStringLiteral("Use the built-in demo database and its writer."));
    const QCommandLineOption demoRate(QStringLiteral("demo-rate"),
                                      QStringLiteral("Demo writer changes per second (default 20)."),
                                      QStringLiteral("N"));
    const QCommandLineOption source(QStringLiteral("source"),
                                    QStringLiteral("Source URI: sqlite:PATH, mongodb://…, mongodb+srv://… or "
                                                   "postgresql://…"),
                                    QStringLiteral("URI"));
    const QCommandLineOption sourceId(QStringLiteral("source-id"),
                                      QStringLiteral("Name of the source (default: from the URI)."),
                                      QStringLiteral("NAME"));
    const QCommandLineOption watch(
        QStringLiteral("watch"),
        QStringLiteral("Namespace to watch: a table or '*' for all (SQLite), db.coll, a whole db (MongoDB), "
                       "schema.table (PostgreSQL). Repeatable."),
        QStringLiteral("NS"));
    const QCommandLineOption filter(QStringLiteral("filter"),
                                    QStringLiteral("MongoDB-style filter on the change event, as JSON."),
                                    QStringLiteral("JSON"));
    const QCommandLineOption projection(
        QStringLiteral("projection"),
        QStringLiteral("What each event keeps: full, keys or a MongoDB projection as JSON."),
        QStringLiteral("JSON"));
    const QCommandLineOption event(
        QStringLiteral("event"),
        QStringLiteral("Name events ({ns.coll}.{operationType}, a constant); lines become {event, data}."),
        QStringLiteral("TEMPLATE"));
    const QCommandLineOption capture(QStringLiteral("capture"),
                                     QStringLiteral("Install triggers for exact before/after images: SQLite, "
                                                    "and PostgreSQL without replication (writes to the "
                                                    "watched database)."));
    const QCommandLineOption sse(
        QStringLiteral("sse"), QStringLiteral("Serve Server-Sent Events on [ADDR:]PORT (port 0 picks one)."),
        QStringLiteral("[ADDR:]PORT"));
    const QCommandLineOption fromSeq(
        QStringLiteral("from-seq"),
        QStringLiteral("Replay committed events from sequence id N before going live."), QStringLiteral("N"));
    const QCommandLineOption workspace(QStringLiteral("workspace"), QStringLiteral("Workspace file to open."),
                                       QStringLiteral("FILE"));
    const QCommandLineOption journal(QStringLiteral("journal"),
                                     QStringLiteral("Journal file (default: in the data folder)."),
                                     QStringLiteral("FILE"));
    const QCommandLineOption moveAside(
        QStringLiteral("move-journal-aside"),
        QStringLiteral("Rename a damaged or foreign journal and start a new one."));
    const QCommandLineOption screenshot(
        QStringLiteral("screenshot"),
        QStringLiteral("Render the main window to FILE.png after a few seconds."), QStringLiteral("FILE"));
    const QCommandLineOption screenshotDelay(
        QStringLiteral("screenshot-delay"),
        QStringLiteral("Milliseconds before --screenshot (default 4000)."), QStringLiteral("MS"));
    for (const auto* option :
         {&help,     &version,   &headless, &mcp,        &demo,       &demoRate,       &source,
          &sourceId, &watch,     &filter,   &projection, &event,      &capture,        &sse,
          &fromSeq,  &workspace, &journal,  &moveAside,  &screenshot, &screenshotDelay})
        p.addOption(*option);
    const QCommandLineOption publish(
        QStringLiteral("publish"),
        QStringLiteral("Publish every committed event to NATS JetStream at nats://HOST:PORT."),
        QStringLiteral("URL"));
    const QCommandLineOption gateway(
        QStringLiteral("gateway"),
        QStringLiteral("Serve the events an ingest publishes to NATS JetStream at nats://HOST:PORT, with no "
                       "database source."),
        QStringLiteral("URL"));
    const QCommandLineOption natsStream(
        QStringLiteral("nats-stream"),
        QStringLiteral("JetStream stream for --publish or --gateway (default TIDEWATCH)."),
        QStringLiteral("NAME"));
    const QCommandLineOption natsMaxAge(
        QStringLiteral("nats-max-age"),
        QStringLiteral("Seconds a stream made by --publish keeps messages (default: no limit)."),
        QStringLiteral("SECONDS"));
    const QCommandLineOption natsMaxBytes(
        QStringLiteral("nats-max-bytes"),
        QStringLiteral("Bytes a stream made by --publish keeps (default: no limit)."), QStringLiteral("N"));
    const QCommandLineOption natsStorage(
        QStringLiteral("nats-storage"),
        QStringLiteral("How a stream made by --publish is stored: file (default; survives a restart of "
                       "nats-server) or memory (faster; lost when nats-server stops)."),
        QStringLiteral("file|memory"));
    for (const auto* option : {&publish, &gateway, &natsStream, &natsMaxAge, &natsMaxBytes, &natsStorage})
        p.addOption(*option);

    if (!p.parse(arguments)) {
        *error = p.errorText() + QStringLiteral(" (see tidewatch --help)");
        return false;
    }
    if (p.isSet(help)) {
        std::fputs(qPrintable(p.helpText()), stdout);
        std::fputs("\nExamples:\n  tidewatch --demo\n  tidewatch --headless --source sqlite:shop.sqlite "
                   "--watch orders "
                   "--filter '{\"operationType\":\"insert\"}'\n",
                   stdout);
        *exitNow = true;
        return true;
    }
    if (p.isSet(version)) {
        std::puts("tidewatch " TIDEWATCH_VERSION);
        *exitNow = true;
        return true;
    }
    if (!p.positionalArguments().isEmpty()) {
        *error = QStringLiteral("unexpected argument \"%1\" (options start with --; see tidewatch --help)")
                     .arg(p.positionalArguments().constFirst());
        return false;
    }
    o->headless = p.isSet(headless);
    o->mcp = p.isSet(mcp);
    o->demo = p.isSet(demo);
    o->source = p.value(source);
    o->sourceId = p.value(sourceId);
    o->watches = p.values(watch);
    o->filter = p.value(filter);
    o->projection = p.value(projection);
    o->event = p.value(event);
    o->capture = p.isSet(capture);
    o->sse = p.value(sse);
    o->publish = p.value(publish);
    o->natsStream = p.value(natsStream);
    for (auto [option, target] :
         {std::pair{&natsMaxAge, &o->natsMaxAgeSeconds}, {&natsMaxBytes, &o->natsMaxBytes}}) {
        if (!p.isSet(*option))
            continue;
        bool ok = false;
        *target = p.value(*option).toLongLong(&ok);
        if (!ok || *target <= 0) {
            *error = QStringLiteral("--%1 needs a positive number, not \"%2\"")
                         .arg(option->names().constFirst(), p.value(*option));
            return false;
        }
    }
    if (!o->publish.isEmpty()) {
        QString why;
        if (!NatsPublisher::checkUrl(o->publish, &why)) {
            *error = QStringLiteral("--publish %1").arg(why);
            return false;
        }
    }
    if (p.isSet(natsStorage)) {
        const QString storage = p.value(natsStorage);
        if (storage != QLatin1String("file") && storage != QLatin1String("memory")) {
            *error = QStringLiteral("--nats-storage needs file or memory, not \"%1\"").arg(storage);
            return false;
        }
        if (o->publish.isEmpty()) {
            *error = QStringLiteral("--nats-storage needs --publish nats://HOST:PORT (a gateway reads the "
                                    "stream as the ingest made it)");
            return false;
        }
        o->natsMemoryStorage = storage == QLatin1String("memory");
    }
    if (!o->natsStream.isEmpty() && o->publish.isEmpty() && !p.isSet(gateway)) {
        *error = QStringLiteral("--nats-stream needs --publish or --gateway nats://HOST:PORT");
        return false;
    }
    if (p.isSet(gateway)) {
        QString why;
        QString url = p.value(gateway);
        if (!NatsPublisher::checkUrl(url, &why)) {
            *error = QStringLiteral("--gateway %1").arg(why);
            return false;
        }
        if (!url.contains(QLatin1String("://")))
            url.prepend(QLatin1String("nats://"));
        if (!o->natsStream.isEmpty())
            url += QLatin1Char('/') + o->natsStream;
        QString stream;
        if (!NatsGatewaySource::parseUri(url, &o->gateway, &stream, &why)) {
            *error = QStringLiteral("--gateway: %1").arg(why);
            return false;
        }
        o->gateway += QLatin1Char('/') + stream;
        if (!p.value(source).isEmpty() || p.isSet(demo)) {
            *error = QStringLiteral(
                "--gateway serves the namespaces its ingest publishes: give no --source or --demo (--watch "
                "db.coll limits the command line's subscription, and what the gateway consumes, to it)");
            return false;
        }
    }
    o->workspace = p.value(workspace);
    o->journal = p.value(journal);
    o->moveJournalAside = p.isSet(moveAside);
    o->screenshot = p.value(screenshot);
    bool ok = true;
    if (p.isSet(demoRate)) {
        o->demoRate = p.value(demoRate).toDouble(&ok);
        if (!ok || o->demoRate <= 0) {
            *error = QStringLiteral("--demo-rate needs a positive number, not \"%1\"").arg(p.value(demoRate));
            return false;
        }
    }
    if (p.isSet(fromSeq)) {
        o->fromSeq = p.value(fromSeq).toLongLong(&ok);
        if (!ok || o->fromSeq < 0) {
            *error = QStringLiteral("--from-seq needs a sequence id (0 or more), not \"%1\"")
                         .arg(p.value(fromSeq));
            return false;
        }
    }
    if (p.isSet(screenshotDelay)) {
        o->screenshotDelayMs = p.value(screenshotDelay).toInt(&ok);
        if (!ok || o->screenshotDelayMs < 0) {
            *error = QStringLiteral("--screenshot-delay needs milliseconds, not \"%1\"")
                         .arg(p.value(screenshotDelay));
            return false;
        }
    }
    if (!o->sse.isEmpty()) {
        static const QRegularExpression re(QStringLiteral("^(?:(.+):)?(\\d{1,5})$"));
        const auto m = re.match(o->sse);
        if (!m.hasMatch() || m.captured(2).toInt() > 65535) {
            *error = QStringLiteral("--sse needs [ADDR:]PORT, e.g. 8080 or 127.0.0.1:8080, not \"%1\"")
                         .arg(o->sse);
            return false;
        }
    }
    if (o->headless && o->source.isEmpty() && o->gateway.isEmpty() && !o->demo && o->workspace.isEmpty()) {
        *error = QStringLiteral("--headless needs --source URI --watch NS (or --demo, or --workspace FILE)");
        return false;
    }
    if (o->mcp && o->headless) {
        *error = QStringLiteral("--mcp and --headless are two front ends: choose one");
        return false;
    }
    if (!o->source.isEmpty() && o->watches.isEmpty()) {
        *error = QStringLiteral("--source needs at least one --watch NS (e.g. --watch orders)");
        return false;
    }
    if (!o->watches.isEmpty() && o->source.isEmpty() && !o->demo && o->gateway.isEmpty()) {
        *error = QStringLiteral("--watch needs --source URI");
        return false;
    }
    if (o->sourceId.isEmpty() && !o->source.isEmpty())
        o->sourceId = defaultSourceId(o->source);
    if (o->sourceId.isEmpty() && !o->gateway.isEmpty())
        o->sourceId = QStringLiteral("gateway");
    return true;
}

} // namespace tw

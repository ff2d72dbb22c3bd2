#include "HeadlessRunner.h"

#include "app/Settings.h"
#include "demo/DemoWriter.h"
#include "http/SseServer.h"
#include "sources/SourceUri.h"

#include <QCoreApplication>
#include <QDir>
#include <QSocketNotifier>
#include <QTimer>

#include <csignal>
#include <cstdio>
#include <sys/socket.h>
#include <unistd.h>

namespace tw {

namespace {

int g_signalPipe[2] = {-1, -1};

void onSignal(int) {
    const char byte = 1;
    const ssize_t ignored = ::write(g_signalPipe[1], &byte, 1);
    Q_UNUSED(ignored);
}

void logLine(const QString& line) {
    std::fprintf(stderr, "tidewatch: %s\n", qPrintable(line));
    std::fflush(stderr);
}

} // namespace

void installQuitOnSignals() {
    if (g_signalPipe[0] >= 0)
        return;
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, g_signalPipe) != 0)
        return;
    auto* notifier =
        new QSocketNotifier(g_signalPipe[0], QSocketNotifier::Read, QCoreApplication::instance());
    QObject::connect(notifier, &QSocketNotifier::activated, QCoreApplication::instance(), [] {
        char byte;
        const ssize_t ignored = ::read(g_signalPipe[0], &byte, 1);
        Q_UNUSED(ignored);
        QCoreApplication::quit();
    });
    struct sigaction action = {};
    action.sa_handler = onSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

HeadlessRunner::HeadlessRunner(const AppOptions& options, QObject* parent)
    : QObject(parent)
    , m_options(options) {}

HeadlessRunner::~HeadlessRunner() {
    // Before the engine: the server's thread reads from it until it has stopped.
    delete m_sse;
    m_sse = nullptr;
    if (m_demo)
        m_demo->requestStop();
    if (m_engine) {
        m_engine->stop();
        // What the engine committed while stopping is on its way to us as queued
        // calls: print it before leaving, so stdout has every committed event.
        QCoreApplication::sendPostedEvents(this, QEvent::MetaCall);
        logLine(QStringLiteral("stopped; journal checkpointed at seq %1").arg(m_engine->lastCommittedSeq()));
    }
}

void HeadlessRunner::fail(const QString& message, int code) {
    logLine(message);
    QCoreApplication::exit(code);
}

int HeadlessRunner::start() {
    const QString journalPath = m_options.journal.isEmpty() ? defaultJournalPath() : m_options.journal;
    if (m_options.moveJournalAside) {
        QString movedTo, error;
        if (!Journal::moveAside(journalPath, &movedTo, &error)) {
            logLine(error);
            return 1;
        }
        logLine(QStringLiteral("moved the old journal to %1").arg(movedTo));
    }

    QString uri = m_options.source;
    QString sourceId = m_options.sourceId;
    QStringList watches = m_options.watches;
    if (m_options.demo && uri.isEmpty()) {
        const QString path = QDir(defaultDataDir()).filePath(QStringLiteral("demo.sqlite"));
        QString error;
        if (!DemoWriter::ensureDatabase(path, &error)) {
            logLine(error);
            return 1;
        }
        uri = QStringLiteral("sqlite:") + path;
        sourceId = QStringLiteral("demo");
        if (watches.isEmpty())
            watches = {QStringLiteral("orders"), QStringLiteral("customers"),
                       QStringLiteral("notifications")};
        m_demo = std::make_unique<DemoWriter>(path);
        m_demo->setRate(m_options.demoRate);
    }
    if (uri.isEmpty()) {
        logLine(QStringLiteral("nothing to watch: give --source URI --watch NS"));
        return 2;
    }

    // Validate everything the user typed before touching the journal.
    QString error;
    Filter filter;
    if (!m_options.filter.isEmpty()) {
        filter = Filter::compile(m_options.filter.toUtf8(), &error);
        if (!filter.isValid()) {
            logLine(QStringLiteral("--filter: %1").arg(error));
            return 2;
        }
    }

    Engine::Options engineOptions;
    engineOptions.journalPath = journalPath;
    m_engine = std::make_unique<Engine>(engineOptions);
    if (!m_engine->start(&error)) {
        logLine(error);
        m_engine.reset();
        return 1;
    }

    const bool sqlite = SourceUri(uri).isSqlite();
    m_subscription.id = QStringLiteral("headless");
    m_subscription.name = QStringLiteral("command line");
    m_subscription.filter = filter;
    m_subscription.persistent = false;
    QList<Namespace> namespaces;
    for (const QString& text : std::as_const(watches)) {
        Namespace ns = sqlite ? Namespace{QStringLiteral("main"),
                                          text.startsWith(QLatin1String("main.")) ? text.mid(5) : text}
                              : Namespace::fromString(text);
        namespaces.append(ns);
        m_subscription.namespaces.append(SourceNamespace{sourceId, ns});
    }
    m_subscription = m_engine->addSubscription(m_subscription);

    connect(m_engine.get(), &Engine::committed, this, &HeadlessRunner::onCommitted, Qt::QueuedConnection);
    connect(
        m_engine.get(), &Engine::watchFailed, this,
        [this](const QString&, const Namespace&, const QString& message) { fail(message, 2); },
        Qt::QueuedConnection);
    connect(
        m_engine.get(), &Engine::watchReady, this,
        [](const QString& id, const Namespace& ns) {
            logLine(QStringLiteral("ready: %1 in %2 (every change from now on is reported)")
                        .arg(ns.toString(), id));
        },
        Qt::QueuedConnection);
    connect(
        m_engine.get(), &Engine::journalFailed, this,
        [](const QString& message) { logLine(QStringLiteral("journal: %1 (retrying)").arg(message)); },
        Qt::QueuedConnection);
    connect(
        m_engine.get(), &Engine::sourceStatusChanged, this,
        [](const QString& id, const SourceStatus& status) {
            logLine(
                QStringLiteral("source %1: %2%3")
                    .arg(id, status.stateName(),
                         status.reason.isEmpty() ? QString() : QStringLiteral(" (%1)").arg(status.reason)));
        },
        Qt::QueuedConnection);

    if (!m_engine->addSource(sourceId, uri, &error)) {
        logLine(error);
        return 2;
    }
    WatchOptions watchOptions;
    watchOptions.captureMode = m_options.capture;
    for (const Namespace& ns : std::as_const(namespaces))
        m_engine->watch(sourceId, ns, watchOptions);

    logLine(QStringLiteral("watching %1 in %2; journal %3 (last seq %4)")
                .arg(watches.join(QLatin1String(", ")), Source::redactUri(uri), journalPath)
                .arg(m_engine->lastCommittedSeq()));

    if (!m_options.sse.isEmpty() && !startSse())
        return 2;

    m_lastWritten = m_engine->lastCommittedSeq();
    if (m_options.fromSeq >= 0)
        replay(m_options.fromSeq);
    if (m_demo)
        m_demo->start();
    return -1;
}

bool HeadlessRunner::startSse() {
    // "[ADDR:]PORT", checked by the command-line parser; "[::1]:8080" for IPv6.
    const QString text = m_options.sse;
    const qsizetype colon = text.lastIndexOf(QLatin1Char(':'));
    SseServer::Options options;
    options.port = quint16(text.mid(colon + 1).toUInt());
    if (colon > 0) {
        QString host = text.left(colon);
        if (host.startsWith(QLatin1Char('[')) && host.endsWith(QLatin1Char(']')))
            host = host.mid(1, host.size() - 2);
        if (!options.address.setAddress(host)) {
            logLine(QStringLiteral("--sse: \"%1\" is not an IP address (use e.g. 127.0.0.1 or 0.0.0.0)")
                        .arg(host));
            return false;
        }
    }
    const Settings settings;
    QString where;
    options.token = loadOrCreateToken(&where);
    options.corsOrigins = settings.value(Settings::Key::SseCorsOrigins).toStringList();
    options.maxPendingBytes = settings.int64Value(Settings::Key::SseMaxPendingBytes);
    options.keepAliveMs = settings.intValue(Settings::Key::SseKeepAliveMs);
    m_sse = new SseServer(m_engine.get(), this);
    QString error;
    if (!m_sse->start(options, &error)) {
        logLine(QStringLiteral("--sse: %1").arg(error));
        return false;
    }
    logLine(QStringLiteral("SSE server listening on %1 (port %2)")
                .arg(m_sse->baseUrl().toString())
                .arg(m_sse->port()));
    logLine(QStringLiteral("SSE bearer token: in %1").arg(where));
    const QString url =
        m_sse->baseUrl().toString() + QStringLiteral("/v1/subscriptions/%1/events").arg(m_subscription.id);
    logLine(QStringLiteral("try: curl -N -H \"Authorization: Bearer $TOKEN\" %1").arg(url));
    return true;
}

void HeadlessRunner::replay(qint64 fromSeq) {
    // Runs before the event loop delivers any live batch: live events committed while
    // we read are skipped by seq when they arrive, so nothing is printed twice.
    JournalReader reader;
    QString error;
    if (!reader.open(m_engine->journalPath(), &error)) {
        logLine(error);
        return;
    }
    qint64 after = std::max<qint64>(0, fromSeq - 1);
    const Subscription sub = m_subscription;
    for (;;) {
        const JournalReader::Result r =
            reader.readAfter(after, 5000, [&sub](const ChangeEvent& e) { return sub.matches(e); });
        if (!r.error.isEmpty()) {
            logLine(QStringLiteral("replay: %1").arg(r.error));
            break;
        }
        if (r.gap) {
            ChangeEvent gap =
                ChangeEvent::makeGap(QString(), Namespace(),
                                     QStringLiteral("events after %1 were removed by retention; the "
                                                    "first still stored is %2")
                                         .arg(after)
                                         .arg(r.firstAvailable));
            writeEvent(gap);
        }
        for (const ChangeEvent& e : r.events)
            writeEvent(e);
        after = r.scannedThrough;
        if (!r.hasMore)
            break;
    }
    m_lastWritten = std::max(m_lastWritten, after);
    std::fflush(stdout);
}

void HeadlessRunner::writeEvent(const ChangeEvent& event) {
    const QByteArray json = event.toJson();
    std::fwrite(json.constData(), 1, size_t(json.size()), stdout);
    std::fputc('\n', stdout);
    if (event.seq() > 0)
        m_lastWritten = std::max(m_lastWritten, event.seq());
}

void HeadlessRunner::onCommitted(const CommittedBatch& batch) {
    const auto it = batch.bySubscription.constFind(m_subscription.id);
    if (it == batch.bySubscription.constEnd())
        return;
    for (const ChangeEvent& e : *it)
        if (e.seq() > m_lastWritten)
            writeEvent(e);
    std::fflush(stdout);
}

} // namespace tw

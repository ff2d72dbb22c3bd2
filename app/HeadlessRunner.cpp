#include "HeadlessRunner.h"

#include "config/DataDir.h"

#include "demo/DemoWriter.h"
#include "engine/Replay.h"
#include "sources/SourceUri.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
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
    if (m_session && m_session->isRunning()) {
        // The session delivers what the engine committed while stopping, so stdout has
        // every committed event.
        m_session->stop();
        logLine(QStringLiteral("stopped; journal checkpointed at seq %1").arg(m_engine->lastCommittedSeq()));
    }
}

void HeadlessRunner::fail(const QString& message, int code) {
    logLine(message);
    QCoreApplication::exit(code);
}

int HeadlessRunner::start() {
    AppSession::Options sessionOptions;
    sessionOptions.journalPath = m_options.journal;
    if (sessionOptions.journalPath.isEmpty() && !m_options.gateway.isEmpty()) {
        // A gateway's journal holds the ingest's seqs and nothing else: never the
        // default journal, which may already hold the window's own history.
        const QString stream =
            m_options.natsStream.isEmpty() ? QStringLiteral("TIDEWATCH") : m_options.natsStream;
        sessionOptions.journalPath =
            QDir(defaultDataDir()).filePath(QStringLiteral("gateway-%1.sqlite").arg(stream));
    }
    sessionOptions.demoRate = m_options.demoRate;
    m_session = std::make_unique<AppSession>(sessionOptions);
    m_engine = m_session->engine();
    const QString journalPath = m_session->journalPath();
    if (m_options.moveJournalAside) {
        QString movedTo, error;
        if (!m_session->moveJournalAside(&movedTo, &error)) {
            logLine(error);
            return 1;
        }
        logLine(QStringLiteral("moved the old journal to %1").arg(movedTo));
    }

    QString uri = m_options.source;
    QString sourceId = m_options.sourceId;
    QStringList watches = m_options.watches;
    const bool demo = m_options.demo && uri.isEmpty();
    // A gateway's one source is the ingest's stream; its events keep the ingest's source
    // ids, so the command line's subscription is not narrowed to it.
    const bool gateway = !m_options.gateway.isEmpty();
    if (gateway)
        uri = m_options.gateway;
    if (demo) {
        const ConnectionSpec spec = AppSession::demoConnection();
        // Before the journal is opened: a demo database that cannot be made is a setup
        // failure (exit 1), and leaves no journal behind.
        QString error;
        if (!DemoWriter::ensureDatabase(SourceUri(spec.uri).sqlitePath(), &error)) {
            logLine(error);
            return 1;
        }
        uri = spec.uri;
        sourceId = spec.id;
        if (watches.isEmpty())
            for (const Namespace& ns : spec.watches)
                watches.append(ns.coll);
    }
    // --workspace FILE: its connections come up, and whatever changes them (the HTTP
    // API) is saved there. A file not there yet is made at the first change.
    Workspace workspace;
    const QString workspacePath = m_options.workspace;
    if (!workspacePath.isEmpty() && QFileInfo::exists(workspacePath)) {
        QString error;
        if (!Workspace::load(workspacePath, &workspace, &error)) {
            logLine(QStringLiteral("--workspace: %1").arg(error));
            return 2;
        }
    }
    if (uri.isEmpty() && workspacePath.isEmpty()) {
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

    if (!m_subscription.setProjection(m_options.projection.toUtf8(), &error)) {
        logLine(QStringLiteral("--projection: %1").arg(error));
        return 2;
    }
    m_subscription.event = EventTemplate::compile(m_options.event, &error);
    if (!error.isEmpty()) {
        logLine(QStringLiteral("--event: %1").arg(error));
        return 2;
    }

    if (!m_session->start(&error)) {
        logLine(error);
        return 1;
    }

    // Before any source comes up: what they commit from now on is printed, even when it
    // is committed before start() returns (a workspace's source resuming at once).
    m_lastWritten = m_engine->lastCommittedSeq();
    // A PostgreSQL namespace is <database>.<schema>.<table>: a watch named
    // schema.table is in the database the URI opens.
    if (const SourceUri parsed(uri); parsed.kind() == SourceUri::Kind::Postgres)
        for (QString& text : watches)
            if (text.count(QLatin1Char('.')) < 2)
                text = parsed.postgresDatabase() + QLatin1Char('.') + text;

    const bool sqlite = !uri.isEmpty() && SourceUri(uri).isSqlite();
    m_subscription.id = QStringLiteral("headless");
    m_subscription.name = QStringLiteral("command line");
    m_subscription.filter = filter;
    m_subscription.persistent = false;
    QList<Namespace> namespaces;
    if (gateway)
        namespaces.append(Namespace{}); // all of the stream
    for (const QString& text : std::as_const(watches)) {
        QString table = text.startsWith(QLatin1String("main.")) ? text.mid(5) : text;
        if (table == QLatin1String("*"))
            table.clear(); // the whole file: tables created later are followed too
        Namespace ns = sqlite ? Namespace{QStringLiteral("main"), table} : Namespace::fromString(text);
        namespaces.append(ns);
        // A gateway's events keep the ingest's source ids: any source, this namespace.
        m_subscription.namespaces.append(SourceNamespace{gateway ? QString() : sourceId, ns});
    }
    m_subscription = m_session->addSubscription(m_subscription);
    m_shape = m_subscription.shape();

    AppSession* session = m_session.get();
    connect(session, &AppSession::committed, this, &HeadlessRunner::onCommitted);
    // A command-line watch that cannot start is a usage error; one asked for later (over
    // HTTP) is answered there and must not end the process.
    connect(session, &AppSession::watchFailed, this,
            [this, sourceId, namespaces](const QString& id, const Namespace& ns, const QString& message) {
                if (id == sourceId && namespaces.contains(ns))
                    fail(message, 2);
                else
                    logLine(QStringLiteral("watch %1 in %2 failed: %3").arg(ns.toString(), id, message));
            });
    connect(session, &AppSession::watchReady, this, [](const QString& id, const Namespace& ns) {
        logLine(QStringLiteral("ready: %1 in %2 (every change from now on is reported)")
                    .arg(ns.isDeployment() ? QStringLiteral("everything") : ns.toString(), id));
    });
    connect(session, &AppSession::journalFailed, this,
            [](const QString& message) { logLine(QStringLiteral("journal: %1 (retrying)").arg(message)); });
    connect(session, &AppSession::sourceStatusChanged, this,
            [](const QString& id, const SourceStatus& status) {
                logLine(QStringLiteral("source %1: %2%3")
                            .arg(id, status.stateName(),
                                 status.reason.isEmpty() ? QString()
                                                         : QStringLiteral(" (%1)").arg(status.reason)));
            });

    if (!workspacePath.isEmpty()) {
        m_session->setWorkspacePath(workspacePath);
        m_session->applyWorkspace(workspace);
        logLine(QStringLiteral("workspace %1: %2 connection(s)")
                    .arg(workspacePath)
                    .arg(workspace.connections.size()));
    }
    // A workspace that has the command line's source already brings it up itself.
    if (!uri.isEmpty() && !m_session->connection(sourceId) &&
        !addCommandLineSource(uri, sourceId, demo, namespaces))
        return 2;
    logLine(QStringLiteral("journal %1 (last seq %2)").arg(journalPath).arg(m_engine->lastCommittedSeq()));

    if (!m_options.publish.isEmpty() && !startPublisher())
        return 2;
    if (!m_options.sse.isEmpty() && !startSse())
        return 2;

    if (m_options.fromSeq >= 0)
        replay(m_options.fromSeq);
    return -1;
}

bool HeadlessRunner::addCommandLineSource(const QString& uri, const QString& sourceId, bool demo,
                                          const QList<Namespace>& namespaces) {
    QString error;
    ConnectionSpec spec;
    spec.id = sourceId;
    spec.uri = uri; // as typed: a password in it stays there, nothing goes to the keychain
    spec.demo = demo;
    spec.captureMode = m_options.capture;
    spec.watches = namespaces;
    if (!m_session->addConnection(spec, &error)) {
        logLine(error);
        return false;
    }
    QStringList names;
    for (const Namespace& ns : namespaces)
        names.append(ns.isDeployment() ? QStringLiteral("everything") : ns.toString());
    logLine(QStringLiteral("watching %1 in %2").arg(names.join(QLatin1String(", ")), Source::redactUri(uri)));
    return true;
}

bool HeadlessRunner::startPublisher() {
    NatsPublisher::Options options;
    options.url = m_options.publish;
    if (!m_options.natsStream.isEmpty())
        options.stream = m_options.natsStream;
    options.maxAgeSeconds = m_options.natsMaxAgeSeconds;
    options.maxBytes = m_options.natsMaxBytes;
    options.memoryStorage = m_options.natsMemoryStorage;
    QString error;
    if (!m_session->startPublisher(options, &error)) {
        logLine(QStringLiteral("--publish: %1").arg(error));
        return false;
    }
    connect(
        m_session->publisher(), &NatsPublisher::stateChanged, this,
        [](NatsPublisher::State state, const QString& reason) {
            logLine(QStringLiteral("publisher: %1%2")
                        .arg(NatsPublisher::stateName(state),
                             reason.isEmpty() ? QString() : QStringLiteral(" (%1)").arg(reason)));
        },
        Qt::QueuedConnection);
    logLine(QStringLiteral("publishing to %1, stream %2").arg(options.url, options.stream));
    return true;
}

bool HeadlessRunner::startSse() {
    // "[ADDR:]PORT", checked by the command-line parser; "[::1]:8080" for IPv6.
    const QString text = m_options.sse;
    const qsizetype colon = text.lastIndexOf(QLatin1Char(':'));
    const quint16 port = quint16(text.mid(colon + 1).toUInt());
    QString host = QStringLiteral("127.0.0.1");
    if (colon > 0) {
        host = text.left(colon);
        if (host.startsWith(QLatin1Char('[')) && host.endsWith(QLatin1Char(']')))
            host = host.mid(1, host.size() - 2);
    }
    connect(m_session.get(), &AppSession::sseStarted, this, &HeadlessRunner::onSseStarted);
    connect(m_session.get(), &AppSession::sseFailed, this,
            [this](const QString& message) { fail(QStringLiteral("--sse: %1").arg(message), 2); });
    QString error;
    if (!m_session->startSse(host, port, &error)) {
        logLine(QStringLiteral("--sse: %1").arg(error));
        return false;
    }
    return true;
}

void HeadlessRunner::onSseStarted(const QUrl& url) {
    logLine(QStringLiteral("SSE server listening on %1 (port %2)").arg(url.toString()).arg(url.port()));
    logLine(QStringLiteral("SSE bearer token: in %1").arg(m_session->sseTokenLocation()));
    const QString events =
        url.toString() + QStringLiteral("/v1/subscriptions/%1/events").arg(m_subscription.id);
    logLine(QStringLiteral("try: curl -N -H \"Authorization: Bearer $TOKEN\" %1").arg(events));
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
    Replay history(&reader, Replay::matching(m_subscription), std::max<qint64>(0, fromSeq - 1));
    history.limitToCoverage(m_subscription);
    while (!history.isAtHead()) {
        const Replay::Chunk chunk = history.next(5000);
        if (!chunk.error.isEmpty()) {
            logLine(QStringLiteral("replay: %1").arg(chunk.error));
            break;
        }
        if (chunk.gap)
            writeEvent(chunk.gap->event);
        for (const ChangeEvent& e : chunk.events)
            writeEvent(e);
    }
    m_lastWritten = std::max(m_lastWritten, history.cursor());
    std::fflush(stdout);
}

void HeadlessRunner::writeEvent(const ChangeEvent& event) {
    const QByteArray json = m_shape.namedJson(event);
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

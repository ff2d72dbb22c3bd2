// A long run of the whole application. Prints figures; never pass/fail. See bench/README.md.
//
//   bench_soak [--minutes 30] [--rate 2000] [--clients 500] [--pollers 10] [--sample 10]
//              [--headless]
//
// Starts the built tidewatch on the demo with its writer at --rate changes/s and SSE on,
// by default as the window under xvfb-run (so the Live Feed is open and fed), with
// --headless without one. Then --clients SSE clients connect, each reads for 1 to 20 s,
// drops its connection, waits up to 2 s and comes back with Last-Event-ID; --pollers
// long-pollers loop on the same subscription. Every id each one receives is checked:
// the subscription sees every seq, so an id that is not the last one plus one is a loss
// (or, at or below it, a repetition). Every --sample seconds one row: the server's RSS,
// open descriptors and threads, the journal's size, deliveries and errors. At the end,
// each column's slope by least squares over the run after its first minute.

#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QRandomGenerator>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTimer>

#include <csignal>
#include <cstdio>
#include <memory>
#include <vector>

namespace {

const QByteArray kToken = "soak-token";

QString arg(const QStringList& args, const QString& name, const QString& fallback) {
    const qsizetype i = args.indexOf(name);
    return i >= 0 && i + 1 < args.size() ? args[i + 1] : fallback;
}

quint16 freePort() {
    QTcpServer probe;
    probe.listen(QHostAddress::LocalHost, 0);
    return probe.serverPort();
}

// What every consumer counts, whichever way it reads.
struct Tally {
    qint64 delivered = 0;
    qint64 lost = 0;     // ids skipped
    qint64 repeated = 0; // ids at or below one already seen
    qint64 gaps = 0;     // `gap` events (history the server no longer had)
    qint64 reconnects = 0;
    qint64 drops = 0; // connections the server ended, or requests that failed

    void see(qint64 id, qint64* last, qint64 sinceConnect = -1) {
        if (*last >= 0) {
            if (id <= *last || id != *last + 1) {
                if (id <= *last)
                    ++repeated;
                else
                    lost += id - *last - 1;
                if (repeated + lost <= 20)
                    std::fprintf(stderr, "bench_soak: id %lld after %lld (%lld events into its connection)\n",
                                 id, *last, sinceConnect);
            }
        }
        if (id > *last)
            *last = id;
        ++delivered;
    }
};

// One SSE client on a raw socket: connects, reads for a while, leaves, comes back with
// the last id it saw.
class SseClient : public QObject {
public:
    SseClient(quint16 port, QByteArray path, Tally* tally)
        : m_port(port)
        , m_path(std::move(path))
        , m_tally(tally) {
        connect(&m_socket, &QTcpSocket::connected, this, &SseClient::sendRequest);
        connect(&m_socket, &QTcpSocket::readyRead, this, &SseClient::read);
        connect(&m_socket, &QTcpSocket::disconnected, this, &SseClient::comeBackLater);
        connect(&m_socket, &QTcpSocket::errorOccurred, this, [this] {
            if (m_socket.state() == QAbstractSocket::UnconnectedState)
                comeBackLater();
        });
    }
    void start() { m_socket.connectToHost(QHostAddress::LocalHost, m_port); }
    bool connected() const { return m_socket.state() == QAbstractSocket::ConnectedState; }

private:
    void sendRequest() {
        QByteArray request = "GET " + m_path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                             kToken + "\r\nAccept: text/event-stream\r\n";
        if (m_last >= 0)
            request += "Last-Event-ID: " + QByteArray::number(m_last) + "\r\n";
        m_socket.write(request + "\r\n");
        // What the last connection left half-read is not part of this one.
        m_headerDone = false;
        m_buffer.clear();
        m_id.clear();
        m_event.clear();
        m_sinceConnect = 0;
        const int generation = ++m_generation;
        QTimer::singleShot(1000 + QRandomGenerator::global()->bounded(19000), this, [this, generation] {
            if (generation != m_generation || !connected())
                return; // that connection ended already
            m_leaving = true;
            m_socket.abort();
            comeBackLater();
        });
    }
    void read() {
        m_buffer.append(m_socket.readAll());
        if (!m_headerDone) {
            const qsizetype end = m_buffer.indexOf("\r\n\r\n");
            if (end < 0)
                return;
            m_buffer.remove(0, end + 4);
            m_headerDone = true;
        }
        qsizetype start = 0;
        for (qsizetype nl; (nl = m_buffer.indexOf('\n', start)) >= 0; start = nl + 1) {
            const QByteArray line = m_buffer.mid(start, nl - start);
            if (line.isEmpty()) {
                if (m_event == "gap")
                    ++m_tally->gaps;
                else if (!m_id.isEmpty() && m_event != "ready")
                    m_tally->see(m_id.toLongLong(), &m_last, m_sinceConnect++);
                m_id.clear();
                m_event.clear();
            } else if (line.startsWith("id: ")) {
                m_id = line.mid(4);
            } else if (line.startsWith("event: ")) {
                m_event = line.mid(7);
            }
        }
        m_buffer.remove(0, start);
    }
    void comeBackLater() {
        if (m_waiting)
            return;
        m_waiting = true;
        if (!m_leaving)
            ++m_tally->drops;
        m_leaving = false;
        QTimer::singleShot(QRandomGenerator::global()->bounded(2000), this, [this] {
            m_waiting = false;
            ++m_tally->reconnects;
            start();
        });
    }

    QTcpSocket m_socket;
    quint16 m_port;
    QByteArray m_path;
    Tally* m_tally;
    QByteArray m_buffer, m_id, m_event;
    qint64 m_last = -1;
    bool m_headerDone = false;
    bool m_leaving = false;
    bool m_waiting = false;
    int m_generation = 0;
    qint64 m_sinceConnect = 0;
};

// One long-poller: loops on /changes with the last `next` it was given.
class LongPoller : public QObject {
public:
    LongPoller(QUrl url, Tally* tally)
        : m_url(std::move(url))
        , m_tally(tally) {}
    void start() {
        QUrl url = m_url;
        url.setQuery(QStringLiteral("after=%1&limit=500&timeout=5").arg(m_next));
        QNetworkRequest request(url);
        request.setRawHeader("Authorization", "Bearer " + kToken);
        request.setTransferTimeout(30000);
        QNetworkReply* reply = m_http.get(request);
        connect(reply, &QNetworkReply::finished, this, [this, reply] {
            reply->deleteLater();
            const QJsonObject body = QJsonDocument::fromJson(reply->readAll()).object();
            // From after=0 on, the first change must be seq 1: the subscription sees
            // every seq of a journal that starts empty.
            for (const QJsonValue& change : body.value(QLatin1String("changes")).toArray())
                m_tally->see(change.toObject().value(QLatin1String("seq")).toVariant().toLongLong(), &m_last);
            if (body.contains(QLatin1String("next")))
                m_next = body.value(QLatin1String("next")).toVariant().toLongLong();
            else
                ++m_tally->drops;
            QTimer::singleShot(reply->error() == QNetworkReply::NoError ? 0 : 500, this, &LongPoller::start);
        });
    }

private:
    QNetworkAccessManager m_http; // its own: a manager keeps at most six connections per host
    QUrl m_url;
    Tally* m_tally;
    qint64 m_next = 0;
    qint64 m_last = 0;
};

struct ProcessSample {
    double rssMiB = 0;
    int fds = 0;
    int threads = 0;
};

ProcessSample sampleProcess(qint64 pid) {
    ProcessSample s;
    QFile f(QStringLiteral("/proc/%1/status").arg(pid));
    if (f.open(QIODevice::ReadOnly)) {
        for (const QByteArray& line : f.readAll().split('\n')) {
            if (line.startsWith("VmRSS:"))
                s.rssMiB = line.mid(6).trimmed().split(' ').first().toDouble() / 1024.0;
            else if (line.startsWith("Threads:"))
                s.threads = line.mid(8).trimmed().toInt();
        }
    }
    s.fds = int(
        QDir(QStringLiteral("/proc/%1/fd").arg(pid)).entryList(QDir::NoDotAndDotDot | QDir::System).size());
    return s;
}

// The tidewatch process itself: under xvfb-run it is a grandchild.
qint64 findServer(const QString& journal) {
    for (const QString& entry : QDir(QStringLiteral("/proc")).entryList(QDir::Dirs)) {
        bool ok = false;
        const qint64 pid = entry.toLongLong(&ok);
        if (!ok)
            continue;
        QFile cmdline(QStringLiteral("/proc/%1/cmdline").arg(pid));
        if (!cmdline.open(QIODevice::ReadOnly))
            continue;
        const QList<QByteArray> argv = cmdline.readAll().split('\0');
        if (!argv.isEmpty() &&
            QFileInfo(QString::fromLocal8Bit(argv.first())).fileName() == QLatin1String("tidewatch") &&
            argv.contains(journal.toLocal8Bit()))
            return pid;
    }
    return 0;
}

// Least-squares slope of y over x.
double slope(const std::vector<double>& x, const std::vector<double>& y) {
    const double n = double(x.size());
    if (n < 2)
        return 0;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        sx += x[i];
        sy += y[i];
        sxx += x[i] * x[i];
        sxy += x[i] * y[i];
    }
    const double d = n * sxx - sx * sx;
    return d == 0 ? 0 : (n * sxy - sx * sy) / d;
}

} // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    const double minutes = arg(args, QStringLiteral("--minutes"), QStringLiteral("30")).toDouble();
    const int rate = arg(args, QStringLiteral("--rate"), QStringLiteral("2000")).toInt();
    const int clientCount = arg(args, QStringLiteral("--clients"), QStringLiteral("500")).toInt();
    const int pollerCount = arg(args, QStringLiteral("--pollers"), QStringLiteral("10")).toInt();
    const int sampleSeconds = arg(args, QStringLiteral("--sample"), QStringLiteral("10")).toInt();
    const bool headless = args.contains(QStringLiteral("--headless"));

    QTemporaryDir dir;
    const quint16 port = freePort();
    const QString journal = dir.filePath(QStringLiteral("journal.sqlite"));
    {
        QFile ini(dir.filePath(QStringLiteral("tidewatch.ini")));
        ini.open(QIODevice::WriteOnly);
        ini.write(QStringLiteral("[sse]\nenabled=true\naddress=127.0.0.1\nport=%1\n").arg(port).toUtf8());
    }
    QProcess server;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("TIDEWATCH_DATA_DIR"), dir.path());
    env.insert(QStringLiteral("TIDEWATCH_TOKEN"), QString::fromLatin1(kToken));
    server.setProcessEnvironment(env);
    server.setStandardOutputFile(QProcess::nullDevice());
    server.setStandardErrorFile(dir.filePath(QStringLiteral("server.log")));
    QStringList serverArgs{QStringLiteral("--demo"), QStringLiteral("--demo-rate"), QString::number(rate),
                           QStringLiteral("--journal"), journal};
    if (headless) {
        serverArgs << QStringLiteral("--headless") << QStringLiteral("--sse")
                   << QStringLiteral("127.0.0.1:%1").arg(port);
        server.start(QStringLiteral(TIDEWATCH_BINARY), serverArgs);
    } else {
        server.start(QStringLiteral("xvfb-run"),
                     QStringList{QStringLiteral("-a"), QStringLiteral(TIDEWATCH_BINARY)} + serverArgs);
    }
    if (!server.waitForStarted()) {
        std::fprintf(stderr, "cannot start %s\n", headless ? TIDEWATCH_BINARY : "xvfb-run");
        return 1;
    }

    // Wait for the server, then make the subscription every consumer reads: every
    // namespace the demo watches.
    QNetworkAccessManager http;
    const QUrl base(QStringLiteral("http://127.0.0.1:%1").arg(port));
    auto call = [&](const QByteArray& verb, const QString& path, const QByteArray& body = {}) {
        QNetworkRequest request(base.resolved(QUrl(path)));
        request.setRawHeader("Authorization", "Bearer " + kToken);
        request.setHeader(QNetworkRequest::ContentTypeHeader, QStringLiteral("application/json"));
        QNetworkReply* reply = http.sendCustomRequest(request, verb, body);
        QEventLoop loop;
        QObject::connect(reply, &QNetworkReply::finished, &loop, &QEventLoop::quit);
        loop.exec();
        reply->deleteLater();
        return QJsonDocument::fromJson(reply->readAll()).object();
    };
    QJsonArray namespaces;
    QElapsedTimer waited;
    waited.start();
    while (namespaces.isEmpty() && waited.elapsed() < 60000) {
        for (const QJsonValue& source :
             call("GET", QStringLiteral("/v1/sources")).value(QLatin1String("sources")).toArray())
            for (const QJsonValue& watch : source.toObject().value(QLatin1String("watches")).toArray())
                if (watch.toObject().value(QLatin1String("live")).toBool())
                    namespaces.append(
                        QJsonObject{{QStringLiteral("source"), source.toObject().value(QLatin1String("id"))},
                                    {QStringLiteral("ns"), watch.toObject().value(QLatin1String("ns"))}});
        if (namespaces.isEmpty()) {
            QEventLoop pause;
            QTimer::singleShot(250, &pause, &QEventLoop::quit);
            pause.exec();
        }
    }
    if (namespaces.isEmpty()) {
        std::fprintf(stderr, "the server never listed a live watch (see %s)\n",
                     qPrintable(dir.filePath(QStringLiteral("server.log"))));
        return 1;
    }
    const QString subscription =
        call("POST", QStringLiteral("/v1/subscriptions"),
             QJsonDocument(QJsonObject{{QStringLiteral("name"), QStringLiteral("soak")},
                                       {QStringLiteral("namespaces"), namespaces}})
                 .toJson(QJsonDocument::Compact))
            .value(QLatin1String("id"))
            .toString();
    const qint64 pid = findServer(journal);
    std::printf("bench_soak: %s, demo at %d changes/s, %d SSE clients, %d long-pollers, %.1f min; server pid "
                "%lld, subscription %s\n",
                headless ? "headless" : "window under xvfb-run", rate, clientCount, pollerCount, minutes, pid,
                qPrintable(subscription));

    Tally sse, polls;
    const QByteArray path = "/v1/subscriptions/" + subscription.toUtf8() + "/events";
    std::vector<std::unique_ptr<SseClient>> clients;
    for (int i = 0; i < clientCount; ++i) {
        clients.push_back(std::make_unique<SseClient>(port, path, &sse));
        QTimer::singleShot(i * 2, clients.back().get(), [c = clients.back().get()] { c->start(); });
    }
    std::vector<std::unique_ptr<LongPoller>> pollers;
    const QUrl changes =
        base.resolved(QUrl(QStringLiteral("/v1/subscriptions/%1/changes").arg(subscription)));
    for (int i = 0; i < pollerCount; ++i) {
        pollers.push_back(std::make_unique<LongPoller>(changes, &polls));
        pollers.back()->start();
    }

    std::printf("%8s %10s %8s %6s %8s %11s %13s %8s %8s %6s %10s %6s %8s\n", "t_s", "events/s", "rss_MiB",
                "fds", "threads", "journal_MiB", "sse_deliv/s", "lost", "repeated", "gaps", "reconnects",
                "drops", "polled");
    std::vector<double> t, rss, fds, threads, journalMiB;
    QElapsedTimer clock;
    clock.start();
    qint64 lastDelivered = 0;
    qint64 lastSeq = 0;
    QTimer sampler;
    auto sample = [&] {
        const double seconds = double(clock.elapsed()) / 1000.0;
        const ProcessSample p = sampleProcess(pid);
        const double journalSize =
            double(QFileInfo(journal).size() + QFileInfo(journal + QStringLiteral("-wal")).size()) /
            1048576.0;
        const qint64 seq = call("GET", QStringLiteral("/v1/subscriptions"))
                               .value(QLatin1String("next"))
                               .toVariant()
                               .toLongLong();
        int connected = 0;
        for (const auto& c : clients)
            connected += c->connected() ? 1 : 0;
        std::printf("%8.0f %10.0f %8.1f %6d %8d %11.1f %13.0f %8lld %8lld %6lld %10lld %6lld %8lld  (%d "
                    "connected)\n",
                    seconds, double(seq - lastSeq) / sampleSeconds, p.rssMiB, p.fds, p.threads, journalSize,
                    double(sse.delivered - lastDelivered) / sampleSeconds, sse.lost + polls.lost,
                    sse.repeated + polls.repeated, sse.gaps + polls.gaps, sse.reconnects,
                    sse.drops + polls.drops, polls.delivered, connected);
        std::fflush(stdout);
        lastDelivered = sse.delivered;
        lastSeq = seq;
        if (seconds >= 60) {
            t.push_back(seconds / 600.0); // slopes per 10 minutes
            rss.push_back(p.rssMiB);
            fds.push_back(p.fds);
            threads.push_back(p.threads);
            journalMiB.push_back(journalSize);
        }
        if (seconds >= minutes * 60)
            app.quit();
    };
    QObject::connect(&sampler, &QTimer::timeout, &app, sample);
    sampler.start(sampleSeconds * 1000);
    app.exec();

    std::printf("slopes per 10 min after the first minute: rss %+.2f MiB, fds %+.2f, threads %+.2f, journal "
                "%+.2f MiB\n",
                slope(t, rss), slope(t, fds), slope(t, threads), slope(t, journalMiB));
    std::printf("SSE: %lld lost, %lld repeated; long poll: %lld lost, %lld repeated\n", sse.lost,
                sse.repeated, polls.lost, polls.repeated);
    std::printf("totals: %lld SSE deliveries, %lld long-poll deliveries, %lld lost, %lld repeated, %lld gap "
                "events, %lld SSE reconnects, %lld dropped by the server\n",
                sse.delivered, polls.delivered, sse.lost + polls.lost, sse.repeated + polls.repeated,
                sse.gaps + polls.gaps, sse.reconnects, sse.drops + polls.drops);
    clients.clear();
    // Under xvfb-run the program is a grandchild: ending the wrapper leaves it running.
    // xvfb-run then ends by itself, and its X server with it.
    if (pid > 0)
        ::kill(pid_t(pid), SIGTERM);
    else
        server.terminate();
    if (!server.waitForFinished(15000))
        server.kill();
    return 0;
}

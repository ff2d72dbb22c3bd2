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
#include <QThread>
#include <QTimer>

#include <algorithm>
#include <atomic>
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

// What every consumer counts, whichever way it reads. The SSE clients run on threads of
// their own (one thread of 500 QTcpSockets fell behind the server and its events), the
// sampler reads the counters from the main thread: atomics.
struct Tally {
    std::atomic<qint64> delivered{0};
    std::atomic<qint64> lost{0};     // ids skipped
    std::atomic<qint64> repeated{0}; // ids at or below one already seen
    std::atomic<qint64> gaps{0};     // `gap` events (history the server no longer had)
    std::atomic<qint64> reconnects{0};
    std::atomic<qint64> drops{0};     // connections the server ended, or requests that failed
    std::atomic<int> connectedNow{0}; // SSE connections open at the moment

    void see(qint64 id, qint64* last, qint64 sinceConnect = -1) {
        if (*last >= 0 && id != *last + 1) {
            const qint64 bad = id <= *last ? ++repeated : (lost += id - *last - 1);
            if (bad > 0 && lost + repeated <= 20)
                std::fprintf(stderr, "bench_soak: id %lld after %lld (%lld events into its connection)\n", id,
                             *last, sinceConnect);
        }
        if (id > *last)
            *last = id;
        ++delivered;
    }
};

// One SSE client on a raw socket: connects, reads for a while, leaves, comes back with
// the last id it saw. Lives on one of the client threads.
class SseClient : public QObject {
public:
    SseClient(quint16 port, QByteArray path, Tally* tally, QObject* parent)
        : QObject(parent)
        , m_socket(this)
        , m_port(port)
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

private:
    void sendRequest() {
        ++m_tally->connectedNow;
        m_counted = true;
        QByteArray request = "GET " + m_path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                             kToken + "\r\nAccept: text/event-stream\r\n";
        if (m_last >= 0)
            request += "Last-Event-ID: " + QByteArray::number(m_last) + "\r\n";
        m_socket.write(request + "\r\n");
        // What the last connection left half-read is not part of this one.
        m_headerDone = false;
        m_partial.clear();
        m_id = -1;
        m_event = Event::Change;
        m_sinceConnect = 0;
        const int generation = ++m_generation;
        QTimer::singleShot(1000 + QRandomGenerator::global()->bounded(19000), this, [this, generation] {
            if (generation != m_generation || m_socket.state() != QAbstractSocket::ConnectedState)
                return; // that connection ended already
            m_leaving = true;
            m_socket.abort();
            comeBackLater();
        });
    }
    // Lines are parsed where the read put them; only a line cut by the end of a read is
    // copied (appending every read to a buffer and removing its front was most of this
    // client's CPU).
    void read() {
        const QByteArray chunk = m_socket.readAll();
        QByteArrayView data(chunk);
        if (!m_headerDone) {
            m_partial.append(data);
            const qsizetype end = m_partial.indexOf("\r\n\r\n");
            if (end < 0)
                return;
            const QByteArray rest = m_partial.mid(end + 4);
            m_partial.clear();
            m_headerDone = true;
            parse(rest);
            return;
        }
        parse(data);
    }
    void parse(QByteArrayView data) {
        qsizetype start = 0;
        for (qsizetype nl; (nl = data.indexOf('\n', start)) >= 0; start = nl + 1) {
            if (m_partial.isEmpty()) {
                line(data.sliced(start, nl - start));
            } else {
                m_partial.append(data.sliced(start, nl - start));
                const QByteArray whole = std::exchange(m_partial, {});
                line(whole);
            }
        }
        m_partial.append(data.sliced(start));
    }
    void line(QByteArrayView line) {
        if (line.isEmpty()) {
            if (m_event == Event::Gap)
                ++m_tally->gaps;
            else if (m_id >= 0 && m_event == Event::Change)
                m_tally->see(m_id, &m_last, m_sinceConnect++);
            m_id = -1;
            m_event = Event::Change;
        } else if (line.startsWith("id: ")) {
            m_id = line.sliced(4).toLongLong();
        } else if (line.startsWith("event: ")) {
            const QByteArrayView name = line.sliced(7);
            m_event = name == "gap" ? Event::Gap : name == "ready" ? Event::Ready : Event::Change;
        }
    }
    void comeBackLater() {
        if (m_counted) {
            --m_tally->connectedNow;
            m_counted = false;
        }
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

    enum class Event { Change, Ready, Gap };
    QTcpSocket m_socket; // a child, so that it lives on this client's thread
    quint16 m_port;
    QByteArray m_path;
    Tally* m_tally;
    QByteArray m_partial;
    qint64 m_id = -1;
    Event m_event = Event::Change;
    qint64 m_last = -1;
    bool m_headerDone = false;
    bool m_leaving = false;
    bool m_waiting = false;
    bool m_counted = false;
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
    if (args.contains(QStringLiteral("--help")) || args.contains(QStringLiteral("-h"))) {
        std::printf(
            "usage: bench_soak [--minutes 30] [--rate 2000] [--clients 500] [--pollers 10] [--sample 10] "
            "[--headless]\n");
        return 0;
    }
    const double minutes = arg(args, QStringLiteral("--minutes"), QStringLiteral("30")).toDouble();
    const int rate = arg(args, QStringLiteral("--rate"), QStringLiteral("2000")).toInt();
    const int clientCount = arg(args, QStringLiteral("--clients"), QStringLiteral("500")).toInt();
    const int pollerCount = arg(args, QStringLiteral("--pollers"), QStringLiteral("10")).toInt();
    const int sampleSeconds = arg(args, QStringLiteral("--sample"), QStringLiteral("10")).toInt();
    const bool headless = args.contains(QStringLiteral("--headless"));
    // The Live Feed's ring (ui/feedRowCap, 250 000 by default): a small one fills in
    // seconds, so that what still grows after it is not the ring.
    const int feedRows = arg(args, QStringLiteral("--feed-rows"), QStringLiteral("0")).toInt();
    // Runs the program under this wrapper (e.g. "heaptrack"), for finding what grows.
    const QString wrapper = arg(args, QStringLiteral("--wrap"), QString());
    // Another build of the program (a copy that a rebuild during the run leaves alone).
    const QString binary = arg(args, QStringLiteral("--program"), QStringLiteral(TIDEWATCH_BINARY));

    QTemporaryDir dir;
    const quint16 port = freePort();
    const QString journal = dir.filePath(QStringLiteral("journal.sqlite"));
    {
        QFile ini(dir.filePath(QStringLiteral("tidewatch.ini")));
        ini.open(QIODevice::WriteOnly);
        ini.write(QStringLiteral("[sse]\nenabled=true\naddress=127.0.0.1\nport=%1\n").arg(port).toUtf8());
        if (feedRows > 0)
            ini.write(QStringLiteral("[ui]\nfeedRowCap=%1\n").arg(feedRows).toUtf8());
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
    QStringList program{binary};
    if (!wrapper.isEmpty())
        program.prepend(wrapper);
    if (headless) {
        serverArgs << QStringLiteral("--headless") << QStringLiteral("--sse")
                   << QStringLiteral("127.0.0.1:%1").arg(port);
        server.start(program.first(), program.mid(1) + serverArgs);
    } else {
        server.start(QStringLiteral("xvfb-run"), QStringList{QStringLiteral("-a")} + program + serverArgs);
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
    // The SSE clients on two threads of their own, each client a child of its thread's
    // context object, created there.
    constexpr int kClientThreads = 2;
    std::vector<std::unique_ptr<QThread>> threads;
    std::vector<QObject*> contexts;
    for (int t = 0; t < kClientThreads; ++t) {
        threads.push_back(std::make_unique<QThread>());
        threads.back()->setObjectName(QStringLiteral("soak-clients-%1").arg(t));
        contexts.push_back(new QObject);
        contexts.back()->moveToThread(threads.back().get());
        threads.back()->start();
        QMetaObject::invokeMethod(contexts.back(), [=, &sse, ctx = contexts.back()] {
            for (int i = t; i < clientCount; i += kClientThreads) {
                auto* client = new SseClient(port, path, &sse, ctx);
                QTimer::singleShot(i * 2, client, [client] { client->start(); });
            }
        });
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
    std::vector<double> t, rss, fds, threadCount, journalMiB;
    QElapsedTimer clock;
    clock.start();
    qint64 lastDelivered = 0;
    qint64 lastSeq = -1;
    double lastSeconds = 0;
    bool sampling = false;
    QTimer sampler;
    // Asynchronous: a sample that waited for the server's answer in a nested event loop
    // stacked one loop on another while the server was busy, printed nothing more after
    // two minutes and kept every reply finished inside them (deleteLater waits for the
    // loop it was called in): 1.7 GB.
    auto sample = [&] {
        if (sampling)
            return; // the last answer has not come yet; its row is still to print
        sampling = true;
        const double seconds = double(clock.elapsed()) / 1000.0;
        const ProcessSample p = sampleProcess(pid);
        const double journalSize =
            double(QFileInfo(journal).size() + QFileInfo(journal + QStringLiteral("-wal")).size()) /
            1048576.0;
        QNetworkRequest request(base.resolved(QUrl(QStringLiteral("/v1/subscriptions"))));
        request.setRawHeader("Authorization", "Bearer " + kToken);
        request.setTransferTimeout(sampleSeconds * 1000);
        QNetworkReply* reply = http.get(request);
        QObject::connect(reply, &QNetworkReply::finished, &app, [&, reply, seconds, p, journalSize] {
            reply->deleteLater();
            sampling = false;
            const qint64 seq = QJsonDocument::fromJson(reply->readAll())
                                   .object()
                                   .value(QLatin1String("next"))
                                   .toVariant()
                                   .toLongLong();
            const qint64 delivered = sse.delivered;
            // Over the time since the last row: a sample skipped while an answer was late
            // leaves a longer interval.
            const double span = std::max(seconds - lastSeconds, 0.001);
            const double rate = lastSeq >= 0 && seq > 0 ? double(seq - lastSeq) / span : 0;
            std::printf("%8.0f %10.0f %8.1f %6d %8d %11.1f %13.0f %8lld %8lld %6lld %10lld %6lld %8lld  (%d "
                        "connected)\n",
                        seconds, rate, p.rssMiB, p.fds, p.threads, journalSize,
                        double(delivered - lastDelivered) / span, sse.lost + polls.lost,
                        sse.repeated + polls.repeated, sse.gaps + polls.gaps, qint64(sse.reconnects),
                        sse.drops + polls.drops, qint64(polls.delivered), int(sse.connectedNow));
            std::fflush(stdout);
            lastDelivered = delivered;
            lastSeconds = seconds;
            if (seq > 0)
                lastSeq = seq;
            if (seconds >= 60) {
                t.push_back(seconds / 600.0); // slopes per 10 minutes
                rss.push_back(p.rssMiB);
                fds.push_back(p.fds);
                threadCount.push_back(p.threads);
                journalMiB.push_back(journalSize);
            }
            if (seconds >= minutes * 60)
                app.quit();
        });
    };
    QObject::connect(&sampler, &QTimer::timeout, &app, sample);
    sampler.start(sampleSeconds * 1000);
    app.exec();

    const auto secondHalf = [&](const std::vector<double>& v) {
        return std::vector<double>(v.begin() + qsizetype(v.size() / 2), v.end());
    };
    std::printf("slopes per 10 min after the first minute: rss %+.2f MiB, fds %+.2f, threads %+.2f, journal "
                "%+.2f MiB\n",
                slope(t, rss), slope(t, fds), slope(t, threadCount), slope(t, journalMiB));
    // The Live Feed's ring and the replay cache fill during the first minutes; the
    // second half says whether anything still grows once they are full.
    std::printf("slopes per 10 min over the second half: rss %+.2f MiB, fds %+.2f, threads %+.2f, journal "
                "%+.2f MiB\n",
                slope(secondHalf(t), secondHalf(rss)), slope(secondHalf(t), secondHalf(fds)),
                slope(secondHalf(t), secondHalf(threadCount)), slope(secondHalf(t), secondHalf(journalMiB)));
    std::printf("SSE: %lld lost, %lld repeated; long poll: %lld lost, %lld repeated\n", qint64(sse.lost),
                qint64(sse.repeated), qint64(polls.lost), qint64(polls.repeated));
    std::printf("totals: %lld SSE deliveries, %lld long-poll deliveries, %lld lost, %lld repeated, %lld gap "
                "events, %lld SSE reconnects, %lld dropped by the server\n",
                qint64(sse.delivered), qint64(polls.delivered), sse.lost + polls.lost,
                sse.repeated + polls.repeated, sse.gaps + polls.gaps, qint64(sse.reconnects),
                sse.drops + polls.drops);
    for (size_t i = 0; i < threads.size(); ++i) {
        QMetaObject::invokeMethod(
            contexts[i], [ctx = contexts[i]] { delete ctx; }, Qt::BlockingQueuedConnection);
        threads[i]->quit();
        threads[i]->wait();
    }
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

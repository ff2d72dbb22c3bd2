#include "NatsPublisherNats.h"

#include "engine/Engine.h"
#include "nats/NatsEventMessage.h"
#include "nats/NatsHandOff.h"
#include "nats/NatsWatchList.h"
#include "sources/nats/NatsClient.h"
#include "sources/nats/NatsSubject.h"

#include <algorithm>
#include <chrono>
#include <QDateTime>
#include <QJsonDocument>
#include <QLoggingCategory>
#include <QRegularExpression>

#include <nats/nats.h>

Q_LOGGING_CATEGORY(lcNats, "tidewatch.nats")

namespace tw {

using namespace natspublisher;

NatsPublisher::NatsPublisher(Engine* engine, const Options& options, QObject* parent)
    : QObject(parent)
    , m_engine(engine)
    , m_options(options)
    , m_streamName(options.stream.toUtf8()) {
    qRegisterMetaType<tw::NatsPublisher::State>();
    if (!m_options.url.contains(QLatin1String("://")))
        m_options.url.prepend(QLatin1String("nats://"));
    m_options.window = std::max(1, m_options.window);
}

NatsPublisher::~NatsPublisher() {
    stop();
}

bool NatsPublisher::checkUrl(const QString& url, QString* error) {
    static const QRegularExpression re(QStringLiteral("^(?:nats://)?[^\\s:/]+:\\d{1,5}$"));
    if (re.match(url).hasMatch())
        return true;
    if (error)
        *error = QStringLiteral("needs nats://HOST:PORT, e.g. nats://127.0.0.1:4222, not \"%1\"").arg(url);
    return false;
}

bool NatsPublisher::start(QString* error) {
    if (m_thread.joinable())
        return true;
    if (!checkUrl(m_options.url, error))
        return false;
    static const QRegularExpression name(QStringLiteral("^[A-Za-z0-9_-]{1,64}$"));
    if (!name.match(m_options.stream).hasMatch()) {
        if (error)
            *error = QStringLiteral("the stream name \"%1\" must be 1 to 64 letters, digits, _ or -")
                         .arg(m_options.stream);
        return false;
    }
    if (!m_reader.open(m_engine->journalPath(), error))
        return false;
    m_journalId = m_engine->journalId().toUtf8();
    m_storedSeq = m_reader.checkpointToken(checkpointSource()).toLongLong();
    m_next = m_storedSeq + 1;
    {
        std::lock_guard lock(m_mutex);
        m_status.ackedSeq = m_storedSeq;
        m_head = m_engine->lastCommittedSeq();
        // What was committed before we started has waited since at least now.
        if (m_head > m_storedSeq)
            m_commitTimes.emplace_back(m_head, nowMs());
    }
    m_stopping = false;
    // On the engine thread; what was committed before it is connected is read from the
    // journal, so the thread has a look as soon as it is.
    m_commits = std::make_unique<NatsCommitHook>(
        m_engine, [this](const CommittedBatch& batch) { onCommitted(batch); },
        [this] { m_wake.notify_one(); });
    m_thread = std::thread([this] { run(); });
    return true;
}

void NatsPublisher::stop() {
    if (!m_thread.joinable())
        return;
    m_commits.reset();
    m_stopping = true;
    m_wake.notify_all();
    m_thread.join();
    m_reader.close(); // a publisher stopped while the engine runs waits for it closed
    setState(State::Stopped);
}

void NatsPublisher::onCommitted(const CommittedBatch& batch) {
    {
        std::lock_guard lock(m_mutex);
        m_head = std::max(m_head, batch.lastSeq);
        m_commitTimes.emplace_back(batch.lastSeq, nowMs());
        if (m_commitTimes.size() > 4096)
            m_commitTimes.pop_front(); // the lag in seconds is then a little short, never wrong in events
        // Only a run without holes: after a commit that did not fit, later ones wait
        // for the buffer to drain (take() reads the journal for what is missing).
        const bool follows = m_buffer.empty() || (!batch.events.isEmpty() &&
                                                  m_buffer.back().seq() + 1 == batch.events.first().seq());
        if (follows && m_buffer.size() + size_t(batch.events.size()) <= kMaxBuffered)
            m_buffer.insert(m_buffer.end(), batch.events.cbegin(), batch.events.cend());
    }
    m_wake.notify_one();
}

namespace {
// A copy that shares no data with `text`. The reason held in m_status is replaced (and
// its data freed) on the publisher's thread; a copy another thread still shared would be
// released there inside QtCore, whose reference counting the sanitizer cannot see, and
// every such free would look like a race with that thread's reads.
QString unshared(const QString& text) {
    return QString(text.constData(), text.size());
}
} // namespace

void NatsPublisher::setState(State state, const QString& reason) {
    {
        std::lock_guard lock(m_mutex);
        if (m_status.state == state && m_status.reason == reason)
            return;
        m_status.state = state;
        m_status.reason = reason;
    }
    // Emitted on the thread we live in: see NatsHandOff.
    NatsHandOff::post(this, [this, state, reason = unshared(reason)] { Q_EMIT stateChanged(state, reason); });
}

bool NatsPublisher::waitFor(int ms) {
    std::unique_lock lock(m_mutex);
    m_wake.wait_for(lock, std::chrono::milliseconds(ms), [this] { return m_stopping.load(); });
    return !m_stopping;
}

void NatsPublisher::run() {
    NatsBackoff backoff(m_options.maxBackoffMs, m_options.initialBackoffMs);
    bool connectedOnce = false;
    while (!m_stopping) {
        setState(State::Connecting);
        QString why;
        if (connectToServer(&why) && ensureStream(&why) && resync(&why)) {
            if (connectedOnce) {
                std::lock_guard lock(m_mutex);
                ++m_status.reconnects;
            }
            connectedOnce = true;
            setState(State::Publishing);
            backoff.reset();
            m_watchList.reset(); // put again on every connection
            while (!m_stopping && publishWindow(&why))
                m_watchList.put(&m_nats->watchList, m_nats->js, m_streamName, *m_engine);
            storeCheckpoint(true);
            if (m_stopping)
                break;
        }
        disconnect();
        const int delay = backoff.next();
        qCWarning(lcNats).noquote() << "publishing to" << m_options.url << "paused:" << why << "- retrying in"
                                    << delay << "ms";
        setState(State::Backoff, why);
        if (!waitFor(delay))
            break;
    }
    disconnect();
}

bool NatsPublisher::connectToServer(QString* why) {
    m_nats = std::make_unique<Nats>();
    // We reconnect ourselves (resync first): libnats' own reconnection would resend
    // what it buffered, behind our back and out of our window.
    natsStatus s =
        natsclient::connect(&m_nats->options, &m_nats->connection, m_options.url.toUtf8(), "tidewatch", 2000);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = kAckWaitMs;
    jo.PublishAsync.MaxPending = m_options.window;
    jo.PublishAsync.AckHandler = &Nats::onAck;
    // A generation per connection: answers for messages of an earlier one are ignored.
    m_ackContexts.push_back(std::make_unique<AckContext>(AckContext{this, ++m_generation}));
    jo.PublishAsync.AckHandlerClosure = m_ackContexts.back().get();
    if (s == NATS_OK)
        s = natsConnection_JetStream(&m_nats->js, m_nats->connection, &jo);
    if (s != NATS_OK) {
        *why = QStringLiteral("cannot connect to %1: %2").arg(m_options.url, natsclient::statusText(s));
        return false;
    }
    return true;
}

void NatsPublisher::disconnect() {
    m_nats.reset();
}

bool NatsPublisher::ensureStream(QString* why) {
    jsStreamInfo* info = nullptr;
    jsErrCode code = jsErrCode(0);
    natsStatus s = js_GetStreamInfo(&info, m_nats->js, m_streamName.constData(), nullptr, &code);
    if (s == NATS_OK) {
        const bool inMemory = info->Config && info->Config->Storage == js_MemoryStorage;
        jsStreamInfo_Destroy(info);
        if (inMemory != m_options.memoryStorage && !m_storageWarned) {
            m_storageWarned = true;
            qCWarning(lcNats).noquote()
                << "stream" << m_options.stream << "exists" << (inMemory ? "in memory" : "on files")
                << "and not" << (m_options.memoryStorage ? "in memory" : "on files")
                << "as --nats-storage asks; it is used as it is (JetStream cannot change a stream's storage: "
                   "delete the stream to have it made again)";
        }
        return true;
    }
    if (s != NATS_NOT_FOUND) {
        *why = QStringLiteral("cannot read stream %1: %2").arg(m_options.stream, natsclient::statusText(s));
        return false;
    }
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    const QByteArray subjects = NatsSubject::all();
    const char* subjectList[] = {subjects.constData()};
    config.Name = m_streamName.constData();
    config.Subjects = subjectList;
    config.SubjectsLen = 1;
    config.Storage = m_options.memoryStorage ? js_MemoryStorage : js_FileStorage;
    if (m_options.maxAgeSeconds > 0)
        config.MaxAge = m_options.maxAgeSeconds * 1000000000LL;
    if (m_options.maxBytes > 0)
        config.MaxBytes = m_options.maxBytes;
    if (m_options.maxMessages > 0)
        config.MaxMsgs = m_options.maxMessages;
    s = js_AddStream(&info, m_nats->js, &config, nullptr, &code);
    if (s != NATS_OK) {
        *why =
            QStringLiteral("cannot create stream %1 on %2 (subjects %3): %4")
                .arg(m_options.stream, m_options.url, QString::fromUtf8(subjects), natsclient::statusText(s));
        return false;
    }
    jsStreamInfo_Destroy(info);
    qCInfo(lcNats).noquote() << "created stream" << m_options.stream << "on" << m_options.url << "with"
                             << (m_options.memoryStorage ? "memory" : "file") << "storage";
    return true;
}

bool NatsPublisher::resync(QString* why) {
    jsStreamInfo* info = nullptr;
    jsErrCode code = jsErrCode(0);
    natsStatus s = js_GetStreamInfo(&info, m_nats->js, m_streamName.constData(), nullptr, &code);
    if (s != NATS_OK) {
        *why = QStringLiteral("cannot read stream %1: %2").arg(m_options.stream, natsclient::statusText(s));
        return false;
    }
    const uint64_t first = info->State.FirstSeq;
    const uint64_t last = info->State.LastSeq;
    // -1 (or 0): no limit of the stream's own.
    m_streamMaxMessageBytes = info->Config ? std::max<qint64>(0, info->Config->MaxMsgSize) : 0;
    jsStreamInfo_Destroy(info);
    qint64 found = 0;
    for (uint64_t seq = last; seq >= std::max<uint64_t>(first, 1) && last - seq < uint64_t(kTailScan);
         --seq) {
        natsMsg* msg = nullptr;
        s = js_GetMsg(&msg, m_nats->js, m_streamName.constData(), seq, nullptr, &code);
        if (s == NATS_NOT_FOUND)
            continue; // deleted from the middle of the stream
        if (s != NATS_OK) {
            *why = QStringLiteral("cannot read message %1 of stream %2: %3")
                       .arg(seq)
                       .arg(m_options.stream, natsclient::statusText(s));
            return false;
        }
        const bool ours = NatsEventMessage::journalOf(msg) == m_journalId;
        if (ours)
            found = NatsEventMessage::seqOf(msg);
        natsMsg_Destroy(msg);
        if (ours)
            break;
    }
    qint64 acked = 0;
    {
        std::lock_guard lock(m_mutex);
        m_status.ackedSeq = std::max(m_status.ackedSeq, found);
        acked = m_status.ackedSeq;
    }
    m_next = acked + 1;
    qCInfo(lcNats).noquote() << "publishing to stream" << m_options.stream << "after seq" << acked;
    return true;
}

NatsPublisher::Status NatsPublisher::status() const {
    std::lock_guard lock(m_mutex);
    Status s = m_status;
    s.reason = unshared(m_status.reason); // see unshared()
    const qint64 head = std::max(m_head, m_engine->lastCommittedSeq());
    s.lagEvents = std::max<qint64>(0, head - s.ackedSeq);
    if (s.lagEvents > 0) {
        qint64 since = nowMs();
        for (const auto& [lastSeq, ms] : m_commitTimes)
            if (lastSeq > s.ackedSeq) {
                since = ms;
                break;
            }
        s.lagSeconds = double(nowMs() - since) / 1000.0;
    }
    return s;
}

QString NatsPublisher::stateName(State state) {
    switch (state) {
    case State::Stopped:
        return QStringLiteral("stopped");
    case State::Connecting:
        return QStringLiteral("connecting");
    case State::Publishing:
        return QStringLiteral("publishing");
    case State::Backoff:
        return QStringLiteral("backoff");
    }
    return {};
}

QJsonObject NatsPublisher::healthJson() const {
    const Status s = status();
    QJsonObject o{
        {QStringLiteral("url"), m_options.url},        {QStringLiteral("stream"), m_options.stream},
        {QStringLiteral("state"), stateName(s.state)}, {QStringLiteral("ackedSeq"), s.ackedSeq},
        {QStringLiteral("lagEvents"), s.lagEvents},    {QStringLiteral("lagSeconds"), s.lagSeconds},
        {QStringLiteral("published"), s.published},    {QStringLiteral("gaps"), s.gaps},
        {QStringLiteral("rejected"), s.rejected},      {QStringLiteral("reconnects"), s.reconnects}};
    if (!s.reason.isEmpty())
        o.insert(QStringLiteral("reason"), s.reason);
    return o;
}

QByteArray NatsPublisher::metricsText() const {
    const Status s = status();
    QByteArray text;
    auto metric = [&text](const char* name, const char* type, const char* help, const QByteArray& value) {
        text += QByteArray("# HELP ") + name + ' ' + help + "\n# TYPE " + name + ' ' + type + '\n' + name +
                ' ' + value + '\n';
    };
    metric("tidewatch_nats_published_total", "counter", "Events JetStream acknowledged since start.",
           QByteArray::number(s.published));
    metric("tidewatch_nats_rejected_total", "counter",
           "Events JetStream refused (e.g. too large), published as a gap stub instead.",
           QByteArray::number(s.rejected));
    metric("tidewatch_nats_acked_seq", "gauge", "Highest journal seq JetStream holds.",
           QByteArray::number(s.ackedSeq));
    metric("tidewatch_nats_lag_events", "gauge", "Committed events not yet acknowledged by JetStream.",
           QByteArray::number(s.lagEvents));
    metric("tidewatch_nats_lag_seconds", "gauge", "How long the oldest unacknowledged event has waited.",
           QByteArray::number(s.lagSeconds, 'f', 3));
    metric("tidewatch_nats_connected", "gauge", "1 while publishing, 0 while connecting or backing off.",
           s.state == State::Publishing ? "1" : "0");
    return text;
}

} // namespace tw

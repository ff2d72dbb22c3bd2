#include "NatsPublisher.h"

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

namespace {

// Committed events kept in memory for the publisher; past it they are read back from
// the journal. 65 536 events of 1 KiB is 64 MiB at most, a few seconds of a flood.
constexpr size_t kMaxBuffered = 65536;
// How far back from the stream's end the newest message of this journal is looked
// for at (re)connection. The stream ends with this journal's messages unless other
// journals publish to it too; past this many of theirs, the journal's checkpoint and
// JetStream's duplicate window decide alone.
constexpr int kTailScan = 10000;
// The acknowledged seq is committed at most this often (one small journal
// transaction); a crash in between is covered by reading the stream's tail.
constexpr qint64 kCheckpointEveryMs = 250;
// How long a window may wait for its acknowledgements before the connection is
// treated as lost.
constexpr int kAckWaitMs = 5000;

qint64 nowMs() {
    return QDateTime::currentMSecsSinceEpoch();
}

} // namespace

struct NatsPublisher::Nats {
    natsOptions* options = nullptr;
    natsConnection* connection = nullptr;
    jsCtx* js = nullptr;
    kvStore* watchList = nullptr; // the bucket the watch list goes to; null while it cannot be opened

    static void onAck(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure) {
        const qint64 seq = NatsEventMessage::seqOf(msg);
        QString why;
        bool rejected = false;
        if (!ack && error) {
            why = error->ErrText ? QString::fromUtf8(error->ErrText) : natsclient::statusText(error->Err);
            // Only a verdict on the message itself is final: a full stream, missing
            // storage or a timeout pass, so those are sent again after a backoff.
            rejected = error->ErrCode == JSStreamMessageExceedsMaximumErr;
        }
        const auto* context = static_cast<const AckContext*>(closure);
        context->publisher->acknowledged(context->generation, seq, ack != nullptr, rejected, why);
        natsMsg_Destroy(msg);
    }

    ~Nats() {
        if (watchList)
            kvStore_Destroy(watchList);
        if (js)
            jsCtx_Destroy(js);
        if (connection) {
            natsConnection_Close(connection);
            natsConnection_Destroy(connection);
        }
        if (options)
            natsOptions_Destroy(options);
    }
};

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

void NatsPublisher::setState(State state, const QString& reason) {
    {
        std::lock_guard lock(m_mutex);
        if (m_status.state == state && m_status.reason == reason)
            return;
        m_status.state = state;
        m_status.reason = reason;
    }
    // Emitted on the thread we live in: see NatsHandOff.
    NatsHandOff::post(this, [this, state, reason] { Q_EMIT stateChanged(state, reason); });
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
        jsStreamInfo_Destroy(info);
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
    config.Storage = js_FileStorage;
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
    qCInfo(lcNats).noquote() << "created stream" << m_options.stream << "on" << m_options.url;
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

ChangeEventList NatsPublisher::take(qint64 from, int limit, QString* why) {
    ChangeEventList events;
    qint64 head = 0;
    {
        std::lock_guard lock(m_mutex);
        while (!m_buffer.empty() && m_buffer.front().seq() < from)
            m_buffer.pop_front();
        if (!m_buffer.empty() && m_buffer.front().seq() == from) {
            // Consecutive seqs only: a window never jumps over a hole.
            qint64 expected = from;
            while (!m_buffer.empty() && events.size() < limit && m_buffer.front().seq() == expected) {
                events.append(m_buffer.front());
                m_buffer.pop_front();
                ++expected;
            }
            return events;
        }
        head = std::max(m_head, m_engine->lastCommittedSeq());
    }
    if (head < from)
        return events;
    // Behind the buffer (the publisher was away, or the buffer was full): the journal
    // has every event in between.
    const JournalReader::Result r = m_reader.readAfter(from - 1, limit);
    if (!r.error.isEmpty()) {
        *why = QStringLiteral("cannot read the journal: %1").arg(r.error);
        return events;
    }
    if (r.gap) {
        GapPosition position;
        position.requested = from - 1;
        position.firstAvailable = r.firstAvailable;
        position.resumeAfter = r.firstAvailable - 1;
        ChangeEvent gap = ChangeEvent::makeGap(
            QString(), {},
            QStringLiteral("events %1 to %2 were removed from the journal by retention before they were "
                           "published")
                .arg(from)
                .arg(r.firstAvailable - 1),
            position);
        // The gap stands in for the last lost seq, so the stream stays in seq order.
        gap.finalize(r.firstAvailable - 1);
        events.append(gap);
    }
    events.append(r.events);
    return events;
}

void NatsPublisher::prefetch(qint64 from) {
    QString why;
    Prepared next;
    next.events = take(from, m_options.window, &why);
    if (!why.isEmpty())
        return; // the next window reads again, and says why
    next.json.reserve(next.events.size());
    for (const ChangeEvent& e : std::as_const(next.events))
        next.json.append(e.toJson());
    m_prefetched = std::move(next);
}

bool NatsPublisher::publishWindow(QString* why) {
    {
        std::unique_lock lock(m_mutex);
        // At most a second asleep, so the acknowledged seq is committed when idle.
        m_wake.wait_for(lock, std::chrono::seconds(1), [this] {
            return m_stopping.load() || m_head >= m_next || m_engine->lastCommittedSeq() >= m_next;
        });
    }
    if (m_stopping)
        return false;
    ChangeEventList events;
    QList<QByteArray> rendered;
    if (!m_prefetched.events.isEmpty() && m_prefetched.events.constFirst().seq() == m_next) {
        events = std::move(m_prefetched.events);
        rendered = std::move(m_prefetched.json);
        // What was committed while the last window was acknowledged goes in this one
        // too, rather than waiting for the next (rendered in the loop below).
        // On an error the prefetched part stays whole, and the rest is read again (and its
        // error reported) by the next window.
        QString topUpError;
        if (events.size() < m_options.window) {
            ChangeEventList more =
                take(events.constLast().seq() + 1, m_options.window - int(events.size()), &topUpError);
            if (topUpError.isEmpty())
                events.append(more);
        }
    } else {
        events = take(m_next, m_options.window, why);
    }
    m_prefetched = {};
    if (events.isEmpty()) {
        storeCheckpoint(false);
        return why->isEmpty();
    }
    {
        std::vector<qint64> seqs;
        seqs.reserve(size_t(events.size()));
        for (const ChangeEvent& e : std::as_const(events))
            seqs.push_back(e.seq());
        std::lock_guard lock(m_mutex);
        m_window.open(m_generation, std::move(seqs));
    }
    // Seqs sent as a stub in place of the event: counted once acknowledged.
    std::vector<qint64> stubs;
    natsStatus s = NATS_OK;
    // A message over the server's max_payload or the stream's max_msg_size would be
    // refused on every try. Its stub goes in its place before it is sent: the server
    // stores the messages after a refused one, so a stub sent after the refusal
    // would come behind them, out of seq order.
    const qint64 payloadLimit = natsConnection_GetMaxPayload(m_nats->connection);
    for (qsizetype i = 0; i < events.size(); ++i) {
        ChangeEvent& event = events[i];
        // Rendered once: an event read back from the journal carries no JSON, and
        // toJson() renders it at every call (the size check and the message made two,
        // which was most of the publisher's CPU when catching up from the journal).
        QByteArray json = i < rendered.size() ? rendered.at(i) : event.toJson();
        const int bytes = int(json.size());
        const qint64 size = bytes + NatsEventMessage::headerBytes(event, m_journalId);
        QString refusal;
        if (m_rejectedSeq != 0 && event.seq() == m_rejectedSeq)
            refusal = m_rejectedWhy;
        else if (payloadLimit > 0 && size > payloadLimit)
            refusal = QStringLiteral("larger than the server's max_payload (%1 bytes)").arg(payloadLimit);
        else if (m_streamMaxMessageBytes > 0 && size > m_streamMaxMessageBytes)
            refusal = QStringLiteral("larger than stream %1's max_msg_size (%2 bytes)")
                          .arg(m_options.stream)
                          .arg(m_streamMaxMessageBytes);
        if (!refusal.isEmpty()) {
            qCWarning(lcNats).noquote() << "event" << event.seq() << "cannot be published:" << refusal
                                        << "- publishing a stub in its place";
            event = NatsEventMessage::rejectionStub(event, bytes, refusal);
            json = event.toJson();
            stubs.push_back(event.seq());
        }
        s = NatsEventMessage::publishAsync(m_nats->js, event, json, m_journalId);
        if (s != NATS_OK)
            break;
    }
    // The next window is read from the journal and rendered while this one is
    // acknowledged, which overlaps the two when catching up.
    if (s == NATS_OK && !m_stopping)
        prefetch(events.constLast().seq() + 1);
    jsPubOptions wait;
    jsPubOptions_Init(&wait);
    wait.MaxWait = kAckWaitMs;
    const natsStatus complete = s == NATS_OK ? js_PublishAsyncComplete(m_nats->js, &wait) : s;
    if (complete != NATS_OK) {
        // What was not acknowledged is resent after the resync; acknowledgements that
        // still arrive for it are dropped with it.
        natsMsgList pending{};
        if (js_PublishAsyncGetPendingList(&pending, m_nats->js) == NATS_OK)
            natsMsgList_Destroy(&pending);
    }
    qint64 ackedThrough = 0;
    qint64 ackedCount = 0;
    qint64 rejectedAt = 0;
    QString failure;
    {
        std::unique_lock lock(m_mutex);
        // libnats may count a message as acknowledged before our handler has run for
        // it. Every answer is waited for, failures too: the window may be opened
        // again on this connection for the same seqs.
        if (complete == NATS_OK)
            m_acked.wait_for(lock, std::chrono::seconds(2), [this] { return m_window.isComplete(); });
        const size_t i = m_window.ackedPrefix();
        ackedCount = qint64(i);
        if (i > 0)
            ackedThrough = m_window.seqAt(i - 1);
        if (i < m_window.size()) {
            failure = m_window.error().isEmpty() ? natsclient::statusText(complete) : m_window.error();
            if (m_window.isRejectionAt(i) && m_window.isComplete())
                rejectedAt = m_window.seqAt(i);
        }
        m_window.clear();
        if (ackedThrough > 0) {
            m_status.ackedSeq = std::max(m_status.ackedSeq, ackedThrough);
            m_status.published += ackedCount;
            for (const ChangeEvent& e : std::as_const(events))
                if (e.operation() == Operation::Gap && e.seq() <= ackedThrough && e.sourceId().isEmpty())
                    ++m_status.gaps;
            for (const qint64 stub : stubs)
                if (stub <= ackedThrough)
                    ++m_status.rejected;
            while (!m_commitTimes.empty() && m_commitTimes.front().first <= m_status.ackedSeq)
                m_commitTimes.pop_front();
        }
    }
    if (ackedThrough > 0)
        m_next = ackedThrough + 1;
    if (m_rejectedSeq != 0 && m_rejectedSeq < m_next)
        m_rejectedSeq = 0; // its stub is stored
    storeCheckpoint(false);
    if (rejectedAt != 0 && std::find(stubs.cbegin(), stubs.cend(), rejectedAt) == stubs.cend()) {
        // JetStream refused this message itself for a reason not checked before
        // sending (the stream's limits changed since the resync, say): sent again it
        // would be refused again, and the publisher would stall on it for ever. The
        // next window sends a stub in its place, with the reason, and goes on; what
        // followed it in this window is sent again too, and JetStream drops the copies
        // it already stored by their Nats-Msg-Id (so the stub comes after them).
        qCWarning(lcNats).noquote() << "JetStream refused event" << rejectedAt << ":" << failure
                                    << "- publishing a stub in its place";
        m_rejectedSeq = rejectedAt;
        m_rejectedWhy = failure;
        return true;
    }
    if (!failure.isEmpty()) {
        *why = QStringLiteral("JetStream did not acknowledge seq %1: %2").arg(m_next).arg(failure);
        return false;
    }
    return true;
}

void NatsPublisher::acknowledged(quint64 generation, qint64 seq, bool ok, bool rejected,
                                 const QString& error) {
    std::lock_guard lock(m_mutex);
    if (m_window.answer(generation, seq, ok, rejected, error))
        m_acked.notify_one();
}

void NatsPublisher::storeCheckpoint(bool force) {
    qint64 acked = 0;
    {
        std::lock_guard lock(m_mutex);
        acked = m_status.ackedSeq;
    }
    if (acked <= m_storedSeq || (!force && nowMs() - m_storedAtMs < kCheckpointEveryMs))
        return;
    ChangeBatch batch;
    batch.sourceId = checkpointSource();
    batch.checkpoint.token = QByteArray::number(acked);
    // Through the engine's thread, which submit() posts from: see NatsHandOff.
    NatsHandOff::post(m_engine, [engine = m_engine, batch] { engine->submit(batch); });
    m_storedSeq = acked;
    m_storedAtMs = nowMs();
}

NatsPublisher::Status NatsPublisher::status() const {
    std::lock_guard lock(m_mutex);
    Status s = m_status;
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

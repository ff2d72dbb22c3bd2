#include "NatsGatewaySource.h"

#include "sources/nats/NatsClient.h"
#include "sources/nats/NatsEventReader.h"
#include "sources/nats/NatsGatewayNats.h"
#include "sources/nats/NatsHeaders.h"
#include "sources/nats/NatsSubject.h"

#include <algorithm>
#include <QDateTime>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLoggingCategory>
#include <QRegularExpression>
#include <QTimer>
#include <QTimeZone>
#include <QUrl>
#include <utility>

#include <nats/nats.h>

Q_LOGGING_CATEGORY(lcGateway, "tidewatch.gateway")

namespace tw {

namespace {

// One wait for a message at most this long, so a queued stop() runs within a second.
constexpr int kPollMs = 100;
// Messages per batch at most. No message of a pass reaches the journal before the pass
// ends, so behind the stream a long pass holds every message in it (bench/README.md,
// "Where the latency goes"); short passes let the engine commit, and SSE send, one pass
// while the next is read, and the engine still joins the passes waiting for it into one
// commit (up to 4 096 events).
constexpr int kMaxBatch = 256;
// How often the ingest's watch list is read again (one request): a state change shows
// on the gateway within about a second.
constexpr qint64 kWatchListEveryMs = 1000;
// A consumer that delivers nothing this long while the stream holds messages past the
// last one read is replaced (checkStalled()).
constexpr qint64 kStalledAfterMs = 3000;

QByteArray header(natsMsg* msg, const char* key) {
    const char* value = nullptr;
    return natsMsgHeader_Get(msg, key, &value) == NATS_OK && value ? QByteArray(value) : QByteArray();
}

} // namespace

NatsGatewaySource::NatsGatewaySource(const QString& id, const QString& url, const QString& stream)
    : Source(id)
    , m_url(url)
    , m_stream(stream)
    , m_streamName(stream.toUtf8())
    , m_filter(NatsSubject::all()) {
    m_relaysSourceIds = true; // the events keep the ingest's source ids
}

NatsGatewaySource::~NatsGatewaySource() {
    if (m_wide)
        natsMsg_Destroy(m_wide);
}

bool NatsGatewaySource::parseUri(const QString& uri, QString* url, QString* stream, QString* error) {
    const QUrl parsed(uri, QUrl::StrictMode);
    static const QRegularExpression name(QStringLiteral("^[A-Za-z0-9_-]{1,64}$"));
    const QString path = parsed.path().mid(1);
    QString why;
    if (!parsed.isValid() || parsed.scheme().compare(QLatin1String("nats"), Qt::CaseInsensitive) != 0 ||
        parsed.host().isEmpty() || parsed.port() <= 0)
        why = QStringLiteral("needs nats://HOST:PORT[/STREAM], e.g. nats://127.0.0.1:4222/TIDEWATCH");
    else if (!path.isEmpty() && !name.match(path).hasMatch())
        why = QStringLiteral("names the stream \"%1\"; a stream name is 1 to 64 letters, digits, _ or -")
                  .arg(path);
    if (!why.isEmpty()) {
        if (error)
            *error = QStringLiteral("The gateway URI \"%1\" %2.").arg(uri, why);
        return false;
    }
    *url = QStringLiteral("nats://%1:%2").arg(parsed.host()).arg(parsed.port());
    *stream = path.isEmpty() ? QStringLiteral("TIDEWATCH") : path;
    return true;
}

NatsGatewaySource* NatsGatewaySource::create(const QString& id, const QString& uri, QString* error) {
    QString url, stream;
    if (!parseUri(uri, &url, &stream, error))
        return nullptr;
    return new NatsGatewaySource(id, url, stream);
}

void NatsGatewaySource::start(const SourceRestore& restore) {
    m_stopped = false;
    const QJsonObject token = QJsonDocument::fromJson(restore.token).object();
    m_journalId = token.value(QLatin1String("journal")).toString().toUtf8();
    m_lastSeq = token.value(QLatin1String("seq")).toInteger();
    m_streamSeq = quint64(std::max<qint64>(0, token.value(QLatin1String("streamSeq")).toInteger()));
    // A string: nanoseconds since 1970 are past what a JSON number holds exactly.
    m_streamCreated = token.value(QLatin1String("streamCreated")).toString().toLongLong();
    // Saved until the first event after it is taken: a restart in between must still
    // put the gap before it.
    m_streamRenewed = token.value(QLatin1String("renewed")).toBool();
    m_filterDeclared = false;
    m_pumpTimer = new QTimer(this);
    m_pumpTimer->setInterval(0); // each pass waits for messages itself, at most kPollMs
    connect(m_pumpTimer, &QTimer::timeout, this, &NatsGatewaySource::pump);
    m_retryTimer = new QTimer(this);
    m_retryTimer->setSingleShot(true);
    connect(m_retryTimer, &QTimer::timeout, this, [this] {
        if (m_stopped)
            return;
        setStatus(SourceStatus::State::Connecting);
        QString why;
        if (!connectToServer(&why)) {
            retryLater(why);
            return;
        }
        m_backoff.reset();
        setStatus(SourceStatus::State::Watching);
        for (const Namespace& ns : std::as_const(m_watches))
            Q_EMIT watchReady(id(), ns);
        m_pumpTimer->start();
    });
    m_backoff.reset();
    m_retryTimer->start(0);
}

bool NatsGatewaySource::connectToServer(QString* why) {
    m_nats = std::make_unique<Nats>();
    // We reconnect ourselves, from the stream sequence we read last: libnats' own
    // reconnection would have the ordered consumer restart where it decides. Under a
    // second: the connection is made on this thread, and a queued stop() waits for it.
    natsStatus s =
        natsclient::connect(&m_nats->options, &m_nats->connection, m_url.toUtf8(), "tidewatch-gateway", 900);
    // Each request (consumer info, the watch list) waits at most this long, so a server
    // that accepts connections but does not answer holds this thread, and stop(), briefly.
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 900;
    if (s == NATS_OK)
        s = natsConnection_JetStream(&m_nats->js, m_nats->connection, &jo);
    if (s != NATS_OK) {
        *why = QStringLiteral("cannot connect to %1: %2").arg(m_url, natsclient::statusText(s));
        m_nats.reset();
        return false;
    }
    if (!subscribe(why)) {
        m_nats.reset();
        return false;
    }
    readWatchList();
    qCInfo(lcGateway).noquote() << "reading stream" << m_stream << "on" << m_url << "after stream sequence"
                                << m_streamSeq << "(seq" << m_lastSeq << ")";
    return true;
}

bool NatsGatewaySource::subscribe(QString* why) {
    if (m_nats->subscription) {
        natsSubscription_Unsubscribe(m_nats->subscription);
        natsSubscription_Destroy(m_nats->subscription);
        m_nats->subscription = nullptr;
    }
    if (!checkStreamIsTheOneRead(why))
        return false;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = m_streamName.constData();
    so.Ordered = true;
    if (m_streamSeq > 0) {
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = m_streamSeq + 1;
    } else {
        so.Config.DeliverPolicy = js_DeliverAll;
    }
    // A wide message looked up for the old consumer is looked up again for this one.
    if (m_wide)
        natsMsg_Destroy(m_wide);
    m_wide = nullptr;
    m_wideFrom = m_streamSeq + 1;
    m_consumerSeq = 0;
    jsErrCode code = jsErrCode(0);
    const natsStatus s =
        js_SubscribeSync(&m_nats->subscription, m_nats->js, m_filter.constData(), nullptr, &so, &code);
    if (s != NATS_OK) {
        m_nats->subscription = nullptr;
        *why = streamError(s);
        return false;
    }
    m_sinceMessage.start();
    return true;
}

QString NatsGatewaySource::streamError(int status) const {
    return status == NATS_NOT_FOUND
               ? QStringLiteral("%1 has no stream %2 yet (start the ingest with --publish %1)")
                     .arg(m_url, m_stream)
               : QStringLiteral("cannot read stream %1 on %2: %3")
                     .arg(m_stream, m_url, natsclient::statusText(natsStatus(status)));
}

bool NatsGatewaySource::checkStreamIsTheOneRead(QString* why) {
    jsStreamInfo* info = nullptr;
    jsErrCode code = jsErrCode(0);
    const natsStatus s = js_GetStreamInfo(&info, m_nats->js, m_streamName.constData(), nullptr, &code);
    if (s != NATS_OK) {
        *why = streamError(s);
        if (s != NATS_NOT_FOUND)
            *why += QStringLiteral(" (a user that reads the stream needs $JS.API.STREAM.INFO.%1 too)")
                        .arg(m_stream);
        return false;
    }
    const qint64 created = info->Created;
    const quint64 last = info->State.LastSeq;
    // lostBefore() compares against the first sequence of this stream, not of an old one.
    m_streamFirstSeq = info->State.FirstSeq;
    jsStreamInfo_Destroy(info);
    // A stream made again (one kept in memory when nats-server restarted, or one deleted
    // and made again) numbers its messages from 1: a consumer started after the position
    // read in the old one would skip every message until the new stream passed it. Told
    // by the stream's creation time, or, for a checkpoint from before it was kept, by a
    // stream that ends before that position.
    const bool renewed = m_streamCreated != 0 ? created != m_streamCreated : m_streamSeq > last;
    if (renewed && (m_streamSeq > 0 || m_lastSeq > 0)) {
        qCWarning(lcGateway).noquote()
            << "stream" << m_stream << "on" << m_url << "was made again at"
            << QDateTime::fromMSecsSinceEpoch(created / 1000000, QTimeZone::utc()).toString(Qt::ISODateWithMs)
            << QStringLiteral(
                   "after this gateway read its stream sequence %1 (seq %2): reading it from its start")
                   .arg(m_streamSeq)
                   .arg(m_lastSeq);
        m_streamSeq = 0;
        m_stalledAt = 0;
        m_streamRenewed = true;
    }
    m_streamCreated = created;
    return true;
}

void NatsGatewaySource::checkStalled() {
    // The consumer has handed over nothing for a while: ask the server what it has left.
    if (!m_sinceMessage.hasExpired(kStalledAfterMs))
        return;
    jsConsumerInfo* info = nullptr;
    jsErrCode code = jsErrCode(0);
    const natsStatus s = natsSubscription_GetConsumerInfo(&info, m_nats->subscription, nullptr, &code);
    if (s != NATS_OK && s != NATS_NOT_FOUND)
        return; // the next read tells whether the connection is gone
    // Left to deliver, or delivered and never handed over (lost between libnats and
    // the server); a consumer the server has dropped counts as stalled too.
    // Narrowed, the server moves the delivered stream sequence past the messages the
    // filter skips, so it would look lost whenever the namespace is quiet (a new
    // consumer every 3 s): the consumer sequence counts only what was delivered to us.
    const bool narrowed = isNarrowed();
    const quint64 delivered = info ? (narrowed ? info->Delivered.Consumer : info->Delivered.Stream) : 0;
    const quint64 readThrough = narrowed ? m_consumerSeq : m_streamSeq;
    const quint64 pending = info ? info->NumPending : 1;
    if (info)
        jsConsumerInfo_Destroy(info);
    // Delivered past what was read with nothing pending is a loss between the server
    // and libnats, or messages the stream no longer holds (expired, purged: the server
    // then reports the sequence before its first one). A new consumer recovers the
    // first and finds the second the same; so once per such sequence, not again.
    const bool lostInTransit = pending == 0 && delivered > readThrough && delivered != m_stalledAt;
    if (info && pending == 0 && !lostInTransit) {
        m_sinceMessage.start(); // idle, not stalled: ask again in a while
        return;
    }
    m_stalledAt = delivered;
    qCWarning(lcGateway).noquote() << "the consumer of stream" << m_stream << "handed over nothing for"
                                   << kStalledAfterMs << "ms with" << pending << "messages left and"
                                   << delivered << "delivered; subscribing again after" << m_streamSeq;
    QString why;
    if (!subscribe(&why))
        retryLater(why);
}

void NatsGatewaySource::disconnect() {
    if (m_pumpTimer)
        m_pumpTimer->stop();
    if (m_wide)
        natsMsg_Destroy(m_wide);
    m_wide = nullptr;
    m_nats.reset();
}

void NatsGatewaySource::retryLater(const QString& why) {
    disconnect();
    const int delay = m_backoff.next();
    qCWarning(lcGateway).noquote() << why << "- retrying in" << delay << "ms";
    setStatus(SourceStatus::State::Backoff, why, QDateTime::currentDateTime().addMSecs(delay));
    m_retryTimer->start(delay);
}

void NatsGatewaySource::pump() {
    if (!m_nats || m_stopped)
        return;
    QList<Delivered> delivered;
    natsMsg* msg = nullptr;
    natsStatus s = natsSubscription_NextMsg(&msg, m_nats->subscription, kPollMs);
    if (s == NATS_OK)
        m_sinceMessage.start();
    while (s == NATS_OK) {
        Delivered d{msg, 0, 0};
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
            d.streamSeq = meta->Sequence.Stream;
            d.consumerSeq = meta->Sequence.Consumer;
            jsMsgMetaData_Destroy(meta);
        }
        delivered.append(d);
        msg = nullptr;
        if (delivered.size() >= kMaxBatch)
            break;
        s = natsSubscription_NextMsg(&msg, m_nats->subscription, 0); // what is already here
    }
    ChangeEventList events;
    takeInOrder(delivered, &events);
    if (!events.isEmpty() || !m_narrowings.isEmpty()) {
        ChangeBatch batch;
        batch.sourceId = id();
        batch.events = events;
        batch.keepSeqs = true;
        batch.narrowings = std::exchange(m_narrowings, {});
        batch.checkpoint.token = checkpointToken();
        m_status.lastEventMs = QDateTime::currentMSecsSinceEpoch();
        publishBatch(batch);
    }
    // Only now, with the batch handed over: libnats gives every destroyed message to its
    // collector thread and wakes that thread if it sleeps, which one by one was a wake-up
    // (and often a preemption of this thread) per message, a fifth of this thread's time
    // at 10 000 events/s. Destroyed together, a pass wakes it about once.
    for (const Delivered& d : std::as_const(delivered))
        natsMsg_Destroy(d.msg);
    if (!m_nats)
        return; // takeInOrder() could not look up the wide messages, and retries later
    if (m_watchListTimer.hasExpired(kWatchListEveryMs)) {
        readWatchList();
        if (s == NATS_TIMEOUT)
            checkStalled();
    }
    if (s == NATS_OK || s == NATS_TIMEOUT)
        return;
    if (s == NATS_SLOW_CONSUMER) {
        // libnats dropped messages it could not queue; the ordered consumer notices the
        // hole and restarts after the last message it handed over, so nothing is lost.
        qCWarning(lcGateway).noquote()
            << "stream" << m_stream << "reads behind:" << natsclient::statusText(s);
        return;
    }
    // Anything else (the server went away): start again after what was read, which the
    // engine commits whatever happens to the connection.
    retryLater(QStringLiteral("lost stream %1 on %2: %3").arg(m_stream, m_url, natsclient::statusText(s)));
}

void NatsGatewaySource::take(natsMsg* msg, ChangeEventList* events) {
    const quint64 readBefore = m_streamSeq;
    // Read from the message's metadata once, by pump() (parsing it again here, with its
    // allocations, was paid on every message).
    m_streamSeq = std::max<quint64>(m_streamSeq, m_takingStreamSeq);
    const QByteArray journal = header(msg, natsheaders::kJournal);
    bool ok = false;
    const qint64 seq = header(msg, natsheaders::kSeq).toLongLong(&ok);
    if (!ok || seq <= 0 || journal.isEmpty())
        return; // not an event of a Tidewatch ingest
    if (m_journalId.isEmpty()) {
        m_journalId = journal;
        qCInfo(lcGateway).noquote() << "following the ingest journal" << journal << "in stream" << m_stream;
    } else if (journal != m_journalId) {
        // Another journal's seqs would interleave with ours and mean other events.
        if (!m_foreignJournals.contains(journal)) {
            m_foreignJournals.insert(journal);
            qCWarning(lcGateway).noquote() << "stream" << m_stream << "also holds events of journal"
                                           << journal << "; this gateway follows" << m_journalId << "only";
        }
        return;
    }
    if (seq <= m_lastSeq)
        return; // held already (a consumer restarted before it)
    const QByteArray operation = header(msg, natsheaders::kOperation);
    // The first event taken from a stream made again: what came between was in the old
    // one. Narrowed, some of those seqs may be other namespaces' events; the gap is then
    // wider than what this gateway's readers lost, never narrower.
    const bool afterRenewal = std::exchange(m_streamRenewed, false);
    if (seq > m_lastSeq + 1 && operation != "gap" && (afterRenewal || lostBefore(readBefore))) {
        GapPosition position;
        position.requested = m_lastSeq;
        position.firstAvailable = seq;
        position.resumeAfter = seq - 1;
        const QString why =
            afterRenewal
                ? QStringLiteral(
                      "events %1 to %2 are not in stream %3: the stream was made again (nats-server "
                      "lost a stream kept in memory, or the stream was deleted) before this gateway "
                      "read them")
                : QStringLiteral(
                      "events %1 to %2 are no longer in stream %3: its retention removed them before "
                      "this gateway read them");
        ChangeEvent gap =
            ChangeEvent::makeGap(QString(), {}, why.arg(m_lastSeq + 1).arg(seq - 1).arg(m_stream), position);
        gap.finalize(seq - 1);
        events->append(gap);
    }
    QString error;
    ChangeEvent event =
        NatsEventReader::read(QByteArrayView(natsMsg_GetData(msg), natsMsg_GetDataLength(msg)), seq, &error);
    if (!error.isEmpty()) {
        // Never a silence: a reader learns that this seq exists and could not be read.
        event = ChangeEvent::makeGap(
            QString(), {},
            QStringLiteral("event %1 of stream %2 could not be read: %3").arg(seq).arg(m_stream, error));
        event.finalize(seq);
    }
    m_seen.insert(event.ns().db + QLatin1Char('\n') + event.ns().coll);
    events->append(event);
    m_lastSeq = seq;
}

void NatsGatewaySource::readWatchList() {
    m_watchListTimer.start();
    if (!m_nats->watchList) {
        const QByteArray bucket = natsheaders::watchListBucket(m_streamName);
        if (js_KeyValue(&m_nats->watchList, m_nats->js, bucket.constData()) != NATS_OK) {
            m_nats->watchList = nullptr;
            return; // an ingest that has not put one yet
        }
    }
    kvEntry* entry = nullptr;
    if (kvStore_Get(&entry, m_nats->watchList, natsheaders::kWatchListKey) != NATS_OK)
        return;
    const quint64 revision = kvEntry_Revision(entry);
    const QJsonObject list =
        QJsonDocument::fromJson(
            QByteArray(static_cast<const char*>(kvEntry_Value(entry)), kvEntry_ValueLen(entry)))
            .object();
    kvEntry_Destroy(entry);
    if (revision == m_watchListRevision)
        return;
    m_watchListRevision = revision;
    // Another journal's list describes other events than the ones this gateway serves.
    const QByteArray journal = list.value(QLatin1String("journal")).toString().toUtf8();
    if (!m_journalId.isEmpty() && journal != m_journalId)
        return;
    m_status.upstream = list;
    Q_EMIT statusChanged(id(), m_status);
}

QByteArray NatsGatewaySource::checkpointToken() const {
    QJsonObject token{{QStringLiteral("journal"), QString::fromUtf8(m_journalId)},
                      {QStringLiteral("seq"), m_lastSeq},
                      {QStringLiteral("streamSeq"), qint64(m_streamSeq)},
                      {QStringLiteral("streamCreated"), QString::number(m_streamCreated)}};
    if (m_streamRenewed)
        token.insert(QStringLiteral("renewed"), true);
    return QJsonDocument(token).toJson(QJsonDocument::Compact);
}

void NatsGatewaySource::watch(const Namespace& ns, const WatchOptions& options) {
    // The ingest reads the database; a gateway takes what it publishes, of the
    // namespaces its readers need.
    if (!m_watches.contains(ns))
        m_watches.append(ns);
    m_readers.insert(ns, options.readers);
    applyFilter();
    if (m_nats)
        Q_EMIT watchReady(id(), ns);
}

void NatsGatewaySource::unwatch(const Namespace& ns) {
    m_watches.removeAll(ns);
    m_readers.remove(ns);
    applyFilter();
}

void NatsGatewaySource::listNamespaces(const QString& db) {
    // What the stream has carried so far: the gateway cannot ask the databases.
    QList<NamespaceInfo> list;
    QSet<QString> dbs;
    for (const QString& key : std::as_const(m_seen)) {
        const Namespace ns{key.section(QLatin1Char('\n'), 0, 0), key.section(QLatin1Char('\n'), 1)};
        if (db.isEmpty() && !ns.db.isEmpty() && !dbs.contains(ns.db)) {
            dbs.insert(ns.db);
            list.append(NamespaceInfo{Namespace{ns.db, {}}, QStringLiteral("database")});
        } else if (!db.isEmpty() && ns.db == db && !ns.coll.isEmpty()) {
            list.append(NamespaceInfo{ns, QStringLiteral("collection")});
        }
    }
    Q_EMIT namespacesListed(id(), db, list, QString());
}

void NatsGatewaySource::stop() {
    m_stopped = true;
    if (m_retryTimer)
        m_retryTimer->stop();
    disconnect();
    setStatus(SourceStatus::State::Stopped);
}

} // namespace tw

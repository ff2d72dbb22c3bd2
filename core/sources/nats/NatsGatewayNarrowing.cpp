// NatsGatewaySource: consuming only the subjects the readers need, with the wide
// messages (NatsSubject::wide()) merged in by stream sequence.
#include "NatsGatewaySource.h"

#include "sources/nats/NatsClient.h"
#include "sources/nats/NatsGatewayNats.h"
#include "sources/nats/NatsSubject.h"
#include "sources/SourceReading.h"

#include <algorithm>
#include <limits>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLoggingCategory>

#include <nats/nats.h>

Q_DECLARE_LOGGING_CATEGORY(lcGateway)

namespace tw {

namespace {

// A direct get waits at most this long, as the other requests (NatsGatewaySource.cpp).
constexpr int kRequestMs = 900;
// JetStream's "no message found" (JSNoMessageFoundErr).
constexpr int kNoMessageFound = 10037;

} // namespace

bool NatsGatewaySource::isNarrowed() const {
    return m_filter != NatsSubject::all();
}

QByteArray NatsGatewaySource::wantedFilter() const {
    // A scope nobody reads narrows nothing: everything in it is journaled, so a
    // subscription made later can replay it.
    QList<Namespace> namespaces;
    for (const Namespace& scope : m_watches) {
        const QList<WatchOptions::Reader> readers = m_readers.value(scope);
        if (readers.isEmpty())
            namespaces.append(scope);
        for (const WatchOptions::Reader& reader : readers)
            namespaces.append(reader.ns);
    }
    return NatsSubject::filterFor(namespaces);
}

QByteArray NatsGatewaySource::readingOf(const QByteArray& filter) const {
    // What the filter reads of each scope, whatever the filters of its readers: the
    // gateway does not evaluate them.
    const Namespace read = NatsSubject::namespaceOf(filter);
    QList<ScopeReading> scopes;
    for (const Namespace& scope : m_watches) {
        ScopeReading reading{scope, {}, true};
        if (!read.contains(scope))
            reading.readers.append(WatchOptions::Reader{read, Bson(), true, false});
        scopes.append(reading);
    }
    return SourceReading::toJson(scopes);
}

void NatsGatewaySource::applyFilter() {
    const QByteArray wanted = wantedFilter();
    const QByteArray reading = readingOf(wanted);
    const bool changed = wanted != m_filter;
    if (m_filterDeclared && !changed && reading == m_declaredReading)
        return;
    m_filter = wanted;
    m_filterDeclared = true;
    m_declaredReading = reading;
    // The next batch begins with what the new consumer delivers: pump() hands over
    // everything it read in each pass, so nothing of the old one is pending.
    m_narrowings.append(SourceNarrowing{0, reading});
    if (!changed || !m_nats)
        return;
    qCInfo(lcGateway).noquote() << "consuming" << m_filter << "of stream" << m_stream
                                << "after stream sequence" << m_streamSeq;
    QString why;
    if (!subscribe(&why))
        retryLater(why);
}

void NatsGatewaySource::takeInOrder(const QList<Delivered>& delivered, ChangeEventList* events) {
    const bool idle = delivered.isEmpty();
    if (!isNarrowed()) {
        for (const Delivered& d : std::as_const(delivered)) {
            m_takingStreamSeq = d.streamSeq;
            take(d.msg, events);
        }
        return;
    }
    m_passLast = m_streamSeq;
    bool failed = false;
    bool jumped = false;
    for (const Delivered& d : std::as_const(delivered)) {
        jumped = jumped || d.streamSeq > m_passLast + 1;
        m_passLast = std::max(m_passLast, d.streamSeq);
    }
    if (jumped) {
        // Asked after every message of this pass arrived: retention removes the oldest
        // messages first, so a first sequence at or before the one after the last read
        // means that what the filter skipped was still there when it was skipped.
        jsStreamInfo* info = nullptr;
        jsErrCode code = jsErrCode(0);
        const natsStatus st = js_GetStreamInfo(&info, m_nats->js, m_streamName.constData(), nullptr, &code);
        if (st == NATS_OK && info) {
            m_streamFirstSeq = info->State.FirstSeq;
            jsStreamInfo_Destroy(info);
        } else {
            // Unknown, it would turn every jump of this pass (each a message of another
            // namespace, skipped by the filter) into a gap: a failed lookup, tried again.
            m_lookupError =
                QStringLiteral("cannot read the info of stream %1 (%2): grant $JS.API.STREAM.INFO.%1")
                    .arg(QString::fromUtf8(m_streamName), natsclient::statusText(st));
            failed = true;
        }
    }
    failed = failed || (!m_wide && lookUpWide() == Lookup::Failed);
    qsizetype i = 0;
    for (; i < delivered.size() && !failed; ++i) {
        const Delivered& d = delivered[i];
        while (m_wide && m_wideSeq < d.streamSeq && !failed) {
            takeWide(events);
            failed = lookUpWide() == Lookup::Failed;
        }
        if (failed)
            break;
        m_consumerSeq = d.consumerSeq;
        m_takingStreamSeq = d.streamSeq;
        take(d.msg, events);
    }
    if (failed) {
        // What was not taken is delivered again after the last stream sequence taken.
        retryLater(QStringLiteral("cannot look up the wide messages of stream %1 on %2: %3")
                       .arg(m_stream, m_url, m_lookupError));
        return;
    }
    // Idle: a wide message ahead of everything delivered goes once the consumer has
    // nothing left that could come before it.
    if (idle)
        while (m_wide && isCaughtUp()) {
            takeWide(events);
            if (lookUpWide() == Lookup::Failed)
                break;
        }
}

NatsGatewaySource::Lookup NatsGatewaySource::lookUpWide() {
    // The first message at or after m_wideFrom on any wide subject (next_by_subj, in
    // nats-server 2.9), through the stream's API rather than direct gets, which a
    // stream made without allow_direct refuses.
    const QByteArray subject = "$JS.API.STREAM.MSG.GET." + m_streamName;
    const QByteArray request =
        QJsonDocument(QJsonObject{{QStringLiteral("seq"), qint64(m_wideFrom)},
                                  {QStringLiteral("next_by_subj"), QString::fromLatin1(NatsSubject::wide())}})
            .toJson(QJsonDocument::Compact);
    natsMsg* reply = nullptr;
    const natsStatus st = natsConnection_Request(&reply, m_nats->connection, subject.constData(),
                                                 request.constData(), int(request.size()), kRequestMs);
    if (st != NATS_OK) {
        // A user without the permission gets no reply at all (a timeout).
        m_lookupError = QStringLiteral("the request on %1 failed (%2): grant %1")
                            .arg(QString::fromUtf8(subject), natsclient::statusText(st));
        return Lookup::Failed;
    }
    const QJsonObject answer =
        QJsonDocument::fromJson(QByteArray(natsMsg_GetData(reply), natsMsg_GetDataLength(reply))).object();
    natsMsg_Destroy(reply);
    const QJsonObject error = answer.value(QLatin1String("error")).toObject();
    if (error.value(QLatin1String("err_code")).toInt() == kNoMessageFound) {
        // None up to the stream's last sequence when asked, which is past every
        // message in hand.
        m_wideFrom = std::max(m_wideFrom, m_passLast + 1);
        return Lookup::None;
    }
    const QJsonObject message = answer.value(QLatin1String("message")).toObject();
    const quint64 seq = quint64(message.value(QLatin1String("seq")).toInteger());
    if (!error.isEmpty() || seq < m_wideFrom) {
        m_lookupError = error.isEmpty() ? QStringLiteral("%1 answered seq %2 for a request from %3")
                                              .arg(QString::fromUtf8(subject))
                                              .arg(seq)
                                              .arg(m_wideFrom)
                                        : QStringLiteral("%1 answered: %2")
                                              .arg(QString::fromUtf8(subject),
                                                   error.value(QLatin1String("description")).toString());
        return Lookup::Failed;
    }
    const QByteArray wideSubject = message.value(QLatin1String("subject")).toString().toUtf8();
    const QByteArray data =
        QByteArray::fromBase64(message.value(QLatin1String("data")).toString().toLatin1());
    natsMsg* msg = nullptr;
    if (natsMsg_Create(&msg, wideSubject.constData(), nullptr, data.constData(), int(data.size())) !=
        NATS_OK) {
        m_lookupError = QStringLiteral("out of memory");
        return Lookup::Failed;
    }
    // "NATS/1.0\r\nKey: value\r\n…\r\n"
    const QByteArray headers =
        QByteArray::fromBase64(message.value(QLatin1String("hdrs")).toString().toLatin1());
    for (const QByteArray& line : headers.split('\n').mid(1)) {
        const qsizetype colon = line.indexOf(':');
        if (colon <= 0)
            continue;
        const QByteArray key = line.left(colon).trimmed();
        const QByteArray value = line.mid(colon + 1).trimmed();
        natsMsgHeader_Add(msg, key.constData(), value.constData());
    }
    m_wide = msg;
    m_wideSeq = seq;
    m_wideFrom = seq + 1;
    return Lookup::Found;
}

void NatsGatewaySource::takeWide(ChangeEventList* events) {
    m_takingStreamSeq = m_wideSeq;
    take(m_wide, events); // has no metadata: take() raises m_streamSeq to m_takingStreamSeq
    natsMsg_Destroy(m_wide);
    m_wide = nullptr;
}

bool NatsGatewaySource::isCaughtUp() {
    jsConsumerInfo* info = nullptr;
    jsErrCode code = jsErrCode(0);
    if (natsSubscription_GetConsumerInfo(&info, m_nats->subscription, nullptr, &code) != NATS_OK || !info)
        return false;
    const bool caughtUp = info->NumPending == 0 && info->Delivered.Consumer == m_consumerSeq;
    jsConsumerInfo_Destroy(info);
    return caughtUp;
}

bool NatsGatewaySource::lostBefore(quint64 readBefore) const {
    // Unfiltered, every seq is a message: a jump is a loss. Narrowed, the seqs of the
    // other namespaces' events are skipped too, and only a stream that no longer
    // holds what followed the last message read may have lost some of ours.
    if (!isNarrowed())
        return true;
    return m_takingStreamSeq > readBefore + 1 && m_streamFirstSeq > readBefore + 1;
}

} // namespace tw

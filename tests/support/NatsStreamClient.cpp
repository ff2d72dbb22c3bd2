#include "NatsStreamClient.h"

#include "sources/nats/NatsHeaders.h"
#include "sources/nats/NatsSubject.h"

#include <QDeadlineTimer>
#include <QThread>
#include <vector>

#include <nats/nats.h>

namespace tw::testsupport {

namespace {

QByteArray header(natsMsg* msg, const char* key) {
    const char* value = nullptr;
    return natsMsgHeader_Get(msg, key, &value) == NATS_OK && value ? QByteArray(value) : QByteArray();
}

QString lastError(natsStatus s) {
    return QString::fromUtf8(natsStatus_GetText(s)) + QLatin1Char(' ') +
           QString::fromUtf8(nats_GetLastError(nullptr));
}

} // namespace

NatsStreamClient::NatsStreamClient(const QString& url, const QByteArray& stream)
    : m_url(url.toUtf8())
    , m_stream(stream) {}

NatsStreamClient::~NatsStreamClient() {
    close();
}

void NatsStreamClient::close() {
    if (m_js)
        jsCtx_Destroy(m_js);
    if (m_nc)
        natsConnection_Destroy(m_nc);
    m_js = nullptr;
    m_nc = nullptr;
}

bool NatsStreamClient::open() {
    natsOptions* options = nullptr;
    natsOptions_Create(&options);
    natsOptions_SetURL(options, m_url.constData());
    natsOptions_SetTimeout(options, 1000);
    natsOptions_SetAllowReconnect(options, false);
    const bool ok = natsConnection_Connect(&m_nc, options) == NATS_OK &&
                    natsConnection_JetStream(&m_js, m_nc, nullptr) == NATS_OK;
    natsOptions_Destroy(options);
    if (!ok)
        close();
    return ok;
}

qint64 NatsStreamClient::messageCount() {
    if (!m_js && !open())
        return -1;
    jsStreamInfo* info = nullptr;
    jsErrCode code = jsErrCode(0);
    if (js_GetStreamInfo(&info, m_js, m_stream.constData(), nullptr, &code) != NATS_OK) {
        close(); // the server may have gone: connect again next time
        return -1;
    }
    const qint64 count = qint64(info->State.Msgs);
    jsStreamInfo_Destroy(info);
    return count;
}

QString NatsStreamClient::createStream(qint32 maxMsgSize, qint64 duplicatesMs) {
    if (!m_js && !open())
        return QStringLiteral("cannot connect to %1").arg(QString::fromUtf8(m_url));
    const QByteArray subjects = NatsSubject::all();
    const char* subjectList[] = {subjects.constData()};
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = m_stream.constData();
    config.Subjects = subjectList;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    if (maxMsgSize > 0)
        config.MaxMsgSize = maxMsgSize;
    if (duplicatesMs > 0)
        config.Duplicates = duplicatesMs * 1000000;
    jsStreamInfo* info = nullptr;
    jsErrCode code = jsErrCode(0);
    const natsStatus s = js_AddStream(&info, m_js, &config, nullptr, &code);
    if (s != NATS_OK)
        return lastError(s);
    jsStreamInfo_Destroy(info);
    return {};
}

QString NatsStreamClient::setMaxMsgSize(qint32 bytes) {
    if (!m_js && !open())
        return QStringLiteral("cannot connect to %1").arg(QString::fromUtf8(m_url));
    jsStreamInfo* info = nullptr;
    jsErrCode code = jsErrCode(0);
    natsStatus s = js_GetStreamInfo(&info, m_js, m_stream.constData(), nullptr, &code);
    if (s == NATS_OK) {
        info->Config->MaxMsgSize = bytes;
        jsStreamInfo* updated = nullptr;
        s = js_UpdateStream(&updated, m_js, info->Config, nullptr, &code);
        jsStreamInfo_Destroy(updated);
        jsStreamInfo_Destroy(info);
    }
    return s == NATS_OK ? QString() : lastError(s);
}

qint64 NatsStreamClient::duplicateWindowMs() {
    if (!m_js && !open())
        return -1;
    jsStreamInfo* info = nullptr;
    jsErrCode code = jsErrCode(0);
    if (js_GetStreamInfo(&info, m_js, m_stream.constData(), nullptr, &code) != NATS_OK)
        return -1;
    const qint64 ms = info->Config->Duplicates / 1000000;
    jsStreamInfo_Destroy(info);
    return ms;
}

QString NatsStreamClient::storage() {
    if (!m_js && !open())
        return {};
    jsStreamInfo* info = nullptr;
    jsErrCode code = jsErrCode(0);
    if (js_GetStreamInfo(&info, m_js, m_stream.constData(), nullptr, &code) != NATS_OK)
        return {};
    const QString storage =
        info->Config->Storage == js_MemoryStorage ? QStringLiteral("memory") : QStringLiteral("file");
    jsStreamInfo_Destroy(info);
    return storage;
}

QString NatsStreamClient::waitOutDuplicateWindow(int timeoutMs) {
    if (!m_js && !open())
        return QStringLiteral("cannot connect to %1").arg(QString::fromUtf8(m_url));
    // On the stream's subjects (it takes nothing else), with no Tidewatch-Journal
    // header: an ingest's resync passes over it, and it is deleted before one starts.
    const QByteArray subject = NatsSubject::all().chopped(1) + "~probe";
    static int probes = 0;
    const QByteArray id = "probe-" + QByteArray::number(++probes);
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MsgId = id.constData();
    std::vector<uint64_t> stored;
    QString error;
    const QDeadlineTimer deadline(timeoutMs);
    while (stored.size() < 2) {
        jsPubAck* ack = nullptr;
        jsErrCode code = jsErrCode(0);
        const natsStatus s = js_Publish(&ack, m_js, subject.constData(), "", 0, &options, &code);
        if (s != NATS_OK) {
            error = lastError(s);
            break;
        }
        if (!ack->Duplicate)
            stored.push_back(ack->Sequence);
        jsPubAck_Destroy(ack);
        if (stored.size() < 2 && deadline.hasExpired()) {
            error = QStringLiteral("the stream still knew id %1 after %2 ms")
                        .arg(QString::fromUtf8(id))
                        .arg(timeoutMs);
            break;
        }
        if (stored.size() == 1)
            QThread::msleep(10); // the server purges the ids on a timer (50 ms at the least)
    }
    for (const uint64_t seq : stored) {
        jsErrCode code = jsErrCode(0);
        const natsStatus s = js_DeleteMsg(m_js, m_stream.constData(), seq, nullptr, &code);
        if (s != NATS_OK && error.isEmpty())
            error = lastError(s);
    }
    return error;
}

QList<NatsStreamMessage> NatsStreamClient::readAll() {
    QList<NatsStreamMessage> out;
    const qint64 count = messageCount();
    if (count <= 0)
        return out;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = m_stream.constData();
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsSubscription* sub = nullptr;
    jsErrCode code = jsErrCode(0);
    if (js_SubscribeSync(&sub, m_js, NatsSubject::all().constData(), nullptr, &so, &code) != NATS_OK)
        return out;
    while (out.size() < count) {
        natsMsg* msg = nullptr;
        if (natsSubscription_NextMsg(&msg, sub, 10000) != NATS_OK)
            break;
        NatsStreamMessage m;
        m.subject = natsMsg_GetSubject(msg);
        m.data = QByteArray(natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
        m.journal = header(msg, natsheaders::kJournal);
        m.seqHeader = header(msg, natsheaders::kSeq);
        m.operation = header(msg, natsheaders::kOperation);
        m.msgId = header(msg, "Nats-Msg-Id");
        natsMsg_Destroy(msg);
        out.append(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return out;
}

int NatsStreamClient::deleteConsumers() {
    if (!m_js && !open())
        return -1;
    jsConsumerNamesList* names = nullptr;
    jsErrCode code = jsErrCode(0);
    if (js_ConsumerNames(&names, m_js, m_stream.constData(), nullptr, &code) != NATS_OK) {
        close();
        return -1;
    }
    int deleted = 0;
    for (int i = 0; i < names->Count; ++i)
        if (js_DeleteConsumer(m_js, m_stream.constData(), names->List[i], nullptr, &code) == NATS_OK)
            ++deleted;
    jsConsumerNamesList_Destroy(names);
    return deleted;
}

QString NatsStreamClient::publish(const QByteArray& subject,
                                  const QList<QPair<QByteArray, QByteArray>>& headers,
                                  const QByteArray& data) {
    if (!m_js && !open())
        return QStringLiteral("cannot connect");
    natsMsg* msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, subject.constData(), nullptr, data.constData(), int(data.size()));
    for (const auto& [key, value] : headers)
        if (s == NATS_OK)
            s = natsMsgHeader_Set(msg, key.constData(), value.constData());
    jsPubAck* ack = nullptr;
    jsErrCode code = jsErrCode(0);
    if (s == NATS_OK)
        s = js_PublishMsg(&ack, m_js, msg, nullptr, &code);
    if (ack)
        jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    return s == NATS_OK ? QString() : QString::fromUtf8(natsStatus_GetText(s));
}

QList<QByteArray> NatsStreamClient::consumerFilters() {
    QList<QByteArray> filters;
    if (!m_js && !open())
        return filters;
    jsConsumerInfoList* list = nullptr;
    jsErrCode code = jsErrCode(0);
    if (js_Consumers(&list, m_js, m_stream.constData(), nullptr, &code) != NATS_OK) {
        close();
        return filters;
    }
    for (int i = 0; i < list->Count; ++i) {
        const jsConsumerConfig* config = list->List[i]->Config;
        filters.append(config && config->FilterSubject ? QByteArray(config->FilterSubject) : QByteArray());
    }
    jsConsumerInfoList_Destroy(list);
    return filters;
}

} // namespace tw::testsupport

#include "NatsWatchList.h"

#include "engine/Engine.h"
#include "sources/nats/NatsHeaders.h"

#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLoggingCategory>

#include <nats/nats.h>

Q_DECLARE_LOGGING_CATEGORY(lcNats) // NatsPublisher.cpp

namespace tw {

QJsonObject NatsWatchList::build(const Engine& engine) {
    const QHash<QString, SourceStatus> statuses = engine.sourceStatuses();
    const QList<SourceNamespace> scopes = engine.watchedScopes();
    QStringList ids = engine.sourceIds();
    ids.sort();
    QJsonArray sources;
    for (const QString& id : std::as_const(ids)) {
        const SourceStatus status = statuses.value(id);
        QJsonArray watches;
        for (const SourceNamespace& scope : scopes)
            if (scope.sourceId == id)
                watches.append(QJsonObject{{QStringLiteral("db"), scope.ns.db},
                                           {QStringLiteral("coll"), scope.ns.coll}});
        sources.append(QJsonObject{{QStringLiteral("id"), id},
                                   {QStringLiteral("uri"), engine.sourceUri(id)},
                                   {QStringLiteral("state"), status.stateName()},
                                   {QStringLiteral("reason"), status.reason},
                                   {QStringLiteral("watches"), watches}});
    }
    return QJsonObject{{QStringLiteral("journal"), engine.journalId()}, {QStringLiteral("sources"), sources}};
}

kvStore* NatsWatchList::open(jsCtx* js, const QByteArray& stream, QString* why) {
    const QByteArray bucket = natsheaders::watchListBucket(stream);
    kvStore* kv = nullptr;
    natsStatus s = js_KeyValue(&kv, js, bucket.constData());
    if (s == NATS_NOT_FOUND) {
        kvConfig config;
        kvConfig_Init(&config);
        config.Bucket = bucket.constData();
        config.History = 1; // gateways want the latest list only
        config.StorageType = js_FileStorage;
        s = js_CreateKeyValue(&kv, js, &config);
    }
    if (s != NATS_OK) {
        *why = QStringLiteral("cannot open the key-value bucket %1: %2")
                   .arg(QString::fromUtf8(bucket), QString::fromUtf8(natsStatus_GetText(s)));
        return nullptr;
    }
    return kv;
}

bool NatsWatchList::put(kvStore* kv, const QByteArray& json, QString* why) {
    uint64_t revision = 0;
    const natsStatus s =
        kvStore_Put(&revision, kv, natsheaders::kWatchListKey, json.constData(), int(json.size()));
    if (s != NATS_OK)
        *why =
            QStringLiteral("cannot store the watch list: %1").arg(QString::fromUtf8(natsStatus_GetText(s)));
    return s == NATS_OK;
}

void NatsWatchList::Writer::reset() {
    m_json.clear();
    m_atMs = 0;
}

void NatsWatchList::Writer::put(kvStore** kv, jsCtx* js, const QByteArray& stream, const Engine& engine) {
    // At most every 250 ms: a window of 1 024 events takes about that long when
    // behind, and a change of state need not reach the gateways sooner.
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    if (now - m_atMs < 250)
        return;
    m_atMs = now;
    const QByteArray json = QJsonDocument(build(engine)).toJson(QJsonDocument::Compact);
    if (json == m_json)
        return;
    QString why;
    if (!*kv)
        *kv = open(js, stream, &why);
    if (*kv && NatsWatchList::put(*kv, json, &why))
        m_json = json;
    else if (why != m_error)
        qCWarning(lcNats).noquote() << "gateways will not see the watch list:" << why;
    m_error = why;
}

} // namespace tw

#pragma once

#include <QByteArray>
#include <QJsonObject>
#include <QString>

typedef struct __jsCtx jsCtx;
typedef struct __kvStore kvStore;

namespace tw {

class Engine;

// What an ingest tells its gateways about itself, so that their /v1/sources,
// /v1/health and the 404 for an unwatched namespace tell the truth: its sources, their
// states and what each watches, as one JSON document
//   {"journal": ID, "sources": [{"id", "uri", "state", "reason", "watches": [{"db", "coll"}]}]}
// kept under one key of a JetStream key-value bucket (natsheaders::watchListBucket()).
// The publisher puts it when it changes; a gateway source reads it into
// SourceStatus::upstream.
struct NatsWatchList {
    // From the engine's snapshots (any thread). Passwords are redacted.
    static QJsonObject build(const Engine& engine);
    // Opens the bucket of `stream`, creating it (file storage, one revision) when missing;
    // null with a message on failure.
    static kvStore* open(jsCtx* js, const QByteArray& stream, QString* why);
    static bool put(kvStore* kv, const QByteArray& json, QString* why);

    // The publisher's side: puts the list again when it changed, checked at most every
    // 250 ms. Publisher thread only.
    class Writer {
    public:
        // On every (re)connection: the next put() sends the list whatever it holds.
        void reset();
        // *kv is the bucket, opened here on first use; the caller's connection owns it
        // and destroys it with the connection. A failure is logged once per reason.
        void put(kvStore** kv, jsCtx* js, const QByteArray& stream, const Engine& engine);

    private:
        QByteArray m_json; // as last put
        qint64 m_atMs = 0;
        QString m_error;
    };
};

} // namespace tw

#pragma once

#include "sources/nats/NatsGatewaySource.h"

#include <nats/nats.h>

namespace tw {

// The gateway's libnats handles, for the files that make up NatsGatewaySource; used on
// the source's thread only.
struct NatsGatewaySource::Nats {
    natsOptions* options = nullptr;
    natsConnection* connection = nullptr;
    jsCtx* js = nullptr;
    natsSubscription* subscription = nullptr;
    kvStore* watchList = nullptr; // the ingest's watch list; null until its bucket exists

    ~Nats() {
        if (watchList)
            kvStore_Destroy(watchList);
        if (subscription) {
            natsSubscription_Unsubscribe(subscription);
            natsSubscription_Destroy(subscription);
        }
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

} // namespace tw

#pragma once

#include "http/ApiReply.h"
#include "http/EngineCalls.h"
#include "http/HttpAdapter.h"
#include "http/SseServer.h"
#include "journal/Journal.h"
#include "model/ChangeBatch.h"

#include <memory>
#include <QObject>

namespace tw {

class Engine;
class LongPolls;
class SourcesApi;
class SseStreams;
struct SseShared;

// The HTTP-thread half of SseServer: authenticates and routes requests, answers
// health, metrics and the subscription endpoints itself, and hands event streams to
// SseStreams and long polls to LongPolls, feeding both the committed batches.
// Everything here runs on the HTTP thread once SseServer has moved it there.
class HttpApi : public QObject {
    Q_OBJECT
public:
    // `engine` is not owned and outlives us.
    HttpApi(Engine* engine, const SseServer::Options& options, std::shared_ptr<SseShared> shared);
    ~HttpApi() override;

    // Before the move to the HTTP thread, so errors come back to start() at once.
    bool listen(QString* error);
    quint16 port() const;
    // On the HTTP thread once it runs.
    void initOnThread();
    // On the HTTP thread: closes every client and the listening socket.
    void shutdown();

Q_SIGNALS:
    void clientsChanged();

private:
    void handle(const HttpRequest& request, HttpResponder&& out);
    void route(const HttpRequest& request, HttpResponder&& out, const QStringList& parts);
    bool isAuthorized(const HttpRequest& request) const;
    void preflight(const HttpRequest& request, HttpResponder&& out);

    // Endpoints.
    void health(const HttpRequest& request, HttpResponder&& out);
    void metrics(const HttpRequest& request, HttpResponder&& out);
    void listSubscriptions(const HttpRequest& request, HttpResponder&& out);
    void createSubscription(const HttpRequest& request, HttpResponder&& out);
    void getSubscription(const HttpRequest& request, HttpResponder&& out, const QString& id);
    void deleteSubscription(const HttpRequest& request, HttpResponder&& out, const QString& id);
    void subscriptionEvents(const HttpRequest& request, HttpResponder&& out, const QString& id);
    void adhocStream(const HttpRequest& request, HttpResponder&& out);

    void onCommitted(const tw::CommittedBatch& batch);
    void onSubscriptionsChanged();
    // Ends the streams and the parked polls of a subscription that is gone.
    void closeClientsOf(const QString& subscriptionId);

    SseServer::Options m_options;
    std::shared_ptr<SseShared> m_shared;
    EngineCalls m_engineCalls; // every call into the engine thread goes through it
    ApiReply m_reply;
    HttpAdapter* m_http = nullptr;   // owned (child)
    JournalReader m_reader;          // this thread's replay connection, for streams and long polls
    SseStreams* m_streams = nullptr; // owned (child); deleted first, it reads m_reader
    LongPolls* m_polls = nullptr;    // owned (child); deleted first, it reads m_reader
    std::unique_ptr<SourcesApi> m_sources;
};

} // namespace tw

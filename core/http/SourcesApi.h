#pragma once

#include "engine/Subscription.h"
#include "http/HttpAdapter.h"
#include "http/SseServer.h"

#include <optional>
#include <QObject>
#include <QStringList>

namespace tw {

class ApiReply;
class EngineCalls;
class SourceControl;
struct ControlReply;

// The /v1/sources endpoints, on the HTTP thread: turns each request into a call on the
// server's SourceControl (the application session's) and its ControlReply into the
// response. Without a SourceControl (a server without an application session) they
// answer 501.
//
//   GET    /v1/sources                          list, with state and watches
//   POST   /v1/sources                          {"id", "uri", "options"} → 201
//   DELETE /v1/sources/{id}                     → 204 once stopped
//   GET    /v1/sources/{id}/namespaces          tables, collections, views
//   PUT    /v1/sources/{id}/watches/{ns}        body: watch options → 201/200 once live
//   DELETE /v1/sources/{id}/watches/{ns}        → 204
//
// It also answers, for the stream, subscription and long-poll entry points, whether a
// request names a namespace that nothing watches.
class SourcesApi {
public:
    // None of the pointers is owned; all outlive us. `context` is the HttpApi: replies
    // run on its thread and are dropped when it is gone.
    SourcesApi(const SseServer::Options& options, const EngineCalls* engineCalls, const ApiReply* reply,
               QObject* context);

    // `parts` is the path split at '/', starting "v1", "sources".
    void handle(const HttpRequest& request, HttpResponder&& out, const QStringList& parts);

    // When the server refuses unwatched namespaces (SseServer::Options::refuseUnwatched)
    // and one of `namespaces` is outside every watch, answers 404 with the namespaces
    // nothing watches and those watched, and returns true. An empty list (everything)
    // is never refused: the journal may hold its history.
    bool refuseUnwatched(const HttpRequest& request, HttpResponder& out,
                         const QList<SourceNamespace>& namespaces) const;
    // The same for a subscription by id; none (no such subscription) is left to the caller.
    bool refuseUnwatched(const HttpRequest& request, HttpResponder& out,
                         const std::optional<Subscription>& subscription) const;

private:
    void methodNotAllowed(const HttpRequest& request, HttpResponder& out, const QByteArray& allow) const;
    // Parses the body as a JSON object (empty: {} when `emptyIsObject`); false when it
    // answered 400.
    bool readBody(const HttpRequest& request, HttpResponder& out, bool emptyIsObject,
                  QJsonObject* body) const;
    // Sends `reply` on `out` (kept alive until then) with the request's CORS headers.
    std::function<void(const ControlReply&)> sender(const HttpRequest& request, HttpResponder&& out) const;

    SourceControl* m_control; // not owned; may be null
    bool m_refuseUnwatched;
    const EngineCalls* m_engineCalls; // not owned
    const ApiReply* m_reply;          // not owned
    QObject* m_context;               // not owned: the HttpApi
};

} // namespace tw

#pragma once

#include <functional>
#include <QJsonObject>
#include <QObject>
#include <QString>

namespace tw {

// One answer of the run-time control, in HTTP terms so that the HTTP API sends it as it
// is and the MCP front end maps the status to a tool result.
struct ControlReply {
    int status = 200; // HTTP semantics: 200, 201, 204, 400, 404, 409, 501, 503
    // The response body; errors: {"error": "<sentence naming what is wrong and what to
    // do>", ...}. Empty for 204.
    QJsonObject body;
};

// The run-time control of sources and watches. Implemented by the application session
// (app/SessionControl); the HTTP API (core/http/SourcesApi) and the MCP front end call
// it. Every call may be made from any thread; `done` runs on `context`'s thread, and is
// dropped when `context` is gone first. (Delete `context` on its own thread: the check
// that it is still there is made when the answer is posted.)
//
// Requests and answers are JSON objects in the shape of the HTTP API's bodies (see the
// README, "Sources and watches at run time"), so both front ends speak one language.
class SourceControl {
public:
    using Done = std::function<void(const ControlReply&)>;
    virtual ~SourceControl() = default;

    // 200 {"sources": [{"id", "uri" (password hidden), "state", "reason", "watches": [...]}]}
    virtual void listSources(QObject* context, Done done) = 0;
    // request {"id", "uri", "options": {...}} → 201 {"source": {...}}; 400 bad request or
    // URI; 409 id in use.
    virtual void addSource(const QJsonObject& request, QObject* context, Done done) = 0;
    // 204 once the source has stopped (its journaled events stay); 404 no such source.
    // With `releaseServerState` the source first drops what it keeps on the server (a
    // PostgreSQL replication slot and its publication).
    virtual void removeSource(const QString& id, bool releaseServerState, QObject* context, Done done) = 0;
    // 200 {"namespaces": [{"ns", "kind", "watched"}]}; 404 no such source.
    virtual void listNamespaces(const QString& id, QObject* context, Done done) = 0;
    // 201 (new) or 200 (was watched already) once the watch is live:
    // {"source", "ns", "live": true, "liveAt": ISO time, "seq"}; 400 bad options; 404 no
    // such source or namespace; 503 still starting after a generous wait.
    virtual void watch(const QString& id, const QString& ns, const QJsonObject& options, QObject* context,
                       Done done) = 0;
    // 204; 404 no such source, or the namespace is not watched.
    virtual void unwatch(const QString& id, const QString& ns, QObject* context, Done done) = 0;
};

} // namespace tw

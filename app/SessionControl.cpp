#include "SessionControl.h"

#include "AppSession.h"
#include "sources/SourceUri.h"
#include "WatchOptionsJson.h"

#include <memory>
#include <QJsonArray>
#include <QRegularExpression>
#include <QTimer>

namespace tw {

namespace {

bool isTableLike(const NamespaceInfo& info) {
    return info.kind == QLatin1String("table") || info.kind == QLatin1String("collection") ||
           info.kind == QLatin1String("view");
}

QJsonArray namespaceNames(const QList<NamespaceInfo>& namespaces) {
    QJsonArray names;
    for (const NamespaceInfo& info : namespaces)
        if (isTableLike(info))
            names.append(info.ns.toString());
    return names;
}

} // namespace

SessionControl::SessionControl(AppSession* session)
    : m_session(session) {
    // Same thread as the session: its signals arrive directly, after its own state changed.
    connect(session, &AppSession::namespacesListed, this, &SessionControl::onNamespacesListed);
    connect(session, &AppSession::watchReady, this, &SessionControl::onWatchReady);
    connect(session, &AppSession::watchFailed, this, &SessionControl::onWatchFailed);
    connect(session, &AppSession::watchChanged, this, &SessionControl::onWatchChanged);
    connect(session, &AppSession::connectionRemoved, this, &SessionControl::onConnectionRemoved);
    connect(session, &AppSession::sourceStatusChanged, this, &SessionControl::onSourceStatus);
}

SessionControl::~SessionControl() = default; // unanswered requests are dropped with their callers' wait

SourceControl::Done SessionControl::replyTo(QObject* context, Done done) {
    // The guard is taken on the caller's thread, where `context` lives; a reply for a
    // context deleted meanwhile is never delivered.
    // `done` (and what it holds: an HTTP responder, say) moves on with the reply, so it
    // is released on the caller's thread after it ran, never here: the session keeps an
    // empty callback. Each reply is sent once.
    QPointer<QObject> guard(context);
    return [guard, done = std::move(done)](const ControlReply& reply) mutable {
        QObject* target = guard.data();
        if (!target || !done)
            return;
        QMetaObject::invokeMethod(
            target,
            [guard, done = std::move(done), reply] {
                if (guard)
                    done(reply);
            },
            Qt::QueuedConnection);
        done = nullptr;
    };
}

ControlReply SessionControl::error(int status, const QString& message) {
    return ControlReply{status, QJsonObject{{QStringLiteral("error"), message}}};
}

void SessionControl::post(std::function<void()> work) {
    QMetaObject::invokeMethod(this, std::move(work), Qt::QueuedConnection);
}

// --- the interface: each call hops to the session's thread ---------------------------------

void SessionControl::listSources(QObject* context, Done done) {
    post([this, reply = replyTo(context, std::move(done))] {
        QJsonArray sources;
        if (m_session)
            for (const ConnectionSpec& spec : m_session->connections())
                sources.append(sourceJson(spec));
        reply(ControlReply{200, QJsonObject{{QStringLiteral("sources"), sources}}});
    });
}

void SessionControl::addSource(const QJsonObject& request, QObject* context, Done done) {
    post([this, request, reply = replyTo(context, std::move(done))] { doAddSource(request, reply); });
}

void SessionControl::removeSource(const QString& id, bool releaseServerState, QObject* context, Done done) {
    post([this, id, releaseServerState, reply = replyTo(context, std::move(done))] {
        doRemoveSource(id, releaseServerState, reply);
    });
}

void SessionControl::listNamespaces(const QString& id, QObject* context, Done done) {
    post([this, id, reply = replyTo(context, std::move(done))] { doListNamespaces(id, reply); });
}

void SessionControl::watch(const QString& id, const QString& ns, const QJsonObject& options, QObject* context,
                           Done done) {
    post([this, id, ns, options, reply = replyTo(context, std::move(done))] {
        doWatch(id, ns, options, reply);
    });
}

void SessionControl::unwatch(const QString& id, const QString& ns, QObject* context, Done done) {
    post([this, id, ns, reply = replyTo(context, std::move(done))] { doUnwatch(id, ns, reply); });
}

// --- sources -------------------------------------------------------------------------------

void SessionControl::doAddSource(const QJsonObject& request, const Done& reply) {
    if (!m_session)
        return reply(error(503, QStringLiteral("the session is shutting down")));
    for (auto it = request.begin(); it != request.end(); ++it)
        if (it.key() != QLatin1String("id") && it.key() != QLatin1String("uri") &&
            it.key() != QLatin1String("options"))
            return reply(error(400, QStringLiteral("unknown field \"%1\"; a source is {\"id\", \"uri\", "
                                                   "\"options\": {\"capture\": true|false}}")
                                        .arg(it.key())));
    // The id appears in URLs (/v1/sources/{id}) and in subscriptions: keep it plain.
    static const QRegularExpression idPattern(QStringLiteral("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"));
    const QString id = request.value(QStringLiteral("id")).toString();
    if (!idPattern.match(id).hasMatch())
        return reply(error(400, QStringLiteral("\"id\" must be 1 to 64 letters, digits, '.', '_' or '-', "
                                               "starting with a letter or digit, e.g. \"shop\"")));
    const QString uri = request.value(QStringLiteral("uri")).toString();
    if (uri.trimmed().isEmpty())
        return reply(error(400, QStringLiteral("\"uri\" is missing: give e.g. \"sqlite:/path/to/file.db\" or "
                                               "\"mongodb://host:27017\"")));
    ConnectionSpec spec;
    spec.id = id;
    spec.uri = Workspace::splitPassword(uri.trimmed(), &spec.password);
    spec.hasPassword = !spec.password.isEmpty();
    const QJsonValue optionsValue = request.value(QStringLiteral("options"));
    if (!optionsValue.isUndefined() && !optionsValue.isObject())
        return reply(error(400, QStringLiteral("\"options\" must be an object, e.g. {\"capture\": true}")));
    const QJsonObject options = optionsValue.toObject();
    for (auto it = options.begin(); it != options.end(); ++it) {
        if (it.key() != QLatin1String("capture"))
            return reply(error(400, QStringLiteral("unknown source option \"%1\"; the one source option is "
                                                   "\"capture\" (SQLite: exact before and after images)")
                                        .arg(it.key())));
        if (!it.value().isBool())
            return reply(error(400, QStringLiteral("source option \"capture\" must be true or false")));
        spec.captureMode = it.value().toBool();
    }
    if (m_session->connection(id))
        return reply(ControlReply{
            409, QJsonObject{{QStringLiteral("error"),
                              QStringLiteral("a source named \"%1\" exists already; pick another id, or "
                                             "DELETE /v1/sources/%1 first")
                                  .arg(id)}}});
    QString message;
    if (!m_session->addConnection(spec, &message))
        return reply(error(400, message));
    const std::optional<ConnectionSpec> added = m_session->connection(id);
    reply(ControlReply{201, QJsonObject{{QStringLiteral("source"), sourceJson(added ? *added : spec)}}});
}

void SessionControl::doRemoveSource(const QString& id, bool releaseServerState, const Done& reply) {
    if (!m_session || !m_session->connection(id))
        return reply(
            error(404, QStringLiteral("no source named \"%1\"; GET /v1/sources lists them").arg(id)));
    const quint64 ticket = m_nextTicket++;
    m_removals.insert(ticket, Removal{id, reply});
    m_session->removeConnection(id, releaseServerState);
    QTimer::singleShot(m_removeTimeoutMs, this, [this, ticket] {
        const Removal removal = m_removals.take(ticket);
        if (removal.reply)
            removal.reply(error(503, QStringLiteral("the source \"%1\" is removed but still stopping; GET "
                                                    "/v1/sources no longer lists it")
                                         .arg(removal.id)));
    });
}

void SessionControl::onConnectionRemoved(const QString& id) {
    m_live.remove(id);
    m_statuses.remove(id);
    for (auto it = m_removals.begin(); it != m_removals.end();) {
        if (it->id != id) {
            ++it;
            continue;
        }
        it->reply(ControlReply{204, {}});
        it = m_removals.erase(it);
    }
    for (auto it = m_watchWaiters.begin(); it != m_watchWaiters.end();) {
        if (it->id != id) {
            ++it;
            continue;
        }
        it->reply(error(404, QStringLiteral("the source \"%1\" was removed before the watch of %2 went live")
                                 .arg(id, it->ns.toString())));
        it = m_watchWaiters.erase(it);
    }
}

void SessionControl::onSourceStatus(const QString& id, const SourceStatus& status) {
    m_statuses.insert(id, status);
}

QJsonObject SessionControl::sourceJson(const ConnectionSpec& spec) const {
    SourceStatus status = m_statuses.value(spec.id);
    if (m_session && !m_statuses.contains(spec.id))
        status = m_session->engine()->sourceStatuses().value(spec.id);
    QJsonArray watches;
    for (const Namespace& ns : spec.watches) {
        QJsonObject watch = liveJson(spec.id, ns);
        watch.remove(QStringLiteral("source"));
        const QJsonObject options = spec.watchOptions.value(ns.toString());
        if (!options.isEmpty())
            watch.insert(QStringLiteral("options"), options);
        watches.append(watch);
    }
    QJsonObject o{{QStringLiteral("id"), spec.id},
                  {QStringLiteral("uri"), Source::redactUri(spec.uri)},
                  {QStringLiteral("state"), status.stateName().toLower()},
                  {QStringLiteral("reason"), status.reason},
                  {QStringLiteral("watches"), watches}};
    if (spec.captureMode)
        o.insert(QStringLiteral("options"), QJsonObject{{QStringLiteral("capture"), true}});
    if (!status.upstream.isEmpty())
        o.insert(QStringLiteral("ingest"), status.upstream); // a gateway: what its ingest watches
    return o;
}

QJsonObject SessionControl::liveJson(const QString& id, const Namespace& ns) const {
    QJsonObject o{{QStringLiteral("source"), id}, {QStringLiteral("ns"), ns.toString()}};
    const auto live = m_live.value(id).constFind(ns.toString());
    const bool isLive = live != m_live.value(id).constEnd();
    o.insert(QStringLiteral("live"), isLive);
    if (isLive) {
        o.insert(QStringLiteral("liveAt"), live->at.toString(Qt::ISODateWithMs));
        o.insert(QStringLiteral("seq"), live->seq);
    }
    return o;
}

// --- namespaces --------------------------------------------------------------------------------

void SessionControl::list(const QString& id, const QString& db,
                          std::function<void(const QList<NamespaceInfo>&, const QString&)> then) {
    const quint64 ticket = m_nextTicket++;
    m_listings.insert(ticket, Listing{id, db, std::move(then)});
    m_session->listNamespaces(id, db);
    QTimer::singleShot(m_listTimeoutMs, this, [this, ticket, id] {
        const Listing listing = m_listings.take(ticket);
        if (listing.then)
            listing.then({}, QStringLiteral("the source \"%1\" did not answer within %2 s")
                                 .arg(id)
                                 .arg(m_listTimeoutMs / 1000));
    });
}

void SessionControl::onNamespacesListed(const QString& id, const QString& db,
                                        const QList<NamespaceInfo>& namespaces, const QString& message) {
    // Every request for this listing is answered by it, whoever asked (the window too).
    QList<Listing> answered;
    for (auto it = m_listings.begin(); it != m_listings.end();) {
        if (it->id == id && it->db == db) {
            answered.append(*it);
            it = m_listings.erase(it);
        } else {
            ++it;
        }
    }
    for (const Listing& listing : std::as_const(answered))
        listing.then(namespaces, message);
}

void SessionControl::collectNamespaces(
    const QString& id, std::function<void(const QList<NamespaceInfo>&, const QString&)> then) {
    // The top level names the databases (SQLite: "main"); their tables come one level down.
    list(id, QString(), [this, id, then](const QList<NamespaceInfo>& top, const QString& message) {
        QStringList databases;
        for (const NamespaceInfo& info : top)
            if (info.kind == QLatin1String("database"))
                databases.append(info.ns.db);
        if (!message.isEmpty() || databases.isEmpty() || !m_session)
            return then(top, message);
        struct Gathered {
            int remaining = 0;
            QList<NamespaceInfo> found;
            QString error;
        };
        auto gathered = std::make_shared<Gathered>();
        gathered->remaining = int(databases.size());
        for (const QString& db : std::as_const(databases))
            list(id, db, [gathered, then](const QList<NamespaceInfo>& namespaces, const QString& error) {
                gathered->found.append(namespaces);
                if (gathered->error.isEmpty())
                    gathered->error = error;
                if (--gathered->remaining == 0)
                    then(gathered->found, gathered->error);
            });
    });
}

void SessionControl::doListNamespaces(const QString& id, const Done& reply) {
    if (!m_session || !m_session->connection(id))
        return reply(
            error(404, QStringLiteral("no source named \"%1\"; GET /v1/sources lists them").arg(id)));
    collectNamespaces(id, [this, id, reply](const QList<NamespaceInfo>& namespaces, const QString& message) {
        const std::optional<ConnectionSpec> spec = m_session ? m_session->connection(id) : std::nullopt;
        if (!spec)
            return reply(error(404, QStringLiteral("the source \"%1\" was removed").arg(id)));
        if (!message.isEmpty())
            return reply(error(503, QStringLiteral("cannot list the namespaces of \"%1\": %2; try again once "
                                                   "the source is up (GET /v1/sources shows its state)")
                                        .arg(id, message)));
        QJsonArray list;
        for (const NamespaceInfo& info : namespaces)
            if (isTableLike(info))
                list.append(QJsonObject{{QStringLiteral("ns"), info.ns.toString()},
                                        {QStringLiteral("kind"), info.kind},
                                        {QStringLiteral("watched"), spec->watches.contains(info.ns)}});
        reply(ControlReply{200, QJsonObject{{QStringLiteral("namespaces"), list}}});
    });
}

// --- watches -----------------------------------------------------------------------------------

Namespace SessionControl::parseNamespace(const ConnectionSpec& spec, const QString& text) const {
    if (SourceUri(spec.uri).isSqlite() && !text.contains(QLatin1Char('.')))
        return Namespace{QStringLiteral("main"), text};
    return Namespace::fromString(text);
}

void SessionControl::doWatch(const QString& id, const QString& nsText, const QJsonObject& options,
                             const Done& reply) {
    const std::optional<ConnectionSpec> spec = m_session ? m_session->connection(id) : std::nullopt;
    if (!spec)
        return reply(
            error(404, QStringLiteral("no source named \"%1\"; GET /v1/sources lists them").arg(id)));
    QString message;
    if (!WatchOptionsJson::isValid(options, &message))
        return reply(error(400, message));
    const Namespace ns = parseNamespace(*spec, nsText);
    // A database or deployment scope (MongoDB) covers collections that may not exist
    // yet: only a named table or collection must be there.
    if (ns.coll.isEmpty())
        return startWatch(id, ns, options, reply);
    list(id, ns.db, [this, id, ns, options, reply](const QList<NamespaceInfo>& namespaces, const QString& e) {
        if (!m_session || !m_session->connection(id))
            return reply(error(404, QStringLiteral("the source \"%1\" was removed").arg(id)));
        if (!e.isEmpty())
            return reply(error(503, QStringLiteral("cannot check that \"%1\" has %2: %3; try again once the "
                                                   "source is up (GET /v1/sources shows its state)")
                                        .arg(id, ns.toString(), e)));
        const bool exists = std::any_of(namespaces.begin(), namespaces.end(), [&](const NamespaceInfo& info) {
            return info.ns == ns && isTableLike(info);
        });
        if (!exists)
            return reply(ControlReply{
                404, QJsonObject{{QStringLiteral("error"),
                                  QStringLiteral("the source \"%1\" has no %2; pick one of \"namespaces\"")
                                      .arg(id, ns.toString())},
                                 {QStringLiteral("namespaces"), namespaceNames(namespaces)}}});
        startWatch(id, ns, options, reply);
    });
}

void SessionControl::startWatch(const QString& id, const Namespace& ns, const QJsonObject& options,
                                const Done& reply) {
    const std::optional<ConnectionSpec> spec = m_session->connection(id);
    const bool watchedAlready = spec && spec->watches.contains(ns);
    m_session->watch(id, ns, options);
    // A live watch stays live when it is asked again: a source does not report it
    // ready twice.
    if (watchedAlready && m_live.value(id).contains(ns.toString()))
        return reply(ControlReply{200, liveJson(id, ns)});
    const quint64 ticket = m_nextTicket++;
    m_watchWaiters.insert(ticket, WatchWaiter{id, ns, watchedAlready ? 200 : 201, reply});
    QTimer::singleShot(m_watchTimeoutMs, this, [this, ticket] {
        const WatchWaiter waiter = m_watchWaiters.take(ticket);
        if (waiter.reply)
            waiter.reply(
                error(503, QStringLiteral("the watch of %1 in \"%2\" is still starting after %3 s; GET "
                                          "/v1/sources shows when it is live")
                               .arg(waiter.ns.toString(), waiter.id)
                               .arg(m_watchTimeoutMs / 1000)));
    });
}

void SessionControl::onWatchReady(const QString& id, const Namespace& ns) {
    if (!m_session)
        return;
    m_live[id].insert(ns.toString(),
                      Live{QDateTime::currentDateTimeUtc(), m_session->engine()->lastCommittedSeq()});
    for (auto it = m_watchWaiters.begin(); it != m_watchWaiters.end();) {
        if (it->id != id || it->ns != ns) {
            ++it;
            continue;
        }
        it->reply(ControlReply{it->status, liveJson(id, ns)});
        it = m_watchWaiters.erase(it);
    }
}

void SessionControl::onWatchFailed(const QString& id, const Namespace& ns, const QString& message) {
    if (m_live.contains(id))
        m_live[id].remove(ns.toString());
    for (auto it = m_watchWaiters.begin(); it != m_watchWaiters.end();) {
        if (it->id != id || it->ns != ns) {
            ++it;
            continue;
        }
        it->reply(error(400, message));
        it = m_watchWaiters.erase(it);
    }
}

void SessionControl::onWatchChanged(const QString& id, const Namespace& ns, bool watched) {
    // A waiter stays: a failure answers it (watchFailed follows), a stop lets it time out.
    if (!watched && m_live.contains(id))
        m_live[id].remove(ns.toString());
}

void SessionControl::doUnwatch(const QString& id, const QString& nsText, const Done& reply) {
    const std::optional<ConnectionSpec> spec = m_session ? m_session->connection(id) : std::nullopt;
    if (!spec)
        return reply(
            error(404, QStringLiteral("no source named \"%1\"; GET /v1/sources lists them").arg(id)));
    const Namespace ns = parseNamespace(*spec, nsText);
    if (!spec->watches.contains(ns)) {
        QJsonArray watched;
        for (const Namespace& w : spec->watches)
            watched.append(w.toString());
        return reply(ControlReply{
            404, QJsonObject{{QStringLiteral("error"),
                              QStringLiteral("the source \"%1\" does not watch %2").arg(id, ns.toString())},
                             {QStringLiteral("watches"), watched}}});
    }
    m_session->unwatch(id, ns);
    reply(ControlReply{204, {}});
}

} // namespace tw

#pragma once

#include "engine/Subscription.h"
#include "model/Namespace.h"

#include <QByteArray>
#include <QHash>
#include <QJsonObject>
#include <QList>
#include <QString>

namespace tw {

// A connection as the workspace stores it. `uri` never carries the password: that
// lives in the system keychain (or only in memory when there is none).
struct ConnectionSpec {
    QString id;
    QString uri;      // password removed
    QString password; // in memory only; never serialised
    bool hasPassword = false;
    bool demo = false; // the built-in demo: the session also runs its writer
    bool captureMode = false;
    QList<Namespace> watches;
    // The options of the watches that have some, by Namespace::toString(), as
    // WatchOptionsJson spells them; a watch without an entry uses the defaults (and
    // captureMode above).
    QHash<QString, QJsonObject> watchOptions;

    QString uriWithPassword() const;
};

// Everything a person set up: connections, what they watch, subscriptions and the
// window layout. Saved as JSON (format below); loading never fails half-way: it
// returns false with a message and leaves *out untouched.
//
// {"format": "tidewatch-workspace", "version": 1,
//  "connections": [{"id", "uri", "hasPassword", "demo", "captureMode",
//                   "watches": ["main.orders", {"ns": "main.items", "options": {"capture": true}}]}],
//  "subscriptions": [<Subscription::toJson()>], "currentSubscription": "…",
//  "layout": {"state": "<base64>", "geometry": "<base64>"}}
struct Workspace {
    QList<ConnectionSpec> connections;
    SubscriptionList subscriptions;
    QString currentSubscription;
    QByteArray windowState;
    QByteArray geometry;

    QByteArray toJson() const;
    static bool fromJson(const QByteArray& json, Workspace* out, QString* error);
    bool save(const QString& path, QString* error) const;
    static bool load(const QString& path, Workspace* out, QString* error);

    // "scheme://user:secret@host" → ("scheme://user@host", "secret"); also strips a
    // password=… query parameter. URIs without a password come back unchanged.
    static QString splitPassword(const QString& uri, QString* password);
    static QString insertPassword(const QString& uri, const QString& password);
    static QString defaultPath(); // <data dir>/workspace.json
};

} // namespace tw

#include "Workspace.h"

#include "config/DataDir.h"
#include "sources/SourceUri.h"

#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSaveFile>

namespace tw {

QString ConnectionSpec::uriWithPassword() const {
    return Workspace::insertPassword(uri, password);
}

QString Workspace::splitPassword(const QString& uri, QString* password) {
    return SourceUri(uri).withoutPassword(password);
}

QString Workspace::insertPassword(const QString& uri, const QString& password) {
    return SourceUri(uri).withPassword(password);
}

QString Workspace::defaultPath() {
    return QDir(defaultDataDir()).filePath(QStringLiteral("workspace.json"));
}

QByteArray Workspace::toJson() const {
    QJsonObject root;
    root.insert(QStringLiteral("format"), QStringLiteral("tidewatch-workspace"));
    root.insert(QStringLiteral("version"), 1);
    QJsonArray connectionArray;
    for (const ConnectionSpec& c : connections) {
        QJsonObject o;
        o.insert(QStringLiteral("id"), c.id);
        QString ignored;
        o.insert(QStringLiteral("uri"), splitPassword(c.uri, &ignored)); // belt and braces
        if (c.hasPassword || !c.password.isEmpty())
            o.insert(QStringLiteral("hasPassword"), true);
        if (c.demo)
            o.insert(QStringLiteral("demo"), true);
        if (c.captureMode)
            o.insert(QStringLiteral("captureMode"), true);
        QJsonArray watches;
        for (const Namespace& ns : c.watches) {
            // A watch without options stays a plain string, as older versions wrote it.
            const QJsonObject options = c.watchOptions.value(ns.toString());
            if (options.isEmpty())
                watches.append(ns.toString());
            else
                watches.append(
                    QJsonObject{{QStringLiteral("ns"), ns.toString()}, {QStringLiteral("options"), options}});
        }
        o.insert(QStringLiteral("watches"), watches);
        connectionArray.append(o);
    }
    root.insert(QStringLiteral("connections"), connectionArray);
    QJsonArray subscriptionArray;
    for (const Subscription& s : subscriptions)
        subscriptionArray.append(QJsonDocument::fromJson(s.toJson()).object());
    root.insert(QStringLiteral("subscriptions"), subscriptionArray);
    root.insert(QStringLiteral("currentSubscription"), currentSubscription);
    QJsonObject layout;
    layout.insert(QStringLiteral("state"), QString::fromLatin1(windowState.toBase64()));
    layout.insert(QStringLiteral("geometry"), QString::fromLatin1(geometry.toBase64()));
    root.insert(QStringLiteral("layout"), layout);
    return QJsonDocument(root).toJson(QJsonDocument::Indented);
}

bool Workspace::fromJson(const QByteArray& json, Workspace* out, QString* error) {
    const auto fail = [error](const QString& message) {
        if (error)
            *error = message;
        return false;
    };
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(json, &parseError);
    if (parseError.error != QJsonParseError::NoError)
        return fail(
            QObject::tr("not JSON (offset %1: %2)").arg(parseError.offset).arg(parseError.errorString()));
    const QJsonObject root = document.object();
    if (root.value(QStringLiteral("format")).toString() != QLatin1String("tidewatch-workspace"))
        return fail(QObject::tr("not a Tidewatch workspace (no \"format\": \"tidewatch-workspace\")"));
    if (root.value(QStringLiteral("version")).toInt() > 1)
        return fail(QObject::tr("written by a newer Tidewatch (version %1)")
                        .arg(root.value(QStringLiteral("version")).toInt()));
    Workspace w;
    const QJsonArray connectionArray = root.value(QStringLiteral("connections")).toArray();
    for (const QJsonValue& value : connectionArray) {
        const QJsonObject o = value.toObject();
        ConnectionSpec c;
        c.id = o.value(QStringLiteral("id")).toString();
        c.uri = o.value(QStringLiteral("uri")).toString();
        if (c.id.isEmpty() || c.uri.isEmpty())
            return fail(QObject::tr("connection %1 has no id or no uri").arg(w.connections.size() + 1));
        c.hasPassword = o.value(QStringLiteral("hasPassword")).toBool();
        c.demo = o.value(QStringLiteral("demo")).toBool();
        c.captureMode = o.value(QStringLiteral("captureMode")).toBool();
        const QJsonArray watches = o.value(QStringLiteral("watches")).toArray();
        for (const QJsonValue& watch : watches) {
            if (!watch.isObject()) {
                c.watches.append(Namespace::fromString(watch.toString()));
                continue;
            }
            // "" is a MongoDB deployment watch: only a missing "ns" is wrong.
            const QString ns = watch.toObject().value(QStringLiteral("ns")).toString();
            if (!watch.toObject().value(QStringLiteral("ns")).isString())
                return fail(QObject::tr("connection \"%1\": a watch has no \"ns\"").arg(c.id));
            c.watches.append(Namespace::fromString(ns));
            const QJsonObject options = watch.toObject().value(QStringLiteral("options")).toObject();
            if (!options.isEmpty())
                c.watchOptions.insert(ns, options);
        }
        w.connections.append(c);
    }
    const QJsonArray subscriptionArray = root.value(QStringLiteral("subscriptions")).toArray();
    for (const QJsonValue& value : subscriptionArray) {
        QString message;
        const Subscription s =
            Subscription::fromJson(QJsonDocument(value.toObject()).toJson(QJsonDocument::Compact), &message);
        if (s.id.isEmpty())
            return fail(QObject::tr("subscription %1: %2").arg(w.subscriptions.size() + 1).arg(message));
        w.subscriptions.append(s);
    }
    w.currentSubscription = root.value(QStringLiteral("currentSubscription")).toString();
    const QJsonObject layout = root.value(QStringLiteral("layout")).toObject();
    w.windowState = QByteArray::fromBase64(layout.value(QStringLiteral("state")).toString().toLatin1());
    w.geometry = QByteArray::fromBase64(layout.value(QStringLiteral("geometry")).toString().toLatin1());
    *out = w;
    return true;
}

bool Workspace::save(const QString& path, QString* error) const {
    QDir().mkpath(QFileInfo(path).absolutePath());
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly)) {
        if (error)
            *error = QObject::tr("Cannot write %1: %2").arg(path, file.errorString());
        return false;
    }
    file.write(toJson());
    if (!file.commit()) {
        if (error)
            *error = QObject::tr("Cannot write %1: %2").arg(path, file.errorString());
        return false;
    }
    return true;
}

bool Workspace::load(const QString& path, Workspace* out, QString* error) {
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        if (error)
            *error = QObject::tr("Cannot read %1: %2").arg(path, file.errorString());
        return false;
    }
    QString message;
    if (!fromJson(file.readAll(), out, &message)) {
        if (error)
            *error = QObject::tr("%1: %2").arg(path, message);
        return false;
    }
    return true;
}

} // namespace tw

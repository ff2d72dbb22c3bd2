#include "SourceReading.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

namespace tw {

namespace {

QJsonObject nsObject(const Namespace& ns) {
    return QJsonObject{{QStringLiteral("db"), ns.db}, {QStringLiteral("coll"), ns.coll}};
}

Namespace nsOf(const QJsonObject& o) {
    return Namespace{o.value(QLatin1String("db")).toString(), o.value(QLatin1String("coll")).toString()};
}

} // namespace

QByteArray SourceReading::toJson(const QList<ScopeReading>& scopes) {
    QJsonArray list;
    for (const ScopeReading& scope : scopes) {
        QJsonObject entry = nsObject(scope.scope);
        QJsonArray readers;
        for (const WatchOptions::Reader& r : scope.readers) {
            QJsonObject reader = nsObject(r.ns);
            // As text: a JSON object would lose the key order, and the filter is
            // compared with a subscription's byte for byte.
            reader.insert(QStringLiteral("filter"),
                          QString::fromUtf8(r.filter.isAbsent()
                                                ? QByteArrayLiteral("{}")
                                                : r.filter.toJson(Bson::JsonMode::Canonical)));
            reader.insert(QStringLiteral("all"), r.matchesEverything);
            reader.insert(QStringLiteral("schemaOnly"), r.schemaOnly);
            readers.append(reader);
        }
        entry.insert(QStringLiteral("readers"), readers);
        if (scope.anySource)
            entry.insert(QStringLiteral("anySource"), true);
        list.append(entry);
    }
    return QJsonDocument(list).toJson(QJsonDocument::Compact);
}

bool SourceReading::fromJson(QByteArrayView json, QList<ScopeReading>* scopes) {
    QJsonParseError error;
    const QJsonDocument doc = QJsonDocument::fromJson(json.toByteArray(), &error);
    if (error.error != QJsonParseError::NoError || !doc.isArray())
        return false;
    scopes->clear();
    for (const QJsonValue& value : doc.array()) {
        const QJsonObject entry = value.toObject();
        ScopeReading scope{nsOf(entry), {}, entry.value(QLatin1String("anySource")).toBool()};
        for (const QJsonValue& rv : entry.value(QLatin1String("readers")).toArray()) {
            const QJsonObject r = rv.toObject();
            QString why;
            const Bson filter = Bson::fromJson(r.value(QLatin1String("filter")).toString().toUtf8(), &why);
            if (!why.isEmpty())
                return false;
            scope.readers.append(WatchOptions::Reader{nsOf(r), filter, r.value(QLatin1String("all")).toBool(),
                                                      r.value(QLatin1String("schemaOnly")).toBool()});
        }
        scopes->append(scope);
    }
    return true;
}

} // namespace tw

#include "Subscription.h"

#include "filter/QueryJson.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonParseError>

namespace tw {

QByteArray Subscription::toJson() const {
    QJsonObject envelope;
    envelope.insert(QStringLiteral("id"), id);
    envelope.insert(QStringLiteral("name"), name);
    QJsonArray scopes;
    for (const SourceNamespace& scope : namespaces) {
        QJsonObject entry;
        entry.insert(QStringLiteral("source"), scope.sourceId);
        entry.insert(QStringLiteral("ns"), scope.ns.toString());
        scopes.append(entry);
    }
    envelope.insert(QStringLiteral("namespaces"), scopes);
    if (fieldProjection.isNull())
        envelope.insert(QStringLiteral("projection"),
                        projection == Projection::KeysOnly ? QStringLiteral("keys") : QStringLiteral("full"));
    if (!event.isDefault())
        envelope.insert(QStringLiteral("event"), event.text());
    if (created.isValid())
        envelope.insert(QStringLiteral("created"), created.toUTC().toString(Qt::ISODateWithMs));
    if (!persistent)
        envelope.insert(QStringLiteral("persistent"), false);
    if (changes != Changes::All)
        envelope.insert(QStringLiteral("changes"), changesName(changes));
    if (!options.isEmpty())
        envelope.insert(QStringLiteral("options"), options);

    // The filter is spliced in as text: a QJsonObject sorts keys, and the order of a
    // literal sub-document is part of its value ({"a": {"x": 1, "y": 2}} is not
    // {"a": {"y": 2, "x": 1}}).
    QByteArray text = QJsonDocument(envelope).toJson(QJsonDocument::Compact);
    text.chop(1); // the closing brace; the envelope always has fields, so a comma follows
    text += ",\"filter\":";
    if (filter.isValid()) {
        text += filter.json();
    } else {
        // Kept as the text the person typed, so that it can be shown and corrected.
        const QJsonArray quoted{QString::fromUtf8(filter.json())};
        const QByteArray array = QJsonDocument(quoted).toJson(QJsonDocument::Compact);
        text += array.mid(1, array.size() - 2);
    }
    if (!fieldProjection.isNull()) {
        // Spliced like the filter: the paths keep the order they were written in.
        text += ",\"projection\":";
        text += fieldProjection.json();
    }
    text += '}';
    return text;
}

EventShape Subscription::shape(bool canonical) const {
    tw::Projection applied = fieldProjection;
    if (applied.isNull() && projection == Projection::KeysOnly)
        applied = tw::Projection::keysOnly();
    return EventShape(applied, event, canonical);
}

QByteArray Subscription::projectionJson() const {
    if (!fieldProjection.isNull())
        return fieldProjection.json();
    return projection == Projection::KeysOnly ? QByteArrayLiteral("keys") : QByteArrayLiteral("full");
}

bool Subscription::setProjection(QByteArrayView text, QString* error) {
    const QByteArray trimmed = text.toByteArray().trimmed();
    if (trimmed.isEmpty() || trimmed == "full" || trimmed == "keys") {
        projection = trimmed == "keys" ? Projection::KeysOnly : Projection::FullDocument;
        fieldProjection = {};
        return true;
    }
    QString projectionError;
    tw::Projection compiled = tw::Projection::fromJson(trimmed, &projectionError);
    if (!projectionError.isEmpty()) {
        if (error)
            *error = projectionError;
        return false;
    }
    projection = Projection::FullDocument;
    fieldProjection = compiled;
    return true;
}

QString Subscription::changesName(Changes changes) {
    switch (changes) {
    case Changes::Data:
        return QStringLiteral("data");
    case Changes::Schema:
        return QStringLiteral("schema");
    case Changes::All:
        break;
    }
    return QStringLiteral("all");
}

std::optional<Subscription::Changes> Subscription::changesFromName(const QString& name) {
    for (const Changes changes : {Changes::All, Changes::Data, Changes::Schema})
        if (name == changesName(changes))
            return changes;
    return std::nullopt;
}

static Subscription failed(QString* error, const QString& message) {
    if (error)
        *error = message;
    return {};
}

Subscription Subscription::fromJson(QByteArrayView json, QString* error) {
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(json.toByteArray(), &parseError);
    if (parseError.error != QJsonParseError::NoError)
        return failed(error, QStringLiteral("JSON syntax error at offset %1: %2")
                                 .arg(parseError.offset)
                                 .arg(parseError.errorString()));
    if (!document.isObject())
        return failed(error, QStringLiteral("a subscription must be a JSON object"));
    const QJsonObject object = document.object();

    Subscription s;
    const auto readString = [&](const QJsonObject& from, const QString& key, const QString& field,
                                QString* out) -> bool {
        const QJsonValue value = from.value(key);
        if (value.isUndefined() || value.isNull())
            return true;
        if (!value.isString()) {
            if (error)
                *error = QStringLiteral("%1: must be a string").arg(field);
            return false;
        }
        *out = value.toString();
        return true;
    };
    if (!readString(object, QStringLiteral("id"), QStringLiteral("id"), &s.id) ||
        !readString(object, QStringLiteral("name"), QStringLiteral("name"), &s.name))
        return {};

    const QJsonValue scopes = object.value(QStringLiteral("namespaces"));
    if (!scopes.isUndefined() && !scopes.isNull()) {
        if (!scopes.isArray())
            return failed(error,
                          QStringLiteral("namespaces: must be an array of {\"source\", \"ns\"} objects"));
        const QJsonArray list = scopes.toArray();
        for (qsizetype i = 0; i < list.size(); ++i) {
            const QString field = QStringLiteral("namespaces[%1]").arg(i);
            if (!list.at(i).isObject())
                return failed(error,
                              QStringLiteral("%1: must be an object like {\"source\": \"demo\", \"ns\": "
                                             "\"main.orders\"}")
                                  .arg(field));
            const QJsonObject entry = list.at(i).toObject();
            SourceNamespace scope;
            QString ns;
            if (!readString(entry, QStringLiteral("source"), field + QStringLiteral(".source"),
                            &scope.sourceId) ||
                !readString(entry, QStringLiteral("ns"), field + QStringLiteral(".ns"), &ns))
                return {};
            scope.ns = Namespace::fromString(ns);
            s.namespaces.append(scope);
        }
    }

    const QJsonValue projection = object.value(QStringLiteral("projection"));
    if (projection.isObject()) {
        // From the text, like the filter below: the paths keep their order and types.
        Bson envelope;
        QString projectionError;
        if (!parseQueryJson(json, &envelope, &projectionError))
            return failed(error, QStringLiteral("projection: %1").arg(projectionError));
        bson_t view;
        bson_iter_t it;
        if (envelope.view(&view) && bson_iter_init_find(&it, &view, "projection"))
            s.fieldProjection = tw::Projection::fromBson(copyDocument(&it), &projectionError);
        if (!projectionError.isEmpty())
            return failed(error, projectionError);
    } else if (projection.isString()) {
        const QString name = projection.toString();
        if (name == QLatin1String("keys"))
            s.projection = Projection::KeysOnly;
        else if (name.isEmpty() || name == QLatin1String("full"))
            s.projection = Projection::FullDocument;
        else
            return failed(error,
                          QStringLiteral("projection: must be \"full\" or \"keys\", not \"%1\"").arg(name));
    } else if (!projection.isUndefined() && !projection.isNull()) {
        return failed(error, QStringLiteral("projection: must be \"full\", \"keys\" or a projection object "
                                            "such as {\"documentKey\": 1}"));
    }

    QString eventText;
    if (!readString(object, QStringLiteral("event"), QStringLiteral("event"), &eventText))
        return {};
    QString eventError;
    s.event = EventTemplate::compile(eventText, &eventError);
    if (!eventError.isEmpty())
        return failed(error, eventError);

    QString created;
    if (!readString(object, QStringLiteral("created"), QStringLiteral("created"), &created))
        return {};
    if (!created.isEmpty()) {
        s.created = QDateTime::fromString(created, Qt::ISODateWithMs);
        if (!s.created.isValid())
            return failed(error, QStringLiteral("created: \"%1\" is not an ISO 8601 date").arg(created));
    }

    const QJsonValue persistent = object.value(QStringLiteral("persistent"));
    if (!persistent.isUndefined() && !persistent.isNull()) {
        if (!persistent.isBool())
            return failed(error, QStringLiteral("persistent: must be true or false"));
        s.persistent = persistent.toBool();
    }

    QString changes;
    if (!readString(object, QStringLiteral("changes"), QStringLiteral("changes"), &changes))
        return {};
    if (!changes.isEmpty()) {
        const std::optional<Changes> kind = changesFromName(changes);
        if (!kind)
            return failed(
                error,
                QStringLiteral("changes: must be \"all\", \"data\" or \"schema\", not \"%1\"").arg(changes));
        s.changes = *kind;
    }

    const QJsonValue options = object.value(QStringLiteral("options"));
    if (!options.isUndefined() && !options.isNull()) {
        if (!options.isObject())
            return failed(error, QStringLiteral("options: must be an object"));
        s.options = options.toObject();
    }

    const QJsonValue filter = object.value(QStringLiteral("filter"));
    QString filterError;
    if (filter.isString()) {
        s.filter = Filter::compile(filter.toString().toUtf8(), &filterError);
    } else if (filter.isObject()) {
        // Read the filter again from the text, not from the QJsonObject: that one has
        // sorted the keys and turned {"$numberLong": …} values into plain numbers.
        Bson envelope;
        if (!parseQueryJson(json, &envelope, &filterError))
            return failed(error, QStringLiteral("filter: %1").arg(filterError));
        bson_t view;
        bson_iter_t it;
        BsonBuilder wrapped;
        if (envelope.view(&view) && bson_iter_init_find(&it, &view, "filter") &&
            BSON_ITER_HOLDS_DOCUMENT(&it)) {
            uint32_t len = 0;
            const uint8_t* data = nullptr;
            bson_iter_document(&it, &len, &data);
            s.filter = Filter::fromBson(
                Bson::fromRaw(QByteArray(reinterpret_cast<const char*>(data), qsizetype(len))), &filterError);
        }
    } else if (!filter.isUndefined() && !filter.isNull()) {
        return failed(error, QStringLiteral("filter: must be a query object"));
    }
    if (!s.filter.isValid())
        return failed(error, QStringLiteral("filter: %1").arg(filterError));
    if (error)
        error->clear();
    return s;
}

} // namespace tw

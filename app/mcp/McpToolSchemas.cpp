#include "McpToolSchemas.h"

#include <QJsonDocument>
#include <QStringList>

namespace tw::mcp::McpToolSchemas {

namespace {

// JSON Schema 2020-12, the dialect MCP 2025-11-25 names as the default.
const char* const kTools = R"json([
{
  "name": "subscribe_changes",
  "title": "Subscribe to database changes",
  "description": "Creates a persistent subscription to the changes Tidewatch journals (it survives a restart). Poll it with poll_changes, starting with the poll_token returned here.",
  "inputSchema": {
    "type": "object",
    "properties": {
      "resource_type": {"type": "string", "enum": ["documents", "collections", "all"], "default": "all",
        "description": "documents: data changes (insert, update, replace, delete); collections: schema changes (create, drop, rename, index changes); all: both"},
      "filters": {"type": "object",
        "description": "A MongoDB query over the change event (e.g. {\"operationType\": \"insert\", \"fullDocument.status\": \"paid\"}), or {\"collection_id\": \"orders\"} (\"source/namespace\" to name the source) for one namespace; both may be combined"},
      "options": {"type": "object", "additionalProperties": false, "properties": {
        "polling_interval": {"type": "number", "minimum": 0.1, "maximum": 3600, "default": 5,
          "description": "Seconds between polls the client should keep to"},
        "include_data": {"type": "boolean", "default": true,
          "description": "Give old_data and new_data (the documents before and after) with each change"},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100,
          "description": "Most changes one poll_changes returns"},
        "projection": {"type": ["string", "object"],
          "description": "\"full\" (default) or \"keys\" (no documents), or a projection of the event's fields"}
      }}
    },
    "additionalProperties": false
  },
  "outputSchema": {
    "type": "object",
    "properties": {
      "subscription_id": {"type": "string"},
      "poll_token": {"type": "string"},
      "polling_interval": {"type": "number"}
    },
    "required": ["subscription_id", "poll_token", "polling_interval"]
  }
},
{
  "name": "poll_changes",
  "title": "Poll a subscription for changes",
  "description": "Returns the changes after poll_token, oldest first, each once. Pass the returned poll_token to the next call; with timeout it waits up to that many seconds for a change. A change of type \"gap\" says history was removed by retention: re-read what you track.",
  "inputSchema": {
    "type": "object",
    "properties": {
      "subscription_id": {"type": "string"},
      "poll_token": {"type": "string", "description": "From the previous poll_changes or from subscribe_changes; absent: from the subscription's start"},
      "timeout": {"type": "number", "minimum": 0, "maximum": 300, "default": 0,
        "description": "Seconds to wait for a change when none is waiting (long poll)"}
    },
    "required": ["subscription_id"],
    "additionalProperties": false
  },
  "outputSchema": {
    "type": "object",
    "properties": {
      "changes": {"type": "array", "items": {"type": "object", "properties": {
        "type": {"type": "string"},
        "resource_type": {"type": "string"},
        "resource_id": {"type": "string"},
        "version": {"type": "integer"},
        "timestamp": {"type": ["string", "null"]},
        "old_data": {"type": ["object", "null"]},
        "new_data": {"type": ["object", "null"]},
        "event": {"type": "object"}
      }, "required": ["type", "resource_type", "resource_id", "version", "event"]}},
      "poll_token": {"type": "string"},
      "has_more": {"type": "boolean"},
      "subscription_active": {"type": "boolean"}
    },
    "required": ["changes", "poll_token", "has_more", "subscription_active"]
  }
},
{
  "name": "unsubscribe",
  "title": "Cancel a subscription",
  "description": "Removes a subscription; its waiting polls answer with subscription_active false.",
  "inputSchema": {
    "type": "object",
    "properties": {"subscription_id": {"type": "string"}},
    "required": ["subscription_id"],
    "additionalProperties": false
  },
  "outputSchema": {
    "type": "object",
    "properties": {"cancelled": {"type": "boolean"}, "final_poll_token": {"type": "string"}},
    "required": ["cancelled", "final_poll_token"]
  }
},
{
  "name": "get_subscriptions",
  "title": "List subscriptions",
  "description": "The subscriptions Tidewatch keeps, optionally only those of one resource_type.",
  "inputSchema": {
    "type": "object",
    "properties": {"resource_type": {"type": "string", "enum": ["documents", "collections", "all"]}},
    "additionalProperties": false
  },
  "outputSchema": {
    "type": "object",
    "properties": {
      "subscriptions": {"type": "array", "items": {"type": "object", "properties": {
        "subscription_id": {"type": "string"},
        "name": {"type": "string"},
        "resource_type": {"type": "string"}
      }, "required": ["subscription_id", "resource_type"]}},
      "total_count": {"type": "integer"}
    },
    "required": ["subscriptions", "total_count"]
  }
},
{
  "name": "list_sources",
  "title": "List sources",
  "description": "The databases Tidewatch watches: id, URI (password hidden), state and watched namespaces.",
  "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
  "outputSchema": {"type": "object", "properties": {"sources": {"type": "array", "items": {"type": "object"}}},
    "required": ["sources"]}
},
{
  "name": "list_namespaces",
  "title": "List a source's namespaces",
  "description": "The tables, collections and views of a source, and whether each is watched.",
  "inputSchema": {"type": "object", "properties": {"source": {"type": "string", "description": "A source id from list_sources"}},
    "required": ["source"], "additionalProperties": false},
  "outputSchema": {"type": "object", "properties": {"namespaces": {"type": "array", "items": {"type": "object"}}},
    "required": ["namespaces"]}
},
{
  "name": "watch",
  "title": "Watch a namespace",
  "description": "Starts watching a namespace of a source; answers once the watch is live, with the seq its changes follow.",
  "inputSchema": {"type": "object", "properties": {
      "source": {"type": "string", "description": "A source id from list_sources"},
      "namespace": {"type": "string", "description": "A table (SQLite), db.coll or a whole db (MongoDB)"},
      "options": {"type": "object", "description": "Watch options, as the HTTP API's watch body takes them"}},
    "required": ["source", "namespace"], "additionalProperties": false},
  "outputSchema": {"type": "object", "properties": {"source": {"type": "string"}, "ns": {"type": "string"},
    "live": {"type": "boolean"}, "seq": {"type": "integer"}}}
},
{
  "name": "unwatch",
  "title": "Stop watching a namespace",
  "description": "Stops watching a namespace; its journaled changes stay.",
  "inputSchema": {"type": "object", "properties": {"source": {"type": "string"}, "namespace": {"type": "string"}},
    "required": ["source", "namespace"], "additionalProperties": false},
  "outputSchema": {"type": "object", "properties": {"source": {"type": "string"}, "namespace": {"type": "string"},
    "unwatched": {"type": "boolean"}}, "required": ["source", "namespace", "unwatched"]}
}
])json";

const QJsonArray& definitions() {
    static const QJsonArray tools = QJsonDocument::fromJson(QByteArray(kTools)).array();
    return tools;
}

QString typeOf(const QJsonValue& value) {
    switch (value.type()) {
    case QJsonValue::Null:
        return QStringLiteral("null");
    case QJsonValue::Bool:
        return QStringLiteral("boolean");
    case QJsonValue::Double:
        return value.toDouble() == double(qint64(value.toDouble())) ? QStringLiteral("integer")
                                                                    : QStringLiteral("number");
    case QJsonValue::String:
        return QStringLiteral("string");
    case QJsonValue::Array:
        return QStringLiteral("array");
    case QJsonValue::Object:
        return QStringLiteral("object");
    default:
        return QStringLiteral("undefined");
    }
}

bool typeMatches(const QString& wanted, const QString& actual) {
    return wanted == actual || (wanted == QLatin1String("number") && actual == QLatin1String("integer"));
}

} // namespace

QJsonArray tools() {
    return definitions();
}

QJsonObject tool(const QString& name) {
    for (const QJsonValue& definition : definitions())
        if (definition.toObject().value(QLatin1String("name")).toString() == name)
            return definition.toObject();
    return {};
}

bool check(const QJsonObject& schema, const QJsonValue& value, const QString& path, QString* error) {
    const QString actual = typeOf(value);
    const QJsonValue type = schema.value(QLatin1String("type"));
    if (!type.isUndefined()) {
        QStringList wanted;
        if (type.isArray())
            for (const QJsonValue& t : type.toArray())
                wanted.append(t.toString());
        else
            wanted.append(type.toString());
        bool ok = false;
        for (const QString& t : std::as_const(wanted))
            ok = ok || typeMatches(t, actual);
        if (!ok) {
            *error =
                QStringLiteral("%1 must be %2, not %3").arg(path, wanted.join(QLatin1String(" or ")), actual);
            return false;
        }
    }
    const QJsonArray choices = schema.value(QLatin1String("enum")).toArray();
    if (!choices.isEmpty() && !choices.contains(value)) {
        QStringList names;
        for (const QJsonValue& choice : choices)
            names.append(QLatin1Char('"') + choice.toString() + QLatin1Char('"'));
        *error = QStringLiteral("%1 must be one of %2").arg(path, names.join(QLatin1String(", ")));
        return false;
    }
    if (value.isDouble()) {
        const QJsonValue minimum = schema.value(QLatin1String("minimum"));
        const QJsonValue maximum = schema.value(QLatin1String("maximum"));
        if (minimum.isDouble() && value.toDouble() < minimum.toDouble()) {
            *error = QStringLiteral("%1 must be at least %2, not %3")
                         .arg(path)
                         .arg(minimum.toDouble())
                         .arg(value.toDouble());
            return false;
        }
        if (maximum.isDouble() && value.toDouble() > maximum.toDouble()) {
            *error = QStringLiteral("%1 must be at most %2, not %3")
                         .arg(path)
                         .arg(maximum.toDouble())
                         .arg(value.toDouble());
            return false;
        }
    }
    if (!value.isObject())
        return true;
    const QJsonObject object = value.toObject();
    const QJsonObject properties = schema.value(QLatin1String("properties")).toObject();
    const QString prefix = path.isEmpty() ? QString() : path + QLatin1Char('.');
    for (const QJsonValue& name : schema.value(QLatin1String("required")).toArray())
        if (!object.contains(name.toString())) {
            *error = QStringLiteral("%1 is required").arg(prefix + name.toString());
            return false;
        }
    for (auto it = object.begin(); it != object.end(); ++it) {
        const QJsonValue property = properties.value(it.key());
        if (property.isUndefined()) {
            if (schema.value(QLatin1String("additionalProperties")).toBool(true))
                continue;
            QStringList known = properties.keys();
            *error = QStringLiteral("unknown argument %1 (known: %2)")
                         .arg(prefix + it.key(), known.join(QLatin1String(", ")));
            return false;
        }
        if (!check(property.toObject(), it.value(), prefix + it.key(), error))
            return false;
    }
    return true;
}

} // namespace tw::mcp::McpToolSchemas

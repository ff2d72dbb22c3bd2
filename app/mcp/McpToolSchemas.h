#pragma once

#include <QJsonArray>
#include <QJsonObject>
#include <QString>

namespace tw::mcp {

// The tools' definitions for tools/list (name, title, description, inputSchema,
// outputSchema), kept as JSON Schema text so that the schema a client sees is the one
// the arguments are checked against.
namespace McpToolSchemas {

QJsonArray tools();
// The definition of `name`; empty when there is no such tool.
QJsonObject tool(const QString& name);
// Checks `value` against the subset of JSON Schema the definitions use (type, enum,
// minimum/maximum, required, properties, additionalProperties false). On failure the
// message names the argument ("options.batch_size") and what it takes.
bool check(const QJsonObject& schema, const QJsonValue& value, const QString& path, QString* error);

} // namespace McpToolSchemas
} // namespace tw::mcp

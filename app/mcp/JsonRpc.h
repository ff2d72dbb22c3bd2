#pragma once

#include <QByteArray>
#include <QJsonObject>
#include <QJsonValue>
#include <QString>

namespace tw::mcp {

// JSON-RPC 2.0 as MCP uses it: one message per line, parsed and written with Qt's JSON.
// A message is a request (method + id), a notification (method, no id) or a response
// (id + result or error).
namespace JsonRpc {

// The standard codes; the text of an error names what was wrong.
enum ErrorCode {
    ParseError = -32700,
    InvalidRequest = -32600,
    MethodNotFound = -32601,
    InvalidParams = -32602,
    InternalError = -32603,
};

struct Error {
    int code = InternalError;
    QString message;
};

struct Message {
    enum class Kind { Request, Notification, Response };
    Kind kind = Kind::Notification;
    QJsonValue id; // string or number; Null for a notification
    QString method;
    QJsonObject params;
    QJsonObject raw; // the whole message (responses: result / error)
};

// Parses one line. On failure returns false with the error to answer and, when the
// message had a usable id, that id in *id (Null otherwise).
bool parse(const QByteArray& line, Message* out, Error* error, QJsonValue* id);

QByteArray result(const QJsonValue& id, const QJsonObject& result);
QByteArray error(const QJsonValue& id, const Error& error);
QByteArray notification(const QString& method, const QJsonObject& params);

} // namespace JsonRpc
} // namespace tw::mcp

#include "JsonRpc.h"

#include <QJsonDocument>
#include <QJsonParseError>

namespace tw::mcp::JsonRpc {

namespace {

QByteArray line(const QJsonObject& message) {
    QByteArray out = QJsonDocument(message).toJson(QJsonDocument::Compact);
    out.append('\n');
    return out;
}

bool isValidId(const QJsonValue& id) {
    // MCP: "a string or integer"; JSON-RPC allows null but MCP forbids it for requests.
    if (id.isString())
        return true;
    if (!id.isDouble())
        return false;
    // Range first: converting a double outside qint64 (an id of 1e300) is undefined.
    const double d = id.toDouble();
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == double(qint64(d));
}

} // namespace

bool parse(const QByteArray& text, Message* out, Error* error, QJsonValue* id) {
    *id = QJsonValue::Null;
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(text, &parseError);
    if (parseError.error != QJsonParseError::NoError) {
        *error = {ParseError, QStringLiteral("the line is not JSON: %1 at offset %2")
                                  .arg(parseError.errorString())
                                  .arg(parseError.offset)};
        return false;
    }
    if (document.isArray()) {
        // MCP 2025-06-18 removed JSON-RPC batching, and no SDK we serve sends one.
        *error = {InvalidRequest, QStringLiteral("JSON-RPC batches are not supported; send one message per "
                                                 "line")};
        return false;
    }
    if (!document.isObject()) {
        *error = {InvalidRequest, QStringLiteral("a JSON-RPC message must be a JSON object")};
        return false;
    }
    const QJsonObject message = document.object();
    const QJsonValue messageId = message.value(QLatin1String("id"));
    if (isValidId(messageId))
        *id = messageId;
    if (message.value(QLatin1String("jsonrpc")).toString() != QLatin1String("2.0")) {
        *error = {InvalidRequest, QStringLiteral("\"jsonrpc\" must be \"2.0\"")};
        return false;
    }
    out->raw = message;
    const bool hasId = message.contains(QLatin1String("id"));
    if (hasId && !isValidId(messageId)) {
        *error = {InvalidRequest, QStringLiteral("\"id\" must be a string or an integer")};
        return false;
    }
    const QJsonValue method = message.value(QLatin1String("method"));
    if (method.isUndefined()) {
        if (!hasId ||
            (!message.contains(QLatin1String("result")) && !message.contains(QLatin1String("error")))) {
            *error = {InvalidRequest,
                      QStringLiteral("a message needs \"method\" (request or notification) or "
                                     "\"id\" with \"result\" or \"error\" (response)")};
            return false;
        }
        out->kind = Message::Kind::Response;
        out->id = messageId;
        return true;
    }
    if (!method.isString() || method.toString().isEmpty()) {
        *error = {InvalidRequest, QStringLiteral("\"method\" must be a non-empty string")};
        return false;
    }
    const QJsonValue params = message.value(QLatin1String("params"));
    if (!params.isUndefined() && !params.isObject()) {
        *error = {InvalidParams, QStringLiteral("\"params\" must be an object")};
        return false;
    }
    out->kind = hasId ? Message::Kind::Request : Message::Kind::Notification;
    out->id = hasId ? messageId : QJsonValue(QJsonValue::Null);
    out->method = method.toString();
    out->params = params.toObject();
    return true;
}

QByteArray result(const QJsonValue& id, const QJsonObject& result) {
    return line(QJsonObject{{QStringLiteral("jsonrpc"), QStringLiteral("2.0")},
                            {QStringLiteral("id"), id},
                            {QStringLiteral("result"), result}});
}

QByteArray error(const QJsonValue& id, const Error& error) {
    return line(
        QJsonObject{{QStringLiteral("jsonrpc"), QStringLiteral("2.0")},
                    {QStringLiteral("id"), id},
                    {QStringLiteral("error"), QJsonObject{{QStringLiteral("code"), error.code},
                                                          {QStringLiteral("message"), error.message}}}});
}

QByteArray notification(const QString& method, const QJsonObject& params) {
    QJsonObject message{{QStringLiteral("jsonrpc"), QStringLiteral("2.0")},
                        {QStringLiteral("method"), method}};
    if (!params.isEmpty())
        message.insert(QStringLiteral("params"), params);
    return line(message);
}

} // namespace tw::mcp::JsonRpc

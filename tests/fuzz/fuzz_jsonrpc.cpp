// MCP's JSON-RPC messages. Input: one line as a client writes it to Tidewatch's stdin.
//
// Checked: a parsed message is of a kind that has what that kind needs (a request and
// a notification a method, a request and a response an id), a refused one has an error
// with a standard code and a message, and the answers built from either are one line of
// JSON that Qt reads back.
#include "FuzzInput.h"

#include "mcp/JsonRpc.h"

#include <QJsonDocument>
#include <QJsonObject>

using namespace tw::mcp;

namespace {

void checkLine(const QByteArray& line) {
    QByteArray body = line;
    if (body.endsWith('\n'))
        body.chop(1);
    tw::fuzz::check(!body.contains('\n'), "a JSON-RPC answer spans two lines");
    QJsonParseError error;
    const QJsonDocument doc = QJsonDocument::fromJson(body, &error);
    tw::fuzz::check(error.error == QJsonParseError::NoError && doc.isObject(),
                    "a JSON-RPC answer is not a JSON object");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const QByteArray line(reinterpret_cast<const char*>(data), qsizetype(size));
    JsonRpc::Message message;
    JsonRpc::Error error;
    QJsonValue id;
    if (!JsonRpc::parse(line, &message, &error, &id)) {
        tw::fuzz::check(!error.message.isEmpty(), "a refused message without an error message");
        tw::fuzz::check(error.code <= -32600 || error.code == JsonRpc::ParseError,
                        "a refused message with no standard code");
        checkLine(JsonRpc::error(id, error));
        return 0;
    }
    switch (message.kind) {
    case JsonRpc::Message::Kind::Request:
        tw::fuzz::check(!message.method.isEmpty() && !message.id.isNull(),
                        "a request without a method or an id");
        checkLine(JsonRpc::result(message.id, message.params));
        break;
    case JsonRpc::Message::Kind::Notification:
        tw::fuzz::check(!message.method.isEmpty(), "a notification without a method");
        checkLine(JsonRpc::notification(message.method, message.params));
        break;
    case JsonRpc::Message::Kind::Response:
        tw::fuzz::check(!message.id.isNull(), "a response without an id");
        break;
    }
    return 0;
}

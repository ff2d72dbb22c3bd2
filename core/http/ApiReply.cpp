#include "ApiReply.h"

#include <QJsonDocument>
#include <QJsonObject>

namespace tw {

ApiReply::ApiReply(QStringList corsOrigins)
    : m_corsOrigins(std::move(corsOrigins)) {}

bool ApiReply::isOriginAllowed(const QByteArray& origin) const {
    if (origin.isEmpty())
        return false;
    for (const QString& allowed : m_corsOrigins)
        if (allowed == QLatin1String("*") || allowed.toUtf8() == origin)
            return true;
    return false;
}

HttpHeaders ApiReply::corsHeaders(const QByteArray& origin) const {
    if (!isOriginAllowed(origin))
        return {};
    return {{"Access-Control-Allow-Origin", origin}, {"Vary", "Origin"}};
}

HttpHeaders ApiReply::corsHeaders(const HttpRequest& request) const {
    return corsHeaders(request.header("origin"));
}

void ApiReply::sendJson(const QByteArray& origin, HttpResponder& out, int status,
                        const QByteArray& json) const {
    HttpHeaders headers = corsHeaders(origin);
    headers.append(jsonHeaders());
    out.send(status, headers, json);
}

void ApiReply::sendJson(const HttpRequest& request, HttpResponder& out, int status,
                        const QByteArray& json) const {
    sendJson(request.header("origin"), out, status, json);
}

void ApiReply::sendError(const HttpRequest& request, HttpResponder& out, int status,
                         const QString& message) const {
    sendJson(request, out, status, errorJson(message));
}

QByteArray ApiReply::errorJson(const QString& message) {
    return QJsonDocument(QJsonObject{{QStringLiteral("error"), message}}).toJson(QJsonDocument::Compact);
}

const HttpHeaders& ApiReply::jsonHeaders() {
    static const HttpHeaders headers = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
    return headers;
}

} // namespace tw

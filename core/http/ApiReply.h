#pragma once

#include "http/HttpAdapter.h"

#include <QByteArray>
#include <QString>
#include <QStringList>

namespace tw {

// How the HTTP API answers: CORS headers for an allowed origin, JSON bodies written by
// QJsonDocument or JsonWriter (never joined by hand), no caching of JSON answers.
// Shared by the router, the SSE streams and the long polls; immutable once built.
class ApiReply {
public:
    explicit ApiReply(QStringList corsOrigins = {});

    // Exact origins, or "*". An empty origin (not a browser) is never "allowed": it
    // needs no CORS headers.
    bool isOriginAllowed(const QByteArray& origin) const;
    HttpHeaders corsHeaders(const QByteArray& origin) const; // empty when not allowed
    HttpHeaders corsHeaders(const HttpRequest& request) const;

    // The origin is passed rather than the request for answers sent long after the
    // request (a parked long poll keeps only its origin).
    void sendJson(const QByteArray& origin, HttpResponder& out, int status, const QByteArray& json) const;
    void sendJson(const HttpRequest& request, HttpResponder& out, int status, const QByteArray& json) const;
    void sendError(const HttpRequest& request, HttpResponder& out, int status, const QString& message) const;

    // {"error": message}
    static QByteArray errorJson(const QString& message);
    // Content-Type: application/json, Cache-Control: no-store.
    static const HttpHeaders& jsonHeaders();

private:
    QStringList m_corsOrigins;
};

} // namespace tw

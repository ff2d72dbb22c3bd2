#pragma once

#include "TestUtil.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QtTest>
#include <QUrl>

namespace tw::test {

// The answer to one request of the control API; status 0 when none came.
struct HttpResult {
    int status = 0;
    QJsonObject body;
    QByteArray raw;
};

// One request to the control API under `base` as its clients send it: a bearer token
// and, with `withBody`, `body` as JSON. `path` may carry a query. Waits for the whole
// answer.
inline HttpResult controlRequest(QNetworkAccessManager& nam, const QUrl& base, const QByteArray& token,
                                 const QByteArray& method, const QString& path, const QJsonObject& body,
                                 bool withBody) {
    QUrl url = base;
    const qsizetype query = path.indexOf(QLatin1Char('?'));
    url.setPath(query < 0 ? path : path.left(query));
    if (query >= 0)
        url.setQuery(path.mid(query + 1));
    QNetworkRequest r(url);
    r.setRawHeader("Authorization", "Bearer " + token);
    r.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/json"));
    const QByteArray payload = withBody ? QJsonDocument(body).toJson(QJsonDocument::Compact) : QByteArray();
    QNetworkReply* reply = nam.sendCustomRequest(r, method, payload);
    HttpResult result;
    // A watch answers once the source has read its table, or once its slot exists and
    // its stream is open: generous for a loaded machine.
    if (!QTest::qWaitFor([reply] { return reply->isFinished(); }, 40000)) {
        reply->abort();
        reply->deleteLater();
        return result;
    }
    result.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    result.raw = reply->readAll();
    result.body = parseJson(result.raw);
    reply->deleteLater();
    return result;
}

} // namespace tw::test

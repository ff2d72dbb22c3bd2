#include "RequestValues.h"

namespace tw {

bool RequestValues::parseSeq(const QString& text, qint64* seq) {
    bool ok = false;
    const qint64 value = text.trimmed().toLongLong(&ok);
    if (!ok || value < 0)
        return false;
    *seq = value;
    return true;
}

bool RequestValues::lastEventId(const HttpRequest& request, std::optional<qint64>* lastEventId,
                                QString* error) {
    QString text = QString::fromUtf8(request.header("last-event-id"));
    if (text.isEmpty())
        text = request.queryValue(QStringLiteral("lastEventId"));
    if (text.isEmpty())
        return true;
    qint64 seq = 0;
    if (!parseSeq(text, &seq)) {
        *error = QStringLiteral("Last-Event-ID must be an event id (a non-negative integer), not \"%1\"")
                     .arg(text.left(40));
        return false;
    }
    *lastEventId = seq;
    return true;
}

} // namespace tw

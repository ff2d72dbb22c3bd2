#include "EventRenderer.h"

namespace tw {

EventShape EventRenderer::shapeFor(const HttpRequest& request, const Subscription& subscription,
                                   QString* error) {
    bool canonical = false;
    const QString json = request.queryValue(QStringLiteral("format"));
    if (json == QLatin1String("canonical"))
        canonical = true;
    else if (!json.isEmpty() && json != QLatin1String("relaxed"))
        *error = QStringLiteral("format must be \"relaxed\" or \"canonical\", not \"%1\"").arg(json);
    Subscription shaped = subscription;
    const QString projection = request.queryValue(QStringLiteral("projection"));
    if (!projection.isEmpty() && !shaped.setProjection(projection.toUtf8(), error)) {
        if (!projection.trimmed().startsWith(QLatin1Char('{')))
            *error = QStringLiteral("projection must be \"full\", \"keys\" or a projection object such as "
                                    "{\"documentKey\":1}, not \"%1\"")
                         .arg(projection.left(40));
    }
    if (!request.queryValues(QStringLiteral("event")).isEmpty()) {
        QString eventError;
        shaped.event = EventTemplate::compile(request.queryValue(QStringLiteral("event")), &eventError);
        if (!eventError.isEmpty())
            *error = eventError;
    }
    return shaped.shape(canonical);
}

QByteArray EventRenderer::renderFrame(const ChangeEvent& event, const EventShape& shape, qint64 id) {
    const QByteArray json = shape.json(event);
    const QByteArray name = shape.eventName(event);
    QByteArray frame;
    frame.reserve(json.size() + name.size() + 40);
    frame += "id: ";
    frame += QByteArray::number(id);
    frame += "\nevent: ";
    frame += name;
    frame += "\ndata: ";
    frame += json;
    frame += "\n\n";
    return frame;
}

QByteArray EventRenderer::controlFrame(QByteArrayView event, const QByteArray& data, qint64 id) {
    QByteArray frame;
    frame.reserve(data.size() + event.size() + 40);
    if (id >= 0) {
        frame += "id: ";
        frame += QByteArray::number(id);
        frame += '\n';
    }
    frame += "event: ";
    frame += event;
    frame += "\ndata: ";
    frame += data;
    frame += "\n\n";
    return frame;
}

} // namespace tw

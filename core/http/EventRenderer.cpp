#include "EventRenderer.h"

namespace tw {

int EventRenderer::formatFor(const HttpRequest& request, const Subscription& subscription, QString* error) {
    int format = subscription.projection == Subscription::Projection::KeysOnly ? KeysOnly : Relaxed;
    const QString json = request.queryValue(QStringLiteral("format"));
    if (json == QLatin1String("canonical"))
        format |= Canonical;
    else if (!json.isEmpty() && json != QLatin1String("relaxed"))
        *error = QStringLiteral("format must be \"relaxed\" or \"canonical\", not \"%1\"").arg(json);
    const QString projection = request.queryValue(QStringLiteral("projection"));
    if (projection == QLatin1String("keys"))
        format |= KeysOnly;
    else if (projection == QLatin1String("full"))
        format &= ~KeysOnly;
    else if (!projection.isEmpty())
        *error = QStringLiteral("projection must be \"full\" or \"keys\", not \"%1\"").arg(projection);
    return format;
}

QByteArray EventRenderer::renderJson(const ChangeEvent& event, int format) {
    if (format == Relaxed)
        return event.toJson(); // rendered once at commit
    Bson doc = event.document();
    if (format & KeysOnly) {
        bson_t source;
        if (doc.view(&source)) {
            bson_t stripped;
            bson_init(&stripped);
            bson_copy_to_excluding_noinit(&source, &stripped, "fullDocument", "fullDocumentBeforeChange",
                                          static_cast<const char*>(nullptr));
            doc = Bson::fromBsonT(&stripped);
            bson_destroy(&stripped);
        }
    }
    return doc.toJson(format & Canonical ? Bson::JsonMode::Canonical : Bson::JsonMode::Relaxed);
}

QByteArray EventRenderer::renderFrame(const ChangeEvent& event, int format, qint64 id) {
    const QByteArray json = renderJson(event, format);
    const QByteArray op = event.operationType();
    QByteArray frame;
    frame.reserve(json.size() + op.size() + 40);
    frame += "id: ";
    frame += QByteArray::number(id);
    frame += "\nevent: ";
    frame += op;
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

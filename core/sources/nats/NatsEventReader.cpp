#include "NatsEventReader.h"

#include "model/JsonToBson.h"

namespace tw {

ChangeEvent NatsEventReader::read(QByteArrayView json, qint64 seq, QString* error) {
    const QByteArray bytes = json.toByteArray(); // kept as the event's JSON
    QByteArray raw;
    Bson doc = relaxedJsonToBson(bytes, &raw) ? Bson::fromRaw(std::move(raw)) : Bson::fromJson(bytes, error);
    if (doc.isAbsent()) {
        if (error->isEmpty())
            *error = QStringLiteral("its body is not a JSON object");
        return {};
    }
    return ChangeEvent::fromRendered(doc, seq, bytes, error);
}

} // namespace tw

#include "WatchOptionsJson.h"

#include <QJsonValue>
#include <QStringList>

namespace tw {

namespace {

bool fail(QString* error, const QString& message) {
    if (error)
        *error = message;
    return false;
}

bool readChoice(const QJsonValue& value, const QString& key, const QStringList& choices, QString* out,
                QString* error) {
    if (!value.isString() || !choices.contains(value.toString()))
        return fail(error, QStringLiteral("watch option \"%1\" must be one of %2")
                               .arg(key, choices.join(QLatin1String(", "))));
    *out = value.toString();
    return true;
}

bool readBool(const QJsonValue& value, const QString& key, bool* out, QString* error) {
    if (!value.isBool())
        return fail(error, QStringLiteral("watch option \"%1\" must be true or false").arg(key));
    *out = value.toBool();
    return true;
}

bool readCount(const QJsonValue& value, const QString& key, int minimum, int* out, QString* error) {
    const double number = value.toDouble(-1);
    if (!value.isDouble() || number != double(int(number)) || number < minimum)
        return fail(error, QStringLiteral("watch option \"%1\" must be a whole number of at least %2")
                               .arg(key)
                               .arg(minimum));
    *out = int(number);
    return true;
}

} // namespace

bool WatchOptionsJson::read(const QJsonObject& json, const WatchOptions& base, WatchOptions* out,
                            QString* error) {
    WatchOptions options = base;
    for (auto it = json.begin(); it != json.end(); ++it) {
        const QString& key = it.key();
        bool ok = false;
        if (key == QLatin1String("fullDocument"))
            ok = readChoice(it.value(), key,
                            {QStringLiteral("default"), QStringLiteral("updateLookup"),
                             QStringLiteral("whenAvailable"), QStringLiteral("required")},
                            &options.fullDocument, error);
        else if (key == QLatin1String("fullDocumentBeforeChange"))
            ok = readChoice(
                it.value(), key,
                {QStringLiteral("off"), QStringLiteral("whenAvailable"), QStringLiteral("required")},
                &options.fullDocumentBeforeChange, error);
        else if (key == QLatin1String("capture"))
            ok = readBool(it.value(), key, &options.captureMode, error);
        else if (key == QLatin1String("showExpandedEvents"))
            ok = readBool(it.value(), key, &options.showExpandedEvents, error);
        else if (key == QLatin1String("batchSize"))
            ok = readCount(it.value(), key, 0, &options.batchSize, error);
        else if (key == QLatin1String("maxAwaitTimeMs"))
            ok = readCount(it.value(), key, 1, &options.maxAwaitTimeMs, error);
        else if (key == QLatin1String("pollIntervalMs"))
            ok = readCount(it.value(), key, 1, &options.pollIntervalMs, error);
        else if (key == QLatin1String("pollField")) {
            ok = it.value().isString() && !it.value().toString().isEmpty();
            if (!ok)
                fail(error,
                     QStringLiteral("watch option \"pollField\" must be a field name, e.g. \"updatedAt\""));
            options.pollField = it.value().toString();
        } else
            return fail(error, QStringLiteral(
                                   "unknown watch option \"%1\"; the options are fullDocument, "
                                   "fullDocumentBeforeChange, capture, pollField, pollIntervalMs, batchSize, "
                                   "maxAwaitTimeMs and showExpandedEvents")
                                   .arg(key));
        if (!ok)
            return false;
    }
    *out = options;
    return true;
}

bool WatchOptionsJson::isValid(const QJsonObject& json, QString* error) {
    WatchOptions ignored;
    return read(json, WatchOptions(), &ignored, error);
}

} // namespace tw

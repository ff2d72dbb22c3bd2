#include "Settings.h"

#include "config/DataDir.h"

#include <QDir>

namespace tw {

namespace {

struct Entry {
    Settings::Key key;
    const char* name;
    QVariant defaultValue;
};

const QList<Entry>& table() {
    static const QList<Entry> entries = {
        {Settings::Key::SseEnabled, "sse/enabled", false},
        {Settings::Key::SseAddress, "sse/address", QStringLiteral("127.0.0.1")},
        {Settings::Key::SsePort, "sse/port", 8787},
        {Settings::Key::SseToken, "sse/token", QString()},
        {Settings::Key::SseCorsOrigins, "sse/corsOrigins", QStringList()},
        {Settings::Key::SseMaxPendingBytes, "sse/maxPendingBytes", qint64(4) << 20},
        {Settings::Key::SseKeepAliveMs, "sse/keepAliveMs", 15000},
        {Settings::Key::SseReplayCacheBytes, "sse/replayCacheBytes", qint64(64) << 20},
        {Settings::Key::UiGeometry, "ui/geometry", QByteArray()},
        {Settings::Key::UiState, "ui/state", QByteArray()},
        {Settings::Key::UiLastWorkspace, "ui/lastWorkspace", QString()},
        {Settings::Key::UiFeedRowCap, "ui/feedRowCap", 250000},
        {Settings::Key::DemoRate, "demo/rate", 20.0},
        {Settings::Key::RetentionMaxAgeSeconds, "journal/maxAgeSeconds", qint64(7 * 24 * 3600)},
        {Settings::Key::RetentionMaxBytes, "journal/maxBytes", qint64(2) << 30},
        {Settings::Key::NatsPublish, "nats/publish", false},
        {Settings::Key::NatsUrl, "nats/url", QStringLiteral("nats://127.0.0.1:4222")},
        {Settings::Key::NatsStream, "nats/stream", QStringLiteral("TIDEWATCH")},
        {Settings::Key::NatsMemoryStorage, "nats/memoryStorage", false},
    };
    return entries;
}

const Entry& entry(Settings::Key key) {
    for (const Entry& e : table())
        if (e.key == key)
            return e;
    Q_UNREACHABLE();
}

} // namespace

Settings::Settings()
    : m_settings(QDir(defaultDataDir()).filePath(QStringLiteral("tidewatch.ini")), QSettings::IniFormat) {}

QString Settings::keyName(Key key) {
    return QString::fromLatin1(entry(key).name);
}

QVariant Settings::defaultValue(Key key) {
    return entry(key).defaultValue;
}

QVariant Settings::value(Key key) const {
    const Entry& e = entry(key);
    return m_settings.value(QLatin1String(e.name), e.defaultValue);
}

void Settings::setValue(Key key, const QVariant& value) {
    m_settings.setValue(QLatin1String(entry(key).name), value);
}

void Settings::remove(Key key) {
    m_settings.remove(QLatin1String(entry(key).name));
}

} // namespace tw

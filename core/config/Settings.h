#pragma once

#include <QSettings>
#include <QString>
#include <QVariant>

namespace tw {

// Every persisted setting: one key, one type, one default, in one table (Settings.cpp).
// Backed by QSettings (organization "Tidewatch", application "tidewatch"); a test or
// a second instance points it elsewhere with TIDEWATCH_DATA_DIR.
class Settings {
public:
    enum class Key {
        SseEnabled,             // bool, false
        SseAddress,             // QString, "127.0.0.1"
        SsePort,                // int, 8787
        SseToken,               // QString, "" (generated on first use when no keychain)
        SseCorsOrigins,         // QStringList, empty
        SseMaxPendingBytes,     // qint64, 4 MiB
        SseKeepAliveMs,         // int, 15000
        SseReplayCacheBytes,    // qint64, 64 MiB (0: no shared replay cache)
        UiGeometry,             // QByteArray
        UiState,                // QByteArray
        UiLastWorkspace,        // QString
        UiFeedRowCap,           // int, 250000
        DemoRate,               // double, 20
        RetentionMaxAgeSeconds, // qint64, 7 days
        RetentionMaxBytes,      // qint64, 2 GiB
        NatsPublish,            // bool, false: the window publishes to JetStream at start
        NatsUrl,                // QString, "nats://127.0.0.1:4222"
        NatsStream,             // QString, "TIDEWATCH"
        NatsMemoryStorage,      // bool, false: a stream the window makes is kept on files, else in memory
    };

    Settings();
    QVariant value(Key key) const;
    void setValue(Key key, const QVariant& value);
    void remove(Key key);
    static QString keyName(Key key);
    static QVariant defaultValue(Key key);

    bool boolValue(Key key) const { return value(key).toBool(); }
    int intValue(Key key) const { return value(key).toInt(); }
    qint64 int64Value(Key key) const { return value(key).toLongLong(); }
    QString stringValue(Key key) const { return value(key).toString(); }

    QSettings& raw() { return m_settings; }

private:
    QSettings m_settings;
};

} // namespace tw

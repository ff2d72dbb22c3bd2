// loadOrCreateToken(): where the SSE bearer token comes from.

#include "SseToken.h"

#include "config/Settings.h"
#include "Keychain.h"

#include <QFile>
#include <QRandomGenerator>

namespace tw {

namespace {

QString generateToken() {
    QByteArray bytes(32, Qt::Uninitialized);
    QRandomGenerator::system()->generate(bytes.begin(), bytes.end());
    return QString::fromLatin1(
        bytes.toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals));
}

QString keychainPlace() {
    return QStringLiteral("the system keychain (service \"tidewatch\", key \"%1\"")
        .arg(QLatin1String(Keychain::kSseTokenKey));
}

// No usable keychain: the settings file.
void fromSettings(const SseTokenCallback& done) {
    Settings settings;
    QString token = settings.stringValue(Settings::Key::SseToken);
    bool created = false;
    if (token.isEmpty()) {
        token = generateToken();
        settings.setValue(Settings::Key::SseToken, token);
        settings.raw().sync();
        if (settings.raw().status() != QSettings::NoError) {
            // Clients would be locked out at the next start: say so where the token's
            // place is shown (the headless log, the SSE dock).
            done(token, QStringLiteral("memory only: the settings file %1 cannot be written, so a new token "
                                       "is made at every start; make it writable or set TIDEWATCH_TOKEN")
                            .arg(settings.raw().fileName()));
            return;
        }
        // The file now holds a secret: only its owner may read it.
        QFile::setPermissions(settings.raw().fileName(), QFile::ReadOwner | QFile::WriteOwner);
        created = true;
    }
    done(token, QStringLiteral("%1 [%2]%3")
                    .arg(settings.raw().fileName(), Settings::keyName(Settings::Key::SseToken),
                         created ? QStringLiteral(", new") : QString()));
}

} // namespace

void loadOrCreateToken(QObject* context, SseTokenCallback done) {
    const QString fromEnvironment = qEnvironmentVariable("TIDEWATCH_TOKEN");
    if (!fromEnvironment.isEmpty()) {
        done(fromEnvironment, QStringLiteral("the TIDEWATCH_TOKEN environment variable"));
        return;
    }
    if (!Keychain::isAvailable()) {
        fromSettings(done);
        return;
    }
    const QString key = QString::fromLatin1(Keychain::kSseTokenKey);
    Keychain::read(
        key, context, [context, key, done](Keychain::Status status, const QString& value, const QString&) {
            if (status == Keychain::Status::Ok && !value.isEmpty()) {
                done(value, keychainPlace() + QLatin1Char(')'));
                return;
            }
            if (status != Keychain::Status::NotFound) {
                fromSettings(done);
                return;
            }
            const QString token = generateToken();
            Keychain::write(key, token, context, [token, done](Keychain::Status written, const QString&) {
                if (written == Keychain::Status::Ok)
                    done(token, keychainPlace() + QStringLiteral("; new)"));
                else
                    fromSettings(done);
            });
        });
}

} // namespace tw

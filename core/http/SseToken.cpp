// loadOrCreateToken(): where the SSE bearer token comes from.

#include "http/SseServer.h"

#include "config/Settings.h"

#include <QCoreApplication>
#include <QEventLoop>
#include <QFile>
#include <QRandomGenerator>
#include <QTimer>

#ifdef TIDEWATCH_HAVE_KEYCHAIN
#include <qt6keychain/keychain.h>
#endif

namespace tw {

namespace {

constexpr auto kKeychainService = "tidewatch";
constexpr auto kKeychainKey = "sse-token";

QString generateToken() {
    QByteArray bytes(32, Qt::Uninitialized);
    QRandomGenerator::system()->generate(bytes.begin(), bytes.end());
    return QString::fromLatin1(
        bytes.toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals));
}

#ifdef TIDEWATCH_HAVE_KEYCHAIN
// The keychain is reached over D-Bus; without a session bus (headless servers, tests)
// or an event loop there is nothing to ask, and asking would only wait.
bool keychainReachable() {
    if (!QCoreApplication::instance() || qEnvironmentVariableIsSet("TIDEWATCH_TEST"))
        return false;
    return qEnvironmentVariableIsSet("DBUS_SESSION_BUS_ADDRESS");
}

// Runs a keychain job to completion; a job that hangs (a locked keyring waiting
// for a prompt nobody answers) counts as a failure after 5 s.
bool runJob(QKeychain::Job* job) {
    QEventLoop loop;
    bool finished = false;
    QObject::connect(job, &QKeychain::Job::finished, &loop, [&] {
        finished = true;
        loop.quit();
    });
    QTimer::singleShot(5000, &loop, &QEventLoop::quit);
    job->setAutoDelete(false);
    job->start();
    if (!finished)
        loop.exec();
    return finished && job->error() == QKeychain::NoError;
}

bool readKeychain(QString* token, bool* missing) {
    QKeychain::ReadPasswordJob job(QString::fromLatin1(kKeychainService));
    job.setKey(QString::fromLatin1(kKeychainKey));
    const bool ok = runJob(&job);
    *missing = !ok && job.error() == QKeychain::EntryNotFound;
    if (ok)
        *token = job.textData();
    return ok;
}

bool writeKeychain(const QString& token) {
    QKeychain::WritePasswordJob job(QString::fromLatin1(kKeychainService));
    job.setKey(QString::fromLatin1(kKeychainKey));
    job.setTextData(token);
    return runJob(&job);
}
#endif

} // namespace

QString loadOrCreateToken(QString* where) {
    const QString fromEnvironment = qEnvironmentVariable("TIDEWATCH_TOKEN");
    if (!fromEnvironment.isEmpty()) {
        if (where)
            *where = QStringLiteral("the TIDEWATCH_TOKEN environment variable");
        return fromEnvironment;
    }
#ifdef TIDEWATCH_HAVE_KEYCHAIN
    if (keychainReachable()) {
        QString token;
        bool missing = false;
        if (readKeychain(&token, &missing) && !token.isEmpty()) {
            if (where)
                *where = QStringLiteral("the system keychain (service \"tidewatch\", key \"sse-token\")");
            return token;
        }
        if (missing) {
            token = generateToken();
            if (writeKeychain(token)) {
                if (where)
                    *where =
                        QStringLiteral("the system keychain (service \"tidewatch\", key \"sse-token\"; new)");
                return token;
            }
        }
        // Otherwise no usable keychain: fall through to the settings file.
    }
#endif
    Settings settings;
    QString token = settings.stringValue(Settings::Key::SseToken);
    bool created = false;
    if (token.isEmpty()) {
        token = generateToken();
        settings.setValue(Settings::Key::SseToken, token);
        settings.raw().sync();
        // The file now holds a secret: only its owner may read it.
        QFile::setPermissions(settings.raw().fileName(), QFile::ReadOwner | QFile::WriteOwner);
        created = true;
    }
    if (where)
        *where = QStringLiteral("%1 [%2]%3")
                     .arg(settings.raw().fileName(), Settings::keyName(Settings::Key::SseToken),
                          created ? QStringLiteral(", new") : QString());
    return token;
}

} // namespace tw

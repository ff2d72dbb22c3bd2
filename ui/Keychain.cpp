#include "Keychain.h"

#include <QPointer>

#ifdef TIDEWATCH_HAVE_KEYCHAIN
#include <qt6keychain/keychain.h>
#endif

namespace tw::ui::Keychain {

namespace {
const QString kService = QStringLiteral("tidewatch");
QString keyFor(const QString& id) {
    return QStringLiteral("connection/") + id;
}
} // namespace

bool isAvailable() {
#ifdef TIDEWATCH_HAVE_KEYCHAIN
    return true;
#else
    return false;
#endif
}

void writePassword(const QString& connectionId, const QString& password, QObject* context,
                   std::function<void(const QString& error)> done) {
#ifdef TIDEWATCH_HAVE_KEYCHAIN
    auto* job = new QKeychain::WritePasswordJob(kService); // deletes itself when finished
    job->setAutoDelete(true);
    job->setKey(keyFor(connectionId));
    job->setTextData(password);
    QPointer<QObject> guard(context);
    QObject::connect(job, &QKeychain::Job::finished, job, [guard, done](QKeychain::Job* finished) {
        if (guard && done)
            done(finished->error() == QKeychain::NoError ? QString() : finished->errorString());
    });
    job->start();
#else
    Q_UNUSED(connectionId);
    Q_UNUSED(password);
    Q_UNUSED(context);
    if (done)
        done(QObject::tr("no keychain support in this build; the password is kept for this session only"));
#endif
}

void readPassword(const QString& connectionId, QObject* context,
                  std::function<void(const QString& password, const QString& error)> done) {
#ifdef TIDEWATCH_HAVE_KEYCHAIN
    auto* job = new QKeychain::ReadPasswordJob(kService);
    job->setAutoDelete(true);
    job->setKey(keyFor(connectionId));
    QPointer<QObject> guard(context);
    QObject::connect(job, &QKeychain::Job::finished, job, [guard, done](QKeychain::Job* finished) {
        if (!guard)
            return;
        auto* read = static_cast<QKeychain::ReadPasswordJob*>(finished);
        if (read->error() == QKeychain::NoError)
            done(read->textData(), QString());
        else
            done(QString(), read->errorString());
    });
    job->start();
#else
    Q_UNUSED(connectionId);
    Q_UNUSED(context);
    done(QString(), QObject::tr("no keychain support in this build"));
#endif
}

void deletePassword(const QString& connectionId) {
#ifdef TIDEWATCH_HAVE_KEYCHAIN
    auto* job = new QKeychain::DeletePasswordJob(kService);
    job->setAutoDelete(true);
    job->setKey(keyFor(connectionId));
    job->start();
#else
    Q_UNUSED(connectionId);
#endif
}

} // namespace tw::ui::Keychain

#include "Keychain.h"

#include <memory>
#include <QCoreApplication>
#include <QTimer>

#ifdef TIDEWATCH_HAVE_KEYCHAIN
#include <qt6keychain/keychain.h>
#endif

namespace tw::Keychain {

namespace {

const QString kService = QStringLiteral("tidewatch");

QString unavailableMessage() {
#ifdef TIDEWATCH_HAVE_KEYCHAIN
    return QObject::tr("the system keychain cannot be reached (no session bus)");
#else
    return QObject::tr("no keychain support in this build");
#endif
}

#ifdef TIDEWATCH_HAVE_KEYCHAIN
Status statusOf(const QKeychain::Job* job) {
    switch (job->error()) {
    case QKeychain::NoError:
        return Status::Ok;
    case QKeychain::EntryNotFound:
        return Status::NotFound;
    default:
        return Status::Failed;
    }
}

// Starts `job` (it deletes itself when it finishes) and calls exactly one of
// `finished` or `timedOut`, on the thread of `context`, unless `context` goes first.
void run(QKeychain::Job* job, QObject* context, std::function<void(QKeychain::Job*)> finished,
         std::function<void()> timedOut) {
    auto answered = std::make_shared<bool>(false);
    job->setAutoDelete(true);
    QObject::connect(job, &QKeychain::Job::finished, context, [answered, finished](QKeychain::Job* done) {
        if (*answered)
            return;
        *answered = true;
        finished(done);
    });
    QTimer::singleShot(kTimeoutMs, context, [answered, timedOut] {
        if (*answered)
            return;
        *answered = true;
        timedOut();
    });
    job->start();
}

QString timeoutMessage() {
    return QObject::tr("the system keychain did not answer within %1 s").arg(kTimeoutMs / 1000);
}
#endif

} // namespace

bool isAvailable() {
#ifdef TIDEWATCH_HAVE_KEYCHAIN
    // The keychain is reached over D-Bus; without a session bus (headless servers, tests)
    // or an application object there is nothing to ask, and asking would only wait.
    if (!QCoreApplication::instance() || qEnvironmentVariableIsSet("TIDEWATCH_TEST"))
        return false;
#if defined(Q_OS_UNIX) && !defined(Q_OS_MACOS)
    return qEnvironmentVariableIsSet("DBUS_SESSION_BUS_ADDRESS");
#else
    return true;
#endif
#else
    return false;
#endif
}

QString connectionKey(const QString& connectionId) {
    return QStringLiteral("connection/") + connectionId;
}

void read(const QString& key, QObject* context, ReadCallback done) {
    if (!isAvailable()) {
        done(Status::Unavailable, QString(), unavailableMessage());
        return;
    }
#ifdef TIDEWATCH_HAVE_KEYCHAIN
    auto* job = new QKeychain::ReadPasswordJob(kService);
    job->setKey(key);
    run(
        job, context,
        [done](QKeychain::Job* finished) {
            const Status status = statusOf(finished);
            done(status,
                 status == Status::Ok ? static_cast<QKeychain::ReadPasswordJob*>(finished)->textData()
                                      : QString(),
                 status == Status::Ok ? QString() : finished->errorString());
        },
        [done] { done(Status::Failed, QString(), timeoutMessage()); });
#else
    Q_UNUSED(key);
    Q_UNUSED(context);
#endif
}

void write(const QString& key, const QString& value, QObject* context, WriteCallback done) {
    if (!isAvailable()) {
        if (done)
            done(Status::Unavailable, unavailableMessage());
        return;
    }
#ifdef TIDEWATCH_HAVE_KEYCHAIN
    auto* job = new QKeychain::WritePasswordJob(kService);
    job->setKey(key);
    job->setTextData(value);
    run(
        job, context,
        [done](QKeychain::Job* finished) {
            const Status status = statusOf(finished);
            if (done)
                done(status, status == Status::Ok ? QString() : finished->errorString());
        },
        [done] {
            if (done)
                done(Status::Failed, timeoutMessage());
        });
#else
    Q_UNUSED(key);
    Q_UNUSED(value);
    Q_UNUSED(context);
#endif
}

void remove(const QString& key) {
    if (!isAvailable())
        return;
#ifdef TIDEWATCH_HAVE_KEYCHAIN
    auto* job = new QKeychain::DeletePasswordJob(kService);
    job->setAutoDelete(true);
    job->setKey(key);
    job->start();
#else
    Q_UNUSED(key);
#endif
}

} // namespace tw::Keychain

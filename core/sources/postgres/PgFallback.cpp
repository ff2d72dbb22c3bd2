#include "PgFallback.h"

#include "PgCatalog.h"

#include <QSocketNotifier>
#include <QTimer>

#include <libpq-fe.h>

#include <algorithm>

namespace tw {

namespace {

// A lost connection is retried at the poll interval, doubling up to this.
constexpr int kMaxRetryMs = 30000;

} // namespace

PgFallback::PgFallback(const QString& sourceId, const QString& reader, const QString& conninfo,
                       const QString& described, const QString& why, const SourceRestore& restore,
                       QObject* parent)
    : QObject(parent)
    , m_sourceId(sourceId)
    , m_conninfo(conninfo)
    , m_described(described)
    , m_why(why)
    , m_restore(restore)
    , m_capture(sourceId, reader) {
    m_capture.restore(restore.token);
}

PgFallback::~PgFallback() {
    stop();
}

int PgFallback::intervalMs() const {
    int interval = kDefaultIntervalMs;
    for (const int ms : m_intervals)
        interval = std::min(interval, ms);
    if (m_failures > 0)
        interval = std::min<qint64>(kMaxRetryMs, qint64(interval) << std::min(m_failures, 10));
    return interval;
}

void PgFallback::start() {
    if (!m_timer) {
        m_timer = new QTimer(this);
        connect(m_timer, &QTimer::timeout, this, &PgFallback::pollAll);
    }
    m_timer->start(intervalMs());
    if (connectNow())
        showStatus();
}

bool PgFallback::connectNow() {
    QString error;
    if (!m_conn.open(m_conninfo, false, &error)) {
        lose(QStringLiteral("Cannot connect to %1: %2").arg(m_described, error));
        return false;
    }
    m_database = m_conn.database();
    m_connected = true;
    m_failures = 0;
    m_timer->setInterval(intervalMs());
    // Listening before any trigger is installed: no NOTIFY is missed, and the poll
    // reads the changelog anyway should one be.
    m_listening =
        m_conn.exec(QStringLiteral("LISTEN %1").arg(QLatin1String(PgCapture::kChannel)), nullptr, &error);
    if (m_listening) {
        m_notifier = new QSocketNotifier(qintptr(PQsocket(m_conn.raw())), QSocketNotifier::Read, this);
        connect(m_notifier, &QSocketNotifier::activated, this, &PgFallback::onNotified);
    }
    // Watches live before the connection was lost go on; those asked for meanwhile start.
    for (const std::shared_ptr<PgPoller>& poller : std::as_const(m_pollers))
        Q_EMIT watchReady(m_sourceId, poller->ns());
    for (const Namespace& ns : std::as_const(m_captured))
        Q_EMIT watchReady(m_sourceId, ns);
    const auto pending = std::exchange(m_pending, {});
    for (auto it = pending.cbegin(); it != pending.cend(); ++it)
        watch(Namespace{m_database, it.key()}, it.value());
    return true;
}

void PgFallback::closeConnection() {
    if (m_notifier) {
        // Possibly inside its own activated(): deleted once the signal has returned.
        m_notifier->setEnabled(false);
        m_notifier->deleteLater();
        m_notifier = nullptr;
    }
    m_conn.close();
    m_connected = false;
}

void PgFallback::lose(const QString& error) {
    closeConnection();
    m_listening = false;
    ++m_failures;
    const int retry = intervalMs();
    if (m_timer)
        m_timer->setInterval(retry);
    Q_EMIT statusChanged(SourceStatus::State::Backoff,
                         QStringLiteral("%1; retrying in %2 ms (logical replication is not used: %3)")
                             .arg(error)
                             .arg(retry)
                             .arg(m_why),
                         QDateTime::currentDateTime().addMSecs(retry));
}

void PgFallback::stop() {
    if (m_timer)
        m_timer->stop();
    closeConnection();
}

bool PgFallback::addWatch(const Namespace& ns, const WatchOptions& options, QString* error) {
    QString schema;
    QString name;
    if (!PgCatalog::splitWatched(ns, m_database, m_described, &schema, &name, error))
        return false;
    const Namespace table{m_database, schema + QLatin1Char('.') + name};
    if (m_pollers.contains(table.coll) || m_captured.contains(table.coll)) {
        Q_EMIT watchReady(m_sourceId, table); // re-sent with new readers: the engine filters
        return true;
    }
    const PgCatalog::Table info = PgCatalog::table(m_conn, schema, name, error);
    if (!info.exists || info.kind == 'v' || info.kind == 'm') {
        *error = info.exists ? QStringLiteral("\"%1\" in %2 is a view; watch the tables behind it.")
                                   .arg(table.coll, m_described)
                             : QStringLiteral("No table \"%1\" in database %2 on %3.")
                                   .arg(table.coll, m_database, m_described);
        return false;
    }
    const QString qualified = PgCatalog::qualifiedName(m_conn, schema, name);
    if (options.captureMode) {
        if (!m_capture.install(m_conn, table, qualified, info.keyColumns, error))
            return false;
        m_captured.insert(table.coll, table);
    } else {
        if (info.keyColumns.isEmpty() && options.pollField.isEmpty()) {
            *error = QStringLiteral(
                         "%1 has no primary key, so polling cannot tell its rows apart (logical replication "
                         "is not used: %2). Add one (ALTER TABLE %3 ADD PRIMARY KEY (…)), name a monotonic "
                         "column for incremental polls with the pollField watch option, or use capture mode "
                         "(the capture watch option).")
                         .arg(table.coll, m_why, qualified);
            return false;
        }
        if (!options.pollField.isEmpty()) {
            QList<QStringList> rows;
            if (!m_conn.exec(QStringLiteral("SELECT 1 FROM pg_attribute WHERE attrelid = %1 AND attname = %2 "
                                            "AND attnum > 0 AND NOT attisdropped")
                                 .arg(info.oid)
                                 .arg(m_conn.quoteLiteral(options.pollField)),
                             &rows, error))
                return false;
            if (rows.isEmpty()) {
                *error = QStringLiteral("%1 has no column \"%2\" to poll by (the pollField watch option): "
                                        "name a column that only grows, such as updated_at or a serial id.")
                             .arg(table.coll, options.pollField);
                return false;
            }
        }
        auto poller =
            std::make_shared<PgPoller>(m_sourceId, table, qualified, info.keyColumns, options.pollField);
        poller->restore(m_restore.state);
        // The baseline (or, after a restart, what changed while closed) before the
        // watch is reported live.
        ChangeBatch batch;
        batch.sourceId = m_sourceId;
        if (!poller->poll(m_conn, batch, error))
            return false;
        if (!batch.events.isEmpty() || !batch.checkpoint.isEmpty())
            Q_EMIT batchReady(batch);
        m_pollers.insert(table.coll, poller);
    }
    if (options.pollIntervalMs > 0)
        m_intervals.insert(table.coll, options.pollIntervalMs);
    if (m_timer)
        m_timer->setInterval(intervalMs());
    Q_EMIT watchReady(m_sourceId, table);
    return true;
}

void PgFallback::watch(const Namespace& ns, const WatchOptions& options) {
    if (!m_connected) {
        m_pending.insert(ns.coll, options);
        return;
    }
    QString error;
    if (!addWatch(ns, options, &error)) {
        if (!m_conn.isHealthy()) {
            m_pending.insert(ns.coll, options);
            lose(QStringLiteral("Lost the connection to %1: %2").arg(m_described, error));
            return;
        }
        Q_EMIT watchFailed(m_sourceId, ns, error);
        return;
    }
    showStatus();
}

void PgFallback::unwatch(const Namespace& ns) {
    m_pending.remove(ns.coll);
    m_intervals.remove(ns.coll);
    if (const std::shared_ptr<PgPoller> poller = m_pollers.take(ns.coll)) {
        ChangeBatch batch;
        batch.sourceId = m_sourceId;
        poller->clear(batch.checkpoint);
        Q_EMIT batchReady(batch);
        // Forgotten here too: watched again in this run, the table starts from a
        // baseline of its own, not from the one the source started with.
        const QByteArray marker = QByteArrayLiteral("pgpoll\x1f") + ns.coll.toUtf8();
        m_restore.state.removeIf([&marker](const auto& entry) {
            const QByteArray& key = entry.key();
            return key == marker || (key.startsWith(marker) && key.size() > marker.size() &&
                                     (key.at(marker.size()) == '\x1f' || key.at(marker.size()) == '\x1e'));
        });
    }
    if (m_captured.remove(ns.coll) && m_connected)
        m_capture.remove(m_conn, ns);
    if (m_timer)
        m_timer->setInterval(intervalMs());
    showStatus();
}

QStringList PgFallback::watchedTables() const {
    QStringList tables = m_pollers.keys();
    tables += m_captured.keys();
    return tables;
}

bool PgFallback::finishAt(const QString& snapshot, ChangeBatch& out, QString* error) {
    if (!m_connected) {
        *error = QStringLiteral("not connected to %1").arg(m_described);
        return false;
    }
    // REPEATABLE READ so that every statement of the read sees the imported snapshot.
    if (!m_conn.exec(QStringLiteral("BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT %1")
                         .arg(m_conn.quoteLiteral(snapshot)),
                     nullptr, error))
        return false;
    for (const std::shared_ptr<PgPoller>& poller : std::as_const(m_pollers)) {
        if (!poller->poll(m_conn, out, error)) {
            QString ignored;
            m_conn.exec(QStringLiteral("ROLLBACK"), nullptr, &ignored);
            return false;
        }
        poller->clear(out.checkpoint); // applied after the poll's upserts: nothing is left
    }
    if (!m_captured.isEmpty() && !m_capture.read(m_conn, out, error, true)) {
        QString ignored;
        m_conn.exec(QStringLiteral("ROLLBACK"), nullptr, &ignored);
        return false;
    }
    if (!m_conn.exec(QStringLiteral("COMMIT"), nullptr, error))
        return false;
    if (m_timer)
        m_timer->stop();
    if (m_notifier) {
        m_notifier->setEnabled(false);
        m_notifier->deleteLater();
        m_notifier = nullptr;
    }
    return true;
}

void PgFallback::releaseServerState() {
    if (m_connected || connectNow())
        for (const Namespace& ns : std::as_const(m_captured))
            m_capture.remove(m_conn, ns);
    m_captured.clear();
}

void PgFallback::pollAll() {
    if (!m_connected) {
        if (connectNow())
            showStatus();
        return;
    }
    if (!m_conn.isHealthy()) {
        lose(QStringLiteral("Lost the connection to %1").arg(m_described));
        return;
    }
    QString problem;
    for (const std::shared_ptr<PgPoller>& poller : std::as_const(m_pollers)) {
        ChangeBatch batch;
        batch.sourceId = m_sourceId;
        QString error;
        if (!poller->poll(m_conn, batch, &error)) {
            if (!m_conn.isHealthy()) {
                lose(QStringLiteral("Lost the connection to %1: %2").arg(m_described, error));
                return;
            }
            problem = error; // e.g. the table was dropped: the others go on
            continue;
        }
        if (!batch.events.isEmpty() || !batch.checkpoint.isEmpty())
            Q_EMIT batchReady(batch);
    }
    if (!problem.isEmpty())
        showStatus(problem);
    // NOTIFY wakes capture at once; this read is for a bound an open transaction held
    // back, and for a notification that came while the socket was being read.
    readCapture();
}

void PgFallback::readCapture() {
    if (!m_connected || m_captured.isEmpty())
        return;
    ChangeBatch batch;
    batch.sourceId = m_sourceId;
    QString error;
    if (!m_capture.read(m_conn, batch, &error)) {
        if (!m_conn.isHealthy())
            lose(QStringLiteral("Lost the connection to %1: %2").arg(m_described, error));
        else
            showStatus(error);
        return;
    }
    if (!batch.events.isEmpty())
        Q_EMIT batchReady(batch);
}

void PgFallback::onNotified() {
    if (!m_connected)
        return;
    if (!PQconsumeInput(m_conn.raw())) {
        lose(QStringLiteral("Lost the connection to %1: %2").arg(m_described, m_conn.lastError()));
        return;
    }
    bool notified = false;
    while (PGnotify* n = PQnotifies(m_conn.raw())) {
        notified = true;
        PQfreemem(n);
    }
    if (notified)
        readCapture();
}

void PgFallback::checkpointCommitted(const QByteArray& token) {
    QString error;
    if (m_connected && !m_capture.pruneCommitted(m_conn, token, &error))
        showStatus(QStringLiteral("Cannot prune tidewatch.changelog: %1").arg(error));
}

void PgFallback::showStatus(const QString& problem) {
    QStringList parts;
    const int interval = intervalMs();
    for (const std::shared_ptr<PgPoller>& poller : std::as_const(m_pollers))
        parts.append(poller->isIncremental()
                         ? QStringLiteral("polling %1 every %2 ms by a monotonic column (inserts and updates "
                                          "only: deletes are not seen)")
                               .arg(poller->ns().coll)
                               .arg(interval)
                         : QStringLiteral("polling %1 every %2 ms by primary key and row hash")
                               .arg(poller->ns().coll)
                               .arg(interval));
    for (const Namespace& ns : std::as_const(m_captured))
        parts.append(QStringLiteral("capturing %1 with triggers into tidewatch.changelog").arg(ns.coll));
    QString reason = m_why + QStringLiteral(" Until then: ") +
                     (parts.isEmpty() ? QStringLiteral("polling the watched tables every %1 ms").arg(interval)
                                      : parts.join(QLatin1String("; "))) +
                     QLatin1Char('.');
    if (!problem.isEmpty())
        reason += QLatin1Char(' ') + problem;
    Q_EMIT statusChanged(SourceStatus::State::Polling, reason, {});
}

} // namespace tw

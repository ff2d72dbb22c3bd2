// The lifecycle of PostgresSource: parsing the URI, connecting (or falling back),
// backing off, the slot at start, the tick, stopping and dropping what it keeps on the
// server. The watches are in PostgresSourceWatches.cpp; the stream and the switch
// between modes in PostgresSourceStream.cpp.

#include "PostgresSource.h"

#include "PgFallback.h"
#include "sources/SourceUri.h"

#include <QDateTime>
#include <QLoggingCategory>
#include <QRandomGenerator>
#include <QSocketNotifier>
#include <QThread>
#include <QTimer>

#include <algorithm>

Q_LOGGING_CATEGORY(lcPostgres, "tidewatch.source.postgres")

namespace tw {

namespace {

constexpr char kTokenPrefix[] = "lsn:";
// The tick sends status updates and reads the slot's lag. 10 s between updates when
// idle stays far inside wal_sender_timeout (60 s by default). An acknowledged commit
// is confirmed at once, unless an update went less than kConfirmGapMs ago: then the
// tick confirms it. Under load the journal commits hundreds of times a second, and an
// update for each cost a send here and a wake-up of the walsender, on the cores that
// decode the stream, for a position the server needs only to free WAL.
constexpr int kTickMs = 250;
constexpr qint64 kStatusIntervalMs = 10000;
constexpr qint64 kConfirmGapMs = 200;
constexpr qint64 kLagIntervalMs = 5000;
// How long the stream waits at start for the last run's tables to be watched again.
constexpr qint64 kWaitForWatchesMs = 2000;

qint64 nowMs() {
    return QDateTime::currentMSecsSinceEpoch();
}

} // namespace

PostgresSource* PostgresSource::create(const QString& id, const QString& uri, QString* error) {
    const QString described = PgConnection::describe(uri);
    if (described.startsWith(QLatin1Char('('))) {
        if (error)
            *error = QStringLiteral("\"%1\" is not a PostgreSQL connection string: use "
                                    "postgresql://USER@HOST[:PORT]/DATABASE or \"host=… dbname=…\".")
                         .arg(SourceUri::redact(uri));
        return nullptr;
    }
    return new PostgresSource(id, uri, SourceUri::redact(uri));
}

PostgresSource::PostgresSource(const QString& id, const QString& conninfo, const QString& described)
    : Source(id)
    , m_conninfo(conninfo)
    , m_described(described) {
    m_slotName = PgSlotName::legacy(id);
    m_outgoing.sourceId = id;
    bool ok = false;
    const int retryMs = qEnvironmentVariableIntValue("TIDEWATCH_PG_REPLICATION_RETRY_MS", &ok);
    if (ok && retryMs > 0)
        m_replicationRetryMs = retryMs;
}

PostgresSource::~PostgresSource() {
    disconnectAll();
}

void PostgresSource::setSlotName(const QString& name) {
    m_slotName = name.left(PgSlotName::kMaxLength);
    m_slotNameSet = true;
}

void PostgresSource::setBackoff(int initialMs, int maxMs, double jitter) {
    m_backoffInitialMs = std::max(1, initialMs);
    m_backoffMaxMs = std::max(m_backoffInitialMs, maxMs);
    m_jitter = std::clamp(jitter, 0.0, 1.0);
}

QByteArray PostgresSource::tokenFor(quint64 lsn) {
    return QByteArray(kTokenPrefix) + pg::lsnToString(lsn).toLatin1();
}

quint64 PostgresSource::lsnOf(const QByteArray& token) {
    quint64 lsn = 0;
    if (token.startsWith(kTokenPrefix) &&
        pg::parseLsn(QString::fromLatin1(token.mid(int(sizeof kTokenPrefix) - 1)), &lsn))
        return lsn;
    return 0;
}

void PostgresSource::start(const SourceRestore& restore) {
    m_started = true;
    m_restore = restore;
    if (!m_slotNameSet)
        m_slotName = PgSlotName::forJournal(journalId(), id());
    m_reader = m_slotName;
    m_status.slotName = m_slotName;
    m_restoredLsn = lsnOf(restore.token);
    m_committedLsn = m_restoredLsn;
    m_publishedLsn = m_restoredLsn;
    m_expectedWatches.clear();
    m_schemaWatch.restore(restore.state);
    for (auto it = restore.state.cbegin(); it != restore.state.cend(); ++it)
        if (it.key().startsWith(kWatchKeyPrefix))
            m_expectedWatches.insert(QString::fromUtf8(it.key().mid(int(sizeof kWatchKeyPrefix) - 1)));
    if (!m_tick) {
        m_tick = new QTimer(this);
        connect(m_tick, &QTimer::timeout, this, &PostgresSource::onTick);
    }
    m_tick->start(kTickMs);
    if (!connectAll())
        return;
}

bool PostgresSource::connectAll() {
    disconnectAll();
    setStatus(SourceStatus::State::Connecting, QStringLiteral("connecting to %1").arg(m_described));
    QString error;
    if (!m_sql.open(m_conninfo, false, &error)) {
        enterBackoff(QStringLiteral("Cannot connect to %1: %2").arg(m_described, error));
        return false;
    }
    m_database = m_sql.database();
    const QString blocker = PgCatalog::replicationBlocker(m_sql, m_described);
    if (!blocker.isEmpty()) {
        // Nothing to do until an administrator changes the server; the fallback looks
        // again now and then.
        m_sql.close();
        m_retryAtMs = 0;
        enterFallback(blocker);
        return false;
    }
    if (restoredFromFallback()) {
        // The last run polled or captured: what changed since its last read is read
        // by the switch (the fallback first, then the new slot from its snapshot),
        // once the watches have come again.
        m_sql.close();
        m_retryAtMs = 0;
        enterFallback(QStringLiteral("Logical replication is possible on %1 again; the last run polled or "
                                     "captured, so its last changes are read before streaming starts.")
                          .arg(m_described));
        m_nextReplicationTryMs = nowMs() + kWaitForWatchesMs;
        return false;
    }
    releaseLeftCapture();
    adoptLegacySlot();
    if (!PgCatalog::ensurePublication(m_sql, m_slotName, &error)) {
        m_sql.close();
        setStatus(SourceStatus::State::Error, error);
        return false;
    }
    const PgCatalog::Slot slot = PgCatalog::slot(m_sql, m_slotName, &error);
    if (slot.exists && slot.plugin != QLatin1String("pgoutput")) {
        setStatus(SourceStatus::State::Error,
                  QStringLiteral("Replication slot \"%1\" on %2 uses the plugin %3, not pgoutput: drop it "
                                 "(SELECT pg_drop_replication_slot('%1')) or name another slot.")
                      .arg(m_slotName, m_described, slot.plugin));
        m_sql.close();
        return false;
    }
    if (!m_replication.open(m_conninfo, &error)) {
        enterBackoff(
            QStringLiteral("Cannot open a replication connection to %1: %2").arg(m_described, error));
        return false;
    }
    bool fresh = false;
    if (slot.exists && slot.walStatus == QLatin1String("lost")) {
        startOver(lostSlotReason());
        QString ignored;
        PgCatalog::dropSlot(m_sql, m_slotName, &ignored);
        fresh = true;
    } else if (!slot.exists) {
        if (m_restoredLsn != 0)
            startOver(
                !m_lostReason.isEmpty()
                    ? m_lostReason
                    : QStringLiteral("replication slot \"%1\" was dropped on the server").arg(m_slotName));
        m_lostReason.clear();
        fresh = true;
    }
    if (fresh) {
        quint64 consistent = 0;
        if (!m_replication.createSlot(m_slotName, &consistent, &error)) {
            disconnectAll();
            enterFallback(QStringLiteral("Cannot create replication slot \"%1\" on %2: %3 (raise "
                                         "max_replication_slots, or drop unused slots).")
                              .arg(m_slotName, m_described, error));
            return false;
        }
        m_restoredLsn = m_committedLsn = m_publishedLsn = 0;
    }
    if (!syncPublication(false, &error)) {
        enterBackoff(error);
        return false;
    }
    m_connected = true;
    m_attempts = 0;
    if (m_everConnected)
        ++m_status.reconnects;
    m_everConnected = true;
    // Watches that were live before the connection was lost are live again; those
    // asked for while disconnected start now.
    for (const WatchedTable& t : std::as_const(m_watched))
        Q_EMIT watchReady(id(), t.ns);
    const auto pendingWatches = std::exchange(m_pendingWatches, {});
    m_pendingOptions.clear();
    for (const Namespace& ns : pendingWatches)
        watch(ns, {});
    m_streamDeadlineMs = nowMs() + kWaitForWatchesMs;
    maybeStartStreaming();
    return true;
}

void PostgresSource::releaseLeftCapture() {
    // A switch from capture to the slot removes the triggers once the journal has
    // committed it (checkpointCommitted); a crash in between left them logging every
    // change, with nobody to read or prune the rows. This run streams, so whatever is
    // registered to this reader is left over. Not while this run's own switch waits
    // for its commit: a crash now would still read from capture.
    if (m_retiredFallback)
        return;
    QStringList released;
    QString error;
    if (!PgCapture::release(m_sql, m_reader, &released, &error))
        qCWarning(lcPostgres) << "source" << id()
                              << "cannot remove the capture triggers a previous run left:" << error;
    else if (!released.isEmpty())
        qCInfo(lcPostgres) << "source" << id() << "removed the capture a previous run left on"
                           << released.join(QLatin1String(", "));
}

void PostgresSource::adoptLegacySlot() {
    // Only a journal that has a position or watches of this source can own the old
    // slot; a fresh journal makes its own, and leaves another journal's slot alone.
    const QString legacy = PgSlotName::legacy(id());
    if (m_slotNameSet || m_slotName == legacy || (m_restoredLsn == 0 && m_expectedWatches.isEmpty()))
        return;
    QString error;
    if (PgCatalog::slot(m_sql, m_slotName, &error).exists)
        return;
    const PgCatalog::Slot old = PgCatalog::slot(m_sql, legacy, &error);
    if (!old.exists || old.plugin != QLatin1String("pgoutput"))
        return;
    // A slot cannot be renamed, and a copy could not decode its past: pgoutput reads
    // the publication by name as the catalog was at each change, so a publication made
    // now under the new name does not exist for the WAL the slot still holds.
    qCInfo(lcPostgres) << "source" << id() << "keeps replication slot" << legacy << "(made before slots were"
                       << "named after the journal)";
    m_slotName = legacy;
    m_status.slotName = legacy;
}

void PostgresSource::setLagBytes(qint64 lagBytes) {
    if (m_status.lagBytes == lagBytes)
        return;
    m_status.lagBytes = lagBytes;
    Q_EMIT statusChanged(id(), m_status);
}

void PostgresSource::maybeStartStreaming() {
    if (!m_connected || m_replication.isStreaming())
        return;
    // The stream resumes from the journal's position: a table the last run watched
    // must be watched again before it starts, or its changes in between would be
    // read while nobody wanted them and dropped.
    for (const QString& coll : std::as_const(m_expectedWatches))
        if (!m_watched.contains(coll) && nowMs() < m_streamDeadlineMs)
            return;
    startStreaming();
}

void PostgresSource::startStreaming() {
    QString error;
    if (!m_replication.start(m_slotName, m_committedLsn, m_slotName, &error)) {
        // An invalidated slot shows up here when it was lost after we looked.
        const PgCatalog::Slot again = PgCatalog::slot(m_sql, m_slotName, nullptr);
        if (again.exists && again.walStatus == QLatin1String("lost")) {
            QString ignored;
            PgCatalog::dropSlot(m_sql, m_slotName, &ignored);
            m_lostReason = lostSlotReason();
            connectAll();
            return;
        }
        enterBackoff(QStringLiteral("Cannot start replication from slot \"%1\" on %2: %3")
                         .arg(m_slotName, m_described, error));
        return;
    }
    m_notifier = new QSocketNotifier(qintptr(m_replication.socket()), QSocketNotifier::Read, this);
    connect(m_notifier, &QSocketNotifier::activated, this, &PostgresSource::onReadable);
    m_sinceStatus.start();
    setStatus(SourceStatus::State::Watching,
              QStringLiteral("slot and publication \"%1\"%2").arg(m_slotName, m_identityNote));
    onReadable();
}

QString PostgresSource::lostSlotReason() const {
    return QStringLiteral("the server removed the WAL that replication slot \"%1\" still needed "
                          "(max_slot_wal_keep_size)")
        .arg(m_slotName);
}

void PostgresSource::startOver(const QString& why) {
    // History between the journal's position and now is gone: one gap per watched
    // table, committed with the fresh start so a restart does not repeat it.
    ChangeBatch batch;
    batch.sourceId = id();
    for (const WatchedTable& t : std::as_const(m_watched))
        batch.events.append(
            ChangeEvent::makeGap(id(), t.ns, why + QStringLiteral("; watching again from now")));
    batch.checkpoint.token = tokenFor(0);
    m_gapReason = why + QStringLiteral("; watching again from now");
    qCWarning(lcPostgres) << "source" << id() << ":" << why;
    if (!batch.events.isEmpty())
        publishBatch(batch);
}

void PostgresSource::disconnectAll() {
    if (m_notifier) {
        // Possibly inside its own activated(): deleted once the signal has returned.
        m_notifier->setEnabled(false);
        m_notifier->deleteLater();
        m_notifier = nullptr;
    }
    if (m_readTimer)
        m_readTimer->stop();
    m_replication.close();
    m_sql.close();
    m_connected = false;
    m_inTransaction = false;
    m_transaction.clear();
    m_outgoing.events.clear();
    m_outgoingLsn = 0;
    m_relations.clear();
    // Published but not committed batches will be streamed again from the slot.
    m_publishedLsn = m_committedLsn;
    m_idleLsn = 0;
}

void PostgresSource::enterBackoff(const QString& reason) {
    disconnectAll();
    const double base =
        std::min<double>(m_backoffMaxMs, m_backoffInitialMs * double(1LL << std::min(m_attempts, 20)));
    const double jitter = 1.0 + m_jitter * (QRandomGenerator::global()->generateDouble() * 2.0 - 1.0);
    const qint64 delay = qint64(base * jitter);
    ++m_attempts;
    m_retryAtMs = nowMs() + delay;
    setStatus(SourceStatus::State::Backoff, reason, QDateTime::fromMSecsSinceEpoch(m_retryAtMs));
}

void PostgresSource::onTick() {
    if (!m_started)
        return;
    if (m_fallback) {
        if (m_nextReplicationTryMs != 0 && nowMs() >= m_nextReplicationTryMs)
            tryReplicationAgain();
        return;
    }
    if (!m_connected) {
        if (m_status.state == SourceStatus::State::Backoff && m_retryAtMs && nowMs() >= m_retryAtMs)
            connectAll();
        return;
    }
    if (!m_replication.isStreaming()) {
        maybeStartStreaming();
        if (!m_replication.isStreaming())
            return;
    }
    if (!m_sql.isHealthy()) {
        enterBackoff(QStringLiteral("Lost the connection to %1").arg(m_described));
        return;
    }
    if (m_sinceStatus.elapsed() >= kStatusIntervalMs ||
        (m_committedLsn > m_confirmedSent && m_sinceStatus.elapsed() >= kConfirmGapMs))
        sendStatus(false);
    if (nowMs() - m_lastLagMs >= kLagIntervalMs) {
        m_lastLagMs = nowMs();
        QString error;
        const PgCatalog::Slot slot = PgCatalog::slot(m_sql, m_slotName, &error);
        if (!error.isEmpty() && !m_sql.isHealthy()) {
            enterBackoff(QStringLiteral("Lost the connection to %1: %2").arg(m_described, error));
            return;
        }
        setLagBytes(slot.exists ? std::max<qint64>(-1, slot.lagBytes) : -1);
    }
    // Not before a watch: a snapshot of no schemas would forget the one the checkpoint
    // had, and with it what changed while Tidewatch was closed.
    if (!m_inTransaction && !m_watched.isEmpty() && m_schemaWatch.isDue()) {
        checkSchema(&m_outgoing.events, &m_outgoing.checkpoint);
        flushOutgoing();
    }
}

void PostgresSource::checkpointCommitted(const QByteArray& token) {
    if (m_fallback) {
        m_fallback->checkpointCommitted(token);
        return;
    }
    const quint64 lsn = lsnOf(token);
    if (m_retiredFallback && lsn >= m_switchLsn) {
        // The switch is committed: a restart streams from the slot, and the triggers
        // and changelog rows of capture are no longer needed.
        m_retiredFallback->releaseServerState();
        delete m_retiredFallback;
        m_retiredFallback = nullptr;
    }
    if (lsn <= m_committedLsn)
        return;
    m_committedLsn = lsn;
    if (!m_sinceStatus.isValid() || m_sinceStatus.elapsed() >= kConfirmGapMs)
        sendStatus(false);
}

void PostgresSource::stop() {
    m_started = false;
    if (m_tick)
        m_tick->stop();
    if (m_connected) {
        flushOutgoing(); // what flushSoon() held
        sendStatus(false);
    }
    disconnectAll();
    delete m_fallback;
    m_fallback = nullptr;
    delete m_retiredFallback;
    m_retiredFallback = nullptr;
    m_watched.clear();
    setStatus(SourceStatus::State::Stopped);
}

void PostgresSource::dropReplicationState() {
    const bool wasStarted = m_started;
    if (m_fallback)
        m_fallback->releaseServerState(); // its triggers, when capturing
    if (m_retiredFallback)
        m_retiredFallback->releaseServerState();
    disconnectAll();
    PgConnection conn;
    QString error;
    if (conn.open(m_conninfo, false, &error)) {
        // The server releases the slot a moment after the replication connection
        // closes, and refuses to drop an active one: wait up to 5 s for it.
        for (int attempt = 0; attempt < 100 && PgCatalog::slot(conn, m_slotName, nullptr).active; ++attempt)
            QThread::msleep(50);
        PgCatalog::dropSlot(conn, m_slotName, &error);
        PgCatalog::dropPublication(conn, m_slotName, &error);
        QString ignored; // what a crashed switch left; gone at the next start anyway
        PgCapture::release(conn, m_reader.isEmpty() ? m_slotName : m_reader, nullptr, &ignored);
    }
    m_watched.clear();
    m_started = false;
    if (wasStarted)
        setStatus(SourceStatus::State::Stopped,
                  error.isEmpty() ? QStringLiteral("dropped slot and publication \"%1\"").arg(m_slotName)
                                  : error);
}

} // namespace tw

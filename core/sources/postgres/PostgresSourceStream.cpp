// The stream half of PostgresSource: reading pgoutput from the COPY BOTH connection,
// turning its messages into batches, the standby status updates that confirm what the
// journal committed, and the switch to PgFallback's polling or capture when there is
// no replication. The connection and the slot are in PostgresSource.cpp, the watches in
// PostgresSourceWatches.cpp.

#include "PostgresSource.h"

#include "PgEventMapper.h"
#include "PgFallback.h"
#include "PgPoller.h"

#include <QDateTime>
#include <QLoggingCategory>
#include <QThread>
#include <QTimer>

#include <algorithm>

Q_DECLARE_LOGGING_CATEGORY(lcPostgres)

namespace tw {

namespace {
// A batch leaves at the end of each read of the socket, or at this many events; a
// transaction is never split.
constexpr int kBatchEvents = 4096;
// ... but at most one batch every kFlushGapMs: what arrives sooner after the last one
// waits for the rest of the gap, then leaves together. A walsender short of CPU sends
// a few transactions per read, and one batch (and so one journal commit, one SSE
// write, one status update) for each took more CPU than the rows (15 700 commits for
// 100 000 rows on two loaded cores); a change after a quiet spell still leaves at once.
constexpr qint64 kFlushGapMs = 4;
// After a read that found messages, the socket is left alone for this long before the
// next. The walsender sends each pgoutput message (BEGIN, INSERT, COMMIT) as it
// decodes it, and a read at every arrival woke this thread 2.4 times per row at 6 000
// rows/s: 14 500 wake-ups a second, and a third of this thread's samples were the
// context switch. 1 ms bounds them to about 1 000 a second and adds at most 1 ms.
constexpr int kReadGapMs = 1;
} // namespace

void PostgresSource::onReadable() {
    if (!m_connected)
        return;
    QString error;
    if (!m_replication.consumeInput(&error)) {
        enterBackoff(QStringLiteral("Lost the replication connection to %1: %2").arg(m_described, error));
        return;
    }
    QByteArrayView message;
    bool read = false;
    for (;;) {
        const PgReplication::Read r = m_replication.read(&message, &error);
        if (r == PgReplication::Read::Message) {
            read = true;
            handle(message);
            if (!m_connected)
                return;
            continue;
        }
        if (r == PgReplication::Read::Empty)
            break;
        flushOutgoing();
        enterBackoff(QStringLiteral("The replication stream from %1 ended: %2").arg(m_described, error));
        return;
    }
    flushSoon();
    // Nothing came: the notifier stays on, and a quiet stream costs no wake-up.
    if (!read || !m_notifier)
        return;
    m_notifier->setEnabled(false);
    if (!m_readTimer) {
        m_readTimer = new QTimer(this);
        m_readTimer->setSingleShot(true);
        m_readTimer->setTimerType(Qt::PreciseTimer);
        connect(m_readTimer, &QTimer::timeout, this, [this] {
            if (!m_notifier)
                return;
            m_notifier->setEnabled(true);
            onReadable();
        });
    }
    m_readTimer->start(kReadGapMs);
}

void PostgresSource::flushSoon() {
    if (m_outgoing.events.isEmpty() && m_outgoing.checkpoint.isEmpty())
        return;
    const qint64 since = m_sinceFlush.isValid() ? m_sinceFlush.elapsed() : kFlushGapMs;
    if (since >= kFlushGapMs) {
        flushOutgoing();
        return;
    }
    if (!m_flushTimer) {
        m_flushTimer = new QTimer(this);
        m_flushTimer->setSingleShot(true);
        m_flushTimer->setTimerType(Qt::PreciseTimer);
        connect(m_flushTimer, &QTimer::timeout, this, &PostgresSource::flushOutgoing);
    }
    if (!m_flushTimer->isActive())
        m_flushTimer->start(int(kFlushGapMs - since));
}

void PostgresSource::handle(QByteArrayView copyData) {
    pg::PgCopyMessage copy;
    QString error;
    if (!pg::PgOutputDecoder::decodeCopyData(copyData, &copy, &error)) {
        enterBackoff(error);
        return;
    }
    switch (copy.kind) {
    case pg::PgCopyMessage::Kind::Keepalive:
        m_receivedLsn = std::max(m_receivedLsn, copy.walEnd);
        if (!m_inTransaction && m_outgoing.events.isEmpty() && m_publishedLsn == m_committedLsn)
            m_idleLsn = std::max(m_idleLsn, copy.walEnd);
        if (copy.replyRequested)
            sendStatus(false);
        return;
    case pg::PgCopyMessage::Kind::XLogData: {
        m_receivedLsn = std::max(m_receivedLsn, copy.walStart);
        pg::PgMessage m;
        if (!pg::PgOutputDecoder::decode(copy.payload, &m, &error)) {
            setStatus(SourceStatus::State::Error, error);
            disconnectAll();
            return;
        }
        handleMessage(m);
        return;
    }
    case pg::PgCopyMessage::Kind::Unknown:
        return;
    }
}

void PostgresSource::handleMessage(const pg::PgMessage& m) {
    using Kind = pg::PgMessage::Kind;
    switch (m.kind) {
    case Kind::Begin:
        m_inTransaction = true;
        m_commitTimeMs = pg::pgMicrosToEpochMs(m.timestampUs);
        m_transaction.clear();
        m_transactionState = {};
        return;
    case Kind::Commit: {
        m_inTransaction = false;
        const quint64 end = m.endLsn;
        m_receivedLsn = std::max(m_receivedLsn, end);
        if (end <= m_restoredLsn || end <= m_publishedLsn) {
            // Committed to the journal before (the slot had not been told yet).
            m_transaction.clear();
            m_transactionState = {};
            return;
        }
        // The schema snapshot a Relation message moved goes with this commit, never
        // ahead of it: committed earlier, a replay after a crash would find nothing
        // changed and its schema events would be lost.
        for (auto it = m_transactionState.stateUpserts.cbegin(); it != m_transactionState.stateUpserts.cend();
             ++it) {
            m_outgoing.checkpoint.stateRemovals.removeAll(it.key());
            m_outgoing.checkpoint.stateUpserts.insert(it.key(), it.value());
        }
        m_transactionState = {};
        if (m_transaction.isEmpty()) {
            if (m_outgoing.events.isEmpty() && m_publishedLsn == m_committedLsn)
                m_idleLsn = std::max(m_idleLsn, end);
            return;
        }
        const ClusterTime base{quint32(m_commitTimeMs / 1000), 0};
        for (qsizetype i = 0; i < m_transaction.size(); ++i)
            m_transaction[i].setClusterTime({base.t, quint32(i + 1)});
        m_outgoing.events.append(m_transaction);
        // The token is made once per batch, in flushOutgoing(): a batch of small
        // transactions would otherwise format an LSN for each one.
        m_outgoingLsn = end;
        m_publishedLsn = end;
        m_transaction.clear();
        if (m_outgoing.events.size() >= kBatchEvents)
            flushOutgoing();
        return;
    }
    case Kind::Relation: {
        Relation r;
        r.rel = m.relation;
        r.ns = Namespace{m_database, QString::fromUtf8(m.relation.schema) + QLatin1Char('.') +
                                         QString::fromUtf8(m.relation.name)};
        // The server describes a relation again when its columns changed: the schema
        // events go in this transaction, ahead of the rows that have the new columns.
        QStringList columns;
        for (const pg::PgColumn& c : std::as_const(m.relation.columns))
            columns.append(QString::fromUtf8(c.name));
        const auto known = m_relations.constFind(r.rel.oid);
        QStringList knownColumns;
        if (known != m_relations.constEnd())
            for (const pg::PgColumn& c : std::as_const(known->rel.columns))
                knownColumns.append(QString::fromUtf8(c.name));
        const bool changed = known != m_relations.constEnd()
                                 ? knownColumns != columns
                                 : m_schemaWatch.columnsDiffer(r.ns.coll, columns);
        if (changed && m_inTransaction && m_watched.contains(keyName(r.ns))) {
            waitUntilCatalogShows(r.rel.oid, columns);
            checkSchema(&m_transaction, &m_transactionState);
        }
        m_relations.insert(r.rel.oid, std::move(r));
        return;
    }
    case Kind::Insert:
    case Kind::Update:
    case Kind::Delete: {
        const auto found = m_relations.find(m.relationOid);
        if (found == m_relations.end() || !m_watched.contains(keyName(found->ns)))
            return;
        if (!found->keysResolved)
            PgEventMapper::resolveKeys(*found, m_watched.value(keyName(found->ns)).info.keyColumns);
        m_transaction.append(PgEventMapper::change(id(), *found, m, m_commitTimeMs));
        return;
    }
    case Kind::Truncate:
        for (const quint32 oid : m.truncated) {
            const auto found = m_relations.constFind(oid);
            if (found == m_relations.constEnd() || !m_watched.contains(keyName(found->ns)))
                continue;
            m_transaction.append(PgEventMapper::truncate(id(), found->ns, m_commitTimeMs));
        }
        return;
    case Kind::Origin:
    case Kind::Type:
    case Kind::Message:
    case Kind::Unknown:
        return;
    }
}

void PostgresSource::waitUntilCatalogShows(quint32 oid, const QStringList& columns) {
    // The walsender may send a transaction as soon as its commit record is flushed, a
    // moment before the committing backend leaves the process array and other
    // sessions see it. The catalog read behind the schema events would then still
    // find the old columns, report nothing, and the next schema poll would report the
    // change behind the rows that have it (seen under ASan on a loaded machine). So
    // wait until the catalog shows this Relation message's columns: a few
    // milliseconds at most; past 1 s (the table changed again since, or was dropped)
    // the catalog is read as it is.
    const QString sql = QStringLiteral("SELECT attname FROM pg_attribute WHERE attrelid = %1 AND attnum > 0 "
                                       "AND NOT attisdropped ORDER BY attnum")
                            .arg(oid);
    for (int attempt = 0; attempt < 200; ++attempt) {
        QList<QStringList> rows;
        QString error;
        if (!m_sql.exec(sql, &rows, &error))
            return;
        QStringList names;
        for (const QStringList& row : std::as_const(rows))
            names.append(row.value(0));
        if (names == columns)
            return;
        QThread::msleep(5);
    }
}

void PostgresSource::flushOutgoing() {
    if (m_flushTimer)
        m_flushTimer->stop();
    // Without events, a new schema snapshot still leaves.
    if (m_outgoing.events.isEmpty() && m_outgoing.checkpoint.isEmpty())
        return;
    m_sinceFlush.start();
    if (!m_outgoing.events.isEmpty())
        m_status.lastEventMs = QDateTime::currentMSecsSinceEpoch();
    m_gapReason.clear(); // live again: a watch from now on has lost nothing
    if (m_outgoingLsn != 0)
        m_outgoing.checkpoint.token = tokenFor(std::exchange(m_outgoingLsn, 0));
    publishBatch(m_outgoing);
    m_outgoing.events.clear();
    m_outgoing.checkpoint = {};
}

void PostgresSource::sendStatus(bool replyRequested) {
    if (!m_connected || !m_replication.isStreaming())
        return;
    // Confirm what the journal holds; while nothing is in flight, also what the
    // server skipped past (other tables' transactions), so the slot does not keep
    // WAL that nobody needs.
    quint64 flushed = m_committedLsn;
    if (!m_inTransaction && m_outgoing.events.isEmpty() && m_publishedLsn == m_committedLsn)
        flushed = std::max(flushed, m_idleLsn);
    QString error;
    if (!m_replication.sendStatus(std::max(m_receivedLsn, flushed), flushed, replyRequested, &error)) {
        enterBackoff(QStringLiteral("Lost the replication connection to %1: %2").arg(m_described, error));
        return;
    }
    m_confirmedSent = flushed;
    m_sinceStatus.restart();
}

void PostgresSource::enterFallback(const QString& why) {
    // Polling or capture on an ordinary connection, until a restart finds replication
    // possible; the status keeps `why`, so it says what to change.
    if (m_restoredLsn != 0) {
        // Replication ran before: the changes between its last position and the first
        // poll cannot be read without it. Say so once (the token moves to 0).
        ChangeBatch gap;
        gap.sourceId = id();
        for (const QString& coll : std::as_const(m_expectedWatches))
            gap.events.append(ChangeEvent::makeGap(
                id(), Namespace{m_database, coll},
                QStringLiteral("logical replication is no longer possible (%1); changes since the last one "
                               "read may be missing, and the slot %2 keeps WAL on the server until it is "
                               "dropped")
                    .arg(why, m_slotName)));
        gap.checkpoint.token = tokenFor(0);
        m_restoredLsn = 0;
        publishBatch(gap);
    }
    m_nextReplicationTryMs = QDateTime::currentMSecsSinceEpoch() + m_replicationRetryMs;
    const QString retry = QStringLiteral(" Tidewatch looks again every %1 s and then switches to logical "
                                         "replication by itself, without a restart.")
                              .arg(std::max<qint64>(1, m_replicationRetryMs / 1000));
    m_fallback = new PgFallback(id(), m_reader, m_conninfo, m_described, why + retry, m_restore, this);
    connect(m_fallback, &PgFallback::batchReady, this, [this](const ChangeBatch& b) { publishBatch(b); });
    connect(m_fallback, &PgFallback::statusChanged, this,
            [this](SourceStatus::State state, const QString& reason, const QDateTime& retry) {
                setStatus(state, reason, retry);
            });
    connect(m_fallback, &PgFallback::watchReady, this, &PostgresSource::watchReady);
    connect(m_fallback, &PgFallback::watchFailed, this, &PostgresSource::watchFailed);
    m_fallback->start();
    const auto pending = std::exchange(m_pendingWatches, {});
    for (auto it = pending.cbegin(); it != pending.cend(); ++it)
        m_fallback->watch(it.value(), m_pendingOptions.value(it.key()));
    m_pendingOptions.clear();
}

bool PostgresSource::restoredFromFallback() const {
    qint64 bound = 0;
    if (PgCapture::boundOf(m_restore.token, &bound))
        return true;
    for (auto it = m_restore.state.cbegin(); it != m_restore.state.cend(); ++it)
        if (it.key().startsWith(PgPoller::kStatePrefix))
            return true;
    return false;
}

void PostgresSource::tryReplicationAgain() {
    m_nextReplicationTryMs = QDateTime::currentMSecsSinceEpoch() + m_replicationRetryMs;
    if (!m_fallback->isConnected())
        return; // the fallback is backing off; next time
    QString error;
    if (!m_sql.open(m_conninfo, false, &error))
        return;
    if (!PgCatalog::replicationBlocker(m_sql, m_described).isEmpty()) {
        m_sql.close();
        return;
    }
    if (!switchToReplication(&error)) {
        qCWarning(lcPostgres) << "source" << id() << "cannot switch to logical replication yet:" << error;
        disconnectAll();
        m_watched.clear();
        // A slot made for a switch that failed holds nothing; the next look drops it.
    }
}

bool PostgresSource::switchToReplication(QString* error) {
    // The order makes the switch exact, with neither loss nor repetition:
    //  1. The publication lists the tables before the slot exists: pgoutput decodes
    //     each change with the catalog as it was then, so a table added after the
    //     slot would miss the changes in between.
    //  2. The slot is created with an exported snapshot. Its consistent point C
    //     splits the transactions in two: those committed before C are visible in
    //     the snapshot and never streamed, those after C are streamed and not visible.
    //  3. The fallback's last read runs in that snapshot: a poll sees exactly the
    //     tables as of C, capture reads every changelog row it shows (no xmin bound:
    //     an invisible one belongs to a transaction the slot streams).
    //  4. That read goes to the journal in one batch with the token "lsn:C" and the
    //     removal of the polls' baselines, so a crash before it commits redoes the
    //     switch from the fallback's state (a new slot), and one after resumes the
    //     slot from C.
    //  5. The stream starts at C. Capture's triggers and rows go once the journal
    //     has committed the switch (checkpointCommitted).
    m_database = m_sql.database();
    const QStringList tables = m_fallback->watchedTables();
    adoptLegacySlot();
    if (!PgCatalog::ensurePublication(m_sql, m_slotName, error))
        return false;
    m_watched.clear();
    for (const QString& coll : tables)
        if (!addWatch(Namespace{m_database, coll}, error))
            return false;
    if (!syncPublication(true, error))
        return false;
    // A slot of this name holds no position of this journal (its token is the
    // fallback's): it gives way to one with a snapshot.
    if (PgCatalog::slot(m_sql, m_slotName, error).exists && !PgCatalog::dropSlot(m_sql, m_slotName, error))
        return false;
    if (!m_replication.open(m_conninfo, error))
        return false;
    quint64 consistent = 0;
    QString snapshot;
    if (!m_replication.createSlot(m_slotName, &consistent, error, &snapshot))
        return false;
    ChangeBatch last;
    last.sourceId = id();
    if (!m_fallback->finishAt(snapshot, last, error)) {
        m_replication.close();
        QString ignored;
        PgCatalog::dropSlot(m_sql, m_slotName, &ignored);
        return false;
    }
    last.checkpoint.token = tokenFor(consistent);
    for (const QString& coll : tables) {
        last.checkpoint.stateUpserts.insert(kWatchKeyPrefix + coll.toUtf8(), QByteArray("1"));
        m_expectedWatches.insert(coll);
    }
    qCInfo(lcPostgres) << "source" << id() << "switches to logical replication at"
                       << pg::lsnToString(consistent);
    publishBatch(last);
    // What a later reconnection restores from is now this switch, not the fallback:
    // without this, a dropped replication connection would read the stale fallback
    // state, go back to polling and drop the live slot.
    m_restore.token = last.checkpoint.token;
    m_restore.state.removeIf(
        [](const auto& entry) { return entry.key().startsWith(PgPoller::kStatePrefix); });
    m_retiredFallback = std::exchange(m_fallback, nullptr);
    m_switchLsn = consistent;
    m_restoredLsn = m_committedLsn = m_publishedLsn = consistent;
    m_connected = true;
    m_attempts = 0;
    m_everConnected = true;
    {
        // Schema snapshots from here on, as for a watch of the stream.
        ChangeBatch schema;
        schema.sourceId = id();
        checkSchema(&schema.events, &schema.checkpoint);
        if (!schema.events.isEmpty() || !schema.checkpoint.isEmpty())
            publishBatch(schema);
    }
    startStreaming();
    return true;
}

} // namespace tw

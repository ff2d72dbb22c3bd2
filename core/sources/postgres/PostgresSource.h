#pragma once

#include "PgCatalog.h"
#include "PgConnection.h"
#include "PgEventMapper.h"
#include "PgOutputDecoder.h"
#include "PgReplication.h"
#include "PgSchemaWatch.h"
#include "PgSlotName.h"
#include "sources/Source.h"

#include <QElapsedTimer>
#include <QHash>
#include <QSet>

class QSocketNotifier;
class QTimer;

namespace tw {

class PgFallback;

// Watches a PostgreSQL database through logical replication with the built-in
// pgoutput plugin (protocol version 1: no server extension, so managed servers work
// too). Tables are its collections: namespace "<database>.<schema>.<table>" (db the
// database, coll "schema.table").
//
// One publication and one slot per journal and source, named by slotName() (shown
// in the status, see PgSlotName): the publication lists exactly the watched tables
// and is altered as watches come and go; the slot keeps the position. A slot of the
// name older versions gave ("tidewatch_<source id>") that holds the journal's
// position is used on, so an upgrade neither loses nor repeats a change.
//
// Exactly once: the events of one transaction leave in one batch whose checkpoint
// token is "lsn:<commit end LSN>"; the slot's confirmed position is advanced
// (standby status update) only in checkpointCommitted(), after the journal commit.
// At start the stream resumes from the token (the server never goes before its
// confirmed position), and a transaction at or before the token is skipped, so a
// crash of either side loses nothing and repeats nothing.
//
// A lost connection backs off (0.5 s doubling to 30 s, +/-20 % jitter) and resumes
// from the last committed LSN. A slot the server invalidated
// (max_slot_wal_keep_size) or removed while Tidewatch had a position gives one `gap`
// per watched table, a new slot and a watch from now. Without wal_level=logical or
// the REPLICATION attribute, or when no slot can be made, the status says what to
// change and PgFallback polls or captures the tables instead; every
// kReplicationRetryMs it looks again, and once replication is possible it switches
// over by itself (tryReplicationAgain() says how, without loss or repetition).
class PostgresSource : public Source {
    Q_OBJECT
public:
    // uri: postgresql://, postgres:// or "key=value" conninfo. Parses only; connects
    // at start().
    static PostgresSource* create(const QString& id, const QString& uri, QString* error);
    ~PostgresSource() override;

    // PgSlotName::forJournal(journalId(), id()) from start() on, unless set; the same
    // name for the publication. Set before start().
    QString slotName() const { return m_slotName; }
    void setSlotName(const QString& name);
    // Backoff schedule: first delay, cap, and the jitter fraction (0.2 = +/-20 %).
    void setBackoff(int initialMs, int maxMs, double jitter = 0.2);
    // In fallback, how often to look whether replication has become possible: 60 s,
    // as a setting changed or a grant given takes an administrator anyway, and each
    // look is one query on a fresh connection. TIDEWATCH_PG_REPLICATION_RETRY_MS
    // overrides it (the tests).
    static constexpr int kReplicationRetryMs = 60000;
    // The checkpoint token for a commit LSN, and back (0 when it is not one).
    static QByteArray tokenFor(quint64 lsn);
    static quint64 lsnOf(const QByteArray& token);

public Q_SLOTS:
    void start(const tw::SourceRestore& restore) override;
    void watch(const tw::Namespace& ns, const tw::WatchOptions& options) override;
    void unwatch(const tw::Namespace& ns) override;
    void listNamespaces(const QString& db) override;
    void stop() override;
    void checkpointCommitted(const QByteArray& token) override;
    // Drops the slot and the publication (a forgotten slot keeps WAL forever). The
    // source stops watching.
    void dropReplicationState();
    void releaseServerState() override { dropReplicationState(); }

private:
    struct WatchedTable {
        Namespace ns;
        QString qualified; // "schema"."table"
        PgCatalog::Table info;
    };
    using Relation = PgRelationInfo;
    // State keys of the watched tables, so a restart knows them before watch() comes.
    static constexpr char kWatchKeyPrefix[] = "pgwatch\x1f";

    PostgresSource(const QString& id, const QString& conninfo, const QString& described);
    bool connectAll();
    void disconnectAll();
    void enterBackoff(const QString& reason);
    void maybeStartStreaming();
    void startStreaming();
    QString lostSlotReason() const;
    void onReadable();
    void onTick();
    void handle(QByteArrayView copyData);
    void handleMessage(const pg::PgMessage& m);
    void flushOutgoing();
    // flushOutgoing() now, or when kFlushGapMs have passed since the last batch.
    void flushSoon();
    void sendStatus(bool replyRequested);
    bool addWatch(const Namespace& ns, QString* error);
    bool syncPublication(bool dropOthers, QString* error);
    void startOver(const QString& why);
    // Keeps using a slot of the legacy name that holds this journal's position.
    void adoptLegacySlot();
    void setLagBytes(qint64 lagBytes);
    // Compares the catalog of the watched tables' schemas with the last snapshot
    // (PgSchemaWatch) and appends the schema events; a watched name made again is
    // added to the publication again.
    void checkSchema(ChangeEventList* events, SourceCheckpoint* checkpoint);
    // Until the ordinary connection's catalog shows `oid` with `columns` (at most 1 s).
    void waitUntilCatalogShows(quint32 oid, const QStringList& columns);
    QString keyName(const Namespace& ns) const { return ns.coll; }
    void enterFallback(const QString& why);
    // In fallback: replication possible now? Then the switch.
    void tryReplicationAgain();
    bool switchToReplication(QString* error);
    // The journal holds what a fallback left (a capture bound, poll baselines).
    bool restoredFromFallback() const;
    // Streaming from the slot: removes capture triggers and changelog rows a run of this
    // source and journal left behind.
    void releaseLeftCapture();

    QString m_conninfo;
    QString m_described; // the conninfo without its password, for messages
    QString m_slotName;
    // The slot's name as start() made it, before any legacy slot was adopted: what
    // capture registers under (PgCapture), the same in every run of this journal.
    QString m_reader;
    bool m_slotNameSet = false; // setSlotName() was called: no naming after the journal
    QString m_database;
    PgConnection m_sql;
    PgReplication m_replication;
    QSocketNotifier* m_notifier = nullptr; // owned (child); remade with each connection
    QTimer* m_tick = nullptr;              // owned (child): status updates, lag, retries
    QTimer* m_readTimer = nullptr;         // owned (child): the end of a pause between reads
    bool m_started = false;
    bool m_connected = false;
    bool m_everConnected = false; // a later connection counts as a reconnect

    QHash<QString, WatchedTable> m_watched; // by coll ("schema.table")
    QHash<QString, Namespace> m_pendingWatches;
    QHash<quint32, Relation> m_relations;
    PgSchemaWatch m_schemaWatch;

    // Positions. restored: the journal's. committed: the journal's latest commit, what
    // the slot may confirm. published: the last transaction handed to the engine.
    quint64 m_restoredLsn = 0;
    quint64 m_committedLsn = 0;
    quint64 m_publishedLsn = 0;
    quint64 m_receivedLsn = 0;
    quint64 m_idleLsn = 0; // a keepalive's position while nothing was pending
    quint64 m_confirmedSent = 0;
    QElapsedTimer m_sinceStatus;

    // The transaction being received, and whole transactions not yet published.
    bool m_inTransaction = false;
    qint64 m_commitTimeMs = 0;
    ChangeEventList m_transaction;
    SourceCheckpoint m_transactionState; // the schema snapshot m_transaction's DDL moved
    ChangeBatch m_outgoing;
    QTimer* m_flushTimer = nullptr; // owned (child): the end of flushSoon()'s wait
    QElapsedTimer m_sinceFlush;     // since the last batch left
    quint64 m_outgoingLsn = 0;      // the end of m_outgoing's last transaction (0: none yet)

    int m_backoffInitialMs = 500;
    int m_backoffMaxMs = 30000;
    double m_jitter = 0.2;
    int m_attempts = 0;
    qint64 m_retryAtMs = 0;
    qint64 m_lastLagMs = 0;
    QString m_identityNote;
    // Set when history was lost at start: a watch asked for before the stream is live
    // again gets its gap.
    QString m_gapReason;
    QString m_lostReason;            // why the slot is being made again
    QSet<QString> m_expectedWatches; // colls watched, as the journal's state has them
    qint64 m_streamDeadlineMs = 0;

    // Without logical replication: polling or capture mode, and what it starts from.
    PgFallback* m_fallback = nullptr; // owned (child)
    qint64 m_replicationRetryMs = kReplicationRetryMs;
    qint64 m_nextReplicationTryMs = 0;
    // The fallback replaced by the stream, kept until the journal has committed the
    // switch (m_switchLsn): then its triggers and changelog rows go.
    PgFallback* m_retiredFallback = nullptr; // owned (child)
    quint64 m_switchLsn = 0;
    SourceRestore m_restore;
    QHash<QString, WatchOptions> m_pendingOptions; // by the key of m_pendingWatches
};

} // namespace tw

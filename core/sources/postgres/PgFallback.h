#pragma once

#include "PgCapture.h"
#include "PgConnection.h"
#include "PgPoller.h"
#include "sources/Source.h"

#include <QDateTime>
#include <QHash>
#include <QObject>

#include <memory>

class QSocketNotifier;
class QTimer;

namespace tw {

// What a PostgreSQL source does when logical replication cannot be used (wal_level
// not logical, a role without REPLICATION, no slot to be had): each watched table is
// polled (PgPoller: by primary key and row hash, or incrementally by the watch's
// pollField), or, with the watch's captureMode, captured by triggers (PgCapture),
// woken by NOTIFY. It has its own ordinary SQL connection and lives on the source's
// thread; the source forwards its slots here and its signals out.
//
// The status keeps the reason replication could not be used, so it always says what
// to change (the setting, the grant) to get the exact stream. A lost connection is
// retried with the poll, doubling to 30 s.
class PgFallback : public QObject {
    Q_OBJECT
public:
    // why: the reason replication is not used, a sentence naming what to change.
    // reader: what capture registers its tables under (PgCapture), the source's slot name.
    PgFallback(const QString& sourceId, const QString& reader, const QString& conninfo,
               const QString& described, const QString& why, const SourceRestore& restore,
               QObject* parent = nullptr);
    ~PgFallback() override;

    // 500 ms: a change shows up within half a second, and a poll of a 10 000-row
    // table (one SELECT) is far below that. A watch's pollIntervalMs lowers it.
    static constexpr int kDefaultIntervalMs = 500;

    void start();
    void watch(const Namespace& ns, const WatchOptions& options);
    void unwatch(const Namespace& ns);
    // Drops the capture triggers it installed (the connection is being removed, with
    // what it left on the server); the changelog table stays for other sources.
    void releaseServerState();
    void stop();
    void checkpointCommitted(const QByteArray& token);

    // The switch to logical replication (PostgresSource::tryReplicationAgain).
    bool isConnected() const { return m_connected; }
    // The tables polled or captured ("schema.table").
    QStringList watchedTables() const;
    // The last read, in `snapshot` (the new slot's exported one): what changed up to
    // the slot's consistent point, with the state removals that forget the polls'
    // baselines, into `out`. Polls and NOTIFY stop; the connection stays open for
    // releaseServerState() once the journal has committed `out`.
    bool finishAt(const QString& snapshot, ChangeBatch& out, QString* error);

Q_SIGNALS:
    // A batch for the source to publish.
    void batchReady(const tw::ChangeBatch& batch);
    void statusChanged(tw::SourceStatus::State state, const QString& reason, const QDateTime& nextRetry);
    void watchReady(const QString& sourceId, const tw::Namespace& ns);
    void watchFailed(const QString& sourceId, const tw::Namespace& ns, const QString& error);

private:
    bool connectNow();
    // Closes the connection and stops watching its socket; the watches stay.
    void closeConnection();
    void lose(const QString& error);
    void pollAll();
    void readCapture();
    void onNotified();
    void showStatus(const QString& problem = {});
    int intervalMs() const;
    bool addWatch(const Namespace& ns, const WatchOptions& options, QString* error);

    QString m_sourceId;
    QString m_conninfo;
    QString m_described;
    QString m_why;
    SourceRestore m_restore;
    PgConnection m_conn;
    QTimer* m_timer = nullptr;             // owned (child): the polls, and retries
    QSocketNotifier* m_notifier = nullptr; // owned (child): NOTIFY on m_conn's socket
    QString m_database;
    bool m_connected = false;
    bool m_listening = false;
    int m_failures = 0;
    QHash<QString, std::shared_ptr<PgPoller>> m_pollers; // by coll ("schema.table")
    QHash<QString, Namespace> m_captured;
    QHash<QString, WatchOptions> m_pending; // asked for while disconnected, by coll
    QHash<QString, int> m_intervals;        // each watch's poll interval, by coll
    PgCapture m_capture;
};

} // namespace tw

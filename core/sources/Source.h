#pragma once

#include "model/ChangeBatch.h"

#include <QDateTime>
#include <QJsonObject>
#include <QObject>

#include <memory>

namespace tw {

class BodyCodec;

// What the user sees of a source: its state and, when it is not simply watching, why.
struct SourceStatus {
    enum class State { Stopped, Connecting, Watching, Polling, Backoff, Error };
    State state = State::Stopped;
    QString reason;      // a sentence a person can act on
    QDateTime nextRetry; // Backoff: when the next attempt happens
    int reconnects = 0;
    qint64 lastEventMs = 0;
    // What the source keeps on the server and how far it is behind there: a
    // PostgreSQL replication slot's name, and the WAL bytes it holds that Tidewatch
    // has not confirmed yet (-1: unknown, or no such thing).
    QString slotName;
    qint64 lagBytes = -1;
    // A NATS gateway: the watch list its ingest published (NatsWatchList: the ingest's
    // sources, their states and watches), so the gateway's API can tell what is watched
    // upstream. Empty for every other source.
    QJsonObject upstream;

    static QString stateName(State state);
    QString stateName() const { return stateName(state); }
};

// One collection/table/view the source offers.
struct NamespaceInfo {
    Namespace ns;
    QString kind; // "collection", "table", "view", "system", "database"
};

// Per-watch options. Sources ignore the ones that do not apply to them.
struct WatchOptions {
    // A subscription that can see the watch, as the Engine routes it: through which
    // part of the watched scope (the scope itself, or a narrower namespace inside it)
    // and with which filter. A source that filters on the server (MongoDB's $match)
    // reads only what some reader wants.
    struct Reader {
        Namespace ns;
        Bson filter;                    // the subscription's filter query, over the change event
        bool matchesEverything = false; // the filter lets every event through
        bool schemaOnly = false;        // the subscription takes schema changes only (isSchemaOperation)
        friend bool operator==(const Reader& a, const Reader& b) = default;
    };

    // MongoDB
    QString fullDocument =
        QStringLiteral("updateLookup"); // "default", "updateLookup", "whenAvailable", "required"
    QString fullDocumentBeforeChange = QStringLiteral("off"); // "off", "whenAvailable", "required"
    bool showExpandedEvents = true; // DDL events (createIndexes, modify, …) where the server has them
    int batchSize = 0;
    int maxAwaitTimeMs = 500;
    Bson match; // an explicit server-side $match (absent: none); wins over `readers`
    // Set by the Engine: every subscription that can see this scope, each once. Empty:
    // nobody subscribed, and nothing is narrowed.
    QList<Reader> readers;
    // Polling fallback: a monotonic field for incremental polls ("updatedAt")
    QString pollField;
    // Polling fallbacks that poll on a timer (PostgreSQL): milliseconds between polls;
    // 0 takes the source's default
    int pollIntervalMs = 0;
    // SQLite: install triggers and read a changelog (exact before/after images)
    bool captureMode = false;
};

// A connection to one database deployment. A Source lives on its own QThread (the
// Engine moves it there); every slot runs on that thread and may block it, bounded
// by socket and await timeouts so stop() returns within a second. Results leave by
// signals carrying value types.
class Source : public QObject {
    Q_OBJECT
public:
    explicit Source(const QString& id, QObject* parent = nullptr);
    ~Source() override;

    QString id() const { return m_id; }
    SourceStatus status() const { return m_status; }

    // `uri` with any password replaced by "****" (SourceUri::redacted()).
    static QString redactUri(const QString& uri);

    // The codec the journal stores documents with: publishBatch() prepares every event
    // with it. Set once by the Engine before the source moves to its thread, and never
    // again, so the source's thread reads it without a lock. Without one, events leave
    // rendered but uncompressed.
    void setBodyCodec(std::shared_ptr<const BodyCodec> codec);
    // The id of the journal this source's events go to (Journal::id()), set before
    // the source moves to its thread; a source names what it leaves on a server after
    // it (a replication slot) with it.
    void setJournalId(const QString& id) { m_journalId = id; }
    QString journalId() const { return m_journalId; }
    // The source's events keep the source ids they had upstream (a NATS gateway's), so
    // every subscription, whatever source it names, counts among its readers. Fixed at
    // construction: the Engine reads it from its own thread.
    bool relaysSourceIds() const { return m_relaysSourceIds; }

public Q_SLOTS:
    // Called once on the source's thread before any watch, with what the journal holds.
    virtual void start(const tw::SourceRestore& restore) = 0;
    virtual void watch(const tw::Namespace& ns, const tw::WatchOptions& options) = 0;
    virtual void unwatch(const tw::Namespace& ns) = 0;
    virtual void listNamespaces(const QString& db) = 0; // db empty: top level
    // Stops every watch and releases the connection. Must return within a second.
    virtual void stop() = 0;
    // The Engine committed everything up to `token`; a source may now discard what it
    // kept to be able to resume before it (e.g. SQLite capture-mode changelog rows).
    virtual void checkpointCommitted(const QByteArray& token) { Q_UNUSED(token); }
    // Removes what the source left on the server for its own use (a replication slot
    // keeps WAL until it is dropped), when the user asked for it while removing the
    // source. Called before stop(); nothing by default.
    virtual void releaseServerState() {}

Q_SIGNALS:
    // Events with the checkpoint valid after the last of them. The Engine commits
    // both in one transaction.
    void batchReady(const tw::ChangeBatch& batch);
    void statusChanged(const QString& sourceId, const tw::SourceStatus& status);
    void namespacesListed(const QString& sourceId, const QString& db,
                          const QList<tw::NamespaceInfo>& namespaces, const QString& error);
    // A watch is live: every change committed to the database from now on will be
    // reported (the baseline is taken, or the change stream is open).
    void watchReady(const QString& sourceId, const tw::Namespace& ns);
    // A watch could not start (unknown table, no such collection, bad options).
    void watchFailed(const QString& sourceId, const tw::Namespace& ns, const QString& error);

protected:
    // The one way a batch leaves a source: prepares its events (ChangeEvent::prepare,
    // with the body codec) on this thread, then emits batchReady.
    void publishBatch(const ChangeBatch& batch);
    void setStatus(SourceStatus::State state, const QString& reason = {}, const QDateTime& nextRetry = {});
    SourceStatus m_status;
    bool m_relaysSourceIds = false; // set in a subclass's constructor only

private:
    QString m_id;
    std::shared_ptr<const BodyCodec> m_codec; // shared with the Engine and the journal
    QString m_journalId;
};

} // namespace tw

Q_DECLARE_METATYPE(tw::SourceStatus)
Q_DECLARE_METATYPE(tw::NamespaceInfo)
Q_DECLARE_METATYPE(tw::WatchOptions)

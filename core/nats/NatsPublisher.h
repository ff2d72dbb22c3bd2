#pragma once

#include "journal/JournalReader.h"
#include "model/ChangeBatch.h"
#include "nats/NatsAckWindow.h"
#include "nats/NatsCommitHook.h"
#include "nats/NatsWatchList.h"
#include "sources/nats/NatsBackoff.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <QByteArray>
#include <QJsonObject>
#include <QObject>
#include <QString>
#include <thread>
#include <vector>

namespace tw {

class Engine;

// Publishes every committed event to a NATS JetStream stream, exactly once and in seq
// order, on its own thread ("nats-publish"), so a slow or absent server never holds up
// the journal or the SSE clients: the publisher falls behind and catches up.
//
// Each message is the event's rendered JSON (the bytes SSE sends) on the subject
// NatsSubject::forEvent() names, with the headers Tidewatch-Journal (the journal's id),
// Tidewatch-Seq and Tidewatch-Operation, and Nats-Msg-Id "<journal id>:<seq>" so
// JetStream drops a repeated publish. Events come from the committed batches while the
// publisher keeps up, and from the journal (its own JournalReader) when it is behind;
// events pruned before they were published become one `gap` message.
//
// Exactly once across crashes: the highest seq JetStream acknowledged is committed to
// the journal as the checkpoint of the pseudo source checkpointSource() (a name no
// source id can take), and on every (re)connection the stream's newest message of this
// journal is read too: publishing resumes after the higher of the two, so nothing is
// repeated even past JetStream's duplicate window. Beside the stream it keeps the
// ingest's watch list for the gateways (NatsWatchList).
class NatsPublisher : public QObject {
    Q_OBJECT
public:
    struct Options {
        QString url; // nats://HOST:PORT
        QString stream = QStringLiteral("TIDEWATCH");
        // Limits of a stream the publisher creates; an existing stream keeps its own.
        // 0: no limit.
        qint64 maxAgeSeconds = 0;
        qint64 maxBytes = 0;
        qint64 maxMessages = 0;
        // How a stream the publisher creates is stored. On files (the default) it
        // survives a restart of nats-server. In memory, nats-server 2.9 answers in a
        // fraction of the time once a consumer reads the stream (bench/README.md, "On a
        // quiet machine"), and the stream is gone when nats-server stops: the publisher
        // makes it again and goes on after its last acknowledged seq, and a gateway
        // reads the new stream from its start, with a `gap` for what it had not read.
        bool memoryStorage = false;
        // Messages published and not yet acknowledged, at most. 1 024 keeps about 1 MiB
        // of 1 KiB orders in flight, which is what one acknowledgement round trip on
        // loopback needs to stay busy.
        int window = 1024;
        // Reconnection backoff (NatsBackoff): doubles from the first to the last.
        int initialBackoffMs = NatsBackoff::kInitialMs;
        int maxBackoffMs = 30000;
    };

    enum class State { Stopped, Connecting, Publishing, Backoff };

    struct Status {
        State state = State::Stopped;
        QString reason;        // why it backs off
        qint64 ackedSeq = 0;   // highest journal seq JetStream holds
        qint64 lagEvents = 0;  // committed and not yet acknowledged
        double lagSeconds = 0; // how long the oldest of those has waited
        qint64 published = 0;  // messages acknowledged since start
        qint64 gaps = 0;       // gap messages sent for pruned events
        qint64 rejected = 0;   // events JetStream refused, sent as a `gap` stub instead
        int reconnects = 0;
    };

    // `engine` is not owned, must be started and must outlive us.
    NatsPublisher(Engine* engine, const Options& options, QObject* parent = nullptr);
    ~NatsPublisher() override; // stops

    // nats://HOST:PORT (or HOST:PORT); false with a message naming what is wrong.
    static bool checkUrl(const QString& url, QString* error);
    // Opens the journal reader and starts the thread, which connects in the background.
    bool start(QString* error = nullptr);
    // Waits for the window in flight (at most a few seconds), commits the acknowledged
    // seq and joins the thread. Before the engine stops.
    void stop();

    Status status() const; // any thread
    static QString stateName(State state);
    // For /v1/health ("publisher") and /metrics; any thread.
    QJsonObject healthJson() const;
    QByteArray metricsText() const;
    QString checkpointSource() const { return QStringLiteral("~nats/") + m_options.stream; }

Q_SIGNALS:
    // Emitted on the thread the publisher lives in, queued from wherever the state changed.
    void stateChanged(tw::NatsPublisher::State state, const QString& reason);

private:
    struct Nats; // the libnats connection and JetStream context, publisher thread only
    // What libnats hands the acknowledgement handler: who, and which connection.
    struct AckContext {
        NatsPublisher* publisher;
        quint64 generation;
    };

    void run();
    void onCommitted(const tw::CommittedBatch& batch); // engine thread
    bool connectToServer(QString* why);
    void disconnect();
    bool ensureStream(QString* why);
    bool resync(QString* why);
    bool publishWindow(QString* why);
    // Up to `limit` consecutive committed events from seq `from` on (from the buffer, or
    // the journal when the buffer does not start there).
    ChangeEventList take(qint64 from, int limit, QString* why);
    // Reads and renders the window after `from - 1` while JetStream acknowledges the one
    // in flight (m_prefetched).
    void prefetch(qint64 from);
    void storeCheckpoint(bool force);
    void setState(State state, const QString& reason = {});
    bool waitFor(int ms); // false when stopping
    // libnats' thread. rejected: JetStream answered with an error code for the message.
    void acknowledged(quint64 generation, qint64 seq, bool ok, bool rejected, const QString& error);

    Engine* m_engine; // not owned
    Options m_options;
    QByteArray m_journalId;
    QByteArray m_streamName;
    std::unique_ptr<Nats> m_nats;
    std::unique_ptr<NatsCommitHook> m_commits; // while started
    JournalReader m_reader;                    // publisher thread
    std::thread m_thread;
    std::atomic<bool> m_stopping{false};

    // Publisher thread only.
    qint64 m_next = 1; // the next journal seq to publish
    qint64 m_storedSeq = 0;
    qint64 m_storedAtMs = 0;
    NatsWatchList::Writer m_watchList; // the ingest's sources and watches, for the gateways
    quint64 m_generation = 0;          // of the current connection
    // Every connection's context, kept until the publisher goes: libnats may run the
    // handler of a closed connection once more, and it must find its context alive.
    std::vector<std::unique_ptr<AckContext>> m_ackContexts;
    // An event JetStream refused: the next window sends its stub instead.
    qint64 m_rejectedSeq = 0;
    qint64 m_streamMaxMessageBytes = 0; // the stream's max_msg_size, read at resync; 0: none
    bool m_storageWarned = false;       // that an existing stream's storage is not the one asked for
    QString m_rejectedWhy;
    // The next window, taken and rendered while the last was being acknowledged; used
    // only when it starts at m_next (a failed or partly refused window moves m_next back).
    struct Prepared {
        ChangeEventList events;
        QList<QByteArray> json; // events[i].toJson()
    };
    Prepared m_prefetched;

    // Shared with the engine thread (committed batches) and libnats' thread (acks).
    mutable std::mutex m_mutex;
    std::condition_variable m_wake;                      // work for the publisher thread, or stop
    std::condition_variable m_acked;                     // an acknowledgement of the window in flight
    std::deque<ChangeEvent> m_buffer;                    // committed, not yet taken; bounded
    std::deque<std::pair<qint64, qint64>> m_commitTimes; // (last seq of a batch, ms it arrived)
    qint64 m_head = 0;                                   // the journal's last committed seq
    NatsAckWindow m_window;                              // in flight
    Status m_status;
};

} // namespace tw

Q_DECLARE_METATYPE(tw::NatsPublisher::State)

#pragma once

#include "sources/nats/NatsBackoff.h"
#include "sources/Source.h"

#include <memory>
#include <QByteArray>
#include <QElapsedTimer>
#include <QHash>
#include <QList>
#include <QSet>
#include <QString>

class QTimer;
// libnats' message (nats/nats.h), named here so the header needs none of libnats.
typedef struct __natsMsg natsMsg;

namespace tw {

// A gateway's one source: the JetStream stream a Tidewatch ingest publishes to
// (NatsPublisher). Because it is a Source, the gateway's Engine, journal, replay, long
// poll, retention, gaps and HTTP API are the same code as on a single node.
//
// Each message's body is the event's rendered JSON; it is parsed back into a
// ChangeEvent (Extended JSON through libbson) that keeps the ingest's seq from the
// Tidewatch-Seq header, and the batch asks the journal to keep those seqs
// (ChangeBatch::keepSeqs), so one event has one SSE id on every gateway. A seq that
// jumps (the stream's retention removed messages this gateway never read) becomes a gap
// event at the seq before the jump; a gap message of the ingest stays one.
//
// The consumer is an ordered push consumer (libnats, synchronous), read from this
// source's thread in slices of at most 100 ms so stop() returns in time. It starts
// after the stream sequence committed with the last batch (the checkpoint token), so a
// restart resumes where the journal stands, losing and repeating nothing. Only the
// messages of one ingest journal are taken: the first one met, kept in the token. A
// consumer that hands over nothing for 3 s while the server says it has delivered or
// still holds more (a lost flow-control answer, a consumer the server forgot) is
// replaced by a new one after the last message read, without waiting for libnats'
// missed-heartbeat reset (about 15 s).
//
// The ingest's watch list (its sources, states and watches: NatsWatchList) is read from
// its key-value bucket at connection and about every second after, into
// SourceStatus::upstream, for the gateway's /v1/sources, /v1/health and the 404 for an
// unwatched namespace.
//
// Narrowing (NatsGatewayNarrowing.cpp): the consumer takes only the subjects its
// readers (WatchOptions::readers) need: NatsSubject::filterFor() of their namespaces,
// one filter subject, as nats-server 2.9 has no more per consumer. Beside it, the
// events wider than one collection (NatsSubject::wide(): a database's or the whole
// deployment's, the ingest's own gaps), which no such filter can name, are looked up
// by stream sequence (one direct get per pass) and merged in stream order, so a gap of
// the ingest that concerns everyone is never filtered away. When the readers change
// the consumer is made again after the last stream sequence read, and the next batch
// tells the journal what is read from there on (ChangeBatch::narrowings), so a replay
// from before it ends in a gap instead of missing events in silence.
//
// URI: nats://HOST:PORT[/STREAM] (stream TIDEWATCH by default).
class NatsGatewaySource : public Source {
    Q_OBJECT
public:
    static NatsGatewaySource* create(const QString& id, const QString& uri, QString* error);
    ~NatsGatewaySource() override;

    // Splits nats://HOST:PORT[/STREAM]; false with a message naming what is wrong.
    static bool parseUri(const QString& uri, QString* url, QString* stream, QString* error);

public Q_SLOTS:
    void start(const tw::SourceRestore& restore) override;
    void watch(const tw::Namespace& ns, const tw::WatchOptions& options) override;
    void unwatch(const tw::Namespace& ns) override;
    void listNamespaces(const QString& db) override;
    void stop() override;

private:
    struct Nats; // connection, JetStream context and subscription; this thread only

    NatsGatewaySource(const QString& id, const QString& url, const QString& stream);
    bool connectToServer(QString* why);
    // (Re)creates the ordered consumer, after m_streamSeq (or from the start).
    bool subscribe(QString* why);
    // Reads the stream's info: one made again since m_streamSeq was read is read from its
    // start (m_streamRenewed). False with why when it cannot be read.
    bool checkStreamIsTheOneRead(QString* why);
    // What a failed request about the stream means (a natsStatus), in a sentence.
    QString streamError(int status) const;
    // Replaces a consumer that delivers nothing while the stream has more.
    void checkStalled();
    void disconnect();
    void pump();
    void retryLater(const QString& why);
    // One message: appended to `events` (or skipped: another journal's, already held).
    void take(natsMsg* msg, ChangeEventList* events);
    QByteArray checkpointToken() const;

    // NatsGatewayNarrowing.cpp.
    struct Delivered {
        natsMsg* msg = nullptr; // owned by pump(), which destroys the pass's messages
        quint64 streamSeq = 0;
        quint64 consumerSeq = 0;
    };
    enum class Lookup { Found, None, Failed };
    bool isNarrowed() const;
    // The filter the readers need now, and what it reads as the journal records it.
    QByteArray wantedFilter() const;
    QByteArray readingOf(const QByteArray& filter) const;
    // Re-creates the consumer when the wanted filter changed, and records what is read
    // for the next batch.
    void applyFilter();
    // Hands `delivered` (this pass's messages, in order) to take() with the wide
    // messages before them merged in; pump() destroys them afterwards.
    void takeInOrder(const QList<Delivered>& delivered, ChangeEventList* events);
    // The next message on a wide subject from m_wideFrom on, into m_wide.
    Lookup lookUpWide();
    void takeWide(ChangeEventList* events);
    // The consumer has handed over everything it matched so far.
    bool isCaughtUp();
    // Whether the stream may have removed messages after stream sequence `readBefore`
    // and before the one take() is given (retention): the seq jump is then a loss.
    bool lostBefore(quint64 readBefore) const;
    // Reads the ingest's watch list (NatsWatchList) into m_status.upstream when it changed.
    void readWatchList();

    QString m_url;
    QString m_stream;
    QByteArray m_streamName;
    std::unique_ptr<Nats> m_nats;
    QTimer* m_pumpTimer = nullptr;  // child; runs while subscribed
    QTimer* m_retryTimer = nullptr; // child
    // At most 10 s between tries (12.5 with the jitter): once the server is back, the
    // gateway's clients wait no longer than that for what it missed.
    NatsBackoff m_backoff{10000};
    bool m_stopped = false;

    // What the journal holds (from the checkpoint token, then from each batch sent).
    QByteArray m_journalId;       // the ingest journal followed; empty until the first message
    qint64 m_lastSeq = 0;         // the ingest seq of the last event sent
    quint64 m_streamSeq = 0;      // the stream sequence of the last message read
    qint64 m_streamCreated = 0;   // when the stream m_streamSeq is in was made (ns since 1970); 0: unknown
    bool m_streamRenewed = false; // read again from a new stream's start: its first event may follow a gap
    QList<Namespace> m_watches;
    QHash<Namespace, QList<WatchOptions::Reader>> m_readers; // by watched scope
    QByteArray m_filter;                                     // the consumer's filter subject
    QList<SourceNarrowing> m_narrowings;                     // for the next batch
    bool m_filterDeclared = false;      // since start(): the journal's record may be older
    natsMsg* m_wide = nullptr;          // owned: the next wide message, not yet taken
    quint64 m_wideSeq = 0;              // its stream sequence
    quint64 m_wideFrom = 1;             // no wide message before this stream sequence is untaken
    quint64 m_consumerSeq = 0;          // the consumer sequence of the last message read
    QString m_lookupError;              // why the last lookUpWide() or stream info failed
    quint64 m_streamFirstSeq = 0;       // the stream's first sequence, asked once per pass
    quint64 m_passLast = 0;             // the last stream sequence in hand this pass
    quint64 m_takingStreamSeq = 0;      // the stream sequence of the message take() is given
    QByteArray m_declaredReading;       // what the journal was last told
    QSet<QString> m_seen;               // "db\ncoll" of the events read, for listNamespaces()
    QSet<QByteArray> m_foreignJournals; // other journals met in the stream (warned once)
    QElapsedTimer m_watchListTimer;     // since the watch list was last read
    quint64 m_watchListRevision = 0;
    QElapsedTimer m_sinceMessage; // since the consumer last delivered a message
    quint64 m_stalledAt = 0;      // the delivered sequence a consumer was last replaced at
};

} // namespace tw

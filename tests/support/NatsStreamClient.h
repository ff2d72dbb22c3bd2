#pragma once

#include <QByteArray>
#include <QList>
#include <QPair>
#include <QString>

typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;

namespace tw::testsupport {

// One message of the stream as a consumer sees it.
struct NatsStreamMessage {
    QByteArray subject;
    QByteArray data;
    QByteArray journal;   // Tidewatch-Journal
    QByteArray seqHeader; // Tidewatch-Seq
    QByteArray operation; // Tidewatch-Operation
    QByteArray msgId;     // Nats-Msg-Id
    qint64 seq() const { return seqHeader.toLongLong(); }
};

// The suites' own JetStream client, apart from Tidewatch's: it makes, changes and reads
// the stream an ingest publishes to (TIDEWATCH unless told otherwise) as an operator's
// `nats` tool or a consumer of the stream would. It connects on first use and again
// after the server went away.
class NatsStreamClient {
public:
    explicit NatsStreamClient(const QString& url, const QByteArray& stream = QByteArrayLiteral("TIDEWATCH"));
    ~NatsStreamClient();

    NatsStreamClient(const NatsStreamClient&) = delete;
    NatsStreamClient& operator=(const NatsStreamClient&) = delete;

    void close();

    // The messages the stream holds; -1 while the server or the stream is not there.
    qint64 messageCount();
    // Makes the stream (on all of Tidewatch's subjects, file storage) before an ingest
    // starts, which then uses it as it is. 0: the server's default. Empty on success.
    QString createStream(qint32 maxMsgSize, qint64 duplicatesMs);
    // Changes the stream's max_msg_size while it is in use. Empty on success.
    QString setMaxMsgSize(qint32 bytes);
    // "file" or "memory", how the stream is stored; empty when it cannot be read.
    QString storage();
    // The stream's duplicate window in ms; -1 when it cannot be read.
    qint64 duplicateWindowMs();
    // Returns once the stream has forgotten every Nats-Msg-Id it stored so far, so that a
    // message published again from now on is stored again: a probe on a subject of its
    // own is published, then published again with the same id until the stream stores
    // the copy instead of dropping it (the ids expire in the order they came). Both are
    // deleted again. Empty on success, else why not within `timeoutMs`.
    QString waitOutDuplicateWindow(int timeoutMs);
    // Every message, through an ordered push consumer from the first, as a gateway
    // reads them.
    QList<NatsStreamMessage> readAll();
    // Deletes every consumer of the stream, as an operator's `nats consumer rm` or a
    // server that lost them would; the count deleted, -1 when the server cannot be asked.
    int deleteConsumers();
    // Publishes one message with these headers to the stream, as another publisher
    // would. Empty on success, else why not.
    QString publish(const QByteArray& subject, const QList<QPair<QByteArray, QByteArray>>& headers,
                    const QByteArray& data);
    // The filter subject of each consumer of the stream (empty: none); empty when the
    // server cannot be asked.
    QList<QByteArray> consumerFilters();

private:
    bool open();

    QByteArray m_url;
    QByteArray m_stream;
    natsConnection* m_nc = nullptr;
    jsCtx* m_js = nullptr;
};

} // namespace tw::testsupport

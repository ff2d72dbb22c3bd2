#pragma once

#include "filter/EventShape.h"
#include "http/HttpAdapter.h"
#include "model/ChangeBatch.h"

#include <memory>
#include <QHash>
#include <QObject>

class QTimer;

namespace tw {

class ApiReply;
class EngineCalls;
class JournalReader;

// GET /v1/subscriptions/{id}/changes?after=&limit=&timeout=: answers at once from the
// journal when there is something after the cursor, otherwise parks the request until a
// matching commit or the timeout. Everything here runs on the HTTP thread.
class LongPolls : public QObject {
    Q_OBJECT
public:
    // None of the pointers is owned: they belong to the HttpApi, the parent, and
    // outlive this.
    LongPolls(EngineCalls* engineCalls, JournalReader* reader, const ApiReply* reply, QObject* parent);
    ~LongPolls() override;

    void handle(const HttpRequest& request, HttpResponder&& out, const QString& subscriptionId);
    void onCommitted(const tw::CommittedBatch& batch);
    // The subscription is gone: its parked polls are closed.
    void closeSubscription(const QString& subscriptionId);
    // Shutdown: closes every parked poll.
    void closeAll();
    int waitingCount() const { return int(m_waiters.size()); }

private:
    struct Waiter {
        quint64 id = 0;
        QString subscriptionId;
        EventShape shape;
        int limit = 100;
        qint64 cursor = 0;
        HttpResponder out;
        QTimer* timer = nullptr; // owned
        QByteArray origin;
    };

    void answer(quint64 waiterId, const ChangeEventList& events, qint64 next, bool hasMore);
    // {"changes":[gap?, events…], "next":"<cursor>", "hasMore":bool}; the events' JSON is
    // spliced in as rendered, in the waiter's shape (EventShape::namedJson).
    static QByteArray changesJson(const ChangeEvent* gap, const ChangeEventList& events,
                                  const EventShape& shape, qint64 next, bool hasMore);

    EngineCalls* m_engineCalls; // not owned
    JournalReader* m_reader;    // not owned; the HTTP thread's replay connection
    const ApiReply* m_reply;    // not owned
    QHash<quint64, std::shared_ptr<Waiter>> m_waiters;
    quint64 m_nextId = 1;
};

} // namespace tw

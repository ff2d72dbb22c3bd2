#pragma once

#include "filter/EventShape.h"

#include "JsonRpc.h"

#include "engine/Subscription.h"
#include "journal/JournalReader.h"
#include "model/ChangeBatch.h"

#include <functional>
#include <memory>
#include <QHash>
#include <QJsonObject>
#include <QObject>

class QTimer;

namespace tw::mcp {

// poll_changes: answers at once from the journal when something matching follows the
// poll token, otherwise parks the call until a matching commit or its timeout. Runs on
// the session's thread with a JournalReader of its own (the HTTP thread's long polls
// are another front end's).
//
// A poll token is the last seq a client was given for one subscription: the next poll
// starts after it, so a client that loops on it sees every change once, across
// restarts, and a token below retention yields a gap change first.
class McpPolls : public QObject {
    Q_OBJECT
public:
    using Done = std::function<void(const JsonRpc::Error* error, const QJsonObject& result)>;

    explicit McpPolls(QObject* parent = nullptr);
    ~McpPolls() override;

    bool open(const QString& journalPath, QString* error);

    // Answers through `done` (now or later) unless cancel(key) comes first.
    void poll(const Subscription& subscription, qint64 after, int timeoutMs, const QString& key, Done done);
    void cancel(const QString& key);
    // The subscription is gone: its parked polls answer with subscription_active false.
    void closeSubscription(const QString& subscriptionId);
    void onCommitted(const tw::CommittedBatch& batch);
    int waitingCount() const { return int(m_waiters.size()); }

    // Opaque to clients: base64url of {"s": subscription id, "q": seq}.
    static QString token(const QString& subscriptionId, qint64 seq);
    // False with a message when `token` is not one of ours or belongs to another
    // subscription.
    static bool parseToken(const QString& token, const QString& subscriptionId, qint64* seq, QString* error);
    // One change as poll_changes gives it: type, resource_type, resource_id, version,
    // timestamp, old_data/new_data (with data), event (in the subscription's shape: its
    // projection, or keys only without data). resource_id and the data come from the
    // event as committed, whatever the projection keeps.
    static QJsonObject renderChange(const ChangeEvent& event, bool includeData, const EventShape& shape);

private:
    struct Waiter {
        QString key;
        QString subscriptionId;
        qint64 cursor = 0;
        int limit = 100;
        bool includeData = true;
        EventShape shape;
        QTimer* timer = nullptr; // owned (deleted with the waiter)
        Done done;
    };
    struct View {
        int limit = 100;
        bool includeData = true;
        EventShape shape;
    };
    static View viewOf(const Subscription& subscription);
    static QJsonObject answer(const QString& subscriptionId, const ChangeEvent* gap,
                              const ChangeEventList& events, const View& view, qint64 cursor, bool hasMore,
                              bool active);
    void finish(const QString& key, const ChangeEventList& events, qint64 cursor, bool hasMore, bool active);

    JournalReader m_reader;
    QHash<QString, std::shared_ptr<Waiter>> m_waiters; // by request key
};

} // namespace tw::mcp

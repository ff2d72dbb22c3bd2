#pragma once

#include "engine/Subscription.h"

#include <QHash>
#include <QStringList>

namespace tw {

// Routes committed events to the subscriptions whose scope and filter match.
// Subscriptions whose filter has a top-level equality on documentKey._id (or another
// equality predicate) are found through hash indexes keyed by the value's bytes, so a
// million exact-match subscriptions cost one hash look-up per indexed path per event;
// the rest are evaluated one by one. Single-threaded: owned by the Engine thread.
class SubscriptionIndex {
public:
    void insert(const Subscription& subscription);
    bool remove(const QString& id);
    void clear();
    int size() const;
    const Subscription* find(const QString& id) const;
    QList<Subscription> all() const;

    // Ids of the subscriptions that match `event` (finalized or not), in no set order.
    QStringList route(const ChangeEvent& event) const;

private:
    struct Impl;
    std::shared_ptr<Impl> m_impl;
    Impl& impl();
    const Impl* cimpl() const { return m_impl.get(); }
};

} // namespace tw

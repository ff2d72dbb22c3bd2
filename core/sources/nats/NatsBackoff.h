#pragma once

#include <algorithm>
#include <QRandomGenerator>

namespace tw {

// How long the publisher (NatsPublisher) and a gateway (NatsGatewaySource) wait before
// connecting again: from the first delay doubling up to a maximum of their own, each
// with ±25 % jitter, so that many gateways that lost one server do not all come back
// in the same instant.
class NatsBackoff {
public:
    // Half a second: a server restarted on purpose is back within one or two tries.
    static constexpr int kInitialMs = 500;

    explicit NatsBackoff(int maxMs, int initialMs = kInitialMs)
        : m_initialMs(initialMs)
        , m_maxMs(std::max(initialMs, maxMs))
        , m_nextMs(initialMs) {}

    // After a successful connection: the next wait is the first again.
    void reset() { m_nextMs = m_initialMs; }
    // The wait before the next try, with its jitter; the one after is twice as long.
    int next() {
        const double jitter = 0.75 + 0.5 * QRandomGenerator::global()->generateDouble();
        const int delay = int(m_nextMs * jitter);
        m_nextMs = std::min(m_nextMs * 2, m_maxMs);
        return delay;
    }

private:
    int m_initialMs;
    int m_maxMs;
    int m_nextMs;
};

} // namespace tw

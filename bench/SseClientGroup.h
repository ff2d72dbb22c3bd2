#pragma once

// The benchmarks' SSE load generator: many raw-socket SSE connections on one epoll
// thread, which time each event's arrival against its commit. bench_sse runs groups in
// a child process, bench_nats in its own process next to the gateways it measures.

#include <QByteArray>
#include <QList>

#include <atomic>
#include <vector>

namespace tw::bench {

qint64 monoNs(); // CLOCK_MONOTONIC, the clock every commit stamp is taken with

// Raises this process's soft descriptor limit to its hard limit, and returns it: a
// benchmark with thousands of sockets then needs no `ulimit -n` before it.
qint64 raiseDescriptorLimit();
int openDescriptors(); // this process's, from /proc/self/fd

// Latency histogram in 10 µs buckets up to 10 s (2 s was too short for the runs a
// loaded machine kept behind: their p99 was only "at least 2 s").
struct Histogram {
    static constexpr qint64 kBucketNs = 10000;
    std::vector<qint64> buckets = std::vector<qint64>(1000000, 0);
    qint64 count = 0;
    qint64 maxNs = 0;
    void add(qint64 ns);
    void merge(const Histogram& o);
    double percentileMs(double p) const;
};

// N SSE connections on one thread with epoll: the client side must cost far less than
// the server it measures (a QTcpSocket per client doubled the CPU of the whole run).
//
// Connections are opened without blocking, at most Options::connectWave at a time (a
// connection counts until its response headers arrive): 19 900 blocking connect()s one
// after another got only 4 248 clients live within two minutes, and all of them at once
// would overflow the server's listen backlog (4 096), whose dropped SYNs are only
// retried after a second and then two, four…
class SseClientGroup {
public:
    struct Options {
        int count = 0;
        quint16 port = 0;
        // One request per connection, or one for all.
        QList<QByteArray> requests;
        // Each client's Last-Event-ID, or empty (all from 0).
        QList<qint64> lastIds;
        // Commit time (monoNs) by seq, or null: no latency.
        const qint64* commitNs = nullptr;
        qint64 expected = 0; // the last seq, or with !checkIds the number of events
        // Every client must see exactly the ids after its Last-Event-ID, up to `expected`.
        bool checkIds = false;
        int connectWave = 500;
    };

    struct Conn {
        int fd = -1;
        QByteArray partial;
        bool connecting = false;
        bool headersDone = false;
        bool skipData = false; // the data line of a ready or gap message
        qint64 received = 0;
        qint64 lastId = 0;    // its Last-Event-ID until the first event
        qint64 pendingId = 0; // the id line of the message being read
        qint64 outOfOrder = 0;
    };

    explicit SseClientGroup(Options options);
    void run(const std::atomic<bool>& stop);
    qint64 outOfOrder() const;

    std::vector<qint64> worstBySeq; // slowest receipt of each event, ns; run()'s thread
    Histogram histogram;            // run()'s thread; read after it returns
    std::atomic<int> connected{0};  // TCP connected, request sent
    std::atomic<int> failed{0};     // connect() refused or reset, never retried
    std::atomic<int> subscribed{0}; // response headers received
    std::atomic<int> ready{0};      // Tidewatch's `ready`: caught up and live
    std::atomic<int> complete{0};   // every event received
    // Read after run() returns.
    qint64 delivered = 0;
    qint64 firstNs = 0; // first and last receipt of an event
    qint64 lastNs = 0;

private:
    void startConnects(int ep);
    void onWritable(int ep, Conn& c, quint64 index);
    void close(int ep, Conn& c);
    void onRead(Conn& c, const char* data, qsizetype size);
    void onLine(Conn& c, const char* line, qsizetype len, qint64 now);
    void onEventId(Conn& c, qint64 id, qint64 now);

    Options m_options;
    bool m_checkIds;
    std::vector<Conn> m_conns;
    int m_next = 0;     // the next connection to open
    int m_inFlight = 0; // opened, response headers not yet received
};

} // namespace tw::bench

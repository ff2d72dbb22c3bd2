#include "SseClientGroup.h"

#include <QDir>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>

namespace tw::bench {

qint64 monoNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

qint64 raiseDescriptorLimit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
            std::perror("setrlimit(RLIMIT_NOFILE)");
    }
    return qint64(limit.rlim_cur);
}

int openDescriptors() {
    return int(QDir(QStringLiteral("/proc/self/fd")).entryList(QDir::Files | QDir::System).size());
}

void Histogram::add(qint64 ns) {
    ns = std::max<qint64>(0, ns);
    buckets[size_t(std::min<qint64>(ns / kBucketNs, qint64(buckets.size()) - 1))]++;
    ++count;
    maxNs = std::max(maxNs, ns);
}

void Histogram::merge(const Histogram& o) {
    for (size_t i = 0; i < buckets.size(); ++i)
        buckets[i] += o.buckets[i];
    count += o.count;
    maxNs = std::max(maxNs, o.maxNs);
}

double Histogram::percentileMs(double p) const {
    const qint64 target = qint64(double(count) * p);
    qint64 seen = 0;
    for (size_t i = 0; i < buckets.size(); ++i) {
        seen += buckets[i];
        if (seen > target)
            return double(i + 1) * kBucketNs / 1e6;
    }
    return double(maxNs) / 1e6;
}

SseClientGroup::SseClientGroup(Options options)
    : m_options(std::move(options))
    , m_checkIds(m_options.checkIds || m_options.commitNs) {}

void SseClientGroup::run(const std::atomic<bool>& stop) {
    const int ep = epoll_create1(0);
    m_conns.resize(size_t(m_options.count));
    startConnects(ep);
    std::vector<epoll_event> events(256);
    std::vector<char> buffer(256 * 1024);
    while (!stop.load(std::memory_order_relaxed)) {
        const int n = ::epoll_wait(ep, events.data(), int(events.size()), 50);
        for (int k = 0; k < n; ++k) {
            const quint64 index = events[size_t(k)].data.u64;
            Conn& c = m_conns[size_t(index)];
            if (c.fd < 0)
                continue;
            if (c.connecting) {
                onWritable(ep, c, index);
                continue;
            }
            const ssize_t got = ::recv(c.fd, buffer.data(), buffer.size(), 0);
            if (got <= 0) {
                if (got == 0 || (errno != EAGAIN && errno != EINTR))
                    close(ep, c);
                continue;
            }
            const bool hadHeaders = c.headersDone;
            onRead(c, buffer.data(), got);
            if (!hadHeaders && c.headersDone) {
                --m_inFlight;
                startConnects(ep);
            }
        }
    }
    for (Conn& c : m_conns)
        if (c.fd >= 0)
            ::close(c.fd);
    ::close(ep);
}

void SseClientGroup::startConnects(int ep) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(m_options.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    while (m_next < m_options.count && m_inFlight < m_options.connectWave) {
        const int i = m_next++;
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            std::fprintf(stderr, "socket() for client %d failed: %s\n", i, strerror(errno));
            failed.fetch_add(1);
            continue;
        }
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
            std::fprintf(stderr, "connect() for client %d failed: %s\n", i, strerror(errno));
            ::close(fd);
            failed.fetch_add(1);
            continue;
        }
        Conn& c = m_conns[size_t(i)];
        c.fd = fd;
        c.connecting = true;
        c.lastId = m_options.lastIds.isEmpty() ? 0 : m_options.lastIds.at(i);
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.u64 = quint64(i);
        ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        ++m_inFlight;
    }
}

void SseClientGroup::onWritable(int ep, Conn& c, quint64 index) {
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
        std::fprintf(stderr, "connect() for client %llu failed: %s\n", static_cast<unsigned long long>(index),
                     strerror(error));
        failed.fetch_add(1);
        close(ep, c);
        --m_inFlight;
        startConnects(ep);
        return;
    }
    c.connecting = false;
    const QByteArray& request = m_options.requests.at(m_options.requests.size() == 1 ? 0 : qsizetype(index));
    // A few hundred bytes into an empty socket buffer: the kernel takes them whole.
    const ssize_t sent = ::send(c.fd, request.constData(), size_t(request.size()), MSG_NOSIGNAL);
    Q_UNUSED(sent);
    connected.fetch_add(1);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = index;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
}

void SseClientGroup::close(int ep, Conn& c) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
    if (!c.headersDone && !c.connecting) {
        // Closed before its headers: it no longer holds a place in the wave.
        --m_inFlight;
        startConnects(ep);
    }
}

// Lines are parsed where recv() put them; only a line cut by the end of a read is
// copied (into `partial`). Appending every read to a buffer and removing the parsed
// front made the client process copy each byte twice more than the kernel did, and
// it shares the two cores with the server it measures.
void SseClientGroup::onRead(Conn& c, const char* data, qsizetype size) {
    const qint64 now = monoNs();
    if (!c.headersDone) {
        c.partial.append(data, size);
        const qsizetype end = c.partial.indexOf("\r\n\r\n");
        if (end < 0)
            return;
        c.headersDone = true;
        subscribed.fetch_add(1);
        const QByteArray rest = c.partial.mid(end + 4);
        c.partial.clear();
        if (!rest.isEmpty())
            onRead(c, rest.constData(), rest.size());
        return;
    }
    const char* pos = data;
    const char* const stop = data + size;
    if (!c.partial.isEmpty()) {
        const char* nl = static_cast<const char*>(memchr(pos, '\n', size_t(stop - pos)));
        if (!nl) {
            c.partial.append(pos, stop - pos);
            return;
        }
        c.partial.append(pos, nl - pos);
        onLine(c, c.partial.constData(), c.partial.size(), now);
        c.partial.clear();
        pos = nl + 1;
    }
    while (pos < stop) {
        const char* nl = static_cast<const char*>(memchr(pos, '\n', size_t(stop - pos)));
        if (!nl) {
            c.partial.append(pos, stop - pos);
            break;
        }
        onLine(c, pos, nl - pos, now);
        pos = nl + 1;
    }
}

void SseClientGroup::onLine(Conn& c, const char* line, qsizetype len, qint64 now) {
    if (len == 0)
        return;
    if (len > 5 && memcmp(line, "data:", 5) == 0) {
        if (c.skipData) {
            // A ready or gap message: its id is a position, not an event.
            c.skipData = false;
            c.pendingId = 0;
            return;
        }
        if (c.pendingId)
            onEventId(c, std::exchange(c.pendingId, 0), now);
        // Counted on data lines so nchan (whose ids are not ours) counts alike.
        ++c.received;
        ++delivered;
        if (firstNs == 0)
            firstNs = now;
        lastNs = now;
        // With ids checked a client is complete at the last id, wherever it began.
        if (m_checkIds ? c.lastId == m_options.expected : c.received == m_options.expected)
            complete.fetch_add(1);
    } else if (len > 4 && memcmp(line, "id: ", 4) == 0) {
        if (!m_checkIds)
            return;
        qint64 id = 0;
        for (qsizetype i = 4; i < len && line[i] >= '0' && line[i] <= '9'; ++i)
            id = id * 10 + (line[i] - '0');
        c.pendingId = id;
    } else if (len >= 12 && memcmp(line, "event: ready", 12) == 0) {
        ready.fetch_add(1);
        c.skipData = true;
    } else if (len >= 10 && memcmp(line, "event: gap", 10) == 0) {
        c.skipData = true;
    }
}

void SseClientGroup::onEventId(Conn& c, qint64 id, qint64 now) {
    if (id <= 0 || id > m_options.expected)
        return;
    if (id != c.lastId + 1)
        ++c.outOfOrder;
    c.lastId = id;
    const qint64 committed = m_options.commitNs ? m_options.commitNs[id] : 0;
    if (committed > 0) {
        histogram.add(now - committed);
        if (size_t(id) >= worstBySeq.size())
            worstBySeq.resize(size_t(m_options.expected) + 1, 0);
        worstBySeq[size_t(id)] = std::max(worstBySeq[size_t(id)], now - committed);
    }
}

qint64 SseClientGroup::outOfOrder() const {
    qint64 n = 0;
    for (const Conn& c : m_conns)
        n += c.outOfOrder;
    return n;
}

} // namespace tw::bench

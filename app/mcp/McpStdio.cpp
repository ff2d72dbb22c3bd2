#include "McpStdio.h"

#include <QSocketNotifier>

#include <cerrno>
#include <unistd.h>

namespace tw::mcp {

McpStdio::McpStdio(int inFd, int outFd, QObject* parent)
    : QObject(parent)
    , m_in(inFd)
    , m_out(outFd) {}

McpStdio::~McpStdio() = default;

void McpStdio::start() {
    m_notifier = new QSocketNotifier(m_in, QSocketNotifier::Read, this);
    connect(m_notifier, &QSocketNotifier::activated, this, &McpStdio::onReadable);
}

void McpStdio::onReadable() {
    // 64 KiB a wake-up: the notifier fires again while more is there, so a 4 MiB line
    // does not hold the event loop (and the engine's deliveries) for long.
    char chunk[65536];
    const ssize_t n = ::read(m_in, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        m_notifier->setEnabled(false);
        if (!m_buffer.isEmpty() && m_skipping < 0)
            Q_EMIT lineReceived(std::exchange(m_buffer, {}));
        Q_EMIT closed();
        return;
    }
    m_buffer.append(chunk, n);
    takeLines();
}

void McpStdio::takeLines() {
    qsizetype start = 0;
    while (true) {
        const qsizetype newline = m_buffer.indexOf('\n', start);
        if (newline < 0)
            break;
        const qsizetype length = newline - start;
        if (m_skipping >= 0) {
            const qint64 total = m_skipping + length;
            m_skipping = -1;
            Q_EMIT lineTooLong(total);
        } else if (length > maxLineBytes()) {
            Q_EMIT lineTooLong(length);
        } else {
            QByteArray line = m_buffer.mid(start, length);
            if (line.endsWith('\r'))
                line.chop(1);
            if (!line.trimmed().isEmpty())
                Q_EMIT lineReceived(line);
        }
        start = newline + 1;
    }
    m_buffer.remove(0, start);
    if (m_skipping >= 0) {
        m_skipping += m_buffer.size();
        m_buffer.clear();
    } else if (m_buffer.size() > maxLineBytes()) {
        m_skipping = m_buffer.size();
        m_buffer.clear();
    }
}

bool McpStdio::write(const QByteArray& message) {
    const char* data = message.constData();
    qsizetype left = message.size();
    while (left > 0) {
        const ssize_t n = ::write(m_out, data, size_t(left));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        left -= n;
    }
    return true;
}

} // namespace tw::mcp

#pragma once

#include <QByteArray>
#include <QObject>

class QSocketNotifier;

namespace tw::mcp {

// The MCP stdio transport: reads newline-delimited messages from one descriptor and
// writes them to another. Lines over maxLineBytes() are skipped whole (up to their
// newline) and reported, so one bad client message never costs the session.
class McpStdio : public QObject {
    Q_OBJECT
public:
    // The descriptors stay open after this is destroyed: they are the process's.
    McpStdio(int inFd, int outFd, QObject* parent = nullptr);
    ~McpStdio() override;

    // 4 MiB: the limit; the largest poll_changes answer (1 000 changes of full
    // documents) stays far below it, and a line past it is refused before it is parsed.
    static constexpr qint64 maxLineBytes() { return 4 * 1024 * 1024; }

    void start();
    // Writes one message (ending with a newline) and flushes it.
    bool write(const QByteArray& message);

Q_SIGNALS:
    void lineReceived(const QByteArray& line);
    void lineTooLong(qint64 bytes);
    void closed(); // end of input: the client went away

private:
    void onReadable();
    void takeLines();

    int m_in;
    int m_out;
    QSocketNotifier* m_notifier = nullptr; // child
    QByteArray m_buffer;
    qint64 m_skipping = -1; // bytes of an over-long line skipped so far; -1: not skipping
};

} // namespace tw::mcp

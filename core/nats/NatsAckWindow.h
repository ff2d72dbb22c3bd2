#pragma once

#include <QString>
#include <QtGlobal>

#include <vector>

namespace tw {

// The messages in flight and what JetStream answered for each. A window belongs to
// one connection (its generation); libnats may still deliver an answer for a
// message of an earlier connection after the window was opened again for the same
// seqs, and that answer must count for nothing: a late ack would mark a seq stored
// that the new connection has not had acknowledged. Not thread-safe: NatsPublisher
// guards it with its mutex.
class NatsAckWindow {
public:
    enum class Answer : char { Pending, Acked, Failed };
    void open(quint64 generation, std::vector<qint64> seqs);
    void clear() { open(m_generation, {}); }
    // False when the answer is not for this window (another generation, another seq).
    bool answer(quint64 generation, qint64 seq, bool ok, bool rejected, const QString& error);
    bool isComplete() const; // every message answered
    // How many messages from the start were acknowledged, without a hole.
    size_t ackedPrefix() const;
    qint64 seqAt(size_t i) const { return m_seqs[i]; }
    size_t size() const { return m_seqs.size(); }
    // The first failure in seq order: its text, and whether JetStream refused
    // that message itself (a JetStream error code, e.g. over the stream's
    // max_msg_size) rather than the connection failing.
    const QString& error() const { return m_error; }
    bool isRejectionAt(size_t i) const { return m_failedAt == i && m_rejection; }

private:
    quint64 m_generation = 0;
    std::vector<qint64> m_seqs; // ascending
    std::vector<Answer> m_answers;
    QString m_error;
    size_t m_failedAt = 0; // the first failed message; size() when none
    bool m_rejection = false;
};

} // namespace tw

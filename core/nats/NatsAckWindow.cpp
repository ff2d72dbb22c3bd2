#include "NatsAckWindow.h"

#include <algorithm>

namespace tw {

void NatsAckWindow::open(quint64 generation, std::vector<qint64> seqs) {
    m_generation = generation;
    m_seqs = std::move(seqs);
    m_answers.assign(m_seqs.size(), Answer::Pending);
    m_error.clear();
    m_failedAt = m_seqs.size();
    m_rejection = false;
}

bool NatsAckWindow::answer(quint64 generation, qint64 seq, bool ok, bool rejected, const QString& error) {
    if (generation != m_generation)
        return false; // from a connection given up on
    const auto it = std::lower_bound(m_seqs.cbegin(), m_seqs.cend(), seq);
    if (it == m_seqs.cend() || *it != seq)
        return false; // from a window given up on
    const size_t i = size_t(it - m_seqs.cbegin());
    if (m_answers[i] != Answer::Pending)
        return false;
    m_answers[i] = ok ? Answer::Acked : Answer::Failed;
    if (!ok && i < m_failedAt) {
        m_failedAt = i;
        m_error = error;
        m_rejection = rejected;
    }
    return true;
}

bool NatsAckWindow::isComplete() const {
    return std::none_of(m_answers.cbegin(), m_answers.cend(), [](Answer a) { return a == Answer::Pending; });
}

size_t NatsAckWindow::ackedPrefix() const {
    size_t i = 0;
    while (i < m_answers.size() && m_answers[i] == Answer::Acked)
        ++i;
    return i;
}

} // namespace tw

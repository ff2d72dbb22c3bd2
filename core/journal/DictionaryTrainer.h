#pragma once

#include <QByteArray>
#include <QList>

#include <future>

namespace tw {

// Trains a journal's compression dictionary: samples of the first documents stored, a
// dictionary trained from them on a background thread, held until the journal has
// committed it (only then is it used; see BodyCodec::use).
//
// Not thread-safe: owned and used by the Journal, on the Engine thread; only the
// training itself runs on a thread of its own.
class DictionaryTrainer {
public:
    DictionaryTrainer() = default;
    DictionaryTrainer(const DictionaryTrainer&) = delete;
    DictionaryTrainer& operator=(const DictionaryTrainer&) = delete;

    // Forgets samples, attempts and a dictionary not yet committed. `sampling`: the journal
    // has no dictionary yet, so documents are sampled from now on.
    void restart(bool sampling);
    // Waits for a training still running and drops what it trains (the journal closes).
    void stop();

    bool isSampling() const { return m_sampling; }
    bool isTraining() const { return m_training.valid(); }
    // Takes a document as it is stored; once there are enough, training starts.
    void sample(const QByteArray& stored);
    // The dictionary trained and not yet committed (empty: none). `wait`: for a training
    // still running.
    QByteArray pendingDictionary(bool wait);
    // The pending dictionary is committed: nothing is pending any more.
    void committed() { m_pending.clear(); }

private:
    QList<QByteArray> m_samples;
    qsizetype m_sampleBytes = 0;
    bool m_sampling = false;
    int m_attempts = 0;
    std::future<QByteArray> m_training;
    QByteArray m_pending; // trained, not yet committed
};

} // namespace tw

#include "DictionaryTrainer.h"

#include "JournalLog.h"
#include "model/BodyCodec.h"

#include <QString>

#include <chrono>
#include <utility>

namespace tw {

namespace {

// Dictionary training: samples of the first documents stored, up to this many or this
// many bytes (zstd wants about a hundred times the dictionary's size). Documents below
// BodyCodec::kMinSize are neither sampled nor compressed.
constexpr int kSampleCount = 2000;
constexpr qsizetype kSampleBytes = 2 * 1024 * 1024;
constexpr int kTrainingAttempts = 3;

} // namespace

void DictionaryTrainer::restart(bool sampling) {
    m_pending.clear();
    m_samples.clear();
    m_sampleBytes = 0;
    m_attempts = 0;
    m_sampling = sampling;
}

void DictionaryTrainer::stop() {
    if (m_training.valid())
        m_training.wait();
    m_training = {};
}

void DictionaryTrainer::sample(const QByteArray& stored) {
    if (stored.size() < BodyCodec::kMinSize || BodyCodec::isFrame(stored))
        return;
    m_samples.append(stored);
    m_sampleBytes += stored.size();
    if (m_samples.size() < kSampleCount && m_sampleBytes < kSampleBytes)
        return;
    m_sampling = false;
    ++m_attempts;
    // About a tenth of a second of CPU: off the writer's thread.
    m_training = std::async(std::launch::async, [samples = std::exchange(m_samples, {})] {
        QString error;
        QByteArray dictionary = BodyCodec::train(samples, &error);
        if (dictionary.isEmpty())
            qCInfo(lcJournal).noquote()
                << "no compression dictionary from" << samples.size() << "documents:" << error;
        return dictionary;
    });
    m_sampleBytes = 0;
}

// A finished training's dictionary moves to m_pending, which the next append commits. A
// failed one starts sampling again, a few times.
QByteArray DictionaryTrainer::pendingDictionary(bool wait) {
    if (m_training.valid() &&
        (wait || m_training.wait_for(std::chrono::seconds(0)) == std::future_status::ready)) {
        m_pending = m_training.get();
        if (m_pending.isEmpty() && m_attempts < kTrainingAttempts)
            m_sampling = true;
    }
    return m_pending;
}

} // namespace tw

#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <QString>

struct sqlite3;

namespace tw {

// Copies the WAL back into the main file on its own thread and connection. Every
// journal byte is written twice, once to the WAL at commit and once to the main file
// here; with the second copy (and its fsyncs) off the writer's thread, group commit
// runs about twice as fast on two cores. PASSIVE checkpoints never block the writer.
//
// Owned by the Journal, which stops it (joining its thread) before it folds the whole
// WAL itself or closes.
class WalFolder {
public:
    explicit WalFolder(const QString& path);
    ~WalFolder();
    WalFolder(const WalFolder&) = delete;
    WalFolder& operator=(const WalFolder&) = delete;

    // Frames of the WAL copied back by the last fold (relative to the WAL as it was then).
    int folded() const { return m_folded.load(std::memory_order_relaxed); }
    void poke();

    // The journal's WAL hook, after each commit of `frames` frames on the writer's
    // connection `db`: wakes `folder`, or folds on the writer's thread (always when
    // `folder` is null: none is running).
    static void afterCommit(WalFolder* folder, sqlite3* db, const char* name, int frames);

private:
    void run();

    const QString m_path;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_pending = false;
    bool m_stopping = false;
    std::atomic<int> m_folded{0};
    std::thread m_thread;
};

} // namespace tw

#include "WalFolder.h"

#include "JournalLog.h"
#include "JournalSqlite.h"

#include <pthread.h>

#include <sqlite3.h>

namespace tw {

using namespace journaldb;

namespace {

// WAL sizes in pages (4 KiB). Past kFoldPages the background folder is woken. Only a
// writer can restart the WAL from its beginning, and only when everything has been
// copied back as its transaction begins, which the folder alone rarely achieves while
// commits keep coming. So past kWriterFoldPages the writer folds the rest itself when
// little is left (the folder did the bulk), and past kMaxWalPages in any case, which
// bounds the WAL file.
constexpr int kFoldPages = 2048;
constexpr int kWriterFoldPages = 4 * kFoldPages;
constexpr int kMaxWalPages = 32768;

} // namespace

WalFolder::WalFolder(const QString& path)
    : m_path(path) {
    m_thread = std::thread([this] { run(); });
}

WalFolder::~WalFolder() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_one();
    m_thread.join();
}

void WalFolder::poke() {
    {
        std::lock_guard lock(m_mutex);
        m_pending = true;
    }
    m_wake.notify_one();
}

void WalFolder::run() {
    pthread_setname_np(pthread_self(), "tidewatch-wal"); // as seen by top and perf
    sqlite3* db = nullptr;
    if (openConnection(m_path, SQLITE_OPEN_READWRITE, &db) != SQLITE_OK) {
        qCWarning(lcJournal) << "WAL folder cannot open the journal:" << sqliteMessage(db)
                             << "- the writer folds the WAL itself";
        sqlite3_close(db);
        return;
    }
    // A fresh connection learns that the file is in WAL mode only when it first reads;
    // until then a checkpoint on it does nothing.
    sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    for (;;) {
        {
            std::unique_lock lock(m_mutex);
            m_wake.wait(lock, [this] { return m_pending || m_stopping; });
            if (m_stopping)
                break;
            m_pending = false;
        }
        int logFrames = 0, folded = 0;
        const int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &logFrames, &folded);
        if (rc == SQLITE_OK)
            m_folded.store(folded, std::memory_order_relaxed);
        // BUSY: the writer is folding the tail itself. Anything else (a full disk)
        // the writer meets at its next commit, where it is reported.
        if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
            qCWarning(lcJournal) << "folding the WAL failed:" << sqliteMessage(db);
    }
    sqlite3_close(db);
}

void WalFolder::afterCommit(WalFolder* folder, sqlite3* db, const char* name, int frames) {
    if (frames < kFoldPages)
        return;
    const bool littleLeft = folder && frames - folder->folded() <= kFoldPages;
    if (!folder || (frames >= kWriterFoldPages && littleLeft) || frames >= kMaxWalPages)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    else
        folder->poke();
}

} // namespace tw

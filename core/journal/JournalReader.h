#pragma once

#include "model/BodyCodec.h"
#include "model/ChangeEvent.h"

#include <functional>
#include <memory>
#include <QString>

struct sqlite3;
struct sqlite3_stmt;

namespace tw {

// A read-only view of the journal on its own connection, for replay (SSE
// Last-Event-ID, long poll, --from-seq, the UI's history). One thread at a time.
class JournalReader {
public:
    JournalReader();
    ~JournalReader();
    // Gives the connection back; open() may follow.
    void close();
    JournalReader(const JournalReader&) = delete;
    JournalReader& operator=(const JournalReader&) = delete;

    bool open(const QString& path, QString* error = nullptr);
    bool isOpen() const { return m_db != nullptr; }

    struct Result {
        ChangeEventList events;    // matching events with seq > after, ascending
        qint64 scannedThrough = 0; // highest seq looked at; resume the next read after it
        qint64 lastSeq = 0;        // the journal's head when read
        bool gap = false;          // events after `after` were pruned: history lost
        qint64 firstAvailable = 0; // lowest seq still stored (when gap)
        bool hasMore = false;      // stopped at the limit before the head
        QString error;
    };
    // Reads events with seq > after, at most `limit` matching ones and at most
    // `scanLimit` rows looked at. `match` (may be empty) selects the events returned.
    Result readAfter(qint64 after, int limit, const std::function<bool(const ChangeEvent&)>& match = {},
                     int scanLimit = 20000);
    qint64 lastSeq();
    // The token `sourceId` last committed with a batch (empty: none), as
    // Journal::restore() gives it; for a consumer that checkpoints through the engine
    // and resumes on its own thread (the NATS publisher).
    QByteArray checkpointToken(const QString& sourceId);
    // The head and the prune mark of one snapshot: a reader of the range after
    // `prunedThrough` misses nothing; one from before it has lost history (a gap).
    struct Bounds {
        qint64 lastSeq = 0;
        qint64 prunedThrough = 0;
    };
    Bounds bounds();
    // What narrowing sources said they read (ChangeBatch::narrowings), oldest first: from
    // the event after `afterSeq` on, source `sourceId` read only `reading`.
    struct Narrowing {
        qint64 afterSeq = 0;
        QString sourceId;
        QByteArray reading;
    };
    // With `head`, the journal's head is read in the same read transaction.
    QList<Narrowing> narrowings(QString* error = nullptr, qint64* head = nullptr);

private:
    sqlite3* m_db = nullptr;
    sqlite3_stmt* m_select = nullptr;
    sqlite3_stmt* m_meta = nullptr;
    sqlite3_stmt* m_dictionary = nullptr;
    std::unique_ptr<BodyDecoder> m_decoder;
};

} // namespace tw

#pragma once

#include "model/ChangeBatch.h"

#include <QHash>

#include <bson/bson.h>

namespace tw {

// The polling fallback for one collection where change streams are unavailable
// (a standalone server, or no changeStream privilege). It does not talk to the
// server: the source feeds it the documents of each scan and it diffs them against
// the previous scan by `_id` and per-field content hashes, producing insert, update
// (updatedFields/removedFields from the fields whose hash changed) and delete.
//
// Incremental mode (a monotonic field such as `updatedAt`): only documents with
// field >= the highest value seen are read; deletes are found by a keys-only scan
// every kKeyScanEvery polls.
//
// The baseline is part of the source's checkpoint state (one entry per document), so
// after a restart the first scan reports what changed while Tidewatch was closed.
class MongoPoller {
public:
    MongoPoller(const QString& sourceId, const Namespace& ns, const QString& pollField);

    Namespace ns() const { return m_ns; }
    QString pollField() const { return m_pollField; }
    bool isIncremental() const { return !m_pollField.isEmpty(); }
    bool hasBaseline() const { return m_hasBaseline; }
    int documentCount() const { return int(m_docs.size()); }

    // Loads the baseline from restored checkpoint state (entries under statePrefix()).
    void restore(const QHash<QByteArray, QByteArray>& state);
    QByteArray statePrefix() const { return m_prefix; }

    enum class ScanKind { Full, Incremental, KeysOnly };
    // What the next poll should read.
    ScanKind nextScanKind() const;
    // The find filter/sort for the next scan (filter may be empty {}).
    void scanQuery(ScanKind kind, bson_t* filter, bson_t* opts) const;

    void beginScan(ScanKind kind);
    // One document (KeysOnly: {_id} only). Events and checkpoint changes go to `out`.
    void addDocument(const bson_t* doc, ChangeBatch& out);
    // Ends the scan: deletes for documents not seen (Full, KeysOnly). Returns whether
    // anything changed in this scan.
    bool endScan(ChangeBatch& out, qint64 scanMs);
    // Abandons a scan (error or stop): nothing is deleted.
    void abortScan();

    // Adaptive interval: 1 s after a change; idle polls stretch it by 1.5x up to 5 s,
    // and never below 4x the last scan's duration so polling stays under ~20 % of the
    // server's time for this collection.
    int intervalMs() const { return m_intervalMs; }

    // Forgets the baseline (unwatch): returns the checkpoint removal for it.
    void clear(SourceCheckpoint& out);

    static constexpr int kKeyScanEvery = 10;

private:
    struct Doc {
        QByteArray fields; // per field: name, NUL, 8-byte hash of type + value
        quint32 generation = 0;
    };
    QByteArray stateKey(const QByteArray& idKey) const { return m_prefix + idKey; }
    static QByteArray fieldTable(const bson_t* doc);
    static QByteArray idKeyOf(const bson_t* doc); // raw bytes of {_id: value}
    ChangeEvent makeEvent(Operation op, const QByteArray& idKey) const;

    QString m_sourceId;
    Namespace m_ns;
    QString m_pollField;
    QByteArray m_prefix;    // "poll\x1f<db.coll>\x1f"
    QByteArray m_markerKey; // "poll\x1f<db.coll>": the baseline exists
    QByteArray m_highKey;   // "poll\x1f<db.coll>\x1e": incremental high-water mark
    QHash<QByteArray, Doc> m_docs;
    bool m_hasBaseline = false;
    QByteArray m_high; // raw {v: value} of the highest pollField value seen
    QByteArray m_scanHigh;
    ScanKind m_scanKind = ScanKind::Full;
    bool m_scanChanged = false;
    quint32 m_generation = 0;
    int m_polls = 0;
    int m_intervalMs = 1000;
};

} // namespace tw

#pragma once

#include <QByteArray>
#include <QList>
#include <QMutex>
#include <QString>

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

struct ZSTD_DDict_s;

namespace tw {

// How the journal stores an event's document: compressed with a zstd dictionary that
// the journal trains on its own first events, so that each small document is coded
// against what documents of this journal look like. A 1 KiB order document takes
// about a third of the bytes; the journal then writes (twice, WAL and main file) and
// keeps a third of the data, and holds three times the history in the same size
// limit.
//
// A stored blob is either plain BSON (its first four bytes are its length, so it can
// never begin with zstd's magic number: that would be a length of 4 GiB) or one zstd
// frame whose header names its dictionary and whose content is the BSON of the event
// without its seq (the seq is the row's key).
//
// Compression runs on the sources' threads as each batch leaves (ChangeEvent::prepare),
// in parallel with the journal. Thread-safe.
class BodyCodec {
public:
    // Smaller documents are stored as they are: a frame's header and the dictionary
    // lookup cost more than they save.
    static constexpr int kMinSize = 96;

    BodyCodec();
    ~BodyCodec();
    BodyCodec(const BodyCodec&) = delete;
    BodyCodec& operator=(const BodyCodec&) = delete;

    // The frame for `bson`, or an empty array when there is no dictionary yet, the
    // document is small, or compression saves less than an eighth.
    QByteArray compress(const QByteArray& bson) const;

    // Makes `dictionary` the one new documents are compressed with. Only once the
    // dictionary is committed to the journal: a frame must never reach the disk before
    // the dictionary that decodes it.
    bool use(const QByteArray& dictionary, QString* error = nullptr);
    uint32_t dictionaryId() const; // 0: none in use

    // Trains a dictionary on sample documents; empty (and *error set) when the samples
    // do not allow one (too few, or too alike to learn from).
    static QByteArray train(const QList<QByteArray>& samples, QString* error = nullptr);
    // The id a dictionary carries (in its header, and in each frame made with it).
    static uint32_t idOf(const QByteArray& dictionary);

    static bool isFrame(const QByteArray& stored);
    // The dictionary a frame was made with (0: none, or not a frame).
    static uint32_t dictionaryOf(const QByteArray& stored);
    // Stops compressing (the journal it was for is closed or has no dictionary).
    void reset();

private:
    struct Dictionary;
    mutable QMutex m_mutex;
    std::shared_ptr<const Dictionary> m_current;
};

// Turns stored blobs back into BSON. One per reader; not thread-safe. Dictionaries are
// asked for by id the first time a frame needs one, and kept.
class BodyDecoder {
public:
    using Lookup = std::function<QByteArray(uint32_t id)>;
    explicit BodyDecoder(Lookup lookup);
    ~BodyDecoder();
    BodyDecoder(const BodyDecoder&) = delete;
    BodyDecoder& operator=(const BodyDecoder&) = delete;

    // The BSON of a stored blob: the blob itself when it is not a frame. Empty, with
    // *error set, when the frame is damaged or its dictionary is missing.
    QByteArray decode(const QByteArray& stored, QString* error);

private:
    Lookup m_lookup;
    struct Context;
    std::unique_ptr<Context> m_context;
    std::unordered_map<uint32_t, ZSTD_DDict_s*> m_dictionaries;
};

} // namespace tw

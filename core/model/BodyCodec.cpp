#include "BodyCodec.h"

#include <QMutexLocker>

#include <cstring>
#include <vector>
#include <zdict.h>
#include <zstd.h>

namespace tw {

namespace {

// Level 3 costs no more time than 1 with a dictionary on 1 KiB documents (the work is
// dominated by loading the dictionary's tables) and saves about a tenth more.
constexpr int kLevel = 3;
// 16 KiB: larger dictionaries gave no better ratio on order-like documents.
constexpr size_t kDictionaryCapacity = 16 * 1024;
// The largest document MongoDB allows, with room for the change event around it.
constexpr unsigned long long kMaxContent = 48ull * 1024 * 1024;

const unsigned char kMagic[4] = {0x28, 0xB5, 0x2F, 0xFD}; // ZSTD_MAGICNUMBER, little-endian

struct CompressScratch {
    ZSTD_CCtx* context = ZSTD_createCCtx();
    std::vector<char> buffer;
    ~CompressScratch() { ZSTD_freeCCtx(context); }
};

} // namespace

struct BodyCodec::Dictionary {
    uint32_t id = 0;
    ZSTD_CDict* cdict = nullptr;
    ~Dictionary() { ZSTD_freeCDict(cdict); }
};

BodyCodec::BodyCodec() = default;
BodyCodec::~BodyCodec() = default;

bool BodyCodec::isFrame(const QByteArray& stored) {
    return stored.size() >= 4 && std::memcmp(stored.constData(), kMagic, 4) == 0;
}

uint32_t BodyCodec::dictionaryOf(const QByteArray& stored) {
    return isFrame(stored) ? ZSTD_getDictID_fromFrame(stored.constData(), size_t(stored.size())) : 0;
}

void BodyCodec::reset() {
    QMutexLocker lock(&m_mutex);
    m_current.reset();
}

uint32_t BodyCodec::idOf(const QByteArray& dictionary) {
    return ZSTD_getDictID_fromDict(dictionary.constData(), size_t(dictionary.size()));
}

uint32_t BodyCodec::dictionaryId() const {
    QMutexLocker lock(&m_mutex);
    return m_current ? m_current->id : 0;
}

bool BodyCodec::use(const QByteArray& dictionary, QString* error) {
    auto next = std::make_shared<Dictionary>();
    next->id = idOf(dictionary);
    if (next->id == 0) {
        if (error)
            *error = QStringLiteral("not a zstd dictionary");
        return false;
    }
    next->cdict = ZSTD_createCDict(dictionary.constData(), size_t(dictionary.size()), kLevel);
    if (!next->cdict) {
        if (error)
            *error = QStringLiteral("zstd cannot load the dictionary");
        return false;
    }
    QMutexLocker lock(&m_mutex);
    m_current = std::move(next);
    return true;
}

QByteArray BodyCodec::compress(const QByteArray& bson) const {
    // Above what a reader accepts to decompress, it is stored as it is.
    if (bson.size() < kMinSize || quint64(bson.size()) > kMaxContent)
        return {};
    std::shared_ptr<const Dictionary> dictionary;
    {
        QMutexLocker lock(&m_mutex);
        dictionary = m_current;
    }
    if (!dictionary)
        return {};
    // One context and buffer per thread, kept: creating a context costs more than a
    // small document's compression.
    thread_local CompressScratch scratch;
    if (!scratch.context)
        return {};
    const size_t bound = ZSTD_compressBound(size_t(bson.size()));
    if (scratch.buffer.size() < bound)
        scratch.buffer.resize(bound);
    const size_t written = ZSTD_compress_usingCDict(scratch.context, scratch.buffer.data(), bound,
                                                    bson.constData(), size_t(bson.size()), dictionary->cdict);
    if (ZSTD_isError(written) || written > size_t(bson.size() - bson.size() / 8))
        return {};
    return QByteArray(scratch.buffer.data(), qsizetype(written));
}

QByteArray BodyCodec::train(const QList<QByteArray>& samples, QString* error) {
    QByteArray joined;
    std::vector<size_t> sizes;
    sizes.reserve(size_t(samples.size()));
    for (const QByteArray& sample : samples) {
        joined.append(sample);
        sizes.push_back(size_t(sample.size()));
    }
    QByteArray dictionary(qsizetype(kDictionaryCapacity), Qt::Uninitialized);
    const size_t size = ZDICT_trainFromBuffer(dictionary.data(), kDictionaryCapacity, joined.constData(),
                                              sizes.data(), unsigned(sizes.size()));
    if (ZDICT_isError(size)) {
        if (error)
            *error = QString::fromUtf8(ZDICT_getErrorName(size));
        return {};
    }
    dictionary.truncate(qsizetype(size));
    dictionary.squeeze();
    return dictionary;
}

struct BodyDecoder::Context {
    ZSTD_DCtx* context = ZSTD_createDCtx();
    ~Context() { ZSTD_freeDCtx(context); }
};

BodyDecoder::BodyDecoder(Lookup lookup)
    : m_lookup(std::move(lookup))
    , m_context(std::make_unique<Context>()) {}

BodyDecoder::~BodyDecoder() {
    for (auto& entry : m_dictionaries)
        ZSTD_freeDDict(entry.second);
}

QByteArray BodyDecoder::decode(const QByteArray& stored, QString* error) {
    if (!BodyCodec::isFrame(stored))
        return stored;
    auto failed = [error](const QString& why) {
        if (error)
            *error = why;
        return QByteArray();
    };
    const unsigned long long content = ZSTD_getFrameContentSize(stored.constData(), size_t(stored.size()));
    if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN || content > kMaxContent)
        return failed(QStringLiteral("a compressed event is damaged (its frame header is not valid)"));
    const uint32_t id = ZSTD_getDictID_fromFrame(stored.constData(), size_t(stored.size()));
    ZSTD_DDict* dictionary = nullptr;
    if (id != 0) {
        auto it = m_dictionaries.find(id);
        if (it == m_dictionaries.end()) {
            const QByteArray bytes = m_lookup ? m_lookup(id) : QByteArray();
            ZSTD_DDict* made =
                bytes.isEmpty() ? nullptr : ZSTD_createDDict(bytes.constData(), size_t(bytes.size()));
            if (!made)
                return failed(
                    QStringLiteral("the journal has no compression dictionary %1 for a stored event")
                        .arg(id));
            it = m_dictionaries.emplace(id, made).first;
        }
        dictionary = it->second;
    }
    if (!m_context->context)
        return failed(QStringLiteral("out of memory"));
    QByteArray bson(qsizetype(content), Qt::Uninitialized);
    const size_t got = dictionary
                           ? ZSTD_decompress_usingDDict(m_context->context, bson.data(), size_t(bson.size()),
                                                        stored.constData(), size_t(stored.size()), dictionary)
                           : ZSTD_decompressDCtx(m_context->context, bson.data(), size_t(bson.size()),
                                                 stored.constData(), size_t(stored.size()));
    if (ZSTD_isError(got) || got != content)
        return failed(
            QStringLiteral("a compressed event is damaged (%1)")
                .arg(QString::fromUtf8(ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short content")));
    return bson;
}

} // namespace tw

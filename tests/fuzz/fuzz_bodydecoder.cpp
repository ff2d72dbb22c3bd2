// The journal's stored-body decoder on arbitrary frames, and what the journal reader
// does with what it decodes (JournalReader: the bytes become a ChangeEvent, which a
// filter reads and a stream renders). Input: the stored blob. The journal file is on
// disk and may be damaged, so nothing here may trust those bytes.
//
// The decoder knows one dictionary, trained here on order documents as the journal
// trains its own, so frames made with it reach the decompressor's dictionary path. A
// blob that is a well-formed document is also compressed and decoded again: the round
// trip must give the same bytes.
#include "FuzzInput.h"

#include "filter/Filter.h"
#include "model/BodyCodec.h"
#include "model/Bson.h"
#include "model/ChangeEvent.h"

#include <QList>
#include <QString>

using namespace tw;

namespace {

struct Dictionary {
    QByteArray bytes;
    uint32_t id = 0;
    BodyCodec codec;

    Dictionary() {
        QList<QByteArray> samples;
        for (int i = 0; i < 400; ++i) {
            const QByteArray json =
                QStringLiteral(R"({"operationType": "%1", "ns": {"db": "shop", "coll": "orders"},
                "documentKey": {"_id": %2}, "fullDocument": {"_id": %2, "customer": "customer-%3",
                "status": "%4", "total": %5, "items": [{"sku": "SKU-%6", "qty": %7}]}})")
                    .arg(i % 3 ? "update" : "insert")
                    .arg(i)
                    .arg(i * 7919 % 1000)
                    .arg(i % 5 ? "paid" : "new")
                    .arg(i * 1.25)
                    .arg(i * 31 % 97)
                    .arg(i % 9)
                    .toUtf8();
            samples.append(Bson::fromJson(json).raw());
        }
        QString error;
        bytes = BodyCodec::train(samples, &error);
        fuzz::check(!bytes.isEmpty(), "the fuzz target could not train its dictionary");
        id = BodyCodec::idOf(bytes);
        fuzz::check(codec.use(bytes, &error), "the fuzz target's dictionary is refused");
    }
};

const Dictionary& dictionary() {
    static const Dictionary d;
    return d;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const Dictionary& dict = dictionary();
    const QByteArray stored(reinterpret_cast<const char*>(data), qsizetype(size));
    BodyDecoder decoder([&dict](uint32_t id) { return id == dict.id ? dict.bytes : QByteArray(); });
    QString error;
    const QByteArray bson = decoder.decode(stored, &error);
    if (bson.isEmpty()) {
        fuzz::check(stored.isEmpty() || !error.isEmpty(), "a blob refused without a message");
        return 0;
    }
    // What JournalReader::read does with a decoded body.
    QString eventError;
    const ChangeEvent event = ChangeEvent::fromDocument(Bson::fromRaw(bson), 7, &eventError);
    static const Filter filter =
        Filter::compile(R"({"operationType": "update", "fullDocument.total": {"$gt": 10}})");
    (void)filter.matches(event);
    (void)event.toJson();

    bson_t doc;
    if (BodyCodec::isFrame(stored) || !fuzz::viewBson(stored, &doc) || !fuzz::isWellFormed(&doc))
        return 0;
    const QByteArray frame = dict.codec.compress(stored);
    if (frame.isEmpty())
        return 0;
    fuzz::check(BodyCodec::isFrame(frame) && BodyCodec::dictionaryOf(frame) == dict.id,
                "a frame without its dictionary");
    BodyDecoder again([&dict](uint32_t id) { return id == dict.id ? dict.bytes : QByteArray(); });
    fuzz::check(again.decode(frame, &error) == stored, "a compressed document does not decode to itself");
    return 0;
}

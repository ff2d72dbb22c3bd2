// The fast JSON reader (model/JsonToBson) against libbson's. Input: any text, as a
// gateway's NATS messages or a capture trigger's rows may hold.
//
// Whatever the fast reader takes, libbson must take too and read into the very same
// bytes; what it leaves, it leaves empty. Bson::fromJson, which tries one then the
// other, must then give libbson's answer in every case.
#include "FuzzInput.h"

#include "model/Bson.h"
#include "model/JsonToBson.h"

#include <QByteArray>

using namespace tw;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const QByteArrayView text(data, qsizetype(size));
    bson_t fast;
    bson_init(&fast);
    const bool took = jsonToBsonFast(text, &fast);
    const QByteArray fastBytes(reinterpret_cast<const char*>(bson_get_data(&fast)), qsizetype(fast.len));
    bson_destroy(&fast);
    fuzz::check(took || fastBytes == Bson::empty().raw(), "the fast reader left a partial document");

    bson_t slow;
    bson_error_t error;
    const bool read = bson_init_from_json(&slow, text.data(), ssize_t(text.size()), &error);
    QByteArray slowBytes;
    if (read) {
        slowBytes = QByteArray(reinterpret_cast<const char*>(bson_get_data(&slow)), qsizetype(slow.len));
        bson_destroy(&slow);
    }
    if (took) {
        if (!read)
            std::fprintf(stderr, "libbson: %s\n", error.message);
        fuzz::check(read, "the fast reader took what libbson refuses");
        if (fastBytes != slowBytes)
            std::fprintf(stderr, "fast:    %s\nlibbson: %s\n", fastBytes.toHex().constData(),
                         slowBytes.toHex().constData());
        fuzz::check(fastBytes == slowBytes, "the fast reader read other bytes than libbson");
    }
    const Bson both = Bson::fromJson(text);
    fuzz::check(read ? both.raw() == slowBytes : both.isAbsent(), "Bson::fromJson differs from libbson");
    return 0;
}

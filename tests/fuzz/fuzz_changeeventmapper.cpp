// The MongoDB change-event mapper on arbitrary BSON. Input: the bytes of one change
// stream document, as a server (or anything posing as one) sends it.
//
// Checked: a document the mapper takes becomes an event whose document(), JSON and
// journal form are made without a crash; from a well-formed document, a well-formed
// event whose document reads back as an event
// (ChangeEvent::fromDocument, what journal replay does) with the same JSON once
// finalized.
#include "FuzzInput.h"

#include "model/ChangeEvent.h"
#include "sources/mongo/ChangeEventMapper.h"

#include <QJsonDocument>
#include <QString>

using namespace tw;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    bson_t doc;
    if (!fuzz::viewBson(QByteArrayView(data, qsizetype(size)), &doc))
        return 0;
    static const ChangeEventMapper mapper(QStringLiteral("fuzz-db"));
    ChangeEvent event;
    QString error;
    if (!mapper.map(&doc, &event, &error)) {
        fuzz::check(!error.isEmpty(), "a change event refused without a message");
        return 0;
    }
    const Bson document = event.document();
    (void)event.toCanonicalJson();
    // What a stream sends is JSON whatever the server sent ("null" when nothing sane
    // can be printed): checked on the committed rendering, the one clients get.
    ChangeEvent committed = event;
    committed.finalize(7);
    const QByteArray json = committed.toJson();
    QJsonParseError parseError;
    (void)QJsonDocument::fromJson(json, &parseError);
    if (json != "null" && parseError.error != QJsonParseError::NoError) {
        std::fprintf(stderr, "%s\n", json.constData());
        fuzz::check(false, "a committed event renders as something that is not JSON");
    }
    // A malformed sub-document (fullDocument, say) is carried verbatim, as the server
    // sent it: the mapper does not validate (it costs a pass over every event), and what
    // reads events later refuses malformed bytes (fuzz_filter, fuzz_extendedjson).
    if (!fuzz::isWellFormed(&doc))
        return 0;
    bson_t view;
    fuzz::check(document.view(&view) && fuzz::isWellFormed(&view), "a mapped event's document is malformed");
    // As the journal stores and replays it: finalized with its seq, then rebuilt.
    QString replayError;
    const ChangeEvent replayed = ChangeEvent::fromDocument(committed.document(), 7, &replayError);
    if (replayed.toJson() != json) {
        std::fprintf(stderr, "committed: %s\nreplayed:  %s\n", committed.toJson().constData(),
                     replayed.toJson().constData());
        fuzz::check(false, "a mapped event does not replay to the same JSON");
    }
    return 0;
}

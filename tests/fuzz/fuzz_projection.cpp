// Projections and event-name templates. Input: a projection's JSON on the first line,
// an event-name template on the second, a NUL, then a change-event document's bytes.
//
// Checked: a projection that compiles renders back (json()) to the same projection; what
// apply() makes is well-formed BSON and always keeps seq; a template that compiles keeps
// its text (one refused says why), and what it renders never holds a line break (SSE
// would end the field there) or another control character, whatever the event holds.
#include "FuzzInput.h"

#include "filter/EventTemplate.h"
#include "filter/Projection.h"
#include "model/Bson.h"
#include "model/ChangeEvent.h"

#include <QString>

using namespace tw;

// What the SSE `event:` line needs of a name: no character that ends a line for any
// reader (CR, LF, NEL, U+2028, U+2029) and no other control character.
static bool isOneLine(const QByteArray& name) {
    for (const QChar c : QString::fromUtf8(name)) {
        const char16_t u = c.unicode();
        if (u < 0x20 || u == 0x7f || u == 0x85 || u == 0x2028 || u == 0x2029)
            return false;
    }
    return true;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const fuzz::TextAndBytes input = fuzz::splitAtNul(data, size);
    const qsizetype newline = input.text.indexOf('\n');
    const QByteArrayView projectionText = newline < 0 ? input.text : input.text.first(newline);
    const QByteArrayView templateText = newline < 0 ? QByteArrayView() : input.text.sliced(newline + 1);

    QString error;
    const Projection projection = Projection::fromJson(projectionText, &error);
    if (!projection.isNull()) {
        QString again;
        const Projection reread = Projection::fromJson(projection.json(), &again);
        fuzz::check(reread == projection, "a projection does not read back from its own json()");
    }
    const QString templateString = QString::fromUtf8(templateText);
    const EventTemplate name = EventTemplate::compile(templateString, &error);
    if (name.isDefault())
        fuzz::check(!error.isEmpty() || templateString.isEmpty() ||
                        templateString == QStringLiteral("{operationType}"),
                    "an event template refused without a message");
    else
        fuzz::check(name.text() == templateString, "a compiled event template does not keep its text");

    bson_t doc;
    if (!fuzz::viewBson(input.bytes, &doc) || !fuzz::isWellFormed(&doc))
        return 0;
    const Bson document = Bson::fromBsonT(&doc);
    const Bson projected = projection.apply(document);
    bson_t out;
    fuzz::check(projected.view(&out) && fuzz::isWellFormed(&out), "a projection made malformed BSON");
    if (!projection.isNull() && bson_has_field(&doc, "seq"))
        fuzz::check(bson_has_field(&out, "seq"), "a projection dropped seq");

    QString eventError;
    const ChangeEvent event = ChangeEvent::fromDocument(document, 42, &eventError);
    const QByteArray rendered = name.render(event);
    fuzz::check(isOneLine(rendered), "an event name holds a line break or a control character");
    (void)event.toJson();
    return 0;
}

// The filter language: JSON text → compile → evaluate on arbitrary BSON through every
// evaluation path. Input: the filter's JSON, a NUL, then the document's bytes.
//
// The paths, which must agree on a well-formed document (a disagreement aborts):
// Filter::matches on the document (the flat path, and the general evaluation where the
// flat path is undecided), Filter::matches on a DocumentIndex (routing), and the general
// evaluation alone, with and without the prefix cache. Two identities hold too:
// {"$nor": [filter]} answers the opposite, and a matched document matches each of the
// filter's equalities() (what SubscriptionIndex routes by). On malformed documents only
// the absence of a crash is checked: the paths may refuse different bytes.
#include "FuzzInput.h"

#include "DocumentIndex.h"
#include "Filter.h"
#include "FilterCompiler.h"
#include "FilterEvaluator.h"
#include "FilterProgram.h"
#include "FlatFilter.h"
#include "model/Bson.h"

#include <QString>

using namespace tw;

namespace {

Bson norOf(const Bson& query) {
    bson_t q;
    if (!query.view(&q))
        return {};
    bson_t out = BSON_INITIALIZER;
    bson_t array;
    bson_append_array_begin(&out, "$nor", 4, &array);
    bson_append_document(&array, "0", 1, &q);
    bson_append_array_end(&out, &array);
    Bson nor = Bson::fromBsonT(&out);
    bson_destroy(&out);
    return nor;
}

Bson equalityQuery(const Filter::Equality& e) {
    bson_t wrapped;
    bson_iter_t it;
    if (!e.value.view(&wrapped) || !bson_iter_init_find(&it, &wrapped, "v"))
        return {};
    bson_t out = BSON_INITIALIZER;
    // {"path": {"$eq": value}}: an operator, so a document value compares as a value.
    bson_t op;
    bson_append_document_begin(&out, e.path.constData(), int(e.path.size()), &op);
    bson_append_iter(&op, "$eq", 3, &it);
    bson_append_document_end(&out, &op);
    Bson query = Bson::fromBsonT(&out);
    bson_destroy(&out);
    return query;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const fuzz::TextAndBytes input = fuzz::splitAtNul(data, size);
    QString error;
    const Filter filter = Filter::compile(input.text, &error);
    if (!filter.isValid()) {
        fuzz::check(!error.isEmpty(), "an invalid filter without a message");
        return 0;
    }
    fuzz::check(error.isEmpty(), "a valid filter with an error message");
    (void)filter.json();
    const QList<Filter::Equality> equalities = filter.equalities();

    bson_t doc;
    if (!fuzz::viewBson(input.bytes, &doc))
        return 0;
    const bool wellFormed = fuzz::isWellFormed(&doc);

    const bool direct = filter.matches(&doc);
    const DocumentIndex index(&doc);
    const bool indexed = filter.matches(index);

    // The same query compiled again, to run the general evaluation without the flat
    // path in front of it.
    filterimpl::Program program;
    program.query = filter.query();
    if (program.query.isAbsent())
        return 0; // the empty filter: matches everything, nothing else to compare
    filterimpl::FilterCompiler compiler(program);
    fuzz::check(compiler.run(), "a valid filter's query does not compile again");
    const uint8_t* bytes = bson_get_data(&doc);
    filterimpl::PrefixCache cache;
    cache.data = bytes;
    cache.len = doc.len;
    const bool cached = filterimpl::evaluateDocument(program, program.root, bytes, doc.len, &cache);
    const bool scanned = filterimpl::evaluateDocument(program, program.root, bytes, doc.len, nullptr);
    const bool recompiled = filterimpl::matchDocument(program, &doc);

    const Filter nor = Filter::fromBson(norOf(filter.query()));
    const bool negated = nor.isValid() ? nor.matches(&doc) : !direct;

    if (!wellFormed)
        return 0;
    fuzz::check(direct == indexed, "matches(document) and matches(DocumentIndex) disagree");
    fuzz::check(direct == cached, "the flat path and the general evaluation disagree");
    fuzz::check(cached == scanned, "the general evaluation with and without the prefix cache disagree");
    fuzz::check(direct == recompiled, "the same query compiled twice answers differently");
    fuzz::check(negated == !direct, "{$nor: [filter]} does not answer the opposite of the filter");
    if (direct) {
        for (const Filter::Equality& e : equalities) {
            const Filter eq = Filter::fromBson(equalityQuery(e));
            fuzz::check(eq.isValid() && eq.matches(&doc),
                        "a matched document fails one of the filter's equalities");
        }
    }
    return 0;
}

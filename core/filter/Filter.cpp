#include "Filter.h"

#include "DocumentIndex.h"
#include "FilterCompiler.h"
#include "FilterEvaluator.h"
#include "FilterProgram.h"
#include "FlatFilter.h"
#include "PrefixCache.h"
#include "QueryJson.h"

#include <vector>

namespace tw {

namespace filterimpl {

namespace {

inline bool matchIndexed(const Program& p, const DocumentIndex& index) {
    PrefixCache cache;
    cache.data = index.data();
    cache.len = index.size();
    cache.index = index.usable() ? &index : nullptr;
    return evaluateDocument(p, p.root, cache.data, cache.len, &cache);
}

bool indexableOperand(const bson_iter_t* it) {
    switch (iterType(it)) {
    case BSON_TYPE_ARRAY:
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_REGEX:
        return false;
    default:
        return true;
    }
}

} // namespace

} // namespace filterimpl

struct Filter::Program : filterimpl::Program {};

using filterimpl::Kind;

Filter::Filter() = default;

Filter Filter::compile(QByteArrayView json, QString* error) {
    if (json.trimmed().isEmpty()) {
        // An empty filter box means "no filter", like a default-constructed Filter.
        if (error)
            error->clear();
        return Filter();
    }
    Bson query;
    QString message;
    if (!parseQueryJson(json, &query, &message)) {
        auto program = std::make_shared<Program>();
        program->valid = false;
        program->source = json.toByteArray();
        program->error = message;
        if (error)
            *error = message;
        Filter filter;
        filter.m_program = std::move(program);
        return filter;
    }
    Filter filter = fromBson(query, error);
    if (!filter.isValid()) {
        auto program = std::make_shared<Program>(*filter.m_program);
        program->source = json.toByteArray();
        filter.m_program = std::move(program);
    }
    return filter;
}

Filter Filter::fromBson(const Bson& query, QString* error) {
    if (query.isAbsent()) {
        if (error)
            error->clear();
        return Filter();
    }
    auto program = std::make_shared<Program>();
    program->query = query;
    filterimpl::FilterCompiler compiler(*program);
    if (!compiler.run()) {
        program->valid = false;
        program->error = compiler.error();
        // The nodes may point at half-built state; an invalid filter evaluates nothing.
        program->nodes.clear();
        program->operands.clear();
    }
    if (error)
        *error = program->error;
    Filter filter;
    filter.m_program = std::move(program);
    return filter;
}

bool Filter::isValid() const {
    return !m_program || m_program->valid;
}

bool Filter::matchesEverything() const {
    return !m_program || m_program->isTrue();
}

QByteArray Filter::json() const {
    if (!m_program)
        return QByteArrayLiteral("{}");
    if (!m_program->valid && !m_program->source.isEmpty())
        return m_program->source;
    return m_program->query.toJson();
}

Bson Filter::query() const {
    return m_program ? m_program->query : Bson::empty();
}

bool Filter::matches(const bson_t* changeDocument) const {
    if (!m_program)
        return true;
    if (!m_program->valid || !changeDocument)
        return false;
    return filterimpl::matchDocument(*m_program, changeDocument);
}

bool Filter::matches(const DocumentIndex& index) const {
    if (!m_program)
        return true;
    if (!m_program->valid || !index.data())
        return false;
    return filterimpl::matchIndexed(*m_program, index);
}

bool Filter::matches(const ChangeEvent& event) const {
    if (matchesEverything())
        return true;
    if (!m_program->valid)
        return false;
    const Bson document = event.document();
    bson_t view;
    return document.view(&view) && filterimpl::matchDocument(*m_program, &view);
}

QList<Filter::Equality> Filter::equalities() const {
    QList<Equality> result;
    if (!m_program || !m_program->valid)
        return result;
    const filterimpl::Program& p = *m_program;
    const auto addEquality = [&](const filterimpl::CompiledPath& path, uint32_t operand) {
        const bson_iter_t value = p.operand(operand);
        if (!filterimpl::indexableOperand(&value))
            return;
        BsonBuilder wrapped;
        bson_append_iter(wrapped.get(), "v", 1, &value);
        result.append(Equality{path.text.toByteArray(), wrapped.take()});
    };
    const auto visitPath = [&](const filterimpl::Node& node) {
        const filterimpl::Node& value = p.nodes[node.b];
        if (value.kind == Kind::Eq) {
            addEquality(p.paths[node.a], value.a);
        } else if (value.kind == Kind::VAnd) {
            for (uint32_t i = 0; i < value.c; ++i) {
                const filterimpl::Node& part = p.nodes[p.kids[value.b + i]];
                if (part.kind == Kind::Eq)
                    addEquality(p.paths[node.a], part.a);
            }
        }
    };
    // Conjuncts of the top level, including those of top-level $and (nested And nodes).
    std::vector<uint32_t> pending{p.root};
    for (size_t i = 0; i < pending.size(); ++i) {
        const filterimpl::Node& node = p.nodes[pending[i]];
        if (node.kind == Kind::Path)
            visitPath(node);
        else if (node.kind == Kind::And)
            for (uint32_t k = 0; k < node.c; ++k)
                pending.push_back(p.kids[node.b + k]);
    }
    return result;
}

} // namespace tw

#include "FilterCompiler.h"

#include "BsonValue.h"
#include "FastOperand.h"
#include "FieldPath.h"
#include "FlatFilter.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <string>

namespace tw::filterimpl {

namespace {

// Type names of $type, as MongoDB spells them.
struct TypeName {
    const char* name;
    int code;
};
constexpr TypeName kTypeNames[] = {
    {"double", 1},    {"string", 2},     {"object", 3},      {"array", 4},    {"binData", 5},
    {"undefined", 6}, {"objectId", 7},   {"bool", 8},        {"date", 9},     {"null", 10},
    {"regex", 11},    {"dbPointer", 12}, {"javascript", 13}, {"symbol", 14},  {"javascriptWithScope", 15},
    {"int", 16},      {"timestamp", 17}, {"long", 18},       {"decimal", 19}, {"minKey", -1},
    {"maxKey", 127},
};

// The logical operators of a document level, and the node each compiles to.
struct LogicalOperator {
    std::string_view name;
    Kind kind;
};
constexpr LogicalOperator kLogicalOperators[] = {
    {"$and", Kind::And},
    {"$or", Kind::Or},
    {"$nor", Kind::Nor},
};

const LogicalOperator* findLogical(std::string_view name) {
    const auto it = std::find_if(std::begin(kLogicalOperators), std::end(kLogicalOperators),
                                 [&](const LogicalOperator& op) { return op.name == name; });
    return it == std::end(kLogicalOperators) ? nullptr : it;
}

std::string_view keyView(const bson_iter_t* it) {
    return std::string_view(bson_iter_key(it), bson_iter_key_len(it));
}

QString keyOf(const bson_iter_t* it) {
    return QString::fromUtf8(bson_iter_key(it), qsizetype(bson_iter_key_len(it)));
}

bool isOperatorDocument(const bson_iter_t* it) {
    bson_iter_t child;
    return (iterType(it) == BSON_TYPE_DOCUMENT) && bson_iter_recurse(it, &child) && bson_iter_next(&child) &&
           bson_iter_key(&child)[0] == '$';
}

// A whole number from int32, int64, or a double without fraction.
bool wholeNumber(const bson_iter_t* it, int64_t* out) {
    if ((iterType(it) == BSON_TYPE_INT32) || (iterType(it) == BSON_TYPE_INT64)) {
        *out = bson_iter_as_int64(it);
        return true;
    }
    if ((iterType(it) == BSON_TYPE_DOUBLE) || (iterType(it) == BSON_TYPE_DECIMAL128)) {
        const bsonvalue::Number n = bsonvalue::toNumber(it);
        if (n.isInt) {
            *out = n.i;
            return true;
        }
        if (n.d == n.d && n.d >= -9.2e18 && n.d <= 9.2e18 && double(int64_t(n.d)) == n.d) {
            *out = int64_t(n.d);
            return true;
        }
    }
    return false;
}

} // namespace

const FilterCompiler::OperatorSpec* FilterCompiler::findOperator(std::string_view name) {
    // Every operator of a field, by name. The kind is the node its handler compiles to
    // ($elemMatch builds ElemMatchValue when its operand is a document of operators;
    // $all a VAnd of its members).
    static constexpr OperatorSpec kOperators[] = {
        {"$eq", &FilterCompiler::compileEquality, Kind::Eq, false},
        {"$ne", &FilterCompiler::compileEquality, Kind::Eq, true},
        {"$gt", &FilterCompiler::compileComparison, Kind::Gt, false},
        {"$gte", &FilterCompiler::compileComparison, Kind::Gte, false},
        {"$lt", &FilterCompiler::compileComparison, Kind::Lt, false},
        {"$lte", &FilterCompiler::compileComparison, Kind::Lte, false},
        {"$in", &FilterCompiler::compileIn, Kind::In, false},
        {"$nin", &FilterCompiler::compileIn, Kind::In, true},
        {"$exists", &FilterCompiler::compileExists, Kind::Exists, false},
        {"$type", &FilterCompiler::compileType, Kind::Type, false},
        {"$regex", &FilterCompiler::compileRegex, Kind::Regex, false},
        {"$options", nullptr, Kind::Regex, false}, // read by $regex
        {"$not", &FilterCompiler::compileNot, Kind::VNot, false},
        {"$elemMatch", &FilterCompiler::compileElemMatchOperator, Kind::ElemMatchDoc, false},
        {"$size", &FilterCompiler::compileSize, Kind::Size, false},
        {"$all", &FilterCompiler::compileAll, Kind::VAnd, false},
    };
    const auto it = std::find_if(std::begin(kOperators), std::end(kOperators),
                                 [&](const OperatorSpec& spec) { return spec.name == name; });
    return it == std::end(kOperators) ? nullptr : it;
}

bool FilterCompiler::run() {
    bson_t doc;
    bson_iter_t it;
    if (!m_p.query.view(&doc) || !bson_iter_init(&it, &doc)) {
        m_error = QStringLiteral("filter must be a document");
        return false;
    }
    if (!compileDocument(&it, QString(), QString(), false, &m_p.root))
        return false;
    m_p.trie.indexChildren();
    buildFlat(m_p);
    return true;
}

bool FilterCompiler::fail(const QString& message) {
    m_error = message;
    return false;
}

bool FilterCompiler::failAt(const QString& path, const QString& message) {
    return fail(path + QStringLiteral(": ") + message);
}

uint32_t FilterCompiler::add(Kind kind, uint32_t a, uint32_t b, uint32_t c) {
    m_p.nodes.push_back(Node{kind, a, b, c});
    return uint32_t(m_p.nodes.size() - 1);
}

uint32_t FilterCompiler::addList(Kind kind, const std::vector<uint32_t>& kids) {
    const uint32_t firstKid = uint32_t(m_p.kids.size());
    m_p.kids.insert(m_p.kids.end(), kids.begin(), kids.end());
    return add(kind, 0, firstKid, uint32_t(kids.size()));
}

uint32_t FilterCompiler::addOperand(const bson_iter_t* it) {
    Operand operand;
    std::memcpy(operand.bytes, it, sizeof operand.bytes);
    if (iterType(it) == BSON_TYPE_UTF8) {
        operand.fast.kind = FastOperand::String;
        operand.fast.text = bson_iter_utf8(it, &operand.fast.len);
    } else if (bsonvalue::Number n; plainNumber(ValueBytes{uint8_t(iterType(it)), it->raw + it->d1}, &n)) {
        operand.fast.kind = n.isInt ? FastOperand::Int : FastOperand::Double;
        if (n.isInt)
            operand.fast.i = n.i;
        else
            operand.fast.d = n.d;
    }
    m_p.operands.push_back(operand);
    return uint32_t(m_p.operands.size() - 1);
}

uint32_t FilterCompiler::addPath(const char* key, uint32_t len, bool relative) {
    CompiledPath path;
    path.text = QByteArrayView(key, qsizetype(len));
    path.parts = splitPath(path.text);
    if (!relative)
        path.leafSlot = m_p.trie.add(path.parts);
    if (path.leafSlot >= 0) {
        path.chain.resize(path.parts.size());
        for (int k = int(path.parts.size()) - 1, node = path.leafSlot; k >= 0; --k) {
            path.chain[size_t(k)] = uint8_t(node);
            node = m_p.trie.nodes[size_t(node)].parent;
        }
    }
    m_p.paths.push_back(std::move(path));
    return uint32_t(m_p.paths.size() - 1);
}

// `it` is positioned before the first field. `where` locates nested logical
// operators ("$or.1"), `prefix` the enclosing $elemMatch path for messages.
bool FilterCompiler::compileDocument(bson_iter_t* it, const QString& where, const QString& prefix,
                                     bool relative, uint32_t* out) {
    std::vector<uint32_t> conjuncts;
    while (bson_iter_next(it)) {
        const char* key = bson_iter_key(it);
        if (key[0] != '$') {
            uint32_t node = 0;
            if (!compileField(it, prefix, relative, &node))
                return false;
            conjuncts.push_back(node);
            continue;
        }
        const QString name = keyOf(it);
        if (keyView(it) == "$comment")
            continue;
        const LogicalOperator* logical = findLogical(keyView(it));
        if (!logical && where.isEmpty())
            return fail(QStringLiteral("unknown top-level operator %1").arg(name));
        if (!logical)
            return fail(QStringLiteral("%1: unknown top-level operator %2").arg(where, name));
        const Kind kind = logical->kind;
        const QString here = where.isEmpty() ? prefix + name : where + QLatin1Char('.') + name;
        bson_iter_t element;
        if (!(iterType(it) == BSON_TYPE_ARRAY) || bsonvalue::childCount(it) == 0 ||
            !bson_iter_recurse(it, &element))
            return fail(QStringLiteral("%1 must be a non-empty array").arg(here));
        std::vector<uint32_t> branches;
        while (bson_iter_next(&element)) {
            const QString branchWhere = here + QLatin1Char('.') + keyOf(&element);
            bson_iter_t branch;
            if (!(iterType(&element) == BSON_TYPE_DOCUMENT) || !bson_iter_recurse(&element, &branch))
                return fail(QStringLiteral("%1 must be a document").arg(branchWhere));
            uint32_t node = 0;
            if (!compileDocument(&branch, branchWhere, prefix, relative, &node))
                return false;
            branches.push_back(node);
        }
        conjuncts.push_back(branches.size() == 1 && kind == Kind::And ? branches[0]
                                                                      : addList(kind, branches));
    }
    if (conjuncts.empty())
        *out = add(Kind::True);
    else if (conjuncts.size() == 1)
        *out = conjuncts[0];
    else
        *out = addList(Kind::And, conjuncts);
    return true;
}

bool FilterCompiler::compileField(const bson_iter_t* it, const QString& prefix, bool relative,
                                  uint32_t* out) {
    const QString path = prefix + keyOf(it);
    const uint32_t pathIndex = addPath(bson_iter_key(it), bson_iter_key_len(it), relative);
    uint32_t value = 0;
    if (isOperatorDocument(it)) {
        if (!compileOperators(it, path, &value))
            return false;
    } else if ((iterType(it) == BSON_TYPE_REGEX)) {
        uint32_t regex = 0;
        if (!compileRegexOperand(path, it, nullptr, &regex))
            return false;
        value = add(Kind::Regex, regex);
    } else {
        value = add(Kind::Eq, addOperand(it));
    }
    *out = add(Kind::Path, pathIndex, value);
    return true;
}

// `doc` points at a document of operators ({$gt: 1, $lt: 5}); all must hold.
bool FilterCompiler::compileOperators(const bson_iter_t* doc, const QString& path, uint32_t* out) {
    bson_iter_t it;
    bson_iter_recurse(doc, &it);
    // $regex and $options are one predicate written as two fields, in either order.
    const bson_iter_t* regexField = nullptr;
    const bson_iter_t* optionsField = nullptr;
    bson_iter_t regexCopy;
    bson_iter_t optionsCopy;
    {
        bson_iter_t scan = it;
        while (bson_iter_next(&scan)) {
            if (keyView(&scan) == "$regex") {
                regexCopy = scan;
                regexField = &regexCopy;
            } else if (keyView(&scan) == "$options") {
                optionsCopy = scan;
                optionsField = &optionsCopy;
            }
        }
    }
    if (optionsField && !regexField)
        return failAt(path, QStringLiteral("$options needs $regex"));

    std::vector<uint32_t> parts;
    while (bson_iter_next(&it)) {
        const QString name = keyOf(&it);
        const OperatorSpec* spec = findOperator(keyView(&it));
        if (!spec)
            return failAt(path, QStringLiteral("unknown operator %1").arg(name));
        if (!spec->handler)
            continue;
        uint32_t node = 0;
        if (!(this->*spec->handler)(Operator{path, name, &it, optionsField, spec->kind}, &node))
            return false;
        parts.push_back(spec->negated ? add(Kind::VNot, node) : node);
    }
    *out = parts.size() == 1 ? parts[0] : addList(Kind::VAnd, parts);
    return true;
}

bool FilterCompiler::compileRegexOperand(const QString& path, const bson_iter_t* operand,
                                         const bson_iter_t* options, uint32_t* out) {
    CompiledRegex regex;
    QString message;
    if (!CompiledRegex::fromOperand(operand, options, &regex, &message))
        return failAt(path, message);
    m_p.regexes.push_back(std::move(regex));
    *out = uint32_t(m_p.regexes.size() - 1);
    return true;
}

bool FilterCompiler::compileTypeMask(const QString& path, const bson_iter_t* operand, uint32_t* mask) {
    if ((iterType(operand) == BSON_TYPE_ARRAY)) {
        bson_iter_t element;
        if (bsonvalue::childCount(operand) == 0 || !bson_iter_recurse(operand, &element))
            return failAt(path, QStringLiteral("$type needs at least one type"));
        while (bson_iter_next(&element))
            if (!compileTypeMask(path, &element, mask))
                return false;
        return true;
    }
    if ((iterType(operand) == BSON_TYPE_UTF8)) {
        uint32_t len = 0;
        const char* name = bson_iter_utf8(operand, &len);
        const std::string_view text(name, len);
        if (text == "number") {
            *mask |= typeCodeBit(1) | typeCodeBit(16) | typeCodeBit(18) | typeCodeBit(19);
            return true;
        }
        for (const TypeName& type : kTypeNames) {
            if (text == type.name) {
                *mask |= typeCodeBit(type.code);
                return true;
            }
        }
        return failAt(path,
                      QStringLiteral("$type: unknown type name \"%1\"").arg(QString::fromUtf8(name, len)));
    }
    int64_t code = 0;
    if (wholeNumber(operand, &code)) {
        const uint32_t bit = code >= -1 && code <= 127 ? typeCodeBit(int(code)) : 0;
        if (!bit)
            return failAt(path, QStringLiteral("$type: unknown type code %1").arg(code));
        *mask |= bit;
        return true;
    }
    return failAt(path, QStringLiteral("$type needs a type name, a type number or an array of them"));
}

bool FilterCompiler::compileElemMatch(const QString& path, const bson_iter_t* operand, uint32_t* out) {
    bson_iter_t inner;
    if (!(iterType(operand) == BSON_TYPE_DOCUMENT) || !bson_iter_recurse(operand, &inner))
        return failAt(path, QStringLiteral("$elemMatch needs a document"));
    bson_iter_t probe = inner;
    bool valueMode = false;
    if (bson_iter_next(&probe)) {
        // {$elemMatch: {$gt: 1}} tests elements as values; a query whose first key is
        // a field or a logical operator tests elements that are documents.
        valueMode = bson_iter_key(&probe)[0] == '$' && !findLogical(keyView(&probe));
    }
    uint32_t child = 0;
    if (valueMode) {
        if (!compileOperators(operand, path + QStringLiteral(".$elemMatch"), &child))
            return false;
        *out = add(Kind::ElemMatchValue, child);
        return true;
    }
    if (!compileDocument(&inner, QString(), path + QLatin1Char('.'), true, &child))
        return false;
    *out = add(Kind::ElemMatchDoc, child);
    return true;
}

bool FilterCompiler::compileEquality(const Operator& op, uint32_t* out) {
    *out = add(Kind::Eq, addOperand(op.operand));
    return true;
}

bool FilterCompiler::compileComparison(const Operator& op, uint32_t* out) {
    if ((iterType(op.operand) == BSON_TYPE_REGEX))
        return failAt(op.path, QStringLiteral("%1 cannot take a regular expression").arg(op.name));
    if ((iterType(op.operand) == BSON_TYPE_NULL)) {
        // Only null (and missing) sits in the null bracket: $gte/$lte null are
        // equality, $gt/$lt null match nothing.
        *out = op.kind == Kind::Gte || op.kind == Kind::Lte ? add(Kind::Eq, addOperand(op.operand))
                                                            : add(Kind::VFalse);
        return true;
    }
    *out = add(op.kind, addOperand(op.operand));
    return true;
}

bool FilterCompiler::compileIn(const Operator& op, uint32_t* out) {
    bson_iter_t element;
    if (!(iterType(op.operand) == BSON_TYPE_ARRAY) || !bson_iter_recurse(op.operand, &element))
        return failAt(op.path, QStringLiteral("%1 needs an array").arg(op.name));
    InList list;
    while (bson_iter_next(&element)) {
        if (isOperatorDocument(&element)) {
            bson_iter_t inner;
            bson_iter_recurse(&element, &inner);
            bson_iter_next(&inner);
            return failAt(op.path,
                          QStringLiteral("%1 cannot hold an operator (%2)").arg(op.name, keyOf(&inner)));
        }
        if ((iterType(&element) == BSON_TYPE_REGEX)) {
            uint32_t regex = 0;
            if (!compileRegexOperand(op.path, &element, nullptr, &regex))
                return false;
            list.regexes.push_back(regex);
        } else if ((iterType(&element) == BSON_TYPE_NULL)) {
            list.hasNull = true;
        } else {
            list.values.push_back(addOperand(&element));
        }
    }
    // Up to 8 values a linear scan of compare() is as quick as building a key and
    // hashing it; above that the hash wins (an $in of 1 000 ids is common).
    if (list.values.size() > 8) {
        list.hashed = true;
        std::vector<uint32_t> rest;
        std::string key;
        for (uint32_t index : list.values) {
            key.clear();
            const bson_iter_t value = m_p.operand(index);
            if (bsonvalue::appendKey(&value, key))
                list.keys.insert(key);
            else
                rest.push_back(index);
        }
        list.values = std::move(rest);
    }
    m_p.inLists.push_back(std::move(list));
    *out = add(Kind::In, uint32_t(m_p.inLists.size() - 1));
    return true;
}

bool FilterCompiler::compileExists(const Operator& op, uint32_t* out) {
    const uint32_t exists = add(Kind::Exists);
    *out = bson_iter_as_bool(op.operand) ? exists : add(Kind::VNot, exists);
    return true;
}

bool FilterCompiler::compileType(const Operator& op, uint32_t* out) {
    uint32_t mask = 0;
    if (!compileTypeMask(op.path, op.operand, &mask))
        return false;
    *out = add(Kind::Type, mask);
    return true;
}

bool FilterCompiler::compileRegex(const Operator& op, uint32_t* out) {
    uint32_t regex = 0;
    if (!compileRegexOperand(op.path, op.operand, op.options, &regex))
        return false;
    *out = add(Kind::Regex, regex);
    return true;
}

bool FilterCompiler::compileNot(const Operator& op, uint32_t* out) {
    uint32_t inner = 0;
    if ((iterType(op.operand) == BSON_TYPE_REGEX)) {
        uint32_t regex = 0;
        if (!compileRegexOperand(op.path, op.operand, nullptr, &regex))
            return false;
        inner = add(Kind::Regex, regex);
    } else if ((iterType(op.operand) == BSON_TYPE_DOCUMENT)) {
        if (bsonvalue::childCount(op.operand) == 0)
            return failAt(op.path, QStringLiteral("$not cannot be empty"));
        if (!isOperatorDocument(op.operand))
            return failAt(op.path, QStringLiteral("$not needs a regular expression or a document of "
                                                  "operators"));
        if (!compileOperators(op.operand, op.path, &inner))
            return false;
    } else {
        return failAt(op.path, QStringLiteral("$not needs a regular expression or a document of operators"));
    }
    *out = add(Kind::VNot, inner);
    return true;
}

bool FilterCompiler::compileElemMatchOperator(const Operator& op, uint32_t* out) {
    return compileElemMatch(op.path, op.operand, out);
}

bool FilterCompiler::compileSize(const Operator& op, uint32_t* out) {
    int64_t size = 0;
    if (!wholeNumber(op.operand, &size) || size < 0)
        return failAt(op.path, QStringLiteral("$size needs a non-negative integer"));
    *out = size > int64_t(UINT32_MAX) ? add(Kind::VFalse) : add(Kind::Size, uint32_t(size));
    return true;
}

bool FilterCompiler::compileAll(const Operator& op, uint32_t* out) {
    bson_iter_t element;
    if (!(iterType(op.operand) == BSON_TYPE_ARRAY) || !bson_iter_recurse(op.operand, &element))
        return failAt(op.path, QStringLiteral("$all needs an array"));
    std::vector<uint32_t> parts;
    while (bson_iter_next(&element)) {
        uint32_t node = 0;
        if (isOperatorDocument(&element)) {
            bson_iter_t inner;
            bson_iter_recurse(&element, &inner);
            bson_iter_next(&inner);
            if (keyView(&inner) != "$elemMatch")
                return failAt(op.path,
                              QStringLiteral("$all cannot hold an operator (%1)").arg(keyOf(&inner)));
            if (!compileElemMatch(op.path, &inner, &node))
                return false;
        } else if ((iterType(&element) == BSON_TYPE_REGEX)) {
            uint32_t regex = 0;
            if (!compileRegexOperand(op.path, &element, nullptr, &regex))
                return false;
            node = add(Kind::Regex, regex);
        } else {
            node = add(Kind::Eq, addOperand(&element));
        }
        parts.push_back(node);
    }
    // MongoDB: {$all: []} matches nothing.
    if (parts.empty())
        *out = add(Kind::VFalse);
    else
        *out = parts.size() == 1 ? parts[0] : addList(Kind::VAnd, parts);
    return true;
}

} // namespace tw::filterimpl

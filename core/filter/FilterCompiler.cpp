#include "FilterCompiler.h"

#include "BsonValue.h"
#include "FastOperand.h"
#include "FieldPath.h"
#include "FlatFilter.h"

#include <QRegularExpression>

#include <cstring>
#include <string>
#include <string_view>

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
        if (name == QLatin1String("$comment"))
            continue;
        Kind kind;
        if (name == QLatin1String("$and"))
            kind = Kind::And;
        else if (name == QLatin1String("$or"))
            kind = Kind::Or;
        else if (name == QLatin1String("$nor"))
            kind = Kind::Nor;
        else if (where.isEmpty())
            return fail(QStringLiteral("unknown top-level operator %1").arg(name));
        else
            return fail(QStringLiteral("%1: unknown top-level operator %2").arg(where, name));
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
        const char* flags = nullptr;
        const char* pattern = bson_iter_regex(it, &flags);
        uint32_t regex = 0;
        if (!compileRegex(path, pattern, flags, &regex))
            return false;
        value = add(Kind::Regex, regex);
    } else {
        value = add(Kind::Eq, addOperand(it));
    }
    *out = add(Kind::Path, pathIndex, value);
    return true;
}

bool FilterCompiler::compileRegex(const QString& path, const char* pattern, const char* flags,
                                  uint32_t* out) {
    QRegularExpression::PatternOptions options;
    for (const char* f = flags; *f; ++f) {
        switch (*f) {
        case 'i':
            options |= QRegularExpression::CaseInsensitiveOption;
            break;
        case 'm':
            options |= QRegularExpression::MultilineOption;
            break;
        case 's':
            options |= QRegularExpression::DotMatchesEverythingOption;
            break;
        case 'x':
            options |= QRegularExpression::ExtendedPatternSyntaxOption;
            break;
        case 'u':
            break; // QRegularExpression always matches Unicode
        default:
            return failAt(
                path, QStringLiteral("$regex: unknown option '%1' (use i, m, s or x)").arg(QLatin1Char(*f)));
        }
    }
    CompiledRegex regex;
    regex.re = QRegularExpression(QString::fromUtf8(pattern), options);
    if (!regex.re.isValid())
        return failAt(path, QStringLiteral("$regex: invalid regular expression: %1 at offset %2")
                                .arg(regex.re.errorString())
                                .arg(regex.re.patternErrorOffset()));
    // Compile now: the first match would otherwise do it, on whichever thread runs first.
    regex.re.optimize();
    regex.pattern = pattern;
    regex.flags = flags;
    m_p.regexes.push_back(std::move(regex));
    *out = uint32_t(m_p.regexes.size() - 1);
    return true;
}

bool FilterCompiler::compileComparison(const QString& path, const QString& name, Kind kind,
                                       const bson_iter_t* operand, uint32_t* out) {
    if ((iterType(operand) == BSON_TYPE_REGEX))
        return failAt(path, QStringLiteral("%1 cannot take a regular expression").arg(name));
    if ((iterType(operand) == BSON_TYPE_NULL)) {
        // Only null (and missing) sits in the null bracket: $gte/$lte null are
        // equality, $gt/$lt null match nothing.
        *out =
            kind == Kind::Gte || kind == Kind::Lte ? add(Kind::Eq, addOperand(operand)) : add(Kind::VFalse);
        return true;
    }
    *out = add(kind, addOperand(operand));
    return true;
}

bool FilterCompiler::compileIn(const QString& path, const QString& name, const bson_iter_t* operand,
                               uint32_t* out) {
    bson_iter_t element;
    if (!(iterType(operand) == BSON_TYPE_ARRAY) || !bson_iter_recurse(operand, &element))
        return failAt(path, QStringLiteral("%1 needs an array").arg(name));
    InList list;
    std::vector<uint32_t> scalars;
    while (bson_iter_next(&element)) {
        if (isOperatorDocument(&element)) {
            bson_iter_t inner;
            bson_iter_recurse(&element, &inner);
            bson_iter_next(&inner);
            return failAt(path, QStringLiteral("%1 cannot hold an operator (%2)").arg(name, keyOf(&inner)));
        }
        if ((iterType(&element) == BSON_TYPE_REGEX)) {
            const char* flags = nullptr;
            const char* pattern = bson_iter_regex(&element, &flags);
            uint32_t regex = 0;
            if (!compileRegex(path, pattern, flags, &regex))
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
            const bson_iter_t op = m_p.operand(index);
            if (bsonvalue::appendKey(&op, key))
                list.keys.insert(key);
            else
                rest.push_back(index);
        }
        list.values = std::move(rest);
    }
    m_p.inLists.push_back(std::move(list));
    const uint32_t in = add(Kind::In, uint32_t(m_p.inLists.size() - 1));
    *out = name == QLatin1String("$nin") ? add(Kind::VNot, in) : in;
    return true;
}

bool FilterCompiler::compileType(const QString& path, const bson_iter_t* operand, uint32_t* mask) {
    if ((iterType(operand) == BSON_TYPE_ARRAY)) {
        bson_iter_t element;
        if (bsonvalue::childCount(operand) == 0 || !bson_iter_recurse(operand, &element))
            return failAt(path, QStringLiteral("$type needs at least one type"));
        while (bson_iter_next(&element))
            if (!compileType(path, &element, mask))
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
        const char* key = bson_iter_key(&probe);
        // {$elemMatch: {$gt: 1}} tests elements as values; a query whose first key is
        // a field or a logical operator tests elements that are documents.
        valueMode = key[0] == '$' && std::strcmp(key, "$and") != 0 && std::strcmp(key, "$or") != 0 &&
                    std::strcmp(key, "$nor") != 0;
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

bool FilterCompiler::compileAll(const QString& path, const bson_iter_t* operand, uint32_t* out) {
    bson_iter_t element;
    if (!(iterType(operand) == BSON_TYPE_ARRAY) || !bson_iter_recurse(operand, &element))
        return failAt(path, QStringLiteral("$all needs an array"));
    std::vector<uint32_t> parts;
    while (bson_iter_next(&element)) {
        uint32_t node = 0;
        if (isOperatorDocument(&element)) {
            bson_iter_t inner;
            bson_iter_recurse(&element, &inner);
            bson_iter_next(&inner);
            if (std::strcmp(bson_iter_key(&inner), "$elemMatch") != 0)
                return failAt(path, QStringLiteral("$all cannot hold an operator (%1)").arg(keyOf(&inner)));
            if (!compileElemMatch(path, &inner, &node))
                return false;
        } else if ((iterType(&element) == BSON_TYPE_REGEX)) {
            const char* flags = nullptr;
            const char* pattern = bson_iter_regex(&element, &flags);
            uint32_t regex = 0;
            if (!compileRegex(path, pattern, flags, &regex))
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
            if (!std::strcmp(bson_iter_key(&scan), "$regex")) {
                regexCopy = scan;
                regexField = &regexCopy;
            } else if (!std::strcmp(bson_iter_key(&scan), "$options")) {
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
        const char* key = bson_iter_key(&it);
        uint32_t node = 0;
        if (!std::strcmp(key, "$eq")) {
            node = add(Kind::Eq, addOperand(&it));
        } else if (!std::strcmp(key, "$ne")) {
            node = add(Kind::VNot, add(Kind::Eq, addOperand(&it)));
        } else if (!std::strcmp(key, "$gt")) {
            if (!compileComparison(path, name, Kind::Gt, &it, &node))
                return false;
        } else if (!std::strcmp(key, "$gte")) {
            if (!compileComparison(path, name, Kind::Gte, &it, &node))
                return false;
        } else if (!std::strcmp(key, "$lt")) {
            if (!compileComparison(path, name, Kind::Lt, &it, &node))
                return false;
        } else if (!std::strcmp(key, "$lte")) {
            if (!compileComparison(path, name, Kind::Lte, &it, &node))
                return false;
        } else if (!std::strcmp(key, "$in") || !std::strcmp(key, "$nin")) {
            if (!compileIn(path, name, &it, &node))
                return false;
        } else if (!std::strcmp(key, "$exists")) {
            const uint32_t exists = add(Kind::Exists);
            node = bson_iter_as_bool(&it) ? exists : add(Kind::VNot, exists);
        } else if (!std::strcmp(key, "$type")) {
            uint32_t mask = 0;
            if (!compileType(path, &it, &mask))
                return false;
            node = add(Kind::Type, mask);
        } else if (!std::strcmp(key, "$regex")) {
            const char* pattern = nullptr;
            const char* flags = "";
            if ((iterType(&it) == BSON_TYPE_UTF8))
                pattern = bson_iter_utf8(&it, nullptr);
            else if ((iterType(&it) == BSON_TYPE_REGEX))
                pattern = bson_iter_regex(&it, &flags);
            else
                return failAt(path, QStringLiteral("$regex needs a string or a regular expression"));
            if (optionsField) {
                if (!(iterType(optionsField) == BSON_TYPE_UTF8))
                    return failAt(path, QStringLiteral("$options needs a string"));
                const char* extra = bson_iter_utf8(optionsField, nullptr);
                if (*flags && *extra)
                    return failAt(path, QStringLiteral("$regex has options both in the regular expression "
                                                       "and in $options"));
                if (*extra)
                    flags = extra;
            }
            uint32_t regex = 0;
            if (!compileRegex(path, pattern, flags, &regex))
                return false;
            node = add(Kind::Regex, regex);
        } else if (!std::strcmp(key, "$options")) {
            continue;
        } else if (!std::strcmp(key, "$not")) {
            uint32_t inner = 0;
            if ((iterType(&it) == BSON_TYPE_REGEX)) {
                const char* flags = nullptr;
                const char* pattern = bson_iter_regex(&it, &flags);
                uint32_t regex = 0;
                if (!compileRegex(path, pattern, flags, &regex))
                    return false;
                inner = add(Kind::Regex, regex);
            } else if ((iterType(&it) == BSON_TYPE_DOCUMENT)) {
                if (bsonvalue::childCount(&it) == 0)
                    return failAt(path, QStringLiteral("$not cannot be empty"));
                if (!isOperatorDocument(&it))
                    return failAt(path, QStringLiteral("$not needs a regular expression or a document of "
                                                       "operators"));
                if (!compileOperators(&it, path, &inner))
                    return false;
            } else {
                return failAt(path,
                              QStringLiteral("$not needs a regular expression or a document of operators"));
            }
            node = add(Kind::VNot, inner);
        } else if (!std::strcmp(key, "$elemMatch")) {
            if (!compileElemMatch(path, &it, &node))
                return false;
        } else if (!std::strcmp(key, "$size")) {
            int64_t size = 0;
            if (!wholeNumber(&it, &size) || size < 0)
                return failAt(path, QStringLiteral("$size needs a non-negative integer"));
            node = size > int64_t(UINT32_MAX) ? add(Kind::VFalse) : add(Kind::Size, uint32_t(size));
        } else if (!std::strcmp(key, "$all")) {
            if (!compileAll(path, &it, &node))
                return false;
        } else {
            return failAt(path, QStringLiteral("unknown operator %1").arg(name));
        }
        parts.push_back(node);
    }
    *out = parts.size() == 1 ? parts[0] : addList(Kind::VAnd, parts);
    return true;
}

} // namespace tw::filterimpl

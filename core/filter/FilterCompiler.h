#pragma once

#include "FilterProgram.h"

#include <QString>

#include <bson/bson.h>

#include <cstdint>
#include <string_view>
#include <vector>

// Private to core/filter.
namespace tw::filterimpl {

// Compiles a MongoDB query (the BSON document in Program::query) into the program's
// nodes, paths, operands, in-lists and regexes, then its prefix trie and flat path.
// Errors name the offending operator and path.
class FilterCompiler {
public:
    // `program` is not owned and must outlive the compiler; its query is set.
    explicit FilterCompiler(Program& program)
        : m_p(program) {}

    bool run();
    QString error() const { return m_error; }

private:
    // One field of an operator document ({$gt: 1, $lt: 5}) being compiled.
    struct Operator {
        const QString& path;
        const QString& name;
        const bson_iter_t* operand;
        const bson_iter_t* options; // the $options next to $regex, or nullptr
        Kind kind;                  // from the operator table
    };
    using Handler = bool (FilterCompiler::*)(const Operator& op, uint32_t* out);
    struct OperatorSpec {
        std::string_view name;
        Handler handler; // nullptr: no predicate of its own ($options belongs to $regex)
        Kind kind;       // the node it compiles to; shared handlers ($gt … $lte) build this one
        bool negated;    // the node is wrapped in VNot ($ne, $nin)
    };
    static const OperatorSpec* findOperator(std::string_view name);

    bool fail(const QString& message);
    bool failAt(const QString& path, const QString& message);

    uint32_t add(Kind kind, uint32_t a = 0, uint32_t b = 0, uint32_t c = 0);
    uint32_t addList(Kind kind, const std::vector<uint32_t>& kids);
    uint32_t addOperand(const bson_iter_t* it);
    uint32_t addPath(const char* key, uint32_t len, bool relative);

    bool compileDocument(bson_iter_t* it, const QString& where, const QString& prefix, bool relative,
                         uint32_t* out);
    bool compileField(const bson_iter_t* it, const QString& prefix, bool relative, uint32_t* out);
    bool compileOperators(const bson_iter_t* doc, const QString& path, uint32_t* out);
    // Every regular expression of a query is read here (CompiledRegex::fromOperand).
    bool compileRegexOperand(const QString& path, const bson_iter_t* operand, const bson_iter_t* options,
                             uint32_t* out);
    bool compileTypeMask(const QString& path, const bson_iter_t* operand, uint32_t* mask);
    bool compileElemMatch(const QString& path, const bson_iter_t* operand, uint32_t* out);

    // Handlers of the operator table.
    bool compileEquality(const Operator& op, uint32_t* out);
    bool compileComparison(const Operator& op, uint32_t* out);
    bool compileIn(const Operator& op, uint32_t* out);
    bool compileExists(const Operator& op, uint32_t* out);
    bool compileType(const Operator& op, uint32_t* out);
    bool compileRegex(const Operator& op, uint32_t* out);
    bool compileNot(const Operator& op, uint32_t* out);
    bool compileElemMatchOperator(const Operator& op, uint32_t* out);
    bool compileSize(const Operator& op, uint32_t* out);
    bool compileAll(const Operator& op, uint32_t* out);

    Program& m_p;
    QString m_error;
};

} // namespace tw::filterimpl

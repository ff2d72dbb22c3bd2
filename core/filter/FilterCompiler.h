#pragma once

#include "FilterProgram.h"

#include <QString>

#include <bson/bson.h>

#include <cstdint>
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
    bool fail(const QString& message);
    bool failAt(const QString& path, const QString& message);

    uint32_t add(Kind kind, uint32_t a = 0, uint32_t b = 0, uint32_t c = 0);
    uint32_t addList(Kind kind, const std::vector<uint32_t>& kids);
    uint32_t addOperand(const bson_iter_t* it);
    uint32_t addPath(const char* key, uint32_t len, bool relative);

    bool compileDocument(bson_iter_t* it, const QString& where, const QString& prefix, bool relative,
                         uint32_t* out);
    bool compileField(const bson_iter_t* it, const QString& prefix, bool relative, uint32_t* out);
    bool compileRegex(const QString& path, const char* pattern, const char* flags, uint32_t* out);
    bool compileComparison(const QString& path, const QString& name, Kind kind, const bson_iter_t* operand,
                           uint32_t* out);
    bool compileIn(const QString& path, const QString& name, const bson_iter_t* operand, uint32_t* out);
    bool compileType(const QString& path, const bson_iter_t* operand, uint32_t* mask);
    bool compileElemMatch(const QString& path, const bson_iter_t* operand, uint32_t* out);
    bool compileAll(const QString& path, const bson_iter_t* operand, uint32_t* out);
    bool compileOperators(const bson_iter_t* doc, const QString& path, uint32_t* out);

    Program& m_p;
    QString m_error;
};

} // namespace tw::filterimpl

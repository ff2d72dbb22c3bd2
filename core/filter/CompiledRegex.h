#pragma once

#include "FieldPath.h"

#include <QByteArray>
#include <QRegularExpression>
#include <QString>

#include <bson/bson.h>

// Private to core/filter.
namespace tw::filterimpl {

// A regular expression of a filter ($regex, or a BSON regex wherever a query holds
// one), compiled once and matched against the values a path reaches.
struct CompiledRegex {
    QRegularExpression re;
    QByteArray pattern;
    QByteArray flags;

    // The one reader of a regular expression operand: a BSON regex (a field's value, a
    // member of $in, $nin or $all, the operand of $not), or the operand of $regex, which
    // may also be a string and takes its flags from `options` (the $options field) when
    // given. On error returns false and sets *error to a message without the path.
    static bool fromOperand(const bson_iter_t* operand, const bson_iter_t* options, CompiledRegex* out,
                            QString* error);

    // Inline: it ran inlined into the evaluation of $regex and $in.
    bool matches(const bson_iter_t* v) const {
        uint32_t len = 0;
        const char* text = nullptr;
        if ((iterType(v) == BSON_TYPE_UTF8)) {
            text = bson_iter_utf8(v, &len);
        } else if ((iterType(v) == BSON_TYPE_SYMBOL)) {
            text = bson_iter_symbol(v, &len);
        } else if ((iterType(v) == BSON_TYPE_REGEX)) {
            // {a: /x/} also finds documents that store the regular expression itself.
            const char* storedFlags = nullptr;
            const char* storedPattern = bson_iter_regex(v, &storedFlags);
            return pattern == storedPattern && flags == storedFlags;
        } else {
            return false;
        }
        return re.match(QString::fromUtf8(text, qsizetype(len))).hasMatch();
    }
};

} // namespace tw::filterimpl

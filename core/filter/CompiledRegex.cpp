#include "CompiledRegex.h"

namespace tw::filterimpl {

bool CompiledRegex::fromOperand(const bson_iter_t* operand, const bson_iter_t* options, CompiledRegex* out,
                                QString* error) {
    const char* pattern = nullptr;
    const char* flags = "";
    if ((iterType(operand) == BSON_TYPE_UTF8)) {
        pattern = bson_iter_utf8(operand, nullptr);
    } else if ((iterType(operand) == BSON_TYPE_REGEX)) {
        pattern = bson_iter_regex(operand, &flags);
    } else {
        *error = QStringLiteral("$regex needs a string or a regular expression");
        return false;
    }
    if (options) {
        if (!(iterType(options) == BSON_TYPE_UTF8)) {
            *error = QStringLiteral("$options needs a string");
            return false;
        }
        const char* extra = bson_iter_utf8(options, nullptr);
        if (*flags && *extra) {
            *error = QStringLiteral("$regex has options both in the regular expression and in $options");
            return false;
        }
        if (*extra)
            flags = extra;
    }
    QRegularExpression::PatternOptions patternOptions;
    for (const char* f = flags; *f; ++f) {
        switch (*f) {
        case 'i':
            patternOptions |= QRegularExpression::CaseInsensitiveOption;
            break;
        case 'm':
            patternOptions |= QRegularExpression::MultilineOption;
            break;
        case 's':
            patternOptions |= QRegularExpression::DotMatchesEverythingOption;
            break;
        case 'x':
            patternOptions |= QRegularExpression::ExtendedPatternSyntaxOption;
            break;
        case 'u':
            break; // QRegularExpression always matches Unicode
        default:
            *error = QStringLiteral("$regex: unknown option '%1' (use i, m, s or x)").arg(QLatin1Char(*f));
            return false;
        }
    }
    out->re = QRegularExpression(QString::fromUtf8(pattern), patternOptions);
    if (!out->re.isValid()) {
        *error = QStringLiteral("$regex: invalid regular expression: %1 at offset %2")
                     .arg(out->re.errorString())
                     .arg(out->re.patternErrorOffset());
        return false;
    }
    // Compile now: the first match would otherwise do it, on whichever thread runs first.
    out->re.optimize();
    out->pattern = pattern;
    out->flags = flags;
    return true;
}

} // namespace tw::filterimpl

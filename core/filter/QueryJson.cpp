#include "QueryJson.h"

#include <QByteArray>

#include <charconv>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace tw {

namespace {

// Extended JSON v2 type wrappers (canonical and relaxed) that libbson turns into one
// BSON value. "$type" only counts next to "$binary" (legacy binary); alone it is the
// query operator.
bool isTypeWrapperKey(std::string_view key) {
    static constexpr std::string_view keys[] = {
        "$oid",       "$symbol", "$numberInt", "$numberLong", "$numberDouble", "$numberDecimal",
        "$binary",    "$uuid",   "$code",      "$scope",      "$timestamp",    "$regularExpression",
        "$dbPointer", "$date",   "$minKey",    "$maxKey",     "$undefined"};
    for (std::string_view k : keys)
        if (k == key)
            return true;
    return false;
}

class Parser {
public:
    Parser(QByteArrayView text)
        : m_begin(text.data())
        , m_p(text.data())
        , m_end(text.data() + text.size()) {}

    bool parseRoot(bson_t* doc) {
        skipSpace();
        if (m_p == m_end || *m_p != '{') {
            m_error = QStringLiteral("filter must be a JSON object");
            return false;
        }
        ObjectShape shape;
        if (!parseObject(doc, &shape))
            return false;
        skipSpace();
        if (m_p != m_end)
            return fail("unexpected text after the closing '}'");
        return true;
    }

    QString error() const { return m_error; }

private:
    // What an object's keys say about it once parsed.
    struct ObjectShape {
        bool empty = true;
        bool allWrapperKeys = true;
        bool hasBinary = false;
        bool hasType = false;
        bool hasRegex = false;
        bool onlyRegexKeys = true;
    };

    // Filters nest a handful of levels; 200 keeps a hostile input from exhausting the
    // stack while never limiting a real query.
    static constexpr int kMaxDepth = 200;

    bool fail(const char* what) {
        m_error =
            QStringLiteral("JSON syntax error at offset %1: %2").arg(m_p - m_begin).arg(QLatin1String(what));
        return false;
    }

    void skipSpace() {
        while (m_p != m_end && (*m_p == ' ' || *m_p == '\t' || *m_p == '\n' || *m_p == '\r'))
            ++m_p;
    }

    bool expect(char c, const char* message) {
        skipSpace();
        if (m_p == m_end || *m_p != c)
            return fail(message);
        ++m_p;
        return true;
    }

    static void appendUtf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out.push_back(char(cp));
        } else if (cp < 0x800) {
            out.push_back(char(0xC0 | (cp >> 6)));
            out.push_back(char(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(char(0xE0 | (cp >> 12)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(char(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(char(0xF0 | (cp >> 18)));
            out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(char(0x80 | (cp & 0x3F)));
        }
    }

    bool parseHex4(uint32_t* out) {
        if (m_end - m_p < 4)
            return fail("truncated \\u escape");
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = m_p[i];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= uint32_t(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= uint32_t(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= uint32_t(c - 'A' + 10);
            else
                return fail("invalid \\u escape");
        }
        m_p += 4;
        *out = v;
        return true;
    }

    bool parseString(std::string& out) {
        out.clear();
        if (m_p == m_end || *m_p != '"')
            return fail("expected a string");
        ++m_p;
        for (;;) {
            if (m_p == m_end)
                return fail("unterminated string");
            const char c = *m_p++;
            if (c == '"')
                break;
            if (uint8_t(c) < 0x20)
                return fail("control character in string");
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            if (m_p == m_end)
                return fail("unterminated string");
            const char e = *m_p++;
            switch (e) {
            case '"':
                out.push_back('"');
                break;
            case '\\':
                out.push_back('\\');
                break;
            case '/':
                out.push_back('/');
                break;
            case 'b':
                out.push_back('\b');
                break;
            case 'f':
                out.push_back('\f');
                break;
            case 'n':
                out.push_back('\n');
                break;
            case 'r':
                out.push_back('\r');
                break;
            case 't':
                out.push_back('\t');
                break;
            case 'u': {
                uint32_t cp = 0;
                if (!parseHex4(&cp))
                    return false;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t low = 0;
                    if (m_end - m_p < 2 || m_p[0] != '\\' || m_p[1] != 'u')
                        return fail("unpaired surrogate in \\u escape");
                    m_p += 2;
                    if (!parseHex4(&low))
                        return false;
                    if (low < 0xDC00 || low > 0xDFFF)
                        return fail("unpaired surrogate in \\u escape");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return fail("unpaired surrogate in \\u escape");
                }
                appendUtf8(out, cp);
                break;
            }
            default:
                --m_p;
                return fail("invalid escape in string");
            }
        }
        if (!bson_utf8_validate(out.data(), out.size(), true))
            return fail("string is not valid UTF-8");
        return true;
    }

    bool parseNumber(bson_t* parent, const std::string& key) {
        const char* start = m_p;
        bool integral = true;
        if (m_p != m_end && *m_p == '-')
            ++m_p;
        if (m_p == m_end || !(*m_p >= '0' && *m_p <= '9'))
            return fail("invalid number");
        if (*m_p == '0' && m_p + 1 != m_end && m_p[1] >= '0' && m_p[1] <= '9')
            return fail("leading zero in number");
        while (m_p != m_end && *m_p >= '0' && *m_p <= '9')
            ++m_p;
        if (m_p != m_end && *m_p == '.') {
            integral = false;
            ++m_p;
            if (m_p == m_end || !(*m_p >= '0' && *m_p <= '9'))
                return fail("invalid number");
            while (m_p != m_end && *m_p >= '0' && *m_p <= '9')
                ++m_p;
        }
        if (m_p != m_end && (*m_p == 'e' || *m_p == 'E')) {
            integral = false;
            ++m_p;
            if (m_p != m_end && (*m_p == '+' || *m_p == '-'))
                ++m_p;
            if (m_p == m_end || !(*m_p >= '0' && *m_p <= '9'))
                return fail("invalid number");
            while (m_p != m_end && *m_p >= '0' && *m_p <= '9')
                ++m_p;
        }
        const int keyLen = int(key.size());
        if (integral) {
            // Like libbson and the mongo shell: int32 when it fits, else int64, else double.
            long long v = 0;
            const auto r = std::from_chars(start, m_p, v);
            if (r.ec == std::errc() && r.ptr == m_p) {
                if (v >= INT32_MIN && v <= INT32_MAX)
                    bson_append_int32(parent, key.data(), keyLen, int32_t(v));
                else
                    bson_append_int64(parent, key.data(), keyLen, v);
                return true;
            }
        }
        double d = 0;
        const auto r = std::from_chars(start, m_p, d);
        if (r.ptr != m_p)
            return fail("invalid number");
        bson_append_double(parent, key.data(), keyLen, d);
        return true;
    }

    bool literal(const char* word) {
        const size_t n = std::strlen(word);
        if (size_t(m_end - m_p) < n || std::memcmp(m_p, word, n) != 0)
            return fail("unexpected character");
        m_p += n;
        return true;
    }

    // Re-reads [start, m_p) with libbson as the value of a one-field document and copies
    // that value: libbson knows every Extended JSON type wrapper.
    bool appendWrapper(bson_t* parent, const std::string& key, const char* start) {
        std::string text = "{\"v\":";
        text.append(start, size_t(m_p - start));
        text.push_back('}');
        bson_t doc;
        bson_error_t err;
        if (!bson_init_from_json(&doc, text.data(), ssize_t(text.size()), &err)) {
            m_error = QStringLiteral("%1: invalid Extended JSON value at offset %2: %3")
                          .arg(QString::fromStdString(currentPath()))
                          .arg(start - m_begin)
                          .arg(QString::fromUtf8(err.message));
            return false;
        }
        bson_iter_t it;
        const bool ok = bson_iter_init_find(&it, &doc, "v");
        if (ok)
            bson_append_iter(parent, key.data(), int(key.size()), &it);
        bson_destroy(&doc);
        return ok;
    }

    bool parseValue(bson_t* parent, const std::string& key, bool inArray) {
        skipSpace();
        if (m_p == m_end)
            return fail("unexpected end of input");
        const int keyLen = int(key.size());
        switch (*m_p) {
        case '{': {
            const char* start = m_p;
            bson_t child;
            bson_init(&child);
            ObjectShape shape;
            if (!parseObject(&child, &shape)) {
                bson_destroy(&child);
                return false;
            }
            const bool wrapper = !shape.empty && shape.allWrapperKeys && (!shape.hasType || shape.hasBinary);
            const bool regex = inArray && !shape.empty && shape.hasRegex && shape.onlyRegexKeys;
            bool ok = true;
            if (wrapper || regex)
                ok = appendWrapper(parent, key, start);
            else
                bson_append_document(parent, key.data(), keyLen, &child);
            bson_destroy(&child);
            return ok;
        }
        case '[': {
            bson_t child;
            bson_append_array_begin(parent, key.data(), keyLen, &child);
            const bool ok = parseArray(&child);
            bson_append_array_end(parent, &child);
            return ok;
        }
        case '"': {
            std::string s;
            if (!parseString(s))
                return false;
            bson_append_utf8(parent, key.data(), keyLen, s.data(), int(s.size()));
            return true;
        }
        case 't':
            if (!literal("true"))
                return false;
            bson_append_bool(parent, key.data(), keyLen, true);
            return true;
        case 'f':
            if (!literal("false"))
                return false;
            bson_append_bool(parent, key.data(), keyLen, false);
            return true;
        case 'n':
            if (!literal("null"))
                return false;
            bson_append_null(parent, key.data(), keyLen);
            return true;
        default:
            if (*m_p == '-' || (*m_p >= '0' && *m_p <= '9'))
                return parseNumber(parent, key);
            return fail("unexpected character");
        }
    }

    bool parseObject(bson_t* doc, ObjectShape* shape) {
        if (++m_depth > kMaxDepth)
            return fail("nested too deeply");
        ++m_p; // '{'
        skipSpace();
        if (m_p != m_end && *m_p == '}') {
            ++m_p;
            --m_depth;
            return true;
        }
        std::string key;
        for (;;) {
            skipSpace();
            if (!parseString(key))
                return false;
            if (key.find('\0') != std::string::npos)
                return fail("field name contains a NUL character");
            shape->empty = false;
            if (key == "$type")
                shape->hasType = true;
            else if (key == "$binary")
                shape->hasBinary = true;
            if (key == "$regex")
                shape->hasRegex = true;
            else if (key != "$options")
                shape->onlyRegexKeys = false;
            if (!isTypeWrapperKey(key) && key != "$type")
                shape->allWrapperKeys = false;
            if (!expect(':', "expected ':' after a field name"))
                return false;
            m_path.push_back(key);
            if (!parseValue(doc, key, false))
                return false;
            m_path.pop_back();
            skipSpace();
            if (m_p == m_end)
                return fail("expected ',' or '}'");
            if (*m_p == ',') {
                ++m_p;
                continue;
            }
            if (*m_p == '}') {
                ++m_p;
                break;
            }
            return fail("expected ',' or '}'");
        }
        --m_depth;
        return true;
    }

    bool parseArray(bson_t* array) {
        if (++m_depth > kMaxDepth)
            return fail("nested too deeply");
        ++m_p; // '['
        skipSpace();
        if (m_p != m_end && *m_p == ']') {
            ++m_p;
            --m_depth;
            return true;
        }
        for (uint32_t index = 0;; ++index) {
            const std::string key = std::to_string(index);
            m_path.push_back(key);
            if (!parseValue(array, key, true))
                return false;
            m_path.pop_back();
            skipSpace();
            if (m_p == m_end)
                return fail("expected ',' or ']'");
            if (*m_p == ',') {
                ++m_p;
                continue;
            }
            if (*m_p == ']') {
                ++m_p;
                break;
            }
            return fail("expected ',' or ']'");
        }
        --m_depth;
        return true;
    }

    // The dotted location of the value being read, for messages.
    std::string currentPath() const {
        std::string path;
        for (const std::string& part : m_path) {
            if (!path.empty())
                path.push_back('.');
            path += part;
        }
        return path;
    }

    std::vector<std::string> m_path;
    const char* m_begin;
    const char* m_p;
    const char* m_end;
    int m_depth = 0;
    QString m_error;
};

} // namespace

bool parseQueryJson(QByteArrayView text, Bson* out, QString* error) {
    Parser parser(text);
    BsonBuilder doc;
    if (!parser.parseRoot(doc.get())) {
        if (error)
            *error = parser.error();
        return false;
    }
    *out = doc.take();
    return true;
}

} // namespace tw

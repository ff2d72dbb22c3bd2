#include "JsonToBson.h"

#include <charconv>
#include <cstring>
#include <limits>

#include <QtEndian>

#include <bson/bson.h>

namespace tw {

namespace {

// Below libbson's own limit (its reader keeps a stack of 100 levels), so whatever this
// reader takes libbson takes too; deeper documents go to libbson.
constexpr int kMaxDepth = 64;

class Reader {
public:
    Reader(QByteArrayView json, QByteArray* out)
        : m_p(json.data())
        , m_end(json.data() + json.size())
        , m_out(out) {}

    bool readTop() {
        skipSpace();
        if (!readDocument(false, 0))
            return false;
        skipSpace();
        return m_p == m_end;
    }

private:
    const char* m_p;
    const char* m_end;
    QByteArray* m_out;
    // The key and the wrapped string being read, unescaped; truncated, not cleared, so
    // that each keeps its buffer for the whole document.
    QByteArray m_key;
    QByteArray m_text;

    void skipSpace() {
        while (m_p < m_end && (*m_p == ' ' || *m_p == '\n' || *m_p == '\r' || *m_p == '\t'))
            ++m_p;
    }
    bool take(char c) {
        skipSpace();
        if (m_p < m_end && *m_p == c) {
            ++m_p;
            return true;
        }
        return false;
    }
    bool peekIs(char c) {
        skipSpace();
        return m_p < m_end && *m_p == c;
    }

    void appendInt32(qint32 v) {
        const qint32 le = qToLittleEndian(v);
        m_out->append(reinterpret_cast<const char*>(&le), 4);
    }
    void appendInt64(qint64 v) {
        const qint64 le = qToLittleEndian(v);
        m_out->append(reinterpret_cast<const char*>(&le), 8);
    }
    void patchInt32(qsizetype at, qint32 v) {
        const qint32 le = qToLittleEndian(v);
        memcpy(m_out->data() + at, &le, 4);
    }

    // A JSON string at m_p (its opening quote) unescaped into *into. Fails on what the
    // fast path does not take: control characters, \u0000, surrogates, invalid UTF-8.
    bool readString(QByteArray* into) {
        if (m_p >= m_end || *m_p != '"')
            return false;
        ++m_p;
        bool highBytes = false;
        const qsizetype begin = into->size();
        for (;;) {
            const char* run = m_p;
            while (m_p < m_end) {
                const unsigned char c = static_cast<unsigned char>(*m_p);
                if (c == '"' || c == '\\' || c < 0x20)
                    break;
                highBytes |= c >= 0x80;
                ++m_p;
            }
            into->append(run, m_p - run);
            if (m_p >= m_end || static_cast<unsigned char>(*m_p) < 0x20)
                return false;
            if (*m_p++ == '"')
                break;
            if (m_p >= m_end)
                return false;
            switch (*m_p++) {
            case '"':
                into->append('"');
                break;
            case '\\':
                into->append('\\');
                break;
            case '/':
                into->append('/');
                break;
            case 'b':
                into->append('\b');
                break;
            case 'f':
                into->append('\f');
                break;
            case 'n':
                into->append('\n');
                break;
            case 'r':
                into->append('\r');
                break;
            case 't':
                into->append('\t');
                break;
            case 'u': {
                if (m_end - m_p < 4)
                    return false;
                unsigned code = 0;
                const auto r = std::from_chars(m_p, m_p + 4, code, 16);
                if (r.ptr != m_p + 4)
                    return false;
                m_p += 4;
                if (code == 0 || (code >= 0xd800 && code <= 0xdfff))
                    return false;
                if (code < 0x80) {
                    into->append(char(code));
                } else if (code < 0x800) {
                    into->append(char(0xc0 | (code >> 6)));
                    into->append(char(0x80 | (code & 0x3f)));
                } else {
                    into->append(char(0xe0 | (code >> 12)));
                    into->append(char(0x80 | ((code >> 6) & 0x3f)));
                    into->append(char(0x80 | (code & 0x3f)));
                }
                break;
            }
            default:
                return false;
            }
        }
        return !highBytes ||
               bson_utf8_validate(into->constData() + begin, size_t(into->size() - begin), false);
    }

    // The BSON element {type, key, value} for the JSON value at m_p.
    bool readElement(const QByteArray& key, int depth) {
        skipSpace();
        if (m_p >= m_end)
            return false;
        const qsizetype typeAt = m_out->size();
        m_out->append('\0'); // the type, once the value tells it
        m_out->append(key.constData(), key.size() + 1);
        char type = 0;
        switch (*m_p) {
        case '{':
            if (!readObjectValue(depth, &type))
                return false;
            break;
        case '[':
            type = char(BSON_TYPE_ARRAY);
            if (!readDocument(true, depth + 1))
                return false;
            break;
        case '"': {
            type = char(BSON_TYPE_UTF8);
            const qsizetype lengthAt = m_out->size();
            appendInt32(0);
            if (!readString(m_out))
                return false;
            m_out->append('\0');
            patchInt32(lengthAt, qint32(m_out->size() - lengthAt - 4));
            break;
        }
        case 't':
        case 'f':
        case 'n':
            if (!readWord(&type))
                return false;
            break;
        default:
            if (!readNumber(&type))
                return false;
        }
        (*m_out)[typeAt] = type;
        return true;
    }

    bool readWord(char* type) {
        const auto is = [this](const char* word, size_t n) {
            if (size_t(m_end - m_p) < n || memcmp(m_p, word, n) != 0)
                return false;
            m_p += n;
            return true;
        };
        if (is("true", 4)) {
            *type = char(BSON_TYPE_BOOL);
            m_out->append('\1');
        } else if (is("false", 5)) {
            *type = char(BSON_TYPE_BOOL);
            m_out->append('\0');
        } else if (is("null", 4)) {
            *type = char(BSON_TYPE_NULL);
        } else {
            return false;
        }
        return true;
    }

    // JSON's number grammar exactly; integers as int32 when they fit, else int64 (as
    // libbson does), anything with a fraction or exponent a double.
    bool readNumber(char* type) {
        const char* start = m_p;
        const char* p = m_p;
        if (p < m_end && *p == '-')
            ++p;
        if (p >= m_end || *p < '0' || *p > '9')
            return false;
        if (*p == '0')
            ++p;
        else
            while (p < m_end && *p >= '0' && *p <= '9')
                ++p;
        bool integral = true;
        if (p < m_end && *p == '.') {
            integral = false;
            ++p;
            if (p >= m_end || *p < '0' || *p > '9')
                return false;
            while (p < m_end && *p >= '0' && *p <= '9')
                ++p;
        }
        if (p < m_end && (*p == 'e' || *p == 'E')) {
            integral = false;
            ++p;
            if (p < m_end && (*p == '+' || *p == '-'))
                ++p;
            if (p >= m_end || *p < '0' || *p > '9')
                return false;
            while (p < m_end && *p >= '0' && *p <= '9')
                ++p;
        }
        m_p = p;
        if (integral) {
            qint64 value = 0;
            const auto r = std::from_chars(start, p, value);
            if (r.ec != std::errc() || r.ptr != p)
                return false; // outside int64
            if (value >= std::numeric_limits<qint32>::min() && value <= std::numeric_limits<qint32>::max()) {
                *type = char(BSON_TYPE_INT32);
                appendInt32(qint32(value));
            } else {
                *type = char(BSON_TYPE_INT64);
                appendInt64(value);
            }
            return true;
        }
        double value = 0;
        const auto r = std::from_chars(start, p, value);
        if (r.ec != std::errc() || r.ptr != p)
            return false; // overflows or underflows: libbson decides what that is
        *type = char(BSON_TYPE_DOUBLE);
        static_assert(sizeof(double) == 8);
        quint64 bits;
        memcpy(&bits, &value, 8);
        bits = qToLittleEndian(bits);
        m_out->append(reinterpret_cast<const char*>(&bits), 8);
        return true;
    }

    // An object as a value: a sub-document, or one of the wrappers this reader takes.
    bool readObjectValue(int depth, char* type) {
        const char* open = m_p;
        ++m_p;
        skipSpace();
        if (m_p + 1 < m_end && m_p[0] == '"' && m_p[1] == '$')
            return readWrapper(type);
        m_p = open;
        *type = char(BSON_TYPE_DOCUMENT);
        return readDocument(false, depth + 1);
    }

    bool readWrapper(char* type) {
        m_key.truncate(0);
        if (!readString(&m_key) || !take(':'))
            return false;
        skipSpace();
        QByteArray& text = m_text;
        text.truncate(0);
        if (m_key == "$oid") {
            const QByteArray& hex = text;
            if (!readString(&text) || hex.size() != 24 || !take('}'))
                return false;
            for (char c : std::as_const(hex))
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                    return false;
            bson_oid_t oid;
            bson_oid_init_from_string(&oid, hex.constData());
            m_out->append(reinterpret_cast<const char*>(oid.bytes), 12);
            *type = char(BSON_TYPE_OID);
            return true;
        }
        if (m_key == "$date") {
            qint64 ms = 0;
            if (!readString(&text) || !parseDate(text, &ms) || !take('}'))
                return false;
            appendInt64(ms);
            *type = char(BSON_TYPE_DATE_TIME);
            return true;
        }
        if (m_key == "$timestamp") {
            quint64 t = 0, i = 0;
            if (!take('{') || !readNamedUInt32("t", &t) || !take(',') || !readNamedUInt32("i", &i) ||
                !take('}') || !take('}'))
                return false;
            appendInt64(qint64((t << 32) | i));
            *type = char(BSON_TYPE_TIMESTAMP);
            return true;
        }
        return false;
    }

    bool readNamedUInt32(const char* name, quint64* value) {
        skipSpace();
        m_key.truncate(0);
        if (!readString(&m_key) || m_key != name || !take(':'))
            return false;
        skipSpace();
        const char* start = m_p;
        while (m_p < m_end && *m_p >= '0' && *m_p <= '9')
            ++m_p;
        if (m_p == start || (*start == '0' && m_p - start > 1))
            return false;
        const auto r = std::from_chars(start, m_p, *value);
        return r.ec == std::errc() && r.ptr == m_p && *value <= 0xffffffffULL;
    }

    // What appendRelaxedJson() writes for 1970 to 9999: YYYY-MM-DDTHH:MM:SS[.mmm]Z.
    static bool parseDate(const QByteArray& s, qint64* ms) {
        if (s.size() != 20 && s.size() != 24)
            return false;
        const char* c = s.constData();
        const auto digits = [c](int at, int n, int* out) {
            int v = 0;
            for (int k = at; k < at + n; ++k) {
                if (c[k] < '0' || c[k] > '9')
                    return false;
                v = v * 10 + (c[k] - '0');
            }
            *out = v;
            return true;
        };
        int year, month, day, hour, minute, second, milli = 0;
        if (!digits(0, 4, &year) || c[4] != '-' || !digits(5, 2, &month) || c[7] != '-' ||
            !digits(8, 2, &day) || c[10] != 'T' || !digits(11, 2, &hour) || c[13] != ':' ||
            !digits(14, 2, &minute) || c[16] != ':' || !digits(17, 2, &second))
            return false;
        if (s.size() == 24 && (c[19] != '.' || !digits(20, 3, &milli)))
            return false;
        if (c[s.size() - 1] != 'Z')
            return false;
        static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        if (year < 1970 || month < 1 || month > 12 || day < 1 ||
            day > kDays[month - 1] + (month == 2 && leap) || hour > 23 || minute > 59 || second > 59)
            return false;
        // Days since 1970-01-01 of a proleptic Gregorian date (the inverse of the
        // renderer's civilFromDays).
        const qint64 y = year - (month <= 2);
        const qint64 era = y / 400;
        const qint64 yearOfEra = y - era * 400;
        const qint64 dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
        const qint64 dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
        const qint64 days = era * 146097 + dayOfEra - 719468;
        *ms = ((days * 24 + hour) * 60 + minute) * 60000 + second * 1000 + milli;
        return true;
    }

    // A whole document or array at m_p ('{' or '['): length, elements, terminator.
    bool readDocument(bool isArray, int depth) {
        if (depth > kMaxDepth || !take(isArray ? '[' : '{'))
            return false;
        const char close = isArray ? ']' : '}';
        const qsizetype start = m_out->size();
        appendInt32(0);
        if (!take(close)) {
            for (int index = 0;; ++index) {
                if (isArray) {
                    char digits[12];
                    const auto r = std::to_chars(digits, digits + sizeof digits, index);
                    m_key.truncate(0);
                    m_key.append(digits, r.ptr - digits);
                } else {
                    skipSpace();
                    m_key.truncate(0);
                    // A '$' key anywhere is Extended JSON's business: libbson's.
                    if (!readString(&m_key) || m_key.startsWith('$') || !take(':'))
                        return false;
                }
                // readElement() reuses m_key for nested keys: the element copies it first.
                if (!readElement(m_key, depth))
                    return false;
                if (take(close))
                    break;
                if (!take(','))
                    return false;
            }
        }
        m_out->append('\0');
        patchInt32(start, qint32(m_out->size() - start));
        return true;
    }
};

} // namespace

bool relaxedJsonToBson(QByteArrayView json, QByteArray* bson) {
    bson->clear();
    bson->reserve(json.size() + 64);
    Reader reader(json, bson);
    return reader.readTop();
}

} // namespace tw

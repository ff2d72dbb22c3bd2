#include "SourceUri.h"

#include <QList>
#include <QRegularExpression>
#include <QUrl>

#include <algorithm>
#include <utility>

namespace tw {

namespace {

// In both patterns a value ends at the '&' that starts another name=value, not at
// any '&': a password may hold an unencoded '&' ("password=a&b&w=1" hides "a&b").

const QRegularExpression& secretParameterPattern() {
    // sslpassword: libpq's passphrase for the client key, as secret as the password.
    static const QRegularExpression re(QStringLiteral("[?&](?:ssl)?password=((?:[^&]|&(?![^&=]*=))*)"),
                                       QRegularExpression::CaseInsensitiveOption);
    return re;
}

const QRegularExpression& passwordParameterPattern() {
    static const QRegularExpression re(QStringLiteral("([?&])password=((?:[^&]|&(?![^&=]*=))*)"),
                                       QRegularExpression::CaseInsensitiveOption);
    return re;
}

// libpq's "key=value" form: a value is a word or a quoted string with \' and \\.
const QRegularExpression& conninfoSecretPattern() {
    static const QRegularExpression re(
        QStringLiteral("(?:^|\\s)(?:ssl)?password\\s*=\\s*('(?:[^'\\\\]|\\\\.)*'?|[^\\s']\\S*|(?=\\s|$))"),
        QRegularExpression::CaseInsensitiveOption);
    return re;
}

const QRegularExpression& conninfoPasswordPattern() {
    static const QRegularExpression re(
        QStringLiteral("(?:^|\\s)password\\s*=\\s*('(?:[^'\\\\]|\\\\.)*'?|[^\\s']\\S*|(?=\\s|$))"),
        QRegularExpression::CaseInsensitiveOption);
    return re;
}

QString conninfoValue(const QString& written) {
    if (!written.startsWith(QLatin1Char('\'')))
        return written;
    QString out;
    for (qsizetype i = 1; i < written.size(); ++i) {
        if (written[i] == QLatin1Char('\\') && i + 1 < written.size())
            out += written[++i];
        else if (written[i] != QLatin1Char('\''))
            out += written[i];
    }
    return out;
}

bool isSqliteSuffix(const QString& uri) {
    return uri.endsWith(QLatin1String(".sqlite")) || uri.endsWith(QLatin1String(".db")) ||
           uri.endsWith(QLatin1String(".sqlite3"));
}

} // namespace

SourceUri::SourceUri(const QString& uri)
    : m_uri(uri) {
    static const QRegularExpression schemePattern(QStringLiteral("^([A-Za-z][A-Za-z0-9+.-]*):"));
    const QRegularExpressionMatch scheme = schemePattern.match(uri);
    if (scheme.hasMatch()) {
        m_scheme = scheme.captured(1).toLower();
        if (QStringView(uri).mid(scheme.capturedEnd()).startsWith(QLatin1String("//")))
            m_authority = scheme.capturedEnd() + 2;
    }
    if (m_scheme == QLatin1String("sqlite"))
        m_kind = Kind::Sqlite;
    else if (m_scheme == QLatin1String("mongodb") || m_scheme == QLatin1String("mongodb+srv"))
        m_kind = Kind::MongoDb; // before the suffix test: …/?appname=orders.db is MongoDB
    else if (m_scheme == QLatin1String("postgresql") || m_scheme == QLatin1String("postgres"))
        m_kind = Kind::Postgres;
    else if (m_scheme == QLatin1String("nats"))
        m_kind = Kind::Nats;
    else if (m_authority < 0 && isSqliteSuffix(uri))
        m_kind = Kind::Sqlite; // a bare path (also "C:\…", whose drive reads as a scheme)
    else if (m_scheme.isEmpty() && isConninfo(uri))
        m_kind = Kind::Postgres;
}

bool SourceUri::isConninfo(const QString& text) {
    // libpq's keyword form starts with a keyword and '=': "host=db dbname=shop".
    static const QRegularExpression pattern(QStringLiteral("^\\s*[A-Za-z_]+\\s*="));
    return pattern.match(text).hasMatch();
}

QString SourceUri::postgresDatabase() const {
    if (m_kind != Kind::Postgres)
        return {};
    if (m_scheme.isEmpty()) {
        static const QRegularExpression db(
            QStringLiteral("(?:^|\\s)dbname\\s*=\\s*('(?:[^'\\\\]|\\\\.)*'|\\S+)"));
        static const QRegularExpression user(
            QStringLiteral("(?:^|\\s)user\\s*=\\s*('(?:[^'\\\\]|\\\\.)*'|\\S+)"));
        QRegularExpressionMatch m = db.match(m_uri);
        if (!m.hasMatch())
            m = user.match(m_uri);
        return m.hasMatch() ? conninfoValue(m.captured(1)) : QStringLiteral("postgres");
    }
    const QUrl url(withoutPassword());
    const QString path = url.path().mid(1);
    if (!path.isEmpty())
        return path;
    return url.userName().isEmpty() ? QStringLiteral("postgres") : url.userName();
}

QString SourceUri::sqlitePath() const {
    if (m_kind != Kind::Sqlite)
        return {};
    if (m_scheme != QLatin1String("sqlite"))
        return m_uri;
    QString path = m_uri.mid(m_scheme.size() + 1);
    if (path.startsWith(QLatin1String("//")))
        path = path.mid(2);
    return path;
}

qsizetype SourceUri::userInfoEnd(bool guess) const {
    // An SQLite path has no user info, whatever characters the file name holds.
    if (m_authority < 0 || m_kind == Kind::Sqlite)
        return -1;
    // The last '@' before `end`, or -1: a password may hold an unencoded '@'.
    const auto lastAt = [this](qsizetype end) {
        const qsizetype at = end > m_authority ? m_uri.lastIndexOf(QLatin1Char('@'), end - 1) : -1;
        return at >= m_authority ? at : -1;
    };
    qsizetype slash = m_authority;
    while (slash < m_uri.size() && m_uri.at(slash) != QLatin1Char('/'))
        ++slash;
    qsizetype end = m_authority;
    while (end < slash && m_uri.at(end) != QLatin1Char('?') && m_uri.at(end) != QLatin1Char('#'))
        ++end;
    // First the authority as RFC 3986 ends it, so an '@' in a query that follows the
    // host without a '/' ("u:p@h?appname=a@b") stays in the query.
    const qsizetype at = lastAt(end);
    if (at >= 0)
        return at;
    if (guess)
        return lastAt(m_uri.size());
    // None there: a password with an unencoded '?' or '#' ended it early. Look up to
    // the first '/', as libpq and MongoDB's drivers do (and Tidewatch's first rule
    // did); stopping at '?' or '#' left such a password in the saved workspace.
    return lastAt(slash);
}

SourceUri::Span SourceUri::userPassword(bool guess) const {
    const qsizetype at = userInfoEnd(guess);
    if (at < 0)
        return {};
    const qsizetype colon = m_uri.indexOf(QLatin1Char(':'), m_authority);
    if (colon < 0 || colon > at)
        return {};
    return {colon + 1, at};
}

QString SourceUri::redacted() const {
    // Every span that may hold a secret, found on the URI as written and then merged:
    // redacting one kind first would move or break the other (a query password
    // holding '@' looks like the end of user info).
    QList<std::pair<qsizetype, qsizetype>> spans;
    const Span user = userPassword(true);
    if (user.isValid())
        spans.append({user.start, user.end});
    QRegularExpressionMatchIterator it =
        (m_kind == Kind::Postgres && m_scheme.isEmpty() ? conninfoSecretPattern() : secretParameterPattern())
            .globalMatch(m_uri);
    while (it.hasNext()) {
        const QRegularExpressionMatch m = it.next();
        spans.append({m.capturedStart(1), m.capturedEnd(1)});
    }
    if (spans.isEmpty())
        return m_uri;
    std::sort(spans.begin(), spans.end());
    QString out;
    out.reserve(m_uri.size());
    qsizetype done = 0;
    for (qsizetype i = 0; i < spans.size(); ++i) {
        const qsizetype start = spans.at(i).first;
        qsizetype end = spans.at(i).second;
        while (i + 1 < spans.size() && spans.at(i + 1).first <= end)
            end = std::max(end, spans.at(++i).second);
        out += QStringView(m_uri).mid(done, start - done);
        out += QLatin1String("****");
        done = end;
    }
    out += QStringView(m_uri).mid(done);
    return out;
}

QString SourceUri::encodedPassword() const {
    if (m_kind == Kind::Postgres && m_scheme.isEmpty()) {
        const QRegularExpressionMatch m = conninfoPasswordPattern().match(m_uri);
        return m.hasMatch() ? m.captured(1) : QString();
    }
    const Span user = userPassword(true);
    if (user.isValid())
        return m_uri.mid(user.start, user.end - user.start);
    const QRegularExpressionMatch param = passwordParameterPattern().match(m_uri);
    return param.hasMatch() ? param.captured(2) : QString();
}

QString SourceUri::withoutPassword(QString* password) const {
    if (m_kind == Kind::Postgres && m_scheme.isEmpty()) {
        QString out = m_uri;
        const QRegularExpressionMatch m = conninfoPasswordPattern().match(out);
        if (password)
            *password = m.hasMatch() ? conninfoValue(m.captured(1)) : QString();
        if (m.hasMatch())
            out = (out.left(m.capturedStart()) + out.mid(m.capturedEnd())).trimmed();
        return out;
    }
    QString out = m_uri;
    QString secret;
    const Span user = userPassword(false);
    if (user.isValid()) {
        secret = QUrl::fromPercentEncoding(m_uri.mid(user.start, user.end - user.start).toUtf8());
        out.remove(user.start - 1, user.end - user.start + 1); // ":password"
    }
    const QRegularExpressionMatch param = passwordParameterPattern().match(out);
    if (param.hasMatch()) {
        if (secret.isEmpty())
            secret = QUrl::fromPercentEncoding(param.captured(2).toUtf8());
        const bool hadMore = param.capturedEnd() < out.size();
        if (param.captured(1) == QLatin1String("?") && hadMore)
            out.remove(param.capturedStart() + 1, param.capturedLength()); // "password=…&"
        else
            out.remove(param.capturedStart(), param.capturedLength()); // "?password=…", "&password=…"
    }
    if (password)
        *password = secret;
    return out;
}

QString SourceUri::withPassword(const QString& password) const {
    if (password.isEmpty())
        return m_uri;
    if (m_kind == Kind::Postgres && m_scheme.isEmpty()) {
        if (conninfoPasswordPattern().match(m_uri).hasMatch())
            return m_uri;
        // A conninfo value is quoted, with \ and ' escaped.
        QString quoted = password;
        quoted.replace(QLatin1Char('\\'), QLatin1String("\\\\"))
            .replace(QLatin1Char('\''), QLatin1String("\\'"));
        return m_uri + QStringLiteral(" password='") + quoted + QLatin1Char('\'');
    }
    const qsizetype at = userInfoEnd(false);
    const qsizetype colon = at < 0 ? -1 : m_uri.indexOf(QLatin1Char(':'), m_authority);
    if (at < 0 || (colon >= 0 && colon < at))
        return m_uri; // no user to attach the password to, or a password already
    const QString encoded = QString::fromUtf8(QUrl::toPercentEncoding(password));
    return m_uri.left(at) + QLatin1Char(':') + encoded + m_uri.mid(at);
}

} // namespace tw

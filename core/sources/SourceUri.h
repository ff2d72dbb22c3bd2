#pragma once

#include <QString>

namespace tw {

// A source URI as the user typed it, and what Tidewatch reads from it: which kind of
// database it names, the SQLite file, the password. The one place that parses source
// URIs: deciding "is this SQLite?" or hiding a password anywhere else drifts (there
// were five kind checks and three password patterns that disagreed).
//
// Accepted: "sqlite:PATH", "sqlite://PATH", a bare path ending in .sqlite, .sqlite3
// or .db; "mongodb://…" and "mongodb+srv://…"; "postgresql://…" and "postgres://…";
// "nats://HOST:PORT[/STREAM]", a gateway on the JetStream stream an ingest publishes to.
// Schemes are matched in any case. Parsing never fails: what is not recognised is
// Kind::Unknown, and even a malformed URI redacts.
class SourceUri {
public:
    enum class Kind { Sqlite, MongoDb, Postgres, Nats, Unknown };

    SourceUri() = default;
    explicit SourceUri(const QString& uri);

    QString toString() const { return m_uri; }
    Kind kind() const { return m_kind; }
    bool isSqlite() const { return m_kind == Kind::Sqlite; }
    // The scheme in lower case ("sqlite", "mongodb+srv", "postgresql", "ftp"); empty
    // for a bare path.
    QString scheme() const { return m_scheme; }
    // Kind::Sqlite: the file as written (relative paths stay relative); else empty.
    QString sqlitePath() const;
    // Kind::Postgres: the database the connection opens (dbname, else the user name, as
    // libpq defaults it); else empty. "host=… dbname=…" conninfo is Kind::Postgres too.
    QString postgresDatabase() const;
    static bool isConninfo(const QString& text);

    // The URI with every password replaced by "****": the one of user:password@ and
    // the value of any password= or sslpassword= query parameter (any case).
    QString redacted() const;
    static QString redact(const QString& uri) { return SourceUri(uri).redacted(); }

    // The password as written (percent-encoded), for hiding it in a message that may
    // quote it (a driver's): the one of user:password@, found as redacted() finds it,
    // else the value of password=. Empty when there is none.
    QString encodedPassword() const;

    // The URI without its password, for storing where a password must not go (the
    // workspace file): user:password@ becomes user@ and a password= parameter is
    // removed. `password` receives the decoded password (user info first). A URI
    // without one comes back unchanged.
    QString withoutPassword(QString* password = nullptr) const;
    // `password` (percent-encoded) put into user@: "scheme://user@host" →
    // "scheme://user:password@host". Unchanged when the URI names no user or has a
    // password already, or when `password` is empty.
    QString withPassword(const QString& password) const;

private:
    struct Span {
        qsizetype start = -1;
        qsizetype end = -1;
        bool isValid() const { return start >= 0; }
    };
    // The '@' that ends the user info, or -1: the last '@' of the authority; when it
    // holds none (a password with an unencoded '?' or '#' ends it early), the last '@'
    // before the first '/'. `guess`: instead of the latter, the last '@' of the URI,
    // which also finds a password holding an unencoded '/'; that hides more than the
    // password when a path or query holds an '@', never less, so it is for redacting
    // only. Either way the guess reaches at least as far: whatever withoutPassword()
    // takes out, redacted() hides.
    qsizetype userInfoEnd(bool guess) const;
    // The password of user:password@ (between the first ':' and that '@').
    Span userPassword(bool guess) const;

    QString m_uri;
    QString m_scheme;
    qsizetype m_authority = -1; // index after "://", or -1 when the URI has none
    Kind m_kind = Kind::Unknown;
};

} // namespace tw

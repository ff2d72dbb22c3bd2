// SourceUri: the one parser of source URIs. Which kind a URI names, the SQLite file,
// and that no password ever shows, even in a URI the driver would refuse.
#include "sources/SourceUri.h"

#include <QTest>
#include <QUrl>

using namespace tw;

Q_DECLARE_METATYPE(tw::SourceUri::Kind)

namespace {

// The columns of the password-splitting tables: a URI, the URI without its password,
// and the password taken out of it.
void addStrippedColumns() {
    QTest::addColumn<QString>("uri");
    QTest::addColumn<QString>("stripped");
    QTest::addColumn<QString>("password");
}

void strippedRow(const char* name, const char* uri, const char* stripped, const char* password) {
    QTest::newRow(name) << QString::fromUtf8(uri) << QString::fromUtf8(stripped)
                        << QString::fromUtf8(password);
}

} // namespace

class TestSourceUri : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void kind_data();
    void kind();
    void postgresDatabase_data();
    void postgresDatabase();
    void redacted_data();
    void redacted();
    void redactedNeverShowsThePassword_data();
    void redactedNeverShowsThePassword();
    void encodedPassword_data();
    void encodedPassword();
    void withoutPassword_data();
    void withoutPassword();
    void withPassword_data();
    void withPassword();
    void passwordWithDelimitersRoundTrips_data();
    void passwordWithDelimitersRoundTrips();
};

void TestSourceUri::kind_data() {
    QTest::addColumn<QString>("uri");
    QTest::addColumn<SourceUri::Kind>("kind");
    QTest::addColumn<QString>("scheme");
    QTest::addColumn<QString>("sqlitePath");
    using K = SourceUri::Kind;
    const QString none;
    QTest::newRow("sqlite:absolute") << QStringLiteral("sqlite:/tmp/shop.sqlite") << K::Sqlite
                                     << QStringLiteral("sqlite") << QStringLiteral("/tmp/shop.sqlite");
    QTest::newRow("sqlite:relative") << QStringLiteral("sqlite:shop.sqlite") << K::Sqlite
                                     << QStringLiteral("sqlite") << QStringLiteral("shop.sqlite");
    QTest::newRow("sqlite://relative") << QStringLiteral("sqlite://shop.db") << K::Sqlite
                                       << QStringLiteral("sqlite") << QStringLiteral("shop.db");
    QTest::newRow("sqlite:///absolute") << QStringLiteral("sqlite:///tmp/shop.db") << K::Sqlite
                                        << QStringLiteral("sqlite") << QStringLiteral("/tmp/shop.db");
    QTest::newRow("sqlite: without suffix") << QStringLiteral("sqlite:/tmp/shop") << K::Sqlite
                                            << QStringLiteral("sqlite") << QStringLiteral("/tmp/shop");
    QTest::newRow("sqlite: any case") << QStringLiteral("SQLite:/tmp/shop") << K::Sqlite
                                      << QStringLiteral("sqlite") << QStringLiteral("/tmp/shop");
    QTest::newRow("sqlite: no file") << QStringLiteral("sqlite:") << K::Sqlite << QStringLiteral("sqlite")
                                     << none;
    QTest::newRow("bare .sqlite") << QStringLiteral("/tmp/shop.sqlite") << K::Sqlite << none
                                  << QStringLiteral("/tmp/shop.sqlite");
    QTest::newRow("bare .db") << QStringLiteral("shop.db") << K::Sqlite << none << QStringLiteral("shop.db");
    QTest::newRow("bare .sqlite3") << QStringLiteral("data/shop.sqlite3") << K::Sqlite << none
                                   << QStringLiteral("data/shop.sqlite3");
    QTest::newRow("bare path with '@' and ':'")
        << QStringLiteral("/data/a:b@c.db") << K::Sqlite << none << QStringLiteral("/data/a:b@c.db");
    QTest::newRow("bare, other suffix") << QStringLiteral("/tmp/shop.txt") << K::Unknown << none << none;
    QTest::newRow("mongodb") << QStringLiteral("mongodb://h:27017") << K::MongoDb << QStringLiteral("mongodb")
                             << none;
    QTest::newRow("mongodb any case")
        << QStringLiteral("MongoDB://h") << K::MongoDb << QStringLiteral("mongodb") << none;
    QTest::newRow("mongodb+srv") << QStringLiteral("mongodb+srv://cluster0.example.net") << K::MongoDb
                                 << QStringLiteral("mongodb+srv") << none;
    QTest::newRow("mongodb query ending in .db") << QStringLiteral("mongodb://h:27017/?appname=orders.db")
                                                 << K::MongoDb << QStringLiteral("mongodb") << none;
    QTest::newRow("mongodb+srv path ending in .db")
        << QStringLiteral("mongodb+srv://u:p@c.example.net/shop.db") << K::MongoDb
        << QStringLiteral("mongodb+srv") << none;
    QTest::newRow("postgresql") << QStringLiteral("postgresql://app@db:5432/shop") << K::Postgres
                                << QStringLiteral("postgresql") << none;
    QTest::newRow("postgres") << QStringLiteral("postgres://db/shop.db") << K::Postgres
                              << QStringLiteral("postgres") << none;
    QTest::newRow("conninfo") << QStringLiteral("host=db dbname=shop") << K::Postgres << QString() << none;
    QTest::newRow("nats gateway") << QStringLiteral("nats://127.0.0.1:4222/TIDEWATCH") << K::Nats
                                  << QStringLiteral("nats") << none;
    QTest::newRow("nats path ending in .db")
        << QStringLiteral("NATS://h:4222/x.db") << K::Nats << QStringLiteral("nats") << none;
    QTest::newRow("other scheme ending in .db")
        << QStringLiteral("ftp://host/x.db") << K::Unknown << QStringLiteral("ftp") << none;
    QTest::newRow("unknown scheme") << QStringLiteral("redis://localhost") << K::Unknown
                                    << QStringLiteral("redis") << none;
    QTest::newRow("no scheme") << QStringLiteral("localhost") << K::Unknown << none << none;
    QTest::newRow("empty") << QString() << K::Unknown << none << none;
}

void TestSourceUri::postgresDatabase_data() {
    QTest::addColumn<QString>("uri");
    QTest::addColumn<QString>("database");
    QTest::newRow("uri path") << QStringLiteral("postgresql://app:pw@db:5432/shop?sslmode=require")
                              << QStringLiteral("shop");
    QTest::newRow("uri without a database: the user's")
        << QStringLiteral("postgres://app@db") << QStringLiteral("app");
    QTest::newRow("conninfo") << QStringLiteral("host=db dbname='my shop' user=app")
                              << QStringLiteral("my shop");
    QTest::newRow("conninfo user") << QStringLiteral("host=db user=app") << QStringLiteral("app");
    QTest::newRow("not postgres") << QStringLiteral("mongodb://h/shop") << QString();
}

void TestSourceUri::postgresDatabase() {
    QFETCH(QString, uri);
    QFETCH(QString, database);
    QCOMPARE(SourceUri(uri).postgresDatabase(), database);
}

void TestSourceUri::kind() {
    QFETCH(QString, uri);
    QFETCH(SourceUri::Kind, kind);
    QFETCH(QString, scheme);
    QFETCH(QString, sqlitePath);
    const SourceUri parsed(uri);
    QCOMPARE(parsed.kind(), kind);
    QCOMPARE(parsed.isSqlite(), kind == SourceUri::Kind::Sqlite);
    QCOMPARE(parsed.scheme(), scheme);
    QCOMPARE(parsed.sqlitePath(), sqlitePath);
    QCOMPARE(parsed.toString(), uri);
}

void TestSourceUri::redacted_data() {
    QTest::addColumn<QString>("uri");
    QTest::addColumn<QString>("expected");
    const auto same = [](const char* name, const char* uri) {
        QTest::newRow(name) << QString::fromUtf8(uri) << QString::fromUtf8(uri);
    };
    const auto row = [](const char* name, const char* uri, const char* expected) {
        QTest::newRow(name) << QString::fromUtf8(uri) << QString::fromUtf8(expected);
    };
    same("no password", "mongodb://h:27017/?replicaSet=rs0");
    same("user only", "mongodb://alice@h:27017");
    same("sqlite", "sqlite:/tmp/shop.sqlite");
    same("sqlite path with '@' and ':'", "sqlite:///data/a:b@c.db");
    same("other parameter ending in password", "postgresql://db/shop?mypassword=x");
    row("user:password@", "mongodb://alice:s3cret@h:27017/db", "mongodb://alice:****@h:27017/db");
    row("srv", "mongodb+srv://alice:s3cret@c.example.net/", "mongodb+srv://alice:****@c.example.net/");
    row("postgres", "postgresql://app:s3cret@db/shop", "postgresql://app:****@db/shop");
    row("conninfo password", "host=db password=s3cret dbname=shop", "host=db password=**** dbname=shop");
    row("conninfo quoted password", "host=db password = 'a b\\' c' sslpassword=k",
        "host=db password = **** sslpassword=****");
    same("conninfo without password", "host=db user=app dbname=shop");
    row("other scheme", "ftp://user:secret@host/x", "ftp://user:****@host/x");
    row("percent-encoded", "mongodb://alice:s%40cret@h", "mongodb://alice:****@h");
    row("empty password", "mongodb://alice:@h", "mongodb://alice:****@h");
    row("password with ':'", "mongodb://alice:pa:ss@h", "mongodb://alice:****@h");
    row("password with '@'", "mongodb://alice:p@ss@h/db?appname=x", "mongodb://alice:****@h/db?appname=x");
    row("password with '/'", "mongodb://alice:pa/ss@h/db", "mongodb://alice:****@h/db");
    row("password with '&'", "mongodb://alice:p&ss@h/?w=1", "mongodb://alice:****@h/?w=1");
    row("password with '?'", "mongodb://alice:pa?ss@h/db", "mongodb://alice:****@h/db");
    row("password= only", "postgresql://db/shop?password=x", "postgresql://db/shop?password=****");
    row("password= first", "postgresql://db/shop?password=x&sslmode=require",
        "postgresql://db/shop?password=****&sslmode=require");
    row("password= middle, upper case", "postgresql://db/shop?user=a&PASSWORD=x&sslmode=require",
        "postgresql://db/shop?user=a&PASSWORD=****&sslmode=require");
    row("password= last", "postgresql://db/shop?user=a&password=x",
        "postgresql://db/shop?user=a&password=****");
    row("password= empty", "postgresql://db/shop?password=&user=a",
        "postgresql://db/shop?password=****&user=a");
    row("sslpassword= first", "postgresql://db/shop?sslpassword=k&user=a",
        "postgresql://db/shop?sslpassword=****&user=a");
    row("sslpassword= last, mixed case", "postgresql://db/shop?user=a&SslPassword=k",
        "postgresql://db/shop?user=a&SslPassword=****");
    row("all three", "postgresql://u:p@db/shop?password=q&sslpassword=r&sslmode=require",
        "postgresql://u:****@db/shop?password=****&sslpassword=****&sslmode=require");
    row("password= with '&'", "postgresql://db/shop?password=p&ss&sslmode=require",
        "postgresql://db/shop?password=****&sslmode=require");
    row("password= with '@', '/' and ':'", "postgresql://db/shop?password=a@b/c:d",
        "postgresql://db/shop?password=****");
    row("malformed: no host", "mongodb://alice:s3cret@", "mongodb://alice:****@");
    row("malformed: no host, slash", "mongodb://alice:s3cret@/", "mongodb://alice:****@/");
    row("malformed: bad port", "mongodb://alice:s3cret@host:notaport/",
        "mongodb://alice:****@host:notaport/");
    row("malformed: single slash", "mongodb:/x?password=y", "mongodb:/x?password=****");
    row("malformed: no scheme", "host/db?Password=y", "host/db?Password=****");
}

void TestSourceUri::redacted() {
    QFETCH(QString, uri);
    QFETCH(QString, expected);
    QCOMPARE(SourceUri(uri).redacted(), expected);
    QCOMPARE(SourceUri::redact(uri), expected);
}

// Where a URI is ambiguous, redacting may hide more than the password, never less.
void TestSourceUri::redactedNeverShowsThePassword_data() {
    QTest::addColumn<QString>("uri");
    QTest::addColumn<QString>("secret");
    const auto row = [](const char* name, const char* uri, const char* secret) {
        QTest::newRow(name) << QString::fromUtf8(uri) << QString::fromUtf8(secret);
    };
    row("'/' and '@' in the password", "mongodb://alice:a/b@c@h/db", "a/b@c");
    row("'/' in the password, '@' in the query", "mongodb://alice:pa/ss@h/?appname=x@y", "pa/ss");
    row("'#' in the password", "mongodb://alice:pa#ss@h/db", "pa#ss");
    row("query password with '@' after a port", "mongodb://h:1/?password=p@ss", "ss");
    row("query password with '@', no port", "mongodb://h/?password=p@ss", "p@ss");
    row("user-info password holding password=", "mongodb://u:x&password=abc@h", "x&password=abc");
    row("password= twice", "postgresql://db/s?password=one&password=two", "two");
    row("only '@' after the scheme", "mongodb://alice:s3cr3tpw@", "s3cr3tpw");
    row("space in the host", "mongodb://alice:s3cr3tpw@a b/", "s3cr3tpw");
}

void TestSourceUri::redactedNeverShowsThePassword() {
    QFETCH(QString, uri);
    QFETCH(QString, secret);
    const QString redacted = SourceUri(uri).redacted();
    QVERIFY2(!redacted.contains(secret), qPrintable(redacted));
    QVERIFY2(redacted.contains(QLatin1String("****")), qPrintable(redacted));
}

void TestSourceUri::encodedPassword_data() {
    QTest::addColumn<QString>("uri");
    QTest::addColumn<QString>("password");
    QTest::newRow("user info, as written")
        << QStringLiteral("mongodb://alice:s%40cret@h") << QStringLiteral("s%40cret");
    QTest::newRow("user info first") << QStringLiteral("postgresql://u:p@db/s?password=q")
                                     << QStringLiteral("p");
    QTest::newRow("password=") << QStringLiteral("postgresql://db/s?user=a&password=q")
                               << QStringLiteral("q");
    QTest::newRow("none") << QStringLiteral("mongodb://alice@h") << QString();
    QTest::newRow("sqlite") << QStringLiteral("sqlite:///a:b@c.db") << QString();
}

void TestSourceUri::encodedPassword() {
    QFETCH(QString, uri);
    QFETCH(QString, password);
    QCOMPARE(SourceUri(uri).encodedPassword(), password);
}

void TestSourceUri::withoutPassword_data() {
    addStrippedColumns();
    const auto row = strippedRow;
    row("user info, decoded", "postgresql://app:s%40cret@db/shop", "postgresql://app@db/shop", "s@cret");
    row("'@' in the password", "mongodb://alice:p@ss@h/db", "mongodb://alice@h/db", "p@ss");
    row("':' in the password", "mongodb://alice:a:b@h", "mongodb://alice@h", "a:b");
    row("password= only", "postgresql://db/shop?password=x", "postgresql://db/shop", "x");
    row("password= first", "postgresql://db/shop?password=x&sslmode=require",
        "postgresql://db/shop?sslmode=require", "x");
    row("password= middle", "postgresql://db/shop?user=a&password=x&sslmode=require",
        "postgresql://db/shop?user=a&sslmode=require", "x");
    row("password= last, upper case", "postgresql://db/shop?user=a&Password=x", "postgresql://db/shop?user=a",
        "x");
    row("password= with '&'", "postgresql://db/shop?password=a%26b&c&w=1", "postgresql://db/shop?w=1",
        "a&b&c");
    row("both: user info wins", "mongodb://alice:a%26b@h/?password=zz", "mongodb://alice@h/", "a&b");
    // One keychain entry per connection: the key passphrase stays where the user put it.
    row("sslpassword stays", "postgresql://u:p@db/shop?sslpassword=k", "postgresql://u@db/shop?sslpassword=k",
        "p");
    row("no password", "mongodb://alice@h:27017/", "mongodb://alice@h:27017/", "");
    row("port and '@' in the query", "mongodb://h:27017/?appname=a@b", "mongodb://h:27017/?appname=a@b", "");
    row("sqlite path with '@' and ':'", "sqlite:///data/a:b@c.db", "sqlite:///data/a:b@c.db", "");
    row("conninfo", "host=db password='a b\\'c' dbname=shop", "host=db dbname=shop", "a b'c");
}

void TestSourceUri::withoutPassword() {
    QFETCH(QString, uri);
    QFETCH(QString, stripped);
    QFETCH(QString, password);
    QString found = QStringLiteral("unset");
    QCOMPARE(SourceUri(uri).withoutPassword(&found), stripped);
    QCOMPARE(found, password);
    QCOMPARE(SourceUri(uri).withoutPassword(), stripped);
}

void TestSourceUri::withPassword_data() {
    QTest::addColumn<QString>("uri");
    QTest::addColumn<QString>("password");
    QTest::addColumn<QString>("expected");
    const auto row = [](const char* name, const char* uri, const char* password, const char* expected) {
        QTest::newRow(name) << QString::fromUtf8(uri) << QString::fromUtf8(password)
                            << QString::fromUtf8(expected);
    };
    row("into user@", "mongodb://admin@h:1/", "p@ss", "mongodb://admin:p%40ss@h:1/");
    row("encodes ':' '/' '&'", "postgresql://app@db/shop", "a:b/c&d",
        "postgresql://app:a%3Ab%2Fc%26d@db/shop");
    row("no user", "mongodb://h:1/", "x", "mongodb://h:1/");
    row("'@' only in the query", "mongodb://h/?appname=a@b", "x", "mongodb://h/?appname=a@b");
    row("empty password", "mongodb://admin@h", "", "mongodb://admin@h");
    row("has a password", "mongodb://admin:old@h", "new", "mongodb://admin:old@h");
    row("sqlite", "sqlite:///a@b.db", "x", "sqlite:///a@b.db");
    row("conninfo", "host=db user=app", "a'b\\c", "host=db user=app password='a\\'b\\\\c'");
    row("conninfo has a password", "host=db password=old", "new", "host=db password=old");
}

void TestSourceUri::withPassword() {
    QFETCH(QString, uri);
    QFETCH(QString, password);
    QFETCH(QString, expected);
    const QString with = SourceUri(uri).withPassword(password);
    QCOMPARE(with, expected);
    if (with != uri) {
        // What withPassword() puts in, withoutPassword() takes out again.
        QString back;
        QCOMPARE(SourceUri(with).withoutPassword(&back), uri);
        QCOMPARE(back, password);
    }
}

// A password holding an unencoded '?' or '#' ended the user info early, so the saved
// workspace kept it in clear text. Whatever a user types, the stored URI holds no
// password, and withPassword() puts back what withoutPassword() took out.
void TestSourceUri::passwordWithDelimitersRoundTrips_data() {
    addStrippedColumns();
    const auto row = strippedRow;
    row("'?', no path", "mongodb://u:pw?x1@host", "mongodb://u@host", "pw?x1");
    row("'?', port and path", "mongodb://u:pw?x1@host:27017/db", "mongodb://u@host:27017/db", "pw?x1");
    row("'#'", "mongodb://u:pw#x1@host/db", "mongodb://u@host/db", "pw#x1");
    row("'#', no path", "mongodb://u:pw#x1@host", "mongodb://u@host", "pw#x1");
    row("'?' and '#', then a query", "mongodb://alice:s?cr#t1@h:27017/shop?replicaSet=rs0",
        "mongodb://alice@h:27017/shop?replicaSet=rs0", "s?cr#t1");
    row("'?' and '=' like a parameter", "mongodb://alice:x?w=majority1@h/", "mongodb://alice@h/",
        "x?w=majority1");
    row("'#', srv", "mongodb+srv://u:pw#x1@c.example.net/?retryWrites=true",
        "mongodb+srv://u@c.example.net/?retryWrites=true", "pw#x1");
    row("'&'", "mongodb://alice:s&cr=t1@h/?w=1", "mongodb://alice@h/?w=1", "s&cr=t1");
    row("'?' and '&', postgres", "postgresql://app:a?b&c=d1@db/shop?sslmode=require",
        "postgresql://app@db/shop?sslmode=require", "a?b&c=d1");
    row("':'", "mongodb://alice:a:b:c1@h", "mongodb://alice@h", "a:b:c1");
    row("':' and '?'", "mongodb://alice:a:b?c1@h/db", "mongodb://alice@h/db", "a:b?c1");
    row("'@'", "mongodb://alice:a@b1@h/db", "mongodb://alice@h/db", "a@b1");
    row("'?' and '@'", "mongodb://alice:a?b@c1@h/db", "mongodb://alice@h/db", "a?b@c1");
    row("'@' encoded", "mongodb://alice:a%40b1@h/db", "mongodb://alice@h/db", "a@b1");
    row("'?' and '#' encoded", "mongodb://alice:a%3Fb%23c1@h", "mongodb://alice@h", "a?b#c1");
    row("':' and '&' encoded", "postgresql://app:a%3Ab%26c1@db/shop", "postgresql://app@db/shop", "a:b&c1");
    row("'/' encoded", "mongodb://alice:a%2Fb1@h/db", "mongodb://alice@h/db", "a/b1");
    // The authority as RFC 3986 ends it still comes first: an '@' in a query right
    // after the host is the query's.
    row("'@' in a query after the host", "mongodb://u:pw1@h?appname=a@b", "mongodb://u@h?appname=a@b", "pw1");
}

void TestSourceUri::passwordWithDelimitersRoundTrips() {
    QFETCH(QString, uri);
    QFETCH(QString, stripped);
    QFETCH(QString, password);
    QString found;
    const QString stored = SourceUri(uri).withoutPassword(&found);
    QCOMPARE(stored, stripped);
    QCOMPARE(found, password);
    QVERIFY2(!stored.contains(password), qPrintable(stored));
    QVERIFY2(!stored.contains(SourceUri(uri).encodedPassword()), qPrintable(stored));
    QVERIFY2(!SourceUri(uri).redacted().contains(password), qPrintable(SourceUri(uri).redacted()));

    const QString with = SourceUri(stored).withPassword(password);
    QCOMPARE(SourceUri(with).encodedPassword(), QString::fromUtf8(QUrl::toPercentEncoding(password)));
    QString back;
    QCOMPARE(SourceUri(with).withoutPassword(&back), stored);
    QCOMPARE(back, password);
    // Once put back the password is encoded, and the URI reads the same every way.
    QCOMPARE(SourceUri(with).withPassword(QStringLiteral("other")), with);
    QVERIFY2(!SourceUri(with).redacted().contains(password), qPrintable(SourceUri(with).redacted()));
}

QTEST_APPLESS_MAIN(TestSourceUri)
#include "tst_sourceuri.moc"

#pragma once

#include <QLoggingCategory>
#include <QString>

#include <bson/bson.h>

#include <memory>

struct _mongoc_client_pool_t;
struct _mongoc_client_t;
struct _mongoc_uri_t;

Q_DECLARE_LOGGING_CATEGORY(lcMongo)

namespace tw {

// The connection side of a MongoSource: the parsed URI, the libmongoc client pool
// the watches pop their clients from, the redaction of every driver message that may
// quote the URI, the wire version of the last server selected, and the reconnect
// backoff schedule. Used on the source's thread only (create() runs anywhere).
class MongoConnection {
public:
    // uri: mongodb:// or mongodb+srv://, anything libmongoc accepts. Parses only and
    // fills in the timeouts below when the URI does not set them; the pool is made by
    // open(). On error returns nullptr with a message that shows the URI with its
    // password redacted.
    static std::unique_ptr<MongoConnection> create(const QString& uri, QString* error);
    ~MongoConnection(); // closes the pool if still open
    MongoConnection(const MongoConnection&) = delete;
    MongoConnection& operator=(const MongoConnection&) = delete;

    QString redactedUri() const { return m_redactedUri; }
    // A driver message never shows the password, even if it quotes the URI.
    QString redact(const QString& message) const;

    bool isOpen() const { return m_pool != nullptr; }
    // Makes the client pool unless there is one. On error returns false and the
    // driver's message, redacted (e.g. a mongodb+srv:// name without SRV records).
    bool open(QString* error);
    // Destroys the pool off this thread (see the .cpp). Every client must be back.
    void close();
    // A client of the open pool; hand it back with pushClient().
    _mongoc_client_t* popClient();
    // Returns *client to the pool (when both are there) and nulls it.
    void pushClient(_mongoc_client_t*& client);

    // Selects a server for `client` and records its maxWireVersion; false and *error
    // when none answers within serverSelectionTimeoutMS. *serverId (when given) names
    // the server, for commands that must all go to it (a cursor's getMore).
    bool selectServer(_mongoc_client_t* client, bson_error_t* error, quint32* serverId = nullptr);
    // The wire version decides which errors are resumable (see MongoErrors.h); 0 until
    // the first successful selection.
    int maxWireVersion() const { return m_maxWireVersion; }

    // Backoff schedule: first delay, cap, and the jitter fraction (0.2 = +/-20 %).
    void setBackoff(int initialMs, int maxMs, double jitter = 0.2);
    // The delay before retry number `attempt` (1 = the first).
    int backoffDelayMs(int attempt) const;

private:
    MongoConnection(const QString& uri, _mongoc_uri_t* parsed);

    QString m_uri; // as given (may hold a password): only for libmongoc
    QString m_redactedUri;
    _mongoc_uri_t* m_parsedUri = nullptr;    // owned
    _mongoc_client_pool_t* m_pool = nullptr; // owned; destroyed off-thread by close()
    int m_maxWireVersion = 0;
    int m_backoffInitialMs = 500;
    int m_backoffMaxMs = 30000;
    double m_jitter = 0.2;
};

} // namespace tw

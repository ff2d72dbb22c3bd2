#include "MongoConnection.h"

#include "model/Bson.h"
#include "sources/Source.h"
#include "sources/SourceUri.h"

#include <QRandomGenerator>
#include <QUrl>

#include <mongoc/mongoc.h>

#include <algorithm>
#include <mutex>
#include <thread>

Q_LOGGING_CATEGORY(lcMongo, "tidewatch.source.mongo")

namespace tw {

namespace {

// Defaults applied when the URI does not set them, so no single driver call blocks
// the source's thread much longer than a second. A selection that times out is
// retried by the backoff while the pool's monitor keeps connecting in the background,
// so a slow first handshake costs one retry, not a failure.
constexpr int kServerSelectionTimeoutMs = 900;
constexpr int kSocketTimeoutMs = 5000;

void logHandler(mongoc_log_level_t level, const char* domain, const char* message, void*) {
    // libmongoc writes to stderr by default; route it through Qt logging instead.
    if (level <= MONGOC_LOG_LEVEL_ERROR)
        qCWarning(lcMongo, "%s: %s", domain, message);
    else if (level <= MONGOC_LOG_LEVEL_WARNING)
        qCInfo(lcMongo, "%s: %s", domain, message);
    else
        qCDebug(lcMongo, "%s: %s", domain, message);
}

void ensureDriver() {
    static std::once_flag once;
    std::call_once(once, [] {
        mongoc_init(); // never cleaned up: other sources may still be tearing down their pools
        mongoc_log_set_handler(logHandler, nullptr);
    });
}

// The password of scheme://user:password@host, percent-encoded as written.
QString passwordOf(const QString& uri) {
    return SourceUri(uri).encodedPassword();
}

// A driver message never shows the password, even if it quotes the URI.
QString redactMessage(const QString& message, const QString& uri) {
    QString out = message;
    const QString password = passwordOf(uri);
    if (password.size() >= 1) {
        out.replace(password, QStringLiteral("****"));
        const QString decoded = QUrl::fromPercentEncoding(password.toUtf8());
        if (!decoded.isEmpty())
            out.replace(decoded, QStringLiteral("****"));
    }
    return out;
}

} // namespace

std::unique_ptr<MongoConnection> MongoConnection::create(const QString& uri, QString* error) {
    ensureDriver();
    bson_error_t err;
    mongoc_uri_t* parsed = mongoc_uri_new_with_error(uri.toUtf8().constData(), &err);
    if (!parsed) {
        if (error)
            *error = QStringLiteral("Cannot use the MongoDB URI \"%1\": %2. Check its syntax: "
                                    "mongodb://[user:password@]host[:port][/?options] or mongodb+srv://host.")
                         .arg(Source::redactUri(uri), redactMessage(QString::fromUtf8(err.message), uri));
        return nullptr;
    }
    if (!mongoc_uri_has_option(parsed, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(parsed, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                       kServerSelectionTimeoutMs);
    if (!mongoc_uri_has_option(parsed, MONGOC_URI_SOCKETTIMEOUTMS))
        mongoc_uri_set_option_as_int32(parsed, MONGOC_URI_SOCKETTIMEOUTMS, kSocketTimeoutMs);
    if (!mongoc_uri_has_option(parsed, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(parsed, "tidewatch");
    return std::unique_ptr<MongoConnection>(new MongoConnection(uri, parsed));
}

MongoConnection::MongoConnection(const QString& uri, mongoc_uri_t* parsed)
    : m_uri(uri)
    , m_redactedUri(Source::redactUri(uri))
    , m_parsedUri(parsed) {}

MongoConnection::~MongoConnection() {
    close();
    mongoc_uri_destroy(m_parsedUri);
}

QString MongoConnection::redact(const QString& message) const {
    return redactMessage(message, m_uri);
}

bool MongoConnection::open(QString* error) {
    if (m_pool)
        return true;
    bson_error_t err;
    m_pool = mongoc_client_pool_new_with_error(m_parsedUri, &err);
    if (!m_pool) {
        *error = redact(QString::fromUtf8(err.message));
        return false;
    }
    mongoc_client_pool_set_error_api(m_pool, MONGOC_ERROR_API_VERSION_2);
    return true;
}

void MongoConnection::close() {
    if (!m_pool)
        return;
    // Destroying a pool joins its monitor threads, which may sit in a connect to
    // an unreachable host for connectTimeoutMS (10 s by default): done off this
    // thread so stop() keeps its one-second promise. Every client is back.
    mongoc_client_pool_t* pool = m_pool;
    m_pool = nullptr;
    std::thread([pool] { mongoc_client_pool_destroy(pool); }).detach();
}

mongoc_client_t* MongoConnection::popClient() {
    return mongoc_client_pool_pop(m_pool);
}

void MongoConnection::pushClient(mongoc_client_t*& client) {
    if (client && m_pool)
        mongoc_client_pool_push(m_pool, client);
    client = nullptr;
}

bool MongoConnection::selectServer(mongoc_client_t* client, bson_error_t* error, quint32* serverId) {
    // Selecting a server is also where an unreachable deployment shows, within
    // serverSelectionTimeoutMS.
    mongoc_server_description_t* server = mongoc_client_select_server(client, false, nullptr, error);
    if (!server)
        return false;
    const bson_t* hello = mongoc_server_description_hello_response(server);
    m_maxWireVersion = int(intAt(hello, "maxWireVersion", m_maxWireVersion));
    if (serverId)
        *serverId = mongoc_server_description_id(server);
    mongoc_server_description_destroy(server);
    return true;
}

void MongoConnection::setBackoff(int initialMs, int maxMs, double jitter) {
    m_backoffInitialMs = std::max(1, initialMs);
    m_backoffMaxMs = std::max(m_backoffInitialMs, maxMs);
    m_jitter = std::clamp(jitter, 0.0, 0.9);
}

int MongoConnection::backoffDelayMs(int attempt) const {
    // attempt 1 -> initial, doubling to the cap; jitter spreads reconnects of many
    // sources after a shared outage.
    double delay = m_backoffInitialMs;
    for (int i = 1; i < attempt && delay < m_backoffMaxMs; ++i)
        delay *= 2;
    delay = std::min<double>(delay, m_backoffMaxMs);
    const double factor = 1.0 + m_jitter * (QRandomGenerator::global()->generateDouble() * 2.0 - 1.0);
    return std::max(1, int(delay * factor));
}

} // namespace tw

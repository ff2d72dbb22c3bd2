#include "DemoWriter.h"

#include "config/DataDir.h"

#include <chrono>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRandomGenerator>

#include <sqlite3.h>

namespace tw {

namespace {

// AUTOINCREMENT: a purged row's id is never given to a new one, so the feed never shows
// an insert of an _id it has just shown deleted.
const char* const kSchema = R"sql(
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS customers(
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, email TEXT NOT NULL, city TEXT, tier TEXT NOT NULL,
  created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders(
  id INTEGER PRIMARY KEY AUTOINCREMENT, customer_id INTEGER NOT NULL, status TEXT NOT NULL, total REAL NOT NULL,
  items INTEGER NOT NULL, currency TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notifications(
  id INTEGER PRIMARY KEY AUTOINCREMENT, customer_id INTEGER NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL,
  read INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
)sql";

const char* const kFirst[] = {"Ada",   "Brian", "Chioma",  "Dmitri", "Elena", "Farah", "Goran",
                              "Hana",  "Ines",  "Jonas",   "Keiko",  "Luca",  "Maya",  "Nils",
                              "Oumar", "Priya", "Quentin", "Rosa",   "Sven",  "Tomas"};
const char* const kLast[] = {"Lovelace", "Okafor",  "Novak",     "Silva",    "Tanaka",
                             "Haddad",   "Moreau",  "Lindqvist", "Kowalski", "Ibrahim",
                             "Rossi",    "Fischer", "Nakamura",  "Costa",    "Dubois"};
const char* const kCities[] = {"Lisbon",  "Lagos", "Osaka", "Berlin", "Toronto",
                               "Nairobi", "Lyon",  "Porto", "Oslo",   "Austin"};
const char* const kTiers[] = {"standard", "standard", "standard", "gold", "platinum"};
const char* const kCurrencies[] = {"EUR", "USD", "GBP", "JPY"};

// How many of the newest rows each table keeps (see keepNewest).
constexpr int kKeptOrders = 3000;
constexpr int kKeptNotifications = 2000;
constexpr int kKeptCustomers = 1000;

template <typename T, size_t N> const T& pick(QRandomGenerator& rng, const T (&array)[N]) {
    return array[rng.bounded(int(N))];
}

QString now() {
    return QDateTime::currentDateTimeUtc().toString(Qt::ISODateWithMs);
}

bool runSql(sqlite3* db, const QString& sql, QString* error = nullptr) {
    char* message = nullptr;
    if (sqlite3_exec(db, sql.toUtf8().constData(), nullptr, nullptr, &message) != SQLITE_OK) {
        if (error)
            *error = QString::fromUtf8(message ? message : "unknown error");
        sqlite3_free(message);
        return false;
    }
    return true;
}

qint64 scalar(sqlite3* db, const char* sql) {
    sqlite3_stmt* s = nullptr;
    qint64 v = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

QString quote(const QString& text) {
    QString q = text;
    q.replace(QLatin1Char('\''), QLatin1String("''"));
    return QLatin1Char('\'') + q + QLatin1Char('\'');
}

void insertCustomer(sqlite3* db, QRandomGenerator& rng) {
    const QString first = QLatin1String(pick(rng, kFirst));
    const QString last = QLatin1String(pick(rng, kLast));
    const QString email = (first + QLatin1Char('.') + last).toLower() + QString::number(rng.bounded(1000)) +
                          QStringLiteral("@example.com");
    runSql(db, QStringLiteral(
                   "INSERT INTO customers(name, email, city, tier, created_at) VALUES(%1, %2, %3, %4, %5)")
                   .arg(quote(first + QLatin1Char(' ') + last), quote(email),
                        quote(QLatin1String(pick(rng, kCities))), quote(QLatin1String(pick(rng, kTiers))),
                        quote(now())));
}

void insertOrder(sqlite3* db, QRandomGenerator& rng) {
    const qint64 customers = std::max<qint64>(1, scalar(db, "SELECT max(id) FROM customers"));
    const int items = 1 + rng.bounded(6);
    const double total = double(items) * (5.0 + rng.bounded(9500) / 100.0);
    runSql(db, QStringLiteral("INSERT INTO orders(customer_id, status, total, items, currency, updated_at) "
                              "VALUES(%1, 'pending', %2, %3, %4, %5)")
                   .arg(1 + rng.bounded(customers))
                   .arg(total, 0, 'f', 2)
                   .arg(items)
                   .arg(quote(QLatin1String(pick(rng, kCurrencies))), quote(now())));
}

// Archives the oldest rows of `table` past its newest `keep` ids, in the same commit as
// the insert that made one too many: a writer left running for hours keeps its tables,
// and so a diffing source's work per change and its memory, the same size.
void keepNewest(sqlite3* db, const char* table, int keep) {
    runSql(db, QStringLiteral("DELETE FROM %1 WHERE id <= (SELECT max(id) FROM %1) - %2")
                   .arg(QLatin1String(table))
                   .arg(keep));
}

} // namespace

DemoWriter::DemoWriter(const QString& path, QObject* parent)
    : QThread(parent)
    , m_path(path) {
    setObjectName(QStringLiteral("tidewatch-demo-writer"));
}

DemoWriter::~DemoWriter() {
    requestStop();
    wait();
}

QString DemoWriter::defaultPath() {
    return QDir(defaultDataDir()).filePath(QStringLiteral("demo.sqlite"));
}

bool DemoWriter::ensureDatabase(const QString& path, QString* error) {
    QDir().mkpath(QFileInfo(path).absolutePath());
    const bool fresh = !QFile::exists(path);
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(QFile::encodeName(path).constData(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        nullptr) != SQLITE_OK) {
        if (error)
            *error = QStringLiteral("Cannot create the demo database %1: %2")
                         .arg(path, QString::fromUtf8(sqlite3_errmsg(db)));
        sqlite3_close(db);
        return false;
    }
    sqlite3_busy_timeout(db, 5000);
    bool ok = runSql(db, QLatin1String(kSchema), error);
    if (ok && fresh) {
        QRandomGenerator rng(20261122);
        runSql(db, QStringLiteral("BEGIN"));
        for (int i = 0; i < 120; ++i)
            insertCustomer(db, rng);
        for (int i = 0; i < 400; ++i)
            insertOrder(db, rng);
        ok = runSql(db, QStringLiteral("COMMIT"), error);
    }
    sqlite3_close(db);
    return ok;
}

void DemoWriter::run() {
    QString error;
    if (!ensureDatabase(m_path, &error)) {
        qWarning("tidewatch demo: %s", qPrintable(error));
        return;
    }
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(QFile::encodeName(m_path).constData(), &db, SQLITE_OPEN_READWRITE, nullptr) !=
        SQLITE_OK) {
        sqlite3_close(db);
        return;
    }
    sqlite3_busy_timeout(db, 5000);
    // A demo needs no fsync per change: with WAL, NORMAL stays consistent after a crash
    // and lets the writer keep a rate of thousands of changes per second.
    runSql(db, QStringLiteral("PRAGMA synchronous=NORMAL"));
    QRandomGenerator rng{quint32(QDateTime::currentMSecsSinceEpoch())};
    using clock = std::chrono::steady_clock;
    auto next = clock::now();
    while (!m_stop.load()) {
        const double rate = std::max(0.1, m_rate.load());
        next += std::chrono::microseconds(qint64(1e6 / rate));
        const auto wake = next;
        // Sleep in slices of at most 50 ms so requestStop() is honoured quickly. What is
        // left is read once per slice: read again after the test, it could have become
        // negative, and a negative count made unsigned slept for ever.
        while (!m_stop.load()) {
            const qint64 left =
                std::chrono::duration_cast<std::chrono::microseconds>(wake - clock::now()).count();
            if (left <= 0)
                break;
            QThread::usleep(quint64(std::min<qint64>(50000, left)));
        }
        if (m_stop.load())
            break;
        if (clock::now() - next > std::chrono::seconds(1))
            next = clock::now(); // fell behind (suspended laptop): do not burst

        const int dice = rng.bounded(100);
        const QString ts = quote(now());
        if (dice < 30) {
            runSql(db, QStringLiteral("BEGIN"));
            insertOrder(db, rng);
            keepNewest(db, "orders", kKeptOrders);
            runSql(db, QStringLiteral("COMMIT"));
        } else if (dice < 55) {
            // Move an open order one step along its life.
            runSql(db, QStringLiteral("UPDATE orders SET status = CASE status WHEN 'pending' THEN 'paid' "
                                      "WHEN 'paid' THEN 'shipped' ELSE 'delivered' END, updated_at = %1 "
                                      "WHERE id = (SELECT id FROM orders WHERE status <> 'delivered' "
                                      "ORDER BY random() LIMIT 1)")
                           .arg(ts));
        } else if (dice < 75) {
            const qint64 customers = std::max<qint64>(1, scalar(db, "SELECT max(id) FROM customers"));
            static const struct {
                const char* kind;
                const char* message;
            } notes[] = {{"order_shipped", "Your order is on its way"},
                         {"payment_received", "We received your payment, thank you"},
                         {"price_drop", "An item on your wishlist is now cheaper"},
                         {"back_in_stock", "An item you wanted is back in stock"}};
            const auto& note = notes[rng.bounded(4)];
            runSql(db, QStringLiteral("BEGIN"));
            runSql(db, QStringLiteral("INSERT INTO notifications(customer_id, kind, message, created_at) "
                                      "VALUES(%1, %2, %3, %4)")
                           .arg(1 + rng.bounded(customers))
                           .arg(quote(QLatin1String(note.kind)), quote(QLatin1String(note.message)), ts));
            keepNewest(db, "notifications", kKeptNotifications);
            runSql(db, QStringLiteral("COMMIT"));
        } else if (dice < 87) {
            runSql(db, QStringLiteral(
                           "UPDATE notifications SET read = 1 WHERE id = (SELECT id FROM notifications "
                           "WHERE read = 0 ORDER BY random() LIMIT 1)"));
        } else if (dice < 94) {
            // Purge read notifications, keeping the table small.
            runSql(db, QStringLiteral("DELETE FROM notifications WHERE id IN (SELECT id FROM notifications "
                                      "WHERE read = 1 ORDER BY id LIMIT 2)"));
        } else if (dice < 97) {
            runSql(db, QStringLiteral(
                           "UPDATE customers SET tier = %1, city = %2 WHERE id = (SELECT id FROM customers "
                           "ORDER BY random() LIMIT 1)")
                           .arg(quote(QLatin1String(pick(rng, kTiers))),
                                quote(QLatin1String(pick(rng, kCities)))));
        } else if (dice < 99) {
            runSql(db, QStringLiteral("BEGIN"));
            insertCustomer(db, rng);
            keepNewest(db, "customers", kKeptCustomers);
            runSql(db, QStringLiteral("COMMIT"));
        } else {
            runSql(db, QStringLiteral(
                           "DELETE FROM orders WHERE id = (SELECT id FROM orders WHERE status = 'pending' "
                           "ORDER BY random() LIMIT 1)"));
        }
        m_written.fetch_add(1);
    }
    sqlite3_close(db);
}

} // namespace tw

#include "JournalSqlite.h"

#include <QFile>

namespace tw::journaldb {

QString sqliteMessage(sqlite3* db) {
    return db ? QString::fromUtf8(sqlite3_errmsg(db)) : QStringLiteral("out of memory");
}

int openConnection(const QString& path, int flags, sqlite3** db) {
    const int rc =
        sqlite3_open_v2(QFile::encodeName(path).constData(), db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc == SQLITE_OK) {
        // A writer holds the lock for one group commit (a few ms); waiting beats failing.
        sqlite3_busy_timeout(*db, 5000);
        sqlite3_extended_result_codes(*db, 1);
    }
    return rc;
}

} // namespace tw::journaldb

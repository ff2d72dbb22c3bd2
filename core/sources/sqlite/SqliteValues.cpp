#include "SqliteValues.h"

#include <sqlite3.h>

#include <cstring>

namespace tw::sqlite {

void appendRowid(bson_t* doc, qint64 rowid) {
    if (rowid >= INT32_MIN && rowid <= INT32_MAX)
        bson_append_int32(doc, "_id", 3, int32_t(rowid));
    else
        bson_append_int64(doc, "_id", 3, rowid);
}

Bson keyDocument(qint64 rowid) {
    BsonBuilder b;
    appendRowid(b.get(), rowid);
    return b.take();
}

QString quoteIdentifier(const QString& name) {
    QString quoted = name;
    quoted.replace(QLatin1Char('"'), QLatin1String("\"\""));
    return QLatin1Char('"') + quoted + QLatin1Char('"');
}

QString quoteLiteral(const QString& text) {
    QString quoted = text;
    quoted.replace(QLatin1Char('\''), QLatin1String("''"));
    return QLatin1Char('\'') + quoted + QLatin1Char('\'');
}

QString columnText(sqlite3_stmt* s, int column) {
    return QString::fromUtf8(reinterpret_cast<const char*>(sqlite3_column_text(s, column)),
                             sqlite3_column_bytes(s, column));
}

QString tableSql(sqlite3* db, const QString& name, bool* isView, bool* readFailed) {
    sqlite3_stmt* s = nullptr;
    QString sql;
    int rc = sqlite3_prepare_v2(
        db, "SELECT type, sql FROM sqlite_master WHERE name = ?1 AND type IN ('table','view')", -1, &s,
        nullptr);
    if (rc == SQLITE_OK) {
        const QByteArray utf8 = name.toUtf8();
        sqlite3_bind_text(s, 1, utf8.constData(), int(utf8.size()), SQLITE_TRANSIENT);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            if (isView)
                *isView = !strcmp(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "view");
            sql = columnText(s, 1);
            if (sql.isEmpty())
                sql = QStringLiteral("?");
        }
    }
    sqlite3_finalize(s);
    if (readFailed)
        *readFailed = rc != SQLITE_ROW && rc != SQLITE_DONE;
    return sql;
}

QStringList tableColumns(sqlite3* db, const QString& name) {
    QStringList columns;
    sqlite3_stmt* s = nullptr;
    const QByteArray sql = QStringLiteral("SELECT * FROM %1 LIMIT 0").arg(quoteIdentifier(name)).toUtf8();
    if (sqlite3_prepare_v2(db, sql.constData(), -1, &s, nullptr) == SQLITE_OK)
        for (int i = 0; i < sqlite3_column_count(s); ++i)
            columns.append(QString::fromUtf8(sqlite3_column_name(s, i)));
    sqlite3_finalize(s);
    return columns;
}

} // namespace tw::sqlite

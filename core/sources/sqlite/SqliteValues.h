#pragma once

#include "model/Bson.h"

#include <QString>
#include <QStringList>

struct sqlite3;
struct sqlite3_stmt;

// What diff and capture mode of an SQLite source both do with keys, names and schema.
// (Hashing and converting column values is the diff's inner loop and stays in
// SqliteDiff.cpp, where the compiler can inline it.)
namespace tw::sqlite {

void appendRowid(bson_t* doc, qint64 rowid); // as "_id"
Bson keyDocument(qint64 rowid);              // {_id: rowid}
QString quoteIdentifier(const QString& name);
QString quoteLiteral(const QString& text);
QString columnText(sqlite3_stmt* s, int column);

// The CREATE statement of table or view `name` ("?" when SQLite keeps none); empty when
// there is no such table or view, or when the schema could not be read (a writer holding
// the file past the busy timeout): `readFailed` tells the two apart, since taking the
// second for the first would report a drop that never happened.
QString tableSql(sqlite3* db, const QString& name, bool* isView = nullptr, bool* readFailed = nullptr);
QStringList tableColumns(sqlite3* db, const QString& name);

} // namespace tw::sqlite

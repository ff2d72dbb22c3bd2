#pragma once

#include <QByteArray>
#include <QString>

#include <sqlite3.h>

// The SQLite plumbing the journal's writer, WAL folder and reader share. Private to
// core/journal/: nothing outside it includes this.
namespace tw::journaldb {

QString sqliteMessage(sqlite3* db);

// Opens a connection configured the way every journal connection is.
int openConnection(const QString& path, int flags, sqlite3** db);

// Resets a statement kept prepared for reuse, and clears its bindings, when it goes out of
// scope.
struct Statement {
    sqlite3_stmt* s;
    explicit Statement(sqlite3_stmt* stmt)
        : s(stmt) {}
    ~Statement() {
        if (s) {
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
        }
    }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
};

inline void bindText(sqlite3_stmt* s, int index, const QString& text) {
    const QByteArray utf8 = text.toUtf8();
    sqlite3_bind_text(s, index, utf8.constData(), int(utf8.size()), SQLITE_TRANSIENT);
}

inline void bindBlob(sqlite3_stmt* s, int index, const QByteArray& bytes) {
    // Static binding: the caller keeps `bytes` alive until the step.
    sqlite3_bind_blob(s, index, bytes.constData(), int(bytes.size()), SQLITE_STATIC);
}

inline QByteArray columnBlob(sqlite3_stmt* s, int column) {
    const void* data = sqlite3_column_blob(s, column);
    return QByteArray(static_cast<const char*>(data), sqlite3_column_bytes(s, column));
}

inline bool isCorruption(int rc) {
    rc &= 0xff;
    return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
}

} // namespace tw::journaldb

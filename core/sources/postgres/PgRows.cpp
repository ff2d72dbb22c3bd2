#include "PgRows.h"

#include "PgTypes.h"
#include "sources/RowHash.h"

#include <QHash>

#include <libpq-fe.h>

#include <algorithm>
#include <cstring>

namespace tw::PgRows {

namespace {

void appendColumn(bson_t* doc, const PGresult* result, int row, int column) {
    const char* name = PQfname(result, column);
    const int nameLength = int(strlen(name));
    if (PQgetisnull(result, row, column)) {
        bson_append_null(doc, name, nameLength);
        return;
    }
    pg::appendValue(doc, name, nameLength, quint32(PQftype(result, column)),
                    QByteArrayView(PQgetvalue(result, row, column), PQgetlength(result, row, column)));
}

// name -> hash of a table made by hashTable().
QHash<QByteArrayView, quint64> parse(const QByteArray& table) {
    QHash<QByteArrayView, quint64> out;
    for (qsizetype pos = 0; pos < table.size();) {
        const qsizetype nul = table.indexOf('\0', pos);
        if (nul < 0 || nul + 9 > table.size())
            break;
        quint64 h;
        memcpy(&h, table.constData() + nul + 1, 8);
        out.insert(QByteArrayView(table.constData() + pos, nul - pos), h);
        pos = nul + 9;
    }
    return out;
}

} // namespace

QList<int> columnIndexes(const PGresult* result, const QStringList& names, int first, int count) {
    QList<int> out;
    for (const QString& name : names) {
        const QByteArray utf8 = name.toUtf8();
        for (int c = first; c < first + count; ++c)
            if (utf8 == PQfname(result, c)) {
                out.append(c);
                break;
            }
    }
    return out;
}

Bson document(const PGresult* result, int row, int first, int count) {
    BsonBuilder b;
    for (int c = first; c < first + count; ++c)
        appendColumn(b.get(), result, row, c);
    return b.take();
}

Bson keyDocument(const PGresult* result, int row, const QList<int>& columns) {
    BsonBuilder b;
    for (const int c : columns)
        appendColumn(b.get(), result, row, c);
    return b.take();
}

QByteArray hashTable(const PGresult* result, int row, int first, int count) {
    QByteArray table;
    for (int c = first; c < first + count; ++c) {
        const char* name = PQfname(result, c);
        table.append(name, qsizetype(strlen(name) + 1));
        const quint32 type = quint32(PQftype(result, c));
        quint64 h = fnv1a(&type, sizeof type);
        const char isNull = PQgetisnull(result, row, c) ? 1 : 0;
        h = fnv1a(&isNull, 1, h);
        if (!isNull)
            h = fnv1a(PQgetvalue(result, row, c), size_t(PQgetlength(result, row, c)), h);
        table.append(reinterpret_cast<const char*>(&h), 8);
    }
    return table;
}

void diff(const QByteArray& before, const QByteArray& after, QList<QByteArray>* changed,
          QList<QByteArray>* removed) {
    QHash<QByteArrayView, quint64> old = parse(before);
    const QHash<QByteArrayView, quint64> now = parse(after);
    // In the row's column order, so updatedFields reads like the table.
    for (qsizetype pos = 0; pos < after.size();) {
        const qsizetype nul = after.indexOf('\0', pos);
        if (nul < 0 || nul + 9 > after.size())
            break;
        const QByteArrayView name(after.constData() + pos, nul - pos);
        const auto o = old.constFind(name);
        if (o == old.constEnd() || *o != now.value(name))
            changed->append(name.toByteArray());
        if (o != old.constEnd())
            old.erase(o);
        pos = nul + 9;
    }
    for (auto o = old.cbegin(); o != old.cend(); ++o)
        removed->append(o.key().toByteArray());
    std::sort(removed->begin(), removed->end());
}

} // namespace tw::PgRows

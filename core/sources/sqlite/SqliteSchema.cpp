#include "SqliteSchema.h"

#include "SqliteCapture.h"
#include "SqliteValues.h"

#include <QJsonDocument>
#include <QMap>
#include <QSet>

#include <algorithm>

#include <sqlite3.h>

namespace tw {

namespace {

const QString kMain = QStringLiteral("main");

bool isSystemName(const QString& name) {
    return name.startsWith(QLatin1String("sqlite_")) || name == QLatin1String(SqliteCapture::kChangelogTable);
}

// Runs a one-argument pragma function (pragma_table_xinfo(?1), …) and hands each row on.
template <typename Row> void eachRow(sqlite3* db, const char* sql, const QString& argument, Row row) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK) {
        const QByteArray utf8 = argument.toUtf8();
        sqlite3_bind_text(s, 1, utf8.constData(), int(utf8.size()), SQLITE_TRANSIENT);
        while (sqlite3_step(s) == SQLITE_ROW)
            row(s);
    }
    sqlite3_finalize(s);
}

QJsonArray readColumns(sqlite3* db, const QString& table) {
    QJsonArray columns;
    eachRow(db, "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_xinfo(?1) ORDER BY cid",
            table, [&](sqlite3_stmt* s) {
                QJsonObject column{{QStringLiteral("name"), sqlite::columnText(s, 0)},
                                   {QStringLiteral("type"), sqlite::columnText(s, 1)},
                                   {QStringLiteral("notNull"), sqlite3_column_int(s, 2) != 0},
                                   {QStringLiteral("primaryKey"), sqlite3_column_int(s, 4) != 0}};
                if (sqlite3_column_type(s, 3) != SQLITE_NULL)
                    column.insert(QStringLiteral("default"), sqlite::columnText(s, 3));
                columns.append(column);
            });
    return columns;
}

void readIndex(sqlite3* db, SqliteSchema::Entry& index) {
    index.key = QJsonArray();
    eachRow(db, "SELECT name, \"desc\" FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno", index.name,
            [&](sqlite3_stmt* s) {
                // An expression has no column name; the index's SQL says which.
                const QString column = sqlite3_column_type(s, 0) == SQLITE_NULL
                                           ? QStringLiteral("<expression>")
                                           : sqlite::columnText(s, 0);
                index.key.append(QJsonArray{column, sqlite3_column_int(s, 1) ? -1 : 1});
            });
    index.unique = false;
    eachRow(db, "SELECT \"unique\", name FROM pragma_index_list(?1)", index.table, [&](sqlite3_stmt* s) {
        if (sqlite::columnText(s, 1) == index.name)
            index.unique = sqlite3_column_int(s, 0) != 0;
    });
}

// One JSON value as compact text.
QByteArray jsonText(const QJsonValue& v) {
    return QJsonDocument(QJsonArray{v}).toJson(QJsonDocument::Compact).mid(1).chopped(1);
}

// MongoDB's index spec: {v: 2, key: {column: 1}, name, unique?}. QJsonObject sorts its
// keys, which would reorder a compound key, so the spec is written as JSON text in key
// order (Qt's writer quotes each name) and parsed as BSON.
QByteArray indexSpecJson(const SqliteSchema::Entry& index) {
    QByteArray json = "{\"v\":2,\"key\":{";
    for (qsizetype i = 0; i < index.key.size(); ++i) {
        const QJsonArray part = index.key[i].toArray();
        if (i)
            json += ',';
        json += jsonText(part[0]) + ':' + QByteArray::number(part[1].toInt());
    }
    json += "},\"name\":";
    json += jsonText(index.name);
    if (index.unique)
        json += ",\"unique\":true";
    return json + '}';
}

} // namespace

QByteArray SqliteSchema::stateKey() {
    return QByteArrayLiteral("\x1eschema");
}

bool SqliteSchema::hasTable(const QString& name) const {
    const auto it = m_entries.constFind(name);
    return it != m_entries.constEnd() && !it->isIndex;
}

QStringList SqliteSchema::tableNames() const {
    QStringList names;
    for (const Entry& e : m_entries)
        if (!e.isIndex)
            names.append(e.name);
    names.sort();
    return names;
}

bool SqliteSchema::read(sqlite3* db, const SqliteSchema& previous, QString* error) {
    sqlite3_stmt* s = nullptr;
    // Indexes without SQL are the automatic ones behind UNIQUE and PRIMARY KEY: part of
    // the table's definition, reported with it, not as indexes of their own.
    if (sqlite3_prepare_v2(db,
                           "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master "
                           "WHERE type = 'table' OR (type = 'index' AND sql IS NOT NULL)",
                           -1, &s, nullptr) != SQLITE_OK) {
        if (error)
            *error = QStringLiteral("cannot read the schema: %1").arg(QString::fromUtf8(sqlite3_errmsg(db)));
        sqlite3_finalize(s);
        return false;
    }
    QHash<QString, Entry> entries;
    while (sqlite3_step(s) == SQLITE_ROW) {
        Entry e;
        e.isIndex = !strcmp(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "index");
        e.name = sqlite::columnText(s, 1);
        e.table = sqlite::columnText(s, 2);
        e.rootPage = sqlite3_column_int64(s, 3);
        e.sql = sqlite::columnText(s, 4);
        if (isSystemName(e.name) || isSystemName(e.table))
            continue;
        entries.insert(e.name, e);
    }
    sqlite3_finalize(s);
    // Only a new or changed definition costs pragma reads.
    for (Entry& e : entries) {
        const auto old = previous.m_entries.constFind(e.name);
        const bool known =
            old != previous.m_entries.constEnd() && old->sql == e.sql && old->isIndex == e.isIndex;
        if (known) {
            e.columns = old->columns;
            e.key = old->key;
            e.unique = old->unique;
        } else if (e.isIndex) {
            readIndex(db, e);
        } else {
            e.columns = readColumns(db, e.name);
        }
    }
    m_entries = std::move(entries);
    m_null = false;
    return true;
}

QByteArray SqliteSchema::serialize() const {
    QJsonArray list;
    for (const Entry& e : m_entries) {
        QJsonObject o{{QStringLiteral("name"), e.name},
                      {QStringLiteral("table"), e.table},
                      {QStringLiteral("rootPage"), e.rootPage},
                      {QStringLiteral("sql"), e.sql}};
        if (e.isIndex) {
            o.insert(QStringLiteral("index"), true);
            o.insert(QStringLiteral("key"), e.key);
            o.insert(QStringLiteral("unique"), e.unique);
        } else {
            o.insert(QStringLiteral("columns"), e.columns);
        }
        list.append(o);
    }
    return QJsonDocument(QJsonObject{{QStringLiteral("v"), 1}, {QStringLiteral("entries"), list}})
        .toJson(QJsonDocument::Compact);
}

SqliteSchema SqliteSchema::deserialize(const QByteArray& bytes) {
    SqliteSchema schema;
    const QJsonObject root = QJsonDocument::fromJson(bytes).object();
    if (root.value(QLatin1String("v")).toInt() != 1)
        return schema;
    for (const QJsonValue& v : root.value(QLatin1String("entries")).toArray()) {
        const QJsonObject o = v.toObject();
        Entry e;
        e.isIndex = o.value(QLatin1String("index")).toBool();
        e.name = o.value(QLatin1String("name")).toString();
        e.table = o.value(QLatin1String("table")).toString();
        e.rootPage = o.value(QLatin1String("rootPage")).toInteger(); // 0 when not an integer in range
        e.sql = o.value(QLatin1String("sql")).toString();
        e.columns = o.value(QLatin1String("columns")).toArray();
        e.key = o.value(QLatin1String("key")).toArray();
        e.unique = o.value(QLatin1String("unique")).toBool();
        schema.m_entries.insert(e.name, e);
    }
    schema.m_null = false;
    return schema;
}

QHash<QString, QString> SqliteSchema::renames(const SqliteSchema& before, const SqliteSchema& after) {
    QHash<QString, QString> result;
    // A name whose b-tree moved no longer denotes the table it did: that table is gone
    // under this name, and may live on under another (renamed, then the name reused).
    const auto moved = [](const SqliteSchema& other, const Entry& e) {
        const auto it = other.m_entries.constFind(e.name);
        return it == other.m_entries.constEnd() || it->isIndex || it->rootPage != e.rootPage;
    };
    QHash<qint64, const Entry*> goneByRoot;
    for (const Entry& e : before.m_entries)
        if (!e.isIndex && moved(after, e))
            goneByRoot.insert(e.rootPage, &e);
    // ALTER TABLE … RENAME keeps the root page and every column. A new table that only
    // reuses the freed root page of a dropped one (DROP and CREATE in one commit) has
    // other columns, and is not a rename.
    for (const Entry& e : after.m_entries) {
        if (e.isIndex || !moved(before, e))
            continue;
        const auto gone = goneByRoot.constFind(e.rootPage);
        if (gone != goneByRoot.constEnd() && (*gone)->columns == e.columns) {
            result.insert((*gone)->name, e.name);
            goneByRoot.erase(gone);
        }
    }
    return result;
}

ChangeEventList SqliteSchema::diff(const SqliteSchema& before, const SqliteSchema& after,
                                   const QString& sourceId, qint64 wallTimeMs,
                                   const std::function<bool(const QString&)>& inScope) {
    const QHash<QString, QString> renamed = renames(before, after);
    QSet<QString> renamedTo;
    for (const QString& to : renamed)
        renamedTo.insert(to);

    auto event = [&](const QString& table, Operation op, QByteArrayView ddlName = {}) {
        ChangeEvent e;
        e.setSourceId(sourceId);
        e.setNs(Namespace{kMain, table});
        e.setOperation(op, ddlName);
        e.setWallTimeMs(wallTimeMs);
        return e;
    };
    auto describe = [](ChangeEvent& e, const QByteArray& operationDescription) {
        e.setExtra(Bson::fromJson("{\"operationDescription\":" + operationDescription + '}'));
    };
    // Index events, grouped per table as one createIndexes command would be; a QMap
    // keeps the event order stable.
    auto indexEvents = [&](const SqliteSchema& from, const SqliteSchema& to, QByteArrayView name,
                           bool skipDroppedTables) {
        QMap<QString, QList<const Entry*>> byTable;
        for (const Entry& e : from.m_entries) {
            if (!e.isIndex)
                continue;
            const auto other = to.m_entries.constFind(e.name);
            if (other != to.m_entries.constEnd() && other->isIndex && other->key == e.key &&
                other->unique == e.unique)
                continue;
            // A dropped table takes its indexes with it: its `drop` says so.
            if (skipDroppedTables && !to.hasTable(e.table) && !renamed.contains(e.table))
                continue;
            const QString table = renamed.value(e.table, e.table);
            if (inScope(table) || inScope(e.table))
                byTable[table].append(&e);
        }
        ChangeEventList out;
        for (auto it = byTable.constBegin(); it != byTable.constEnd(); ++it) {
            QList<const Entry*> indexes = it.value();
            std::sort(indexes.begin(), indexes.end(),
                      [](const Entry* a, const Entry* b) { return a->name < b->name; });
            QByteArray specs = "[";
            for (const Entry* index : indexes) {
                if (specs.size() > 1)
                    specs += ',';
                specs += indexSpecJson(*index);
            }
            ChangeEvent e = event(it.key(), Operation::Ddl, name);
            describe(e, "{\"indexes\":" + specs + "]}");
            out.append(e);
        }
        return out;
    };

    ChangeEventList out = indexEvents(before, after, "dropIndexes", true);
    QStringList names = before.m_entries.keys() + after.m_entries.keys();
    names.sort();
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (const QString& name : names)
        if (before.hasTable(name) && !after.hasTable(name) && !renamed.contains(name) && inScope(name))
            out.append(event(name, Operation::Drop));
    for (auto it = renamed.constBegin(); it != renamed.constEnd(); ++it) {
        if (!inScope(it.key()) && !inScope(it.value()))
            continue;
        ChangeEvent e = event(it.key(), Operation::Rename);
        e.setRenameTarget(Namespace{kMain, it.value()});
        describe(e, "{\"to\":" +
                        jsonText(QJsonObject{{QStringLiteral("db"), kMain},
                                             {QStringLiteral("coll"), it.value()}}) +
                        '}');
        out.append(e);
    }
    for (const QString& name : names) {
        // A name renamed away and taken by a new table in the same commit is a create.
        const bool reused = renamed.contains(name);
        if (!after.hasTable(name) || (before.hasTable(name) && !reused) || renamedTo.contains(name) ||
            !inScope(name))
            continue;
        ChangeEvent e = event(name, Operation::Ddl, "create");
        describe(e, "{\"columns\":" + jsonText(after.m_entries.value(name).columns) + '}');
        out.append(e);
    }
    for (const QString& name : names) {
        if (!after.hasTable(name) || !inScope(name))
            continue;
        const QString oldName =
            renamed.key(name, before.hasTable(name) && !renamed.contains(name) ? name : QString());
        if (oldName.isEmpty())
            continue;
        const Entry& was = before.m_entries[oldName];
        const Entry& now = after.m_entries[name];
        // A rename rewrites the name inside the CREATE statement; the columns tell.
        if (was.columns == now.columns && (oldName != name || was.sql == now.sql))
            continue;
        ChangeEvent e = event(name, Operation::Ddl, "modify");
        describe(e, "{\"columns\":" + jsonText(now.columns) +
                        ",\"previousColumns\":" + jsonText(was.columns) + '}');
        out.append(e);
    }
    out.append(indexEvents(after, before, "createIndexes", false));
    return out;
}

} // namespace tw

#include "PgSchema.h"

#include "PgConnection.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QMap>

#include <algorithm>

namespace tw {

namespace {

// `values` as an SQL array of text literals.
QString textArray(PgConnection& conn, const QSet<QString>& values) {
    QStringList literals;
    for (const QString& v : values)
        literals.append(conn.quoteLiteral(v));
    literals.sort();
    return QStringLiteral("ARRAY[%1]::text[]").arg(literals.join(QLatin1Char(',')));
}

QByteArray jsonText(const QJsonArray& array) {
    return QJsonDocument(array).toJson(QJsonDocument::Compact);
}

// MongoDB's index spec, {v: 2, key: {column: 1 | -1}, name, unique?}, with the key in
// index order (BSON keeps the order it is written in).
void appendIndexSpec(bson_t* array, const char* position, const PgSchema::Index& index) {
    bson_t spec;
    bson_append_document_begin(array, position, -1, &spec);
    BSON_APPEND_INT32(&spec, "v", 2);
    bson_t key;
    bson_append_document_begin(&spec, "key", 3, &key);
    for (const QJsonValue& part : index.key) {
        const QByteArray column = part.toArray().at(0).toString().toUtf8();
        bson_append_int32(&key, column.constData(), int(column.size()), part.toArray().at(1).toInt());
    }
    bson_append_document_end(&spec, &key);
    const QByteArray name = index.name.toUtf8();
    bson_append_utf8(&spec, "name", 4, name.constData(), int(name.size()));
    if (index.unique)
        BSON_APPEND_BOOL(&spec, "unique", true);
    bson_append_document_end(array, &spec);
}

} // namespace

QByteArray PgSchema::stateKey() {
    // Cannot collide with the watch keys ("pgwatch" 0x1f …).
    return QByteArrayLiteral("\x1epgschema");
}

const PgSchema::Table* PgSchema::table(const QString& name) const {
    for (const Table& t : m_tables)
        if (t.name == name)
            return &t;
    return nullptr;
}

QStringList PgSchema::columnNames(const QString& name) const {
    QStringList names;
    if (const Table* t = table(name))
        for (const QJsonValue& c : t->columns)
            names.append(c.toObject().value(QLatin1String("name")).toString());
    return names;
}

bool PgSchema::read(PgConnection& conn, const QSet<QString>& schemas, QString* error) {
    QHash<quint32, Table> tables;
    QHash<quint32, Index> indexes;
    if (!schemas.isEmpty()) {
        const QString in = textArray(conn, schemas);
        QList<QStringList> rows;
        // One row per column (a table without columns gives one row of nulls).
        if (!conn.exec(
                QStringLiteral(
                    "SELECT c.oid, n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), "
                    "a.attnotnull, pg_get_expr(d.adbin, d.adrelid), "
                    "coalesce(a.attnum = ANY(pk.conkey), false) "
                    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT "
                    "a.attisdropped "
                    "LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
                    "LEFT JOIN pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p' "
                    "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%1) "
                    "ORDER BY c.oid, a.attnum")
                    .arg(in),
                &rows, error))
            return false;
        for (const QStringList& row : std::as_const(rows)) {
            Table& t = tables[row[0].toUInt()];
            t.oid = row[0].toUInt();
            t.name = row[1] + QLatin1Char('.') + row[2];
            if (row[3].isNull())
                continue;
            QJsonObject column{{QStringLiteral("name"), row[3]},
                               {QStringLiteral("type"), row[4]},
                               {QStringLiteral("notNull"), row[5] == QLatin1String("t")},
                               {QStringLiteral("primaryKey"), row[7] == QLatin1String("t")}};
            if (!row[6].isNull())
                column.insert(QStringLiteral("default"), row[6]);
            t.columns.append(column);
        }
        if (!conn.exec(
                QStringLiteral(
                    "SELECT i.indexrelid, ic.relname, i.indrelid, i.indisunique, "
                    "coalesce(a.attname, '<expression>'), (i.indoption[k.ord - 1] & 1) = 1 "
                    "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
                    "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true "
                    "LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                    "AND k.attnum > 0 "
                    "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%1) AND k.ord <= i.indnkeyatts "
                    "AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = i.indexrelid) "
                    "ORDER BY i.indexrelid, k.ord")
                    .arg(in),
                &rows, error))
            return false;
        for (const QStringList& row : std::as_const(rows)) {
            Index& index = indexes[row[0].toUInt()];
            index.oid = row[0].toUInt();
            index.name = row[1];
            index.table = row[2].toUInt();
            index.unique = row[3] == QLatin1String("t");
            index.key.append(QJsonArray{row[4], row[5] == QLatin1String("t") ? -1 : 1});
        }
    }
    m_schemas = schemas;
    m_tables = std::move(tables);
    m_indexes = std::move(indexes);
    m_null = false;
    return true;
}

QByteArray PgSchema::serialize() const {
    QJsonArray tables;
    QList<quint32> oids = m_tables.keys();
    std::sort(oids.begin(), oids.end());
    for (const quint32 oid : std::as_const(oids)) {
        const Table& t = m_tables[oid];
        tables.append(QJsonObject{{QStringLiteral("oid"), qint64(t.oid)},
                                  {QStringLiteral("name"), t.name},
                                  {QStringLiteral("columns"), t.columns}});
    }
    QJsonArray indexes;
    oids = m_indexes.keys();
    std::sort(oids.begin(), oids.end());
    for (const quint32 oid : std::as_const(oids)) {
        const Index& i = m_indexes[oid];
        indexes.append(QJsonObject{{QStringLiteral("oid"), qint64(i.oid)},
                                   {QStringLiteral("name"), i.name},
                                   {QStringLiteral("table"), qint64(i.table)},
                                   {QStringLiteral("key"), i.key},
                                   {QStringLiteral("unique"), i.unique}});
    }
    QStringList schemas(m_schemas.cbegin(), m_schemas.cend());
    schemas.sort();
    return QJsonDocument(QJsonObject{{QStringLiteral("v"), 1},
                                     {QStringLiteral("schemas"), QJsonArray::fromStringList(schemas)},
                                     {QStringLiteral("tables"), tables},
                                     {QStringLiteral("indexes"), indexes}})
        .toJson(QJsonDocument::Compact);
}

PgSchema PgSchema::deserialize(const QByteArray& bytes) {
    PgSchema schema;
    const QJsonObject root = QJsonDocument::fromJson(bytes).object();
    if (root.value(QLatin1String("v")).toInt() != 1)
        return schema;
    for (const QJsonValue& v : root.value(QLatin1String("schemas")).toArray())
        schema.m_schemas.insert(v.toString());
    for (const QJsonValue& v : root.value(QLatin1String("tables")).toArray()) {
        const QJsonObject o = v.toObject();
        Table t;
        t.oid = quint32(o.value(QLatin1String("oid")).toInteger());
        t.name = o.value(QLatin1String("name")).toString();
        t.columns = o.value(QLatin1String("columns")).toArray();
        schema.m_tables.insert(t.oid, t);
    }
    for (const QJsonValue& v : root.value(QLatin1String("indexes")).toArray()) {
        const QJsonObject o = v.toObject();
        Index i;
        i.oid = quint32(o.value(QLatin1String("oid")).toInteger());
        i.name = o.value(QLatin1String("name")).toString();
        i.table = quint32(o.value(QLatin1String("table")).toInteger());
        i.key = o.value(QLatin1String("key")).toArray();
        i.unique = o.value(QLatin1String("unique")).toBool();
        schema.m_indexes.insert(i.oid, i);
    }
    schema.m_null = false;
    return schema;
}

ChangeEventList PgSchema::diff(const PgSchema& before, const PgSchema& after, const QString& sourceId,
                               const QString& database, qint64 wallTimeMs,
                               const std::function<bool(const QString&)>& inScope) {
    // Only what both snapshots looked at: a schema watched for the first time has no
    // "before", and its tables are not new.
    const auto covered = [&](const QString& name) {
        const QString schema = name.section(QLatin1Char('.'), 0, 0);
        return before.m_schemas.contains(schema) && after.m_schemas.contains(schema);
    };
    auto event = [&](const QString& table, Operation op, QByteArrayView ddlName = {}) {
        ChangeEvent e;
        e.setSourceId(sourceId);
        e.setNs(Namespace{database, table});
        e.setOperation(op, ddlName);
        e.setWallTimeMs(wallTimeMs);
        return e;
    };
    auto describe = [](ChangeEvent& e, const QByteArray& operationDescription) {
        e.setExtra(Bson::fromJson("{\"operationDescription\":" + operationDescription + '}'));
    };
    // Index events, grouped per table (its name in `to` when it still exists there).
    auto indexEvents = [&](const PgSchema& from, const PgSchema& to, QByteArrayView name, bool dropping) {
        QMap<QString, QList<const Index*>> byTable;
        for (const Index& index : from.m_indexes) {
            const auto table = from.m_tables.constFind(index.table);
            if (table == from.m_tables.constEnd() || !covered(table->name))
                continue;
            const auto other = to.m_indexes.constFind(index.oid);
            if (other != to.m_indexes.constEnd() && other->key == index.key && other->unique == index.unique)
                continue;
            // A dropped table takes its indexes with it: its `drop` says so. Named as
            // the table is after the change (a renamed table's index drop names its
            // new name, as its later events do).
            const auto tableNow = to.m_tables.constFind(index.table);
            if (dropping && tableNow == to.m_tables.constEnd())
                continue;
            const QString current = dropping ? tableNow->name : table->name;
            if (inScope(current) || inScope(table->name))
                byTable[current].append(&index);
        }
        ChangeEventList out;
        for (auto it = byTable.constBegin(); it != byTable.constEnd(); ++it) {
            QList<const Index*> indexes = it.value();
            std::sort(indexes.begin(), indexes.end(),
                      [](const Index* a, const Index* b) { return a->name < b->name; });
            BsonBuilder description;
            bson_t specs;
            bson_t inner;
            bson_append_document_begin(description.get(), "operationDescription", -1, &inner);
            bson_append_array_begin(&inner, "indexes", -1, &specs);
            for (qsizetype i = 0; i < indexes.size(); ++i)
                appendIndexSpec(&specs, QByteArray::number(i).constData(), *indexes[i]);
            bson_append_array_end(&inner, &specs);
            bson_append_document_end(description.get(), &inner);
            ChangeEvent e = event(it.key(), Operation::Ddl, name);
            e.setExtra(description.take());
            out.append(e);
        }
        return out;
    };

    ChangeEventList out = indexEvents(before, after, "dropIndexes", true);
    QList<quint32> oids = before.m_tables.keys() + after.m_tables.keys();
    std::sort(oids.begin(), oids.end());
    oids.erase(std::unique(oids.begin(), oids.end()), oids.end());
    const auto byName = [](const QList<const Table*>& list) {
        QList<const Table*> sorted = list;
        std::sort(sorted.begin(), sorted.end(),
                  [](const Table* a, const Table* b) { return a->name < b->name; });
        return sorted;
    };
    QList<const Table*> dropped, created;
    QList<QPair<const Table*, const Table*>> kept; // before, after
    for (const quint32 oid : std::as_const(oids)) {
        const auto was = before.m_tables.constFind(oid);
        const auto now = after.m_tables.constFind(oid);
        if (was != before.m_tables.constEnd() && now == after.m_tables.constEnd())
            dropped.append(&*was);
        else if (was == before.m_tables.constEnd() && now != after.m_tables.constEnd())
            created.append(&*now);
        else if (was != before.m_tables.constEnd())
            kept.append(qMakePair(&*was, &*now));
    }
    for (const Table* t : byName(dropped))
        if (covered(t->name) && inScope(t->name))
            out.append(event(t->name, Operation::Drop));
    std::sort(kept.begin(), kept.end(),
              [](const auto& a, const auto& b) { return a.first->name < b.first->name; });
    for (const auto& [was, now] : std::as_const(kept)) {
        if (was->name == now->name || !covered(was->name) || !covered(now->name) ||
            (!inScope(was->name) && !inScope(now->name)))
            continue;
        ChangeEvent e = event(was->name, Operation::Rename);
        e.setRenameTarget(Namespace{database, now->name});
        describe(e, "{\"to\":" +
                        QJsonDocument(QJsonObject{{QStringLiteral("db"), database},
                                                  {QStringLiteral("coll"), now->name}})
                            .toJson(QJsonDocument::Compact) +
                        '}');
        out.append(e);
    }
    for (const Table* t : byName(created)) {
        if (!covered(t->name) || !inScope(t->name))
            continue;
        ChangeEvent e = event(t->name, Operation::Ddl, "create");
        describe(e, "{\"columns\":" + jsonText(t->columns) + '}');
        out.append(e);
    }
    for (const auto& [was, now] : std::as_const(kept)) {
        if (was->columns == now->columns || !covered(now->name) || !inScope(now->name))
            continue;
        ChangeEvent e = event(now->name, Operation::Ddl, "modify");
        describe(e, "{\"columns\":" + jsonText(now->columns) +
                        ",\"previousColumns\":" + jsonText(was->columns) + '}');
        out.append(e);
    }
    out.append(indexEvents(after, before, "createIndexes", false));
    return out;
}

} // namespace tw

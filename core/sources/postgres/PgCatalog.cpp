#include "PgCatalog.h"

#include "PgConnection.h"
#include "PgOutputDecoder.h"

namespace tw::PgCatalog {

namespace {

// Splits at the first dot outside double quotes and unquotes each part.
QStringList splitQuoted(const QString& text) {
    QStringList parts;
    QString current;
    bool quoted = false;
    for (qsizetype i = 0; i < text.size(); ++i) {
        const QChar c = text[i];
        if (c == QLatin1Char('"')) {
            if (quoted && i + 1 < text.size() && text[i + 1] == QLatin1Char('"')) {
                current.append(c);
                ++i;
            } else {
                quoted = !quoted;
            }
        } else if (c == QLatin1Char('.') && !quoted && parts.isEmpty()) {
            parts.append(current);
            current.clear();
        } else {
            current.append(c);
        }
    }
    parts.append(current);
    return parts;
}

} // namespace

bool splitName(const QString& coll, QString* schema, QString* table) {
    const QStringList parts = splitQuoted(coll);
    if (parts.size() == 1) {
        *schema = QStringLiteral("public");
        *table = parts[0];
    } else {
        *schema = parts[0];
        *table = parts[1];
    }
    return !schema->isEmpty() && !table->isEmpty();
}

bool splitWatched(const Namespace& ns, const QString& database, const QString& described, QString* schema,
                  QString* table, QString* error) {
    if ((ns.db.isEmpty() || ns.db == database) && splitName(ns.coll, schema, table))
        return true;
    *error = QStringLiteral("\"%1\" is not a table of database %2 on %3: name one as schema.table, e.g. "
                            "--watch public.orders.")
                 .arg(ns.toString(), database, described);
    return false;
}

QString qualifiedName(PgConnection& conn, const QString& schema, const QString& table) {
    return conn.quoteIdentifier(schema) + QLatin1Char('.') + conn.quoteIdentifier(table);
}

bool listTables(PgConnection& conn, const QString& database, QList<NamespaceInfo>* out, QString* error) {
    QList<QStringList> rows;
    if (!conn.exec(QStringLiteral("SELECT n.nspname, c.relname, c.relkind, c.relispartition FROM pg_class c "
                                  "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                  "WHERE c.relkind IN ('r','p','v','m','f') "
                                  "AND n.nspname NOT IN ('pg_catalog','information_schema','pg_toast') "
                                  "AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%' "
                                  "ORDER BY 1, 2"),
                   &rows, error))
        return false;
    for (const QStringList& row : rows) {
        QString kind = QStringLiteral("table");
        if (row[2] == QLatin1String("v") || row[2] == QLatin1String("m"))
            kind = QStringLiteral("view");
        else if (row[3] == QLatin1String("t"))
            kind = QStringLiteral("partition");
        else if (row[2] == QLatin1String("f"))
            kind = QStringLiteral("foreign table");
        out->append({Namespace{database, row[0] + QLatin1Char('.') + row[1]}, kind});
    }
    return true;
}

Table table(PgConnection& conn, const QString& schema, const QString& name, QString* error) {
    Table t;
    QList<QStringList> rows;
    if (!conn.exec(QStringLiteral("SELECT c.oid, c.relkind, c.relispartition, c.relreplident FROM pg_class c "
                                  "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                  "WHERE n.nspname = %1 AND c.relname = %2")
                       .arg(conn.quoteLiteral(schema), conn.quoteLiteral(name)),
                   &rows, error) ||
        rows.isEmpty())
        return t;
    t.exists = true;
    t.oid = rows[0][0].toUInt();
    t.kind = rows[0][1].isEmpty() ? 0 : rows[0][1][0].toLatin1();
    t.isPartition = rows[0][2] == QLatin1String("t");
    t.replicaIdentity = rows[0][3].isEmpty() ? 'd' : rows[0][3][0].toLatin1();
    // The primary key, else the replica identity index: what names a row.
    if (conn.exec(QStringLiteral("SELECT a.attname FROM pg_index i "
                                 "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true "
                                 "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                                 "WHERE i.indrelid = %1 AND (i.indisprimary OR i.indisreplident) "
                                 "ORDER BY i.indisprimary DESC, k.ord")
                      .arg(t.oid),
                  &rows, error)) {
        for (const QStringList& row : rows)
            if (!t.keyColumns.contains(row[0]))
                t.keyColumns.append(row[0]);
    }
    return t;
}

QString replicationBlocker(PgConnection& conn, const QString& where) {
    QList<QStringList> rows;
    QString error;
    if (!conn.exec(
            QStringLiteral("SELECT current_setting('wal_level'), "
                           "(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), "
                           "current_user"),
            &rows, &error) ||
        rows.isEmpty())
        return QStringLiteral("Cannot read the server's settings on %1: %2").arg(where, error);
    if (rows[0][0] != QLatin1String("logical"))
        return QStringLiteral("wal_level is '%1' on %2, and logical replication needs 'logical': run ALTER "
                              "SYSTEM SET wal_level = logical (or set it in postgresql.conf) and restart the "
                              "server.")
            .arg(rows[0][0], where);
    if (rows[0][1] != QLatin1String("t"))
        return QStringLiteral(
                   "Role \"%1\" on %2 lacks the REPLICATION attribute: run ALTER ROLE %3 REPLICATION "
                   "as a superuser (on a managed server, grant its replication role), or connect "
                   "as a role that has it.")
            .arg(rows[0][2], where, conn.quoteIdentifier(rows[0][2]));
    return {};
}

bool ensurePublication(PgConnection& conn, const QString& name, QString* error) {
    QList<QStringList> rows;
    if (!conn.exec(
            QStringLiteral("SELECT 1 FROM pg_publication WHERE pubname = %1").arg(conn.quoteLiteral(name)),
            &rows, error))
        return false;
    if (!rows.isEmpty())
        return true;
    if (conn.exec(QStringLiteral("CREATE PUBLICATION %1").arg(conn.quoteIdentifier(name)), nullptr, error))
        return true;
    if (error)
        *error = QStringLiteral("Cannot create publication \"%1\": %2 (the role needs CREATE on the "
                                "database: GRANT CREATE ON DATABASE … TO the role).")
                     .arg(name, *error);
    return false;
}

bool setPublicationTables(PgConnection& conn, const QString& publication, const QSet<QString>& tables,
                          bool dropOthers, QString* error) {
    QList<QStringList> rows;
    if (!conn.exec(QStringLiteral("SELECT format('%I.%I', schemaname, tablename) FROM pg_publication_tables "
                                  "WHERE pubname = %1")
                       .arg(conn.quoteLiteral(publication)),
                   &rows, error))
        return false;
    QSet<QString> present;
    for (const QStringList& row : rows)
        present.insert(row[0]);
    // format('%I') quotes only where needed; compare in the same form.
    QSet<QString> wanted;
    for (const QString& table : tables) {
        QString schema;
        QString name;
        splitName(table, &schema, &name);
        QList<QStringList> formatted;
        if (!conn.exec(QStringLiteral("SELECT format('%I.%I', %1::text, %2::text)")
                           .arg(conn.quoteLiteral(schema), conn.quoteLiteral(name)),
                       &formatted, error))
            return false;
        wanted.insert(formatted[0][0]);
    }
    const QString pub = conn.quoteIdentifier(publication);
    for (const QString& t : wanted)
        if (!present.contains(t) &&
            !conn.exec(QStringLiteral("ALTER PUBLICATION %1 ADD TABLE %2").arg(pub, t), nullptr, error))
            return false;
    for (const QString& t : present)
        if (dropOthers && !wanted.contains(t) &&
            !conn.exec(QStringLiteral("ALTER PUBLICATION %1 DROP TABLE %2").arg(pub, t), nullptr, error))
            return false;
    return true;
}

Slot slot(PgConnection& conn, const QString& name, QString* error) {
    Slot s;
    QList<QStringList> rows;
    if (!conn.exec(QStringLiteral("SELECT plugin, wal_status, confirmed_flush_lsn, "
                                  "pg_current_wal_lsn() - confirmed_flush_lsn, active "
                                  "FROM pg_replication_slots WHERE slot_name = %1")
                       .arg(conn.quoteLiteral(name)),
                   &rows, error) ||
        rows.isEmpty())
        return s;
    s.exists = true;
    s.plugin = rows[0][0];
    s.walStatus = rows[0][1];
    pg::parseLsn(rows[0][2], &s.confirmedLsn);
    s.lagBytes = rows[0][3].isNull() ? -1 : rows[0][3].toLongLong();
    s.active = rows[0][4] == QLatin1String("t");
    return s;
}

bool dropSlot(PgConnection& conn, const QString& name, QString* error) {
    return conn.exec(QStringLiteral("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                    "WHERE slot_name = %1")
                         .arg(conn.quoteLiteral(name)),
                     nullptr, error);
}

bool dropPublication(PgConnection& conn, const QString& name, QString* error) {
    return conn.exec(QStringLiteral("DROP PUBLICATION IF EXISTS %1").arg(conn.quoteIdentifier(name)), nullptr,
                     error);
}

} // namespace tw::PgCatalog

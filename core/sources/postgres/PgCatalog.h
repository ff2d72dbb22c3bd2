#pragma once

#include "sources/Source.h"

#include <QHash>
#include <QSet>
#include <QString>
#include <QStringList>

namespace tw {

class PgConnection;

// What Tidewatch reads from and writes to a PostgreSQL catalog on an ordinary SQL
// connection: the tables a user can watch, a table's key, the server's settings that
// decide whether logical replication can work, the publication and the slot.
// Namespaces are "<database>.<schema>.<table>": db is the database, coll
// "schema.table".
namespace PgCatalog {

struct Table {
    bool exists = false;
    quint32 oid = 0;
    char kind = 0; // pg_class.relkind: 'r' table, 'p' partitioned, 'v' view, 'm' matview, 'f' foreign
    bool isPartition = false; // a partition of a partitioned table
    char replicaIdentity = 0; // 'd' default, 'f' full, 'i' index, 'n' nothing
    QStringList keyColumns;   // the primary key (or replica identity index), in order
};

struct Slot {
    bool exists = false;
    QString plugin;
    QString walStatus; // "reserved", "extended", "unreserved", "lost"
    quint64 confirmedLsn = 0;
    qint64 lagBytes = -1; // current WAL position minus the confirmed one
    bool active = false;
};

// "schema.table" → {schema, table}; a name without a schema is in "public". Quoted
// parts ("My Schema"."Orders") keep their case and dots.
bool splitName(const QString& coll, QString* schema, QString* table);
// The table a watch of `ns` names: `ns.db` empty or `database`, `ns.coll` as splitName
// takes it. Otherwise false, with a message in *error that shows the form a watch
// takes; `described` names the server in it.
bool splitWatched(const Namespace& ns, const QString& database, const QString& described, QString* schema,
                  QString* table, QString* error);
QString qualifiedName(PgConnection& conn, const QString& schema, const QString& table);

// The user's tables, views and partitions of every schema but the system ones.
bool listTables(PgConnection& conn, const QString& database, QList<NamespaceInfo>* out, QString* error);
Table table(PgConnection& conn, const QString& schema, const QString& name, QString* error);

// Empty when logical replication can work with this role, else what to change.
QString replicationBlocker(PgConnection& conn, const QString& where);

bool ensurePublication(PgConnection& conn, const QString& name, QString* error);
// Adds the missing `tables` ("schema.table") to the publication; with `dropOthers`
// also drops every other table, so it lists exactly `tables`.
bool setPublicationTables(PgConnection& conn, const QString& publication, const QSet<QString>& tables,
                          bool dropOthers, QString* error);
Slot slot(PgConnection& conn, const QString& name, QString* error);
bool dropSlot(PgConnection& conn, const QString& name, QString* error);
bool dropPublication(PgConnection& conn, const QString& name, QString* error);

} // namespace PgCatalog

} // namespace tw

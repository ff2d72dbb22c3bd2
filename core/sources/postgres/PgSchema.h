#pragma once

#include "model/ChangeEvent.h"

#include <QHash>
#include <QJsonArray>
#include <QSet>
#include <QString>
#include <QStringList>

#include <functional>

namespace tw {

class PgConnection;

// The tables and indexes of some schemas of a PostgreSQL database as pg_class,
// pg_attribute and pg_index list them. Two snapshots compared give the schema events
// in the vocabulary SQLite and MongoDB use (see SqliteSchema): create, drop, rename
// (the same pg_class oid under a new name, ALTER TABLE … RENAME or SET SCHEMA), modify
// (operationDescription.columns and .previousColumns), createIndexes and dropIndexes
// (operationDescription.indexes as index specs). Tables are named "schema.table", as
// the source's namespaces are.
//
// pgoutput carries no DDL, so the source reads a snapshot when the stream shows a
// watched table's columns changed (a Relation message) and every two seconds, and keeps
// the last one in its checkpoint (stateKey()): a restart reports what changed while
// Tidewatch was closed.
class PgSchema {
public:
    struct Table {
        quint32 oid = 0;
        QString name;       // "schema.table"
        QJsonArray columns; // [{name, type, notNull, primaryKey, default?}] in column order
    };
    struct Index {
        quint32 oid = 0;
        QString name;      // the index's own name
        quint32 table = 0; // pg_class oid of its table
        QJsonArray key;    // [[column, 1 | -1], …] in key order; "<expression>" for one
        bool unique = false;
    };

    static QByteArray stateKey();

    bool isNull() const { return m_null; }
    // Reads the tables of `schemas` and their indexes other than those behind a primary
    // key or unique constraint (part of the table's definition, as SQLite's automatic
    // indexes are). False, with the server's message, when the catalog cannot be read.
    bool read(PgConnection& conn, const QSet<QString>& schemas, QString* error);
    QByteArray serialize() const;
    // A null schema when `bytes` is empty or unreadable.
    static PgSchema deserialize(const QByteArray& bytes);

    QSet<QString> schemas() const { return m_schemas; }
    const Table* table(const QString& name) const;
    // The column names of `name` in order, empty when it is not in the snapshot.
    QStringList columnNames(const QString& name) const;

    // What changed from `before` to `after` in the schemas both cover, as events of
    // `sourceId` in database `database`, for the tables `inScope` accepts (a rename:
    // either name). Order: index drops, table drops, renames, creates, modifies,
    // index creates.
    static ChangeEventList diff(const PgSchema& before, const PgSchema& after, const QString& sourceId,
                                const QString& database, qint64 wallTimeMs,
                                const std::function<bool(const QString&)>& inScope);

private:
    bool m_null = true;
    QSet<QString> m_schemas;
    QHash<quint32, Table> m_tables;
    QHash<quint32, Index> m_indexes;
};

} // namespace tw

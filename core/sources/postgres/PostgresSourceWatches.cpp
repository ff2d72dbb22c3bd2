// The watches of PostgresSource: which tables it streams (the publication lists exactly
// those), watch and unwatch in either mode, the namespaces it offers, and the schema
// snapshot of the watched tables. The connection, its lifecycle and the slot are in
// PostgresSource.cpp; the stream and the switch between modes in PostgresSourceStream.cpp.

#include "PostgresSource.h"

#include "PgFallback.h"

#include <QLoggingCategory>

Q_DECLARE_LOGGING_CATEGORY(lcPostgres)

namespace tw {

void PostgresSource::checkSchema(ChangeEventList* events, SourceCheckpoint* checkpoint) {
    QSet<QString> schemas;
    for (const WatchedTable& t : std::as_const(m_watched))
        schemas.insert(t.ns.coll.section(QLatin1Char('.'), 0, 0));
    const auto inScope = [this](const QString& coll) {
        return m_watched.contains(coll) || m_expectedWatches.contains(coll);
    };
    QString error;
    if (!m_schemaWatch.check(m_sql, schemas, id(), m_database, inScope, events, checkpoint, &error)) {
        qCWarning(lcPostgres) << "cannot read the catalog of" << m_described << error;
        return;
    }
    // A watched table dropped and made again is a new relation, no longer published.
    bool republish = false;
    for (WatchedTable& t : m_watched) {
        const PgSchema::Table* now = m_schemaWatch.snapshot().table(t.ns.coll);
        if (!now || now->oid == t.info.oid)
            continue;
        QString schema;
        QString name;
        PgCatalog::splitName(t.ns.coll, &schema, &name);
        t.info = PgCatalog::table(m_sql, schema, name, &error);
        republish = true;
    }
    if (republish && !syncPublication(false, &error))
        qCWarning(lcPostgres) << error;
}

bool PostgresSource::syncPublication(bool dropOthers, QString* error) {
    QSet<QString> tables;
    for (const WatchedTable& t : std::as_const(m_watched))
        tables.insert(t.ns.coll);
    // Only an unwatch takes a table out. At connect the watches have not been asked
    // for again yet: dropping the last run's tables then would lose their changes
    // until the watch comes.
    if (PgCatalog::setPublicationTables(m_sql, m_slotName, tables, dropOthers, error))
        return true;
    *error =
        QStringLiteral("Cannot change publication \"%1\" on %2: %3").arg(m_slotName, m_described, *error);
    return false;
}

bool PostgresSource::addWatch(const Namespace& ns, QString* error) {
    QString schema;
    QString name;
    if (!PgCatalog::splitWatched(ns, m_database, m_described, &schema, &name, error))
        return false;
    const PgCatalog::Table info = PgCatalog::table(m_sql, schema, name, error);
    if (!info.exists || info.kind == 'v' || info.kind == 'm') {
        QList<NamespaceInfo> tables;
        QString ignored;
        PgCatalog::listTables(m_sql, m_database, &tables, &ignored);
        QStringList names;
        for (const NamespaceInfo& t : std::as_const(tables))
            if (t.kind != QLatin1String("view"))
                names.append(t.ns.coll);
        *error = info.exists
                     ? QStringLiteral("\"%1.%2\" in %3 is a view; watch the tables behind it.")
                           .arg(schema, name, m_described)
                     : QStringLiteral("No table \"%1.%2\" in database %3 on %4 (tables: %5).")
                           .arg(schema, name, m_database, m_described,
                                names.isEmpty() ? QStringLiteral("none") : names.join(QLatin1String(", ")));
        return false;
    }
    WatchedTable t;
    t.ns = Namespace{m_database, schema + QLatin1Char('.') + name};
    t.qualified = PgCatalog::qualifiedName(m_sql, schema, name);
    t.info = info;
    m_watched.insert(t.ns.coll, t);
    if (!syncPublication(false, error)) {
        m_watched.remove(t.ns.coll);
        return false;
    }
    if (info.replicaIdentity != 'f')
        m_identityNote = QStringLiteral("; %1 has REPLICA IDENTITY %2, so updates carry the new row and "
                                        "list every column as updated (ALTER TABLE %3 REPLICA IDENTITY FULL "
                                        "gives exact updatedFields and before-images)")
                             .arg(t.ns.coll,
                                  info.replicaIdentity == 'n'   ? QStringLiteral("NOTHING")
                                  : info.replicaIdentity == 'i' ? QStringLiteral("USING INDEX")
                                                                : QStringLiteral("DEFAULT"),
                                  t.qualified);
    // A relation already described by the stream takes its key from the catalog now.
    for (auto it = m_relations.begin(); it != m_relations.end(); ++it)
        if (it->ns == t.ns)
            it->keysResolved = false;
    return true;
}

void PostgresSource::watch(const Namespace& ns, const WatchOptions& options) {
    if (m_fallback) {
        m_fallback->watch(ns, options);
        return;
    }
    const QString coll = ns.coll;
    for (const WatchedTable& t : std::as_const(m_watched))
        if (t.ns == ns || (ns.db.isEmpty() && t.ns.coll == coll))
            return; // re-sent with new readers: nothing to change, the engine filters
    if (!m_connected) {
        m_pendingWatches.insert(ns.toString(), ns);
        m_pendingOptions.insert(ns.toString(), options);
        return;
    }
    QString error;
    if (!addWatch(ns, &error)) {
        Q_EMIT watchFailed(id(), ns, error);
        return;
    }
    if (!m_expectedWatches.contains(ns.coll)) {
        ChangeBatch batch;
        batch.sourceId = id();
        batch.checkpoint.stateUpserts.insert(kWatchKeyPrefix + ns.coll.toUtf8(), QByteArray("1"));
        publishBatch(batch);
        m_expectedWatches.insert(ns.coll);
    }
    {
        // Schema changes are reported from watchReady on: the snapshot of a schema
        // watched for the first time is taken now; one the checkpoint had is compared.
        ChangeBatch batch;
        batch.sourceId = id();
        checkSchema(&batch.events, &batch.checkpoint);
        if (!batch.events.isEmpty() || !batch.checkpoint.isEmpty())
            publishBatch(batch);
    }
    maybeStartStreaming();
    if (!m_gapReason.isEmpty()) {
        // The restart that lost history came before this watch was asked for again.
        ChangeBatch batch;
        batch.sourceId = id();
        batch.events.append(ChangeEvent::makeGap(id(), m_watched.value(ns.coll).ns, m_gapReason));
        publishBatch(batch);
    }
    if (!m_identityNote.isEmpty())
        setStatus(SourceStatus::State::Watching,
                  QStringLiteral("slot and publication \"%1\"%2").arg(m_slotName, m_identityNote));
    Q_EMIT watchReady(id(), m_watched.value(Namespace{m_database, ns.coll}.coll).ns);
}

void PostgresSource::unwatch(const Namespace& ns) {
    if (m_fallback) {
        m_fallback->unwatch(ns);
        return;
    }
    m_pendingWatches.remove(ns.toString());
    if (m_expectedWatches.remove(ns.coll)) {
        ChangeBatch batch;
        batch.sourceId = id();
        batch.checkpoint.stateRemovals.append(kWatchKeyPrefix + ns.coll.toUtf8());
        publishBatch(batch);
    }
    if (!m_watched.remove(ns.coll))
        return;
    QString error;
    if (m_connected && !syncPublication(true, &error))
        qCWarning(lcPostgres) << error;
}

void PostgresSource::listNamespaces(const QString& db) {
    QList<NamespaceInfo> result;
    QString error;
    PgConnection conn;
    if (!conn.open(m_conninfo, false, &error)) {
        Q_EMIT namespacesListed(id(), db, result,
                                QStringLiteral("Cannot connect to %1: %2").arg(m_described, error));
        return;
    }
    if (db.isEmpty()) {
        result.append({Namespace{conn.database(), {}}, QStringLiteral("database")});
    } else {
        PgCatalog::listTables(conn, conn.database(), &result, &error);
        if (db != conn.database()) {
            // "database.schema": the tables of one schema.
            const QString prefix = db.section(QLatin1Char('.'), 1) + QLatin1Char('.');
            result.erase(
                std::remove_if(result.begin(), result.end(),
                               [&](const NamespaceInfo& i) { return !i.ns.coll.startsWith(prefix); }),
                result.end());
        }
    }
    Q_EMIT namespacesListed(id(), db, result, error);
}

} // namespace tw

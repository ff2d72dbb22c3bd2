#include "PgSchemaWatch.h"

#include <QDateTime>

namespace tw {

void PgSchemaWatch::restore(const QHash<QByteArray, QByteArray>& state) {
    m_serialized = state.value(PgSchema::stateKey());
    m_schema = PgSchema::deserialize(m_serialized);
    m_sinceCheck.invalidate();
}

bool PgSchemaWatch::columnsDiffer(const QString& table, const QStringList& columns) const {
    return m_schema.table(table) && m_schema.columnNames(table) != columns;
}

bool PgSchemaWatch::check(PgConnection& conn, const QSet<QString>& schemas, const QString& sourceId,
                          const QString& database, const std::function<bool(const QString&)>& inScope,
                          ChangeEventList* events, SourceCheckpoint* checkpoint, QString* error) {
    m_sinceCheck.start();
    PgSchema now;
    if (!now.read(conn, schemas, error))
        return false;
    if (!m_schema.isNull())
        events->append(
            PgSchema::diff(m_schema, now, sourceId, database, QDateTime::currentMSecsSinceEpoch(), inScope));
    const QByteArray serialized = now.serialize();
    if (serialized != m_serialized) {
        checkpoint->stateUpserts.insert(PgSchema::stateKey(), serialized);
        m_serialized = serialized;
    }
    m_schema = std::move(now);
    return true;
}

} // namespace tw

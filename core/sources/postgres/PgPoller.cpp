#include "PgPoller.h"

#include "PgConnection.h"
#include "PgRows.h"

#include <QDateTime>
#include <QSet>

#include <libpq-fe.h>

namespace tw {

PgPoller::PgPoller(const QString& sourceId, const Namespace& ns, const QString& qualified,
                   const QStringList& keyColumns, const QString& pollColumn)
    : m_sourceId(sourceId)
    , m_ns(ns)
    , m_qualified(qualified)
    , m_keyColumns(keyColumns)
    , m_pollColumn(pollColumn) {
    m_markerKey = QByteArray(kStatePrefix) + ns.coll.toUtf8();
    m_prefix = m_markerKey + '\x1f';
    m_highKey = m_markerKey + '\x1e';
}

void PgPoller::restore(const QHash<QByteArray, QByteArray>& state) {
    m_rows.clear();
    m_hasBaseline = state.contains(m_markerKey);
    if (!m_hasBaseline)
        return; // rows without the marker are from a first poll never committed: ignored
    for (auto it = state.cbegin(); it != state.cend(); ++it)
        if (it.key().startsWith(m_prefix))
            m_rows.insert(it.key().mid(m_prefix.size()), it.value());
    m_high = QString::fromUtf8(state.value(m_highKey));
}

ChangeEvent PgPoller::makeEvent(Operation op, const Bson& key, qint64 nowMs) const {
    ChangeEvent e;
    e.setSourceId(m_sourceId);
    e.setNs(m_ns);
    e.setOperation(op);
    e.setDocumentKey(key);
    e.setWallTimeMs(nowMs);
    return e;
}

bool PgPoller::poll(PgConnection& conn, ChangeBatch& out, QString* error) {
    QString sql = QStringLiteral("SELECT * FROM %1").arg(m_qualified);
    if (isIncremental()) {
        // Ascending, so the last row holds the new high-water mark; >=, not >, because
        // several rows may share the newest value (one transaction's now()): those
        // already seen are skipped by their hash.
        const QString column = conn.quoteIdentifier(m_pollColumn);
        if (m_hasBaseline && !m_high.isEmpty())
            sql += QStringLiteral(" WHERE %1 >= %2").arg(column, conn.quoteLiteral(m_high));
        sql += QStringLiteral(" ORDER BY %1").arg(column);
    }
    PGresult* result = PQexec(conn.raw(), sql.toUtf8().constData());
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        *error = QStringLiteral("Cannot poll %1: %2")
                     .arg(m_ns.coll, QString::fromUtf8(PQresultErrorMessage(result)).trimmed());
        PQclear(result);
        return false;
    }
    const int columns = PQnfields(result);
    const int rows = PQntuples(result);
    // No primary key: a row is named by all its columns.
    QList<int> keys = PgRows::columnIndexes(result, m_keyColumns, 0, columns);
    if (keys.isEmpty())
        for (int c = 0; c < columns; ++c)
            keys.append(c);
    const QList<int> pollIndexes =
        isIncremental() ? PgRows::columnIndexes(result, {m_pollColumn}, 0, columns) : QList<int>();
    const int pollIndex = pollIndexes.isEmpty() ? -1 : pollIndexes.first();
    const QString highBefore = m_high;
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    QSet<QByteArray> seen;
    seen.reserve(rows);
    // Incremental: each row read with its poll value, to keep only those at the mark.
    QList<std::pair<QByteArray, QString>> readAt;
    for (int r = 0; r < rows; ++r) {
        const Bson key = PgRows::keyDocument(result, r, keys);
        const QByteArray table = PgRows::hashTable(result, r, 0, columns);
        const bool hasValue = pollIndex >= 0 && !PQgetisnull(result, r, pollIndex);
        if (hasValue)
            m_high = QString::fromUtf8(PQgetvalue(result, r, pollIndex));
        if (!isIncremental())
            seen.insert(key.raw());
        else
            readAt.append({key.raw(), hasValue ? m_high : QString()});
        const auto found = m_rows.find(key.raw());
        if (found != m_rows.end() && *found == table)
            continue;
        if (m_hasBaseline) {
            if (found == m_rows.end()) {
                ChangeEvent e = makeEvent(Operation::Insert, key, now);
                e.setFullDocument(PgRows::document(result, r, 0, columns));
                out.events.append(e);
            } else {
                QList<QByteArray> changed;
                QList<QByteArray> removed;
                PgRows::diff(*found, table, &changed, &removed);
                QStringList changedNames;
                for (const QByteArray& name : std::as_const(changed))
                    changedNames.append(QString::fromUtf8(name));
                const QList<int> changedColumns = PgRows::columnIndexes(result, changedNames, 0, columns);
                ChangeEvent e = makeEvent(Operation::Update, key, now);
                e.setUpdateDescription(ChangeEvent::makeUpdateDescription(
                    PgRows::keyDocument(result, r, changedColumns), removed));
                e.setFullDocument(PgRows::document(result, r, 0, columns));
                out.events.append(e);
            }
        }
        m_rows.insert(key.raw(), table);
        out.checkpoint.stateUpserts.insert(stateKey(key.raw()), table);
    }
    PQclear(result);
    if (isIncremental() && m_rows.size() > m_maxRows)
        keepOnlyTheMark(readAt, out.checkpoint);
    if (!isIncremental()) {
        for (auto it = m_rows.begin(); it != m_rows.end();) {
            if (seen.contains(it.key())) {
                ++it;
                continue;
            }
            if (m_hasBaseline)
                out.events.append(makeEvent(Operation::Delete, Bson::fromRaw(it.key()), now));
            out.checkpoint.stateRemovals.append(stateKey(it.key()));
            it = m_rows.erase(it);
        }
    } else if (m_high != highBefore) {
        out.checkpoint.stateUpserts.insert(m_highKey, m_high.toUtf8());
    }
    if (!m_hasBaseline) {
        m_hasBaseline = true;
        out.checkpoint.stateUpserts.insert(m_markerKey, QByteArrayLiteral("1"));
    }
    return true;
}

void PgPoller::keepOnlyTheMark(const QList<std::pair<QByteArray, QString>>& readAt,
                               SourceCheckpoint& checkpoint) {
    // Rows at the mark stay, or a row sharing the newest value would be reported again;
    // those below it are forgotten (the removals follow this poll's upserts, and the
    // journal applies removals after upserts). While no row has a value yet there is
    // no mark, and every row is read, and kept, each time.
    QHash<QByteArray, QByteArray> kept;
    for (const auto& [key, value] : readAt) {
        if (!m_high.isEmpty() && value != m_high)
            continue;
        const auto found = m_rows.constFind(key);
        if (found == m_rows.constEnd())
            continue;
        kept.insert(key, *found);
    }
    for (auto it = m_rows.cbegin(); it != m_rows.cend(); ++it)
        if (!kept.contains(it.key())) // possibly stored by an earlier poll
            checkpoint.stateRemovals.append(stateKey(it.key()));
    m_rows = std::move(kept);
}

void PgPoller::clear(SourceCheckpoint& out) {
    m_rows.clear();
    m_hasBaseline = false;
    m_high.clear();
    out.stateRemovedPrefixes.append(m_prefix);
    out.stateRemovals.append(m_markerKey);
    out.stateRemovals.append(m_highKey);
}

} // namespace tw

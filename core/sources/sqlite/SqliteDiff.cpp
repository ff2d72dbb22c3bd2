#include "SqliteDiff.h"

#include "SqlitePending.h"
#include "SqliteTable.h"
#include "SqliteValues.h"

#include <QDateTime>
#include <QtEndian>

#include <algorithm>
#include <cstring>

#include <sqlite3.h>

namespace tw {

namespace {

// 64-bit hash of one column value, stable across runs and Qt versions because it is
// persisted in the journal. Murmur-style: 8 bytes a step, then a final avalanche.
quint64 hashBytes(const void* data, size_t len, quint64 seed) {
    constexpr quint64 m = 0xc6a4a7935bd1e995ULL;
    quint64 h = seed ^ (len * m);
    const auto* p = static_cast<const unsigned char*>(data);
    while (len >= 8) {
        quint64 k;
        memcpy(&k, p, 8);
        k *= m;
        k ^= k >> 47;
        k *= m;
        h ^= k;
        h *= m;
        p += 8;
        len -= 8;
    }
    if (len) {
        quint64 k = 0;
        memcpy(&k, p, len);
        h ^= k;
        h *= m;
    }
    h ^= h >> 47;
    h *= m;
    h ^= h >> 47;
    return h;
}

quint64 hashColumn(sqlite3_stmt* s, int column) {
    switch (sqlite3_column_type(s, column)) {
    case SQLITE_INTEGER: {
        const qint64 v = sqlite3_column_int64(s, column);
        return hashBytes(&v, sizeof v, 1);
    }
    case SQLITE_FLOAT: {
        const double v = sqlite3_column_double(s, column);
        return hashBytes(&v, sizeof v, 2);
    }
    case SQLITE_TEXT: {
        const unsigned char* t = sqlite3_column_text(s, column);
        return hashBytes(t, size_t(sqlite3_column_bytes(s, column)), 3);
    }
    case SQLITE_BLOB: {
        const void* b = sqlite3_column_blob(s, column);
        return hashBytes(b, size_t(sqlite3_column_bytes(s, column)), 4);
    }
    default:
        return 5;
    }
}

void appendColumn(bson_t* doc, const char* key, sqlite3_stmt* s, int column) {
    switch (sqlite3_column_type(s, column)) {
    case SQLITE_INTEGER: {
        const qint64 v = sqlite3_column_int64(s, column);
        if (v >= INT32_MIN && v <= INT32_MAX)
            bson_append_int32(doc, key, -1, int32_t(v));
        else
            bson_append_int64(doc, key, -1, v);
        break;
    }
    case SQLITE_FLOAT:
        bson_append_double(doc, key, -1, sqlite3_column_double(s, column));
        break;
    case SQLITE_TEXT:
        bson_append_utf8(doc, key, -1, reinterpret_cast<const char*>(sqlite3_column_text(s, column)),
                         sqlite3_column_bytes(s, column));
        break;
    case SQLITE_BLOB:
        bson_append_binary(doc, key, -1, BSON_SUBTYPE_BINARY,
                           static_cast<const uint8_t*>(sqlite3_column_blob(s, column)),
                           uint32_t(sqlite3_column_bytes(s, column)));
        break;
    default:
        bson_append_null(doc, key, -1);
    }
}

} // namespace

QByteArray SqliteDiff::stateKey(const QString& table, qint64 rowid) {
    QByteArray key = table.toUtf8();
    key.append('\x1f');
    char be[8];
    qToBigEndian(quint64(rowid) ^ (quint64(1) << 63), be); // sign flip keeps byte order = numeric order
    key.append(be, 8);
    return key;
}

QByteArray SqliteDiff::schemaKey(const QString& table) {
    return table.toUtf8() + '\x1e';
}

void SqliteDiff::resume(SqliteTable& table, const SourceRestore& restore, SqlitePending& out) {
    const QString& name = table.name;
    const QByteArray sk = schemaKey(name);
    const auto restoredSchema = restore.state.constFind(sk);
    if (restoredSchema != restore.state.constEnd() && QString::fromUtf8(*restoredSchema) == table.sql) {
        // Resume: the baseline is what the journal last committed; the first diff
        // reports what changed while Tidewatch was not watching.
        const QByteArray prefix = name.toUtf8() + '\x1f';
        const int columns = int(table.columns.size());
        std::vector<std::pair<qint64, const QByteArray*>> restored;
        for (auto it = restore.state.cbegin(); it != restore.state.cend(); ++it) {
            if (!it.key().startsWith(prefix) || it.key().size() != prefix.size() + 8)
                continue;
            const quint64 raw = qFromBigEndian<quint64>(it.key().constData() + prefix.size());
            restored.emplace_back(qint64(raw ^ (quint64(1) << 63)), &it.value());
        }
        std::sort(restored.begin(), restored.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        table.base.columns = columns;
        table.base.rowids.reserve(restored.size());
        table.base.hashes.assign(restored.size() * size_t(columns),
                                 0); // a wrong-sized value reads as changed
        for (size_t i = 0; i < restored.size(); ++i) {
            table.base.rowids.push_back(restored[i].first);
            if (restored[i].second->size() == columns * 8)
                memcpy(&table.base.hashes[i * size_t(columns)], restored[i].second->constData(),
                       size_t(columns) * 8);
        }
        table.snapshotted = true;
    } else if (restoredSchema != restore.state.constEnd()) {
        out.batch.events.append(ChangeEvent::makeGap(
            out.sourceId(), Namespace{QStringLiteral("main"), name},
            QStringLiteral("table %1 changed shape while Tidewatch was not watching; re-read it").arg(name)));
        out.batch.checkpoint.stateRemovedPrefixes.append(name.toUtf8() + '\x1f');
    }
    out.batch.checkpoint.stateUpserts.insert(sk, table.sql.toUtf8());
}

bool SqliteDiff::diffTable(sqlite3* db, SqliteTable& table, SqlitePending& out, QString* error) {
    const Namespace ns{QStringLiteral("main"), table.name};
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    bool schemaUnreadable = false;
    const QString sql = sqlite::tableSql(db, table.name, nullptr, &schemaUnreadable);
    if (schemaUnreadable) {
        // Not a drop: nothing is known, so nothing changes; the caller scans again.
        if (error)
            *error = QStringLiteral("cannot read the schema of table %1: %2")
                         .arg(table.name, QString::fromUtf8(sqlite3_errmsg(db)));
        return false;
    }
    const QByteArray prefix = table.name.toUtf8() + '\x1f';

    if (sql.isEmpty() || sql != table.sql) {
        // The schema comparison (SqliteSchema) has said what happened: drop, rename or
        // modify. Here only the row state follows.
        if (table.present && table.snapshotted)
            out.batch.checkpoint.stateRemovedPrefixes.append(prefix);
        const bool wasAltered = !sql.isEmpty() && table.present;
        table.base.clear();
        table.present = !sql.isEmpty();
        table.sql = sql;
        table.columns = table.present ? sqlite::tableColumns(db, table.name) : QStringList();
        table.hasIdColumn = table.columns.contains(QLatin1String("_id"));
        out.batch.checkpoint.stateUpserts.insert(schemaKey(table.name), sql.toUtf8());
        // After an alter the existing rows are the new baseline, not inserts. After a
        // drop and re-create, every row of the new table is an insert.
        table.snapshotted = !wasAltered;
        if (!table.present)
            return true;
    }

    const bool emitEvents = table.snapshotted;
    // ORDER BY rowid costs nothing on a rowid table (it is the b-tree's own order) and
    // makes the merge against the baseline possible.
    const QString select =
        QStringLiteral("SELECT rowid, * FROM %1 ORDER BY rowid").arg(sqlite::quoteIdentifier(table.name));
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, select.toUtf8().constData(), -1, &s, nullptr) != SQLITE_OK) {
        // WITHOUT ROWID tables have no rowid to key rows by: say so rather than guess.
        if (error)
            *error = QStringLiteral("cannot read table %1: %2")
                         .arg(table.name, QString::fromUtf8(sqlite3_errmsg(db)));
        sqlite3_finalize(s);
        return false;
    }
    const int columnCount = sqlite3_column_count(s) - 1;
    QList<QByteArray> names;
    for (int c = 0; c < columnCount; ++c)
        names.append(QByteArray(sqlite3_column_name(s, c + 1)));
    const int idColumn = table.hasIdColumn ? int(names.indexOf("_id")) + 1 : -1;

    auto rowDocument = [&](qint64 rowid) {
        BsonBuilder b;
        if (idColumn < 0)
            sqlite::appendRowid(b.get(), rowid);
        for (int c = 0; c < columnCount; ++c)
            appendColumn(b.get(), names[c].constData(), s, c + 1);
        return b.take();
    };
    auto documentKey = [&](qint64 rowid) {
        if (idColumn < 0)
            return sqlite::keyDocument(rowid);
        BsonBuilder b;
        appendColumn(b.get(), "_id", s, idColumn);
        return b.take();
    };
    auto event = [&](Operation op, const Bson& key) {
        ChangeEvent e;
        e.setSourceId(out.sourceId());
        e.setNs(ns);
        e.setOperation(op);
        e.setDocumentKey(key);
        e.setWallTimeMs(now);
        return e;
    };

    const SqliteTable::Baseline& old = table.base;
    const bool comparable = old.columns == columnCount;
    SqliteTable::Baseline next;
    next.columns = columnCount;
    next.rowids.reserve(old.rowids.size() + 64);
    next.hashes.reserve((old.rowids.size() + 64) * size_t(columnCount));
    std::vector<quint64> hashes(size_t(std::max(columnCount, 1)));
    const size_t rowBytes = size_t(columnCount) * 8;
    auto hashBytes = [&] {
        return QByteArray(reinterpret_cast<const char*>(hashes.data()), qsizetype(rowBytes));
    };
    auto removed = [&](qint64 rowid) {
        out.batch.checkpoint.stateRemovals.append(stateKey(table.name, rowid));
        if (emitEvents) {
            out.batch.events.append(event(Operation::Delete, sqlite::keyDocument(rowid)));
            out.flushIfDue();
        }
    };

    size_t j = 0;
    quint32 unchangedRows = 0;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const qint64 rowid = sqlite3_column_int64(s, 0);
        for (int c = 0; c < columnCount; ++c)
            hashes[size_t(c)] = hashColumn(s, c + 1);
        while (j < old.rowids.size() && old.rowids[j] < rowid)
            removed(old.rowids[j++]);
        const quint64* before = nullptr;
        if (j < old.rowids.size() && old.rowids[j] == rowid)
            before = old.hashes.data() + j++ * size_t(old.columns);
        next.rowids.push_back(rowid);
        next.hashes.insert(next.hashes.end(), hashes.begin(), hashes.begin() + columnCount);

        if (!before) {
            out.batch.checkpoint.stateUpserts.insert(stateKey(table.name, rowid), hashBytes());
            if (emitEvents) {
                ChangeEvent e = event(Operation::Insert, documentKey(rowid));
                e.setFullDocument(rowDocument(rowid));
                out.batch.events.append(e);
            }
        } else if (!comparable || memcmp(before, hashes.data(), rowBytes) != 0) {
            out.batch.checkpoint.stateUpserts.insert(stateKey(table.name, rowid), hashBytes());
            if (emitEvents) {
                BsonBuilder updated;
                for (int c = 0; c < columnCount; ++c)
                    if (!comparable || before[c] != hashes[size_t(c)])
                        appendColumn(updated.get(), names[c].constData(), s, c + 1);
                ChangeEvent e = event(Operation::Update, documentKey(rowid));
                e.setUpdateDescription(ChangeEvent::makeUpdateDescription(updated.take(), {}));
                e.setFullDocument(rowDocument(rowid));
                out.batch.events.append(e);
            }
        } else {
            // An unchanged row. Now and then, send what an earlier row found.
            if ((++unchangedRows & 1023) == 0)
                out.flushIfDue();
            continue;
        }
        out.flushIfDue();
    }
    if (rc != SQLITE_DONE) {
        // The read stopped short (busy, I/O error): the rows not reached are not gone.
        // Keep what was read (its changes may already be sent) and the old state of the
        // rest, so that the next scan reports each change once.
        if (error)
            *error = QStringLiteral("reading table %1 stopped short: %2")
                         .arg(table.name, QString::fromUtf8(sqlite3_errmsg(db)));
        sqlite3_finalize(s);
        if (comparable) {
            for (; j < old.rowids.size(); ++j) {
                next.rowids.push_back(old.rowids[j]);
                const quint64* kept = old.hashes.data() + j * size_t(old.columns);
                next.hashes.insert(next.hashes.end(), kept, kept + old.columns);
            }
            table.base = std::move(next);
        }
        return false;
    }
    sqlite3_finalize(s);
    while (j < old.rowids.size())
        removed(old.rowids[j++]);
    table.base = std::move(next);
    table.snapshotted = true;
    return true;
}

} // namespace tw

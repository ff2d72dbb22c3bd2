#include "JournalReader.h"

#include "JournalLog.h"
#include "JournalSqlite.h"

#include <sqlite3.h>

namespace tw {

using namespace journaldb;

JournalReader::JournalReader() = default;

JournalReader::~JournalReader() {
    close();
}

void JournalReader::close() {
    sqlite3_finalize(m_select);
    sqlite3_finalize(m_meta);
    sqlite3_finalize(m_dictionary);
    m_select = m_meta = m_dictionary = nullptr;
    if (m_db)
        sqlite3_close(m_db);
    m_db = nullptr;
}

bool JournalReader::open(const QString& path, QString* error) {
    if (openConnection(path, SQLITE_OPEN_READONLY, &m_db) != SQLITE_OK) {
        if (error)
            *error = QStringLiteral("Cannot read the journal %1: %2").arg(path, sqliteMessage(m_db));
        sqlite3_close(m_db);
        m_db = nullptr;
        return false;
    }
    sqlite3_prepare_v3(m_db, "SELECT seq, doc, source FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2", -1,
                       SQLITE_PREPARE_PERSISTENT, &m_select, nullptr);
    // Absent from a journal written by an older Tidewatch (which has no frames either).
    sqlite3_prepare_v3(m_db, "SELECT data FROM dictionaries WHERE id = ?1", -1, SQLITE_PREPARE_PERSISTENT,
                       &m_dictionary, nullptr);
    m_decoder = std::make_unique<BodyDecoder>([this](uint32_t id) {
        QByteArray data;
        if (!m_dictionary)
            return data;
        sqlite3_bind_int64(m_dictionary, 1, id);
        if (sqlite3_step(m_dictionary) == SQLITE_ROW)
            data = columnBlob(m_dictionary, 0);
        sqlite3_reset(m_dictionary);
        return data;
    });
    sqlite3_prepare_v3(m_db,
                       "SELECT (SELECT value FROM meta WHERE key='last_seq'), "
                       "(SELECT value FROM meta WHERE key='pruned_through'), (SELECT min(seq) FROM events)",
                       -1, SQLITE_PREPARE_PERSISTENT, &m_meta, nullptr);
    if (!m_select || !m_meta) {
        if (error)
            *error = QStringLiteral("Cannot read the journal %1: %2").arg(path, sqliteMessage(m_db));
        return false;
    }
    return true;
}

qint64 JournalReader::lastSeq() {
    if (!m_meta)
        return 0;
    qint64 last = 0;
    if (sqlite3_step(m_meta) == SQLITE_ROW)
        last = sqlite3_column_int64(m_meta, 0);
    sqlite3_reset(m_meta);
    return last;
}

QByteArray JournalReader::checkpointToken(const QString& sourceId) {
    QByteArray token;
    sqlite3_stmt* s = nullptr;
    if (!m_db || sqlite3_prepare_v2(m_db, "SELECT token FROM checkpoints WHERE source = ?1", -1, &s,
                                    nullptr) != SQLITE_OK)
        return token;
    bindText(s, 1, sourceId);
    if (sqlite3_step(s) == SQLITE_ROW)
        token = columnBlob(s, 0);
    sqlite3_finalize(s);
    return token;
}

QList<JournalReader::Narrowing> JournalReader::narrowings(QString* error, qint64* head) {
    QList<Narrowing> list;
    if (!m_db) {
        if (error)
            *error = QStringLiteral("journal not open");
        return list;
    }
    // One read transaction: a commit between the two reads would end a period at a head
    // that does not know of it.
    sqlite3_exec(m_db, "BEGIN", nullptr, nullptr, nullptr);
    if (head)
        *head = lastSeq();
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(m_db, "SELECT after_seq, source, reading FROM narrowings ORDER BY rowid", -1, &s,
                           nullptr) != SQLITE_OK) {
        if (error)
            *error = sqliteMessage(m_db);
        sqlite3_exec(m_db, "COMMIT", nullptr, nullptr, nullptr);
        return list;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        list.append(Narrowing{sqlite3_column_int64(s, 0),
                              QString::fromUtf8(reinterpret_cast<const char*>(sqlite3_column_text(s, 1))),
                              columnBlob(s, 2)});
    if (rc != SQLITE_DONE && error)
        *error = sqliteMessage(m_db);
    sqlite3_finalize(s);
    sqlite3_exec(m_db, "COMMIT", nullptr, nullptr, nullptr);
    return list;
}

JournalReader::Bounds JournalReader::bounds() {
    Bounds b;
    if (!m_meta)
        return b;
    if (sqlite3_step(m_meta) == SQLITE_ROW) {
        b.lastSeq = sqlite3_column_int64(m_meta, 0);
        b.prunedThrough = sqlite3_column_int64(m_meta, 1);
    }
    sqlite3_reset(m_meta);
    return b;
}

JournalReader::Result JournalReader::readAfter(qint64 after, int limit,
                                               const std::function<bool(const ChangeEvent&)>& match,
                                               int scanLimit) {
    Result r;
    r.scannedThrough = after;
    if (!m_db || !m_select) {
        r.error = QStringLiteral("journal not open");
        return r;
    }
    // One read transaction so head, prune mark and rows are a consistent snapshot.
    sqlite3_exec(m_db, "BEGIN", nullptr, nullptr, nullptr);
    qint64 prunedThrough = 0, firstStored = 0;
    if (sqlite3_step(m_meta) == SQLITE_ROW) {
        r.lastSeq = sqlite3_column_int64(m_meta, 0);
        prunedThrough = sqlite3_column_int64(m_meta, 1);
        firstStored = sqlite3_column_int64(m_meta, 2);
    }
    sqlite3_reset(m_meta);
    if (after < prunedThrough) {
        r.gap = true;
        r.firstAvailable = firstStored ? firstStored : prunedThrough + 1;
        after = prunedThrough;
        r.scannedThrough = after;
    }
    sqlite3_bind_int64(m_select, 1, after);
    sqlite3_bind_int64(m_select, 2, scanLimit);
    int scanned = 0;
    int rc;
    while ((rc = sqlite3_step(m_select)) == SQLITE_ROW) {
        ++scanned;
        const qint64 seq = sqlite3_column_int64(m_select, 0);
        QString damage;
        const QByteArray bson = m_decoder->decode(columnBlob(m_select, 1), &damage);
        r.scannedThrough = seq;
        if (bson.isEmpty()) {
            // Said, not skipped: whoever reads this range learns that an event is lost.
            const QString source =
                QString::fromUtf8(reinterpret_cast<const char*>(sqlite3_column_text(m_select, 2)));
            ChangeEvent gap = ChangeEvent::makeGap(
                source, {},
                QStringLiteral("event %1 in the journal cannot be read: %2").arg(seq).arg(damage));
            gap.finalize(seq);
            qCWarning(lcJournal).noquote() << gap.reason();
            r.events.append(gap);
            if (r.events.size() >= limit)
                break;
            continue;
        }
        ChangeEvent event = ChangeEvent::fromDocument(Bson::fromRaw(bson), seq);
        if (!match || match(event)) {
            r.events.append(event);
            if (r.events.size() >= limit)
                break;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r.error = sqliteMessage(m_db);
    sqlite3_reset(m_select);
    sqlite3_exec(m_db, "COMMIT", nullptr, nullptr, nullptr);
    r.hasMore = r.scannedThrough < r.lastSeq && (r.events.size() >= limit || scanned >= scanLimit);
    return r;
}

} // namespace tw

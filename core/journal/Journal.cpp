// Journal: the writer (events with their checkpoints, source state, subscriptions).
#include "Journal.h"

#include "JournalLog.h"
#include "JournalSqlite.h"
#include "WalFolder.h"

#include <QDateTime>

#include <limits>

#include <sqlite3.h>

Q_LOGGING_CATEGORY(lcJournal, "tidewatch.journal")

namespace tw {

using namespace journaldb;

Journal::Journal() = default;

Journal::~Journal() {
    close();
}

bool Journal::fail(Error code, const QString& message, QString* error) {
    m_lastError = code;
    if (error)
        *error = message;
    qCWarning(lcJournal).noquote() << message;
    return false;
}

bool Journal::exec(const char* sql, QString* error) {
    char* message = nullptr;
    const int rc = sqlite3_exec(m_db, sql, nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
        if (error)
            *error = QString::fromUtf8(message ? message : sqlite3_errstr(rc));
        sqlite3_free(message);
        m_lastError = isCorruption(rc) ? Error::Corrupt : Error::Io;
        return false;
    }
    return true;
}

sqlite3_stmt* Journal::prepare(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(m_db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
        qCWarning(lcJournal) << "cannot prepare" << sql << sqliteMessage(m_db);
        return nullptr;
    }
    return stmt;
}

bool Journal::finishTraining() {
    if (!m_trainer.isTraining())
        return false;
    m_trainer.pendingDictionary(true);
    QList<ChangeBatch> none;
    return append(none) && m_codec->dictionaryId() != 0;
}

int Journal::onWalCommit(void* journal, sqlite3* db, const char* name, int frames) {
    WalFolder::afterCommit(static_cast<Journal*>(journal)->m_folder.get(), db, name, frames);
    return SQLITE_OK;
}

bool Journal::append(QList<ChangeBatch>& batches, QString* error) {
    if (!m_db)
        return fail(Error::Io, QStringLiteral("The journal is not open."), error);
    if (!exec("BEGIN IMMEDIATE", error))
        return false;

    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    const QByteArray dictionary = m_trainer.pendingDictionary(false);
    uint32_t dictionaryId = dictionary.isEmpty() ? 0 : BodyCodec::idOf(dictionary);
    qint64 seq = m_lastSeq;
    auto rollback = [&](const QString& message, Error code = Error::Io) {
        // Read before ROLLBACK, which sets its own code.
        const bool full = (sqlite3_errcode(m_db) & 0xff) == SQLITE_FULL;
        exec("ROLLBACK");
        for (ChangeBatch& batch : batches)
            for (ChangeEvent& event : batch.events)
                if (!batch.keepSeqs && event.seq() > m_lastSeq)
                    event.finalize(0);
        if (full) {
            // Not logged: the writer retries every second, and the engine reports the
            // state once (Engine::journalFailed, /v1/health).
            m_lastError = Error::DiskFull;
            if (error)
                *error = QStringLiteral("disk full at %1: free space there; Tidewatch keeps what it was "
                                        "given and resumes by itself")
                             .arg(m_path);
            return false;
        }
        return fail(code, QStringLiteral("Journal write failed: %1").arg(message), error);
    };
    if (dictionaryId != 0) {
        // Commits with this transaction, before any frame made with it can exist. If it
        // cannot be stored, it is not used (and is tried again with the next append).
        sqlite3_stmt* s =
            prepare("INSERT OR REPLACE INTO dictionaries(id, data, created_ms) VALUES(?1, ?2, ?3)");
        bool stored = false;
        if (s) {
            sqlite3_bind_int64(s, 1, dictionaryId);
            bindBlob(s, 2, dictionary);
            sqlite3_bind_int64(s, 3, now);
            stored = sqlite3_step(s) == SQLITE_DONE;
            sqlite3_finalize(s);
        }
        if (!stored) {
            const QString message = sqliteMessage(m_db);
            // Some errors (a full disk) roll the whole transaction back.
            if (sqlite3_get_autocommit(m_db))
                return rollback(message);
            qCWarning(lcJournal).noquote() << "cannot store the compression dictionary:" << message;
            dictionaryId = 0;
        }
    }

    QHash<QByteArray, QByteArray> lastReading; // written now, known once committed
    for (ChangeBatch& batch : batches) {
        const QByteArray source = batch.sourceId.toUtf8();
        qsizetype narrowing = 0;
        // A narrowing at event i applies after the seq before it: the last one written.
        auto writeNarrowings = [&](qsizetype beforeEvent) {
            for (; narrowing < batch.narrowings.size() && batch.narrowings[narrowing].atEvent <= beforeEvent;
                 ++narrowing) {
                // The same as the source's last row: its period simply goes on.
                const QByteArray& reading = batch.narrowings[narrowing].reading;
                const auto written = lastReading.constFind(source);
                const auto committed = m_lastReading.constFind(source);
                if (written != lastReading.constEnd()
                        ? *written == reading
                        : committed != m_lastReading.constEnd() && *committed == reading)
                    continue;
                lastReading.insert(source, reading);
                Statement st(m_insertNarrowing);
                sqlite3_bind_int64(st.s, 1, seq);
                sqlite3_bind_text(st.s, 2, source.constData(), int(source.size()), SQLITE_STATIC);
                bindBlob(st.s, 3, batch.narrowings[narrowing].reading);
                if (sqlite3_step(st.s) != SQLITE_DONE)
                    return false;
            }
            return true;
        };
        for (qsizetype i = 0; i < batch.events.size(); ++i) {
            ChangeEvent& event = batch.events[i];
            if (!writeNarrowings(i))
                return rollback(sqliteMessage(m_db));
            if (!batch.keepSeqs) {
                event.finalize(++seq);
            } else if (event.seq() > seq) {
                seq = event.seq();
            } else {
                return rollback(QStringLiteral("source %1 gave seq %2, which is not past seq %3; a source "
                                               "that keeps its own seqs must send them increasing")
                                    .arg(batch.sourceId)
                                    .arg(event.seq())
                                    .arg(seq),
                                Error::SeqNotIncreasing);
            }
            QByteArray doc = event.takeStoredBytes();
            // A frame is stored only when this journal holds its dictionary (an event
            // prepared for another journal, or before a reopen, is stored as it is).
            if (BodyCodec::isFrame(doc) && !m_dictionaryIds.contains(BodyCodec::dictionaryOf(doc)) &&
                BodyCodec::dictionaryOf(doc) != dictionaryId)
                doc = event.document().raw();
            if (m_trainer.isSampling())
                m_trainer.sample(doc);
            Statement st(m_insertEvent);
            sqlite3_bind_int64(st.s, 1, seq);
            sqlite3_bind_int64(st.s, 2, now);
            sqlite3_bind_text(st.s, 3, source.constData(), int(source.size()), SQLITE_STATIC);
            bindBlob(st.s, 4, doc);
            if (sqlite3_step(st.s) != SQLITE_DONE)
                return rollback(sqliteMessage(m_db));
        }
        if (!writeNarrowings(std::numeric_limits<qsizetype>::max()))
            return rollback(sqliteMessage(m_db));
        const SourceCheckpoint& cp = batch.checkpoint;
        if (!cp.token.isEmpty()) {
            Statement st(m_upsertCheckpoint);
            sqlite3_bind_text(st.s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
            bindBlob(st.s, 2, cp.token);
            sqlite3_bind_int64(st.s, 3, now);
            if (sqlite3_step(st.s) != SQLITE_DONE)
                return rollback(sqliteMessage(m_db));
        }
        for (auto it = cp.stateUpserts.cbegin(); it != cp.stateUpserts.cend(); ++it) {
            Statement st(m_upsertState);
            sqlite3_bind_text(st.s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
            bindBlob(st.s, 2, it.key());
            bindBlob(st.s, 3, it.value());
            if (sqlite3_step(st.s) != SQLITE_DONE)
                return rollback(sqliteMessage(m_db));
        }
        for (const QByteArray& key : cp.stateRemovals) {
            Statement st(m_deleteState);
            sqlite3_bind_text(st.s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
            bindBlob(st.s, 2, key);
            if (sqlite3_step(st.s) != SQLITE_DONE)
                return rollback(sqliteMessage(m_db));
        }
        for (const QByteArray& prefix : cp.stateRemovedPrefixes) {
            // [prefix, prefix + 0xff…): every key that starts with prefix.
            QByteArray upper = prefix;
            upper.append(char(0xff)).append(char(0xff)).append(char(0xff)).append(char(0xff));
            Statement st(m_deleteStatePrefix);
            sqlite3_bind_text(st.s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
            bindBlob(st.s, 2, prefix);
            bindBlob(st.s, 3, upper);
            if (sqlite3_step(st.s) != SQLITE_DONE)
                return rollback(sqliteMessage(m_db));
        }
    }
    if (seq != m_lastSeq) {
        Statement st(m_setMeta);
        sqlite3_bind_text(st.s, 1, "last_seq", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st.s, 2, seq);
        if (sqlite3_step(st.s) != SQLITE_DONE)
            return rollback(sqliteMessage(m_db));
    }
    if (m_beforeCommit)
        m_beforeCommit();
    QString commitError;
    if (!exec("COMMIT", &commitError))
        return rollback(commitError);
    m_lastSeq = seq;
    m_lastReading.insert(lastReading);
    if (dictionaryId != 0) {
        m_dictionaryIds.insert(dictionaryId);
        m_trainer.committed();
        QString why;
        if (!m_codec->use(dictionary, &why))
            qCWarning(lcJournal).noquote() << "the new compression dictionary cannot be used:" << why;
        else
            qCInfo(lcJournal) << "compressing stored events with dictionary" << dictionaryId;
    }
    return true;
}

SourceRestore Journal::restore(const QString& sourceId, QString* error) {
    SourceRestore result;
    // A failed read is not "no checkpoint": a source started without its token would
    // begin at the upstream's present and silently skip what changed since the last
    // commit. The caller waits and asks again instead.
    const auto failed = [&](const char* what) {
        if (error)
            *error = QStringLiteral("cannot read the %1 of source %2 from the journal %3: %4")
                         .arg(QLatin1String(what), sourceId, m_path,
                              m_db ? sqliteMessage(m_db) : QStringLiteral("it is not open"));
        return SourceRestore{};
    };
    if (!m_db)
        return failed("checkpoint");
    const QByteArray source = sourceId.toUtf8();
    sqlite3_stmt* s = prepare("SELECT token FROM checkpoints WHERE source = ?1");
    if (!s)
        return failed("checkpoint");
    sqlite3_bind_text(s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        result.token = columnBlob(s, 0);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return failed("checkpoint");
    s = prepare("SELECT key, value FROM source_state WHERE source = ?1");
    if (!s)
        return failed("state");
    sqlite3_bind_text(s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        result.state.insert(columnBlob(s, 0), columnBlob(s, 1));
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return failed("state");
    if (error)
        error->clear();
    return result;
}

void Journal::forgetSource(const QString& sourceId) {
    if (!m_db)
        return;
    const QByteArray source = sourceId.toUtf8();
    for (const char* sql :
         {"DELETE FROM checkpoints WHERE source = ?1", "DELETE FROM source_state WHERE source = ?1"}) {
        sqlite3_stmt* s = prepare(sql);
        if (!s)
            continue;
        sqlite3_bind_text(s, 1, source.constData(), int(source.size()), SQLITE_STATIC);
        sqlite3_step(s);
        sqlite3_finalize(s);
    }
}

bool Journal::saveSubscription(const StoredSubscription& subscription, QString* error) {
    if (!m_db)
        return fail(Error::Io, QStringLiteral("The journal is not open."), error);
    sqlite3_stmt* s = prepare("INSERT OR REPLACE INTO subscriptions(id, spec) VALUES(?1, ?2)");
    if (!s)
        return fail(Error::Io, sqliteMessage(m_db), error);
    bindText(s, 1, subscription.id);
    bindBlob(s, 2, subscription.spec);
    const bool ok = sqlite3_step(s) == SQLITE_DONE;
    const QString message = sqliteMessage(m_db);
    sqlite3_finalize(s);
    return ok || fail(Error::Io, message, error);
}

bool Journal::removeSubscription(const QString& id) {
    if (!m_db)
        return false;
    sqlite3_stmt* s = prepare("DELETE FROM subscriptions WHERE id = ?1");
    if (!s)
        return false;
    bindText(s, 1, id);
    const bool ok = sqlite3_step(s) == SQLITE_DONE && sqlite3_changes(m_db) > 0;
    sqlite3_finalize(s);
    return ok;
}

QList<StoredSubscription> Journal::subscriptions() {
    QList<StoredSubscription> result;
    sqlite3_stmt* s = m_db ? prepare("SELECT id, spec FROM subscriptions ORDER BY rowid") : nullptr;
    if (!s)
        return result;
    while (sqlite3_step(s) == SQLITE_ROW)
        result.append(
            {QString::fromUtf8(reinterpret_cast<const char*>(sqlite3_column_text(s, 0))), columnBlob(s, 1)});
    sqlite3_finalize(s);
    return result;
}

void Journal::setPageLimit(qint64 extraPages) {
    if (!m_db)
        return;
    qint64 pages = 0;
    sqlite3_stmt* s = prepare("PRAGMA page_count");
    if (s && sqlite3_step(s) == SQLITE_ROW)
        pages = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    // SQLite's own maximum (SQLITE_MAX_PAGE_COUNT in 3.40) when lifted.
    const qint64 limit = extraPages < 0 ? 1073741823 : pages + extraPages;
    exec(QByteArray("PRAGMA max_page_count = " + QByteArray::number(limit)).constData());
}

void Journal::checkpoint() {
    if (!m_db)
        return;
    // A checkpoint already running on the folder's connection would make this one BUSY.
    m_folder.reset();
    exec("PRAGMA wal_checkpoint(TRUNCATE)");
    m_folder = std::make_unique<WalFolder>(m_path);
}

} // namespace tw

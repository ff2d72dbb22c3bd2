#pragma once

#include "model/Bson.h"

#include <QByteArray>
#include <QHash>
#include <QList>
#include <QString>

#include <functional>
#include <memory>

namespace tw::test {

// What the MongoDB test peer holds: the documents per namespace (collections and
// views) and the change log, the peer's oplog, that backs change streams. Each log
// entry has a position (1, 2, …; its resume token is MongoPeerResumeToken) and a
// cluster time. Commands read and write it; nothing here knows the wire or cursors.
class MongoPeerStore {
public:
    struct Collection {
        QString db, name;
        QList<Bson> documents;
        bool isView = false;
        QString viewOn;
        QList<Bson> pipeline;
        QByteArray uuid;
        QList<Bson> indexes; // index specs after _id_ ({v, key, name, …}), as createIndexes made them
        Bson options;        // create/collMod options (validator, …) as given
    };

    struct LogEntry {
        qint64 position = 0;
        QString db, coll, operationType;
        Bson event; // with _id, as delivered (before per-cursor full document options)
        Bson preImage, postImage;
        bool fromWrite = false;
        bool hasExpandedFields =
            false; // collectionUUID or operationDescription: only with showExpandedEvents
        quint32 t = 0, i = 0;
    };

    // --- documents ------------------------------------------------------------
    void setDocuments(const QString& db, const QString& coll, const QList<Bson>& documents);
    QList<Bson> documents(const QString& db, const QString& coll) const;
    void createCollection(const QString& db, const QString& coll); // a no-op if it exists
    void createView(const QString& db, const QString& name, const QString& viewOn,
                    const QList<Bson>& pipeline);
    void dropAll();
    // Removes db.coll; false when it did not exist.
    bool dropCollection(const QString& db, const QString& coll);
    // Moves db.from to toDb.to (replacing a collection there); false when db.from did not exist.
    bool renameCollection(const QString& db, const QString& from, const QString& toDb, const QString& to);
    // Null when db.coll does not exist. Shared so that a command can hold it while it writes.
    std::shared_ptr<Collection> collection(const QString& db, const QString& coll) const;
    // By "db.coll".
    const QHash<QString, std::shared_ptr<Collection>>& collections() const { return m_collections; }
    // The documents a read of db.coll sees: a view resolves to the collection it is
    // on, and its stages are prepended to `*pipeline` (when given) for the caller to run.
    QList<Bson> collectionDocuments(const QString& db, const QString& coll, QList<Bson>* pipeline) const;

    // --- change log -------------------------------------------------------------
    // Appends an event for db.coll; `_id`, `ns`, `clusterTime` and `wallTime` are
    // added when missing. Non-absent images mark an event made by a write, which
    // cursors complete with fullDocument / fullDocumentBeforeChange as they asked.
    // Returns the new entry's position.
    qint64 appendChange(const QString& db, const QString& coll, const Bson& event, const Bson& preImage,
                        const Bson& postImage);
    // Called after every appendChange (waiting getMores are answered from it).
    void setChangeAppendedHandler(std::function<void()> handler) { m_onAppended = std::move(handler); }
    const QList<LogEntry>& log() const { return m_log; }
    // The entry at `position`, or null when it is not in the log (any more).
    const LogEntry* entryAt(qint64 position) const;
    qint64 historyStart() const { return m_historyStart; }
    qint64 lastPosition() const { return m_lastPosition; }
    void forgetHistory();

    // The newest cluster time handed out, or now when none was yet.
    void currentClusterTime(quint32* t, quint32* i) const;

private:
    void nextClusterTime(quint32* t, quint32* i);

    QHash<QString, std::shared_ptr<Collection>> m_collections; // "db.coll"
    QList<LogEntry> m_log;
    qint64 m_historyStart = 0; // oldest position still resumable
    qint64 m_lastPosition = 0; // position of the newest entry (or of the start)
    quint32 m_clusterSeconds = 0;
    quint32 m_clusterIncrement = 0;
    std::function<void()> m_onAppended;
};

} // namespace tw::test

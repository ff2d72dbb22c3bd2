#pragma once

#include "model/Bson.h"

#include <QList>
#include <QString>

#include <map>
#include <memory>

namespace tw::test {

class MongoPeerReplies;

// The MongoDB test peer's open cursors, by id: find-style cursors (find, aggregate)
// that hand out the rest of their result, and change stream cursors
// (MongoPeerChangeStreams) that read on in the change log. Also the cursor reply
// shape both share ({cursor: {firstBatch|nextBatch, id, ns}}).
class MongoPeerCursors {
public:
    static constexpr int DefaultBatchSize = 101;

    struct Cursor {
        enum class Kind { Find, ChangeStream };
        Kind kind = Kind::Find;
        qint64 id = 0;
        QString ns; // as reported in the cursor reply
        // Find
        QList<Bson> remaining;
        // Change stream
        QString db, coll;
        bool allDatabases = false;
        qint64 position = 0; // last log position scanned
        QList<Bson> matchStages;
        QString fullDocument = QStringLiteral("default");
        QString fullDocumentBeforeChange = QStringLiteral("off");
        bool showExpandedEvents = false;
        bool invalidated = false;
        Bson postBatchResumeToken;
    };

    // Must outlive this object.
    explicit MongoPeerCursors(const MongoPeerReplies& replies);

    Cursor* find(qint64 id) const; // null when there is none
    bool erase(qint64 id);         // false when there was none
    // A fresh positive id no open cursor has.
    qint64 newId() const;
    void insert(std::unique_ptr<Cursor> cursor); // under cursor->id
    int count(Cursor::Kind kind) const;

    Bson reply(const Cursor& cursor, const QList<Bson>& batch, bool first, qint64 id) const;
    // Opens a find-style cursor over `docs` and returns the first reply; a cursor is
    // kept only while documents remain.
    Bson openFind(const QString& ns, QList<Bson> docs, int batchSize, bool singleBatch);
    // A getMore on a find-style cursor; the cursor is closed when it runs out.
    Bson findGetMore(Cursor& cursor, int batchSize);
    // The command's batchSize (in `parent`, e.g. "cursor", when given), or -1.
    static int batchSizeOf(const Bson& command, const char* parent);

private:
    static QList<Bson> takeFindBatch(Cursor& cursor, int batchSize);

    const MongoPeerReplies& m_replies;
    std::map<qint64, std::unique_ptr<Cursor>> m_cursors;
};

} // namespace tw::test

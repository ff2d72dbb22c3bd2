#pragma once

#include "Bson.h"
#include "Namespace.h"
#include "Operation.h"

#include <QList>
#include <QMetaType>
#include <QSharedDataPointer>
#include <QString>

namespace tw {

class BodyCodec;

struct ClusterTime {
    quint32 t = 0;
    quint32 i = 0;
    bool isNull() const { return t == 0 && i == 0; }
};

// Where a gap stands for a reader that resumes by seq: the cursor it asked to resume
// after, the lowest seq still stored, and the seq reading goes on after. Rendered after
// the gap's `reason` as "requested", "firstAvailable", "resumeAfter"; negative: left out.
struct GapPosition {
    qint64 requested = -1;
    qint64 firstAvailable = -1;
    qint64 resumeAfter = -1;
};

// One change, in the shape of a MongoDB change event plus Tidewatch's `seq` and
// `source`. Implicitly shared: copies are a reference-count increment, so events
// travel between threads by value. An event is built by a source, gets its final
// seq from the Engine at commit (finalize()), and is immutable after that.
class ChangeEvent {
public:
    ChangeEvent();
    ChangeEvent(const ChangeEvent&);
    ChangeEvent& operator=(const ChangeEvent&);
    ~ChangeEvent();

    qint64 seq() const; // 0 until committed
    QString sourceId() const;
    Namespace ns() const;
    Operation operation() const;
    QByteArray operationType() const; // the wire name: "insert", …, "createIndexes", "gap"
    Bson documentKey() const;
    Bson fullDocument() const;
    Bson updateDescription() const; // {updatedFields, removedFields, truncatedArrays}
    Bson fullDocumentBeforeChange() const;
    ClusterTime clusterTime() const;
    qint64 wallTimeMs() const;      // ms since the epoch; 0 when unknown
    Bson resumeToken() const;       // the source's token for this event (`_id` in MongoDB)
    Namespace renameTarget() const; // `to` for rename
    QString reason() const;         // gap and invalidate: why
    Bson extra() const;             // other server fields kept verbatim (operationDescription, …)

    void setSourceId(const QString& id);
    void setNs(const Namespace& ns);
    void setOperation(Operation op, QByteArrayView ddlName = {});
    void setDocumentKey(const Bson& key);
    void setFullDocument(const Bson& doc);
    void setUpdateDescription(const Bson& desc);
    void setFullDocumentBeforeChange(const Bson& doc);
    void setClusterTime(ClusterTime time);
    void setWallTimeMs(qint64 ms);
    void setResumeToken(const Bson& token);
    void setRenameTarget(const Namespace& to);
    void setReason(const QString& reason);
    void setExtra(const Bson& extra);

    // Builds {updatedFields, removedFields, truncatedArrays:[]} from a document of
    // updated fields and a list of removed field names.
    static Bson makeUpdateDescription(const Bson& updatedFields, const QList<QByteArray>& removedFields);
    // The one way a gap event is made (sources, journal, replay): a consumer must re-read.
    static ChangeEvent makeGap(const QString& sourceId, const Namespace& ns, const QString& reason,
                               const GapPosition& position = {});

    // Renders the event without its seq (BSON and relaxed JSON) and keeps both, and with
    // a codec also the stored bytes (the BSON compressed). Source::publishBatch calls it
    // on the source's thread as the batch leaves, so rendering runs in parallel with the
    // journal; it must not be called while another thread reads the event. Setters drop
    // the rendering. A final event (fromDocument()) only gets its stored bytes.
    void prepare(const BodyCodec* codec = nullptr) const;
    // Sets the final sequence id and completes the rendering: seq is spliced in front of
    // the prepared bytes (prepare() runs here if nobody ran it). Called by the journal
    // at commit; consumers then share the rendered bytes.
    void finalize(qint64 seq);

    // The full change-event document: {seq?, source, operationType, ns, documentKey, …}.
    // Cached after finalize(); built on demand before.
    Bson document() const;
    // One line of Relaxed Extended JSON (cached after finalize()).
    QByteArray toJson() const;
    QByteArray toCanonicalJson() const;

    // What the journal stores for a finalized event: the compressed body that
    // prepare() made, else document(). Taken, not copied: the event does not keep it.
    QByteArray takeStoredBytes();

    // Rebuilds an event from document() output (journal replay). `seq` is taken from
    // the argument, not the document.
    static ChangeEvent fromDocument(const Bson& doc, qint64 seq, QString* error = nullptr);
    // fromDocument() for an event that arrives rendered, `doc` read from `json` (a
    // gateway's, from its ingest's message): `json` becomes its toJson() as it is, not
    // rendered again, when it is an event's rendering with this seq ({"seq":<seq>,…).
    static ChangeEvent fromRendered(const Bson& doc, qint64 seq, const QByteArray& json,
                                    QString* error = nullptr);

private:
    class Data;
    QSharedDataPointer<Data> d;
    Bson buildDocument(bool withSeq) const;
    // finalize(), with `rendered` (when not empty) as the JSON instead of a rendering.
    void finalizeWith(qint64 seq, const QByteArray& rendered);
    // The fields of `doc` (fromDocument() without the finalize()); false: not BSON.
    static bool readFields(const Bson& doc, ChangeEvent* e, QString* error);
};

using ChangeEventList = QList<ChangeEvent>;

} // namespace tw

Q_DECLARE_METATYPE(tw::ChangeEvent)

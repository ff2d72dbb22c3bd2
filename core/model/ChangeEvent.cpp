#include "ChangeEvent.h"

#include "BodyCodec.h"

#include <QDateTime>
#include <QtEndian>

#include <charconv>
#include <cstring>
#include <utility>

namespace tw {

class ChangeEvent::Data : public QSharedData {
public:
    qint64 seq = 0;
    QString sourceId;
    Namespace ns;
    Operation op = Operation::Insert;
    QByteArray ddlName;
    Bson documentKey;
    Bson fullDocument;
    Bson updateDescription;
    Bson fullDocumentBeforeChange;
    ClusterTime clusterTime;
    qint64 wallTimeMs = 0;
    Bson resumeToken;
    Namespace renameTarget;
    QString reason;
    Bson extra;
    // Rendered once: body and bodyJson (no seq) by prepare(), document and json at finalize().
    Bson body;
    QByteArray bodyJson;
    QByteArray stored; // body compressed for the journal, when a codec had a dictionary
    Bson document;
    QByteArray json;
};

ChangeEvent::ChangeEvent()
    : d(new Data) {}
ChangeEvent::ChangeEvent(const ChangeEvent&) = default;
ChangeEvent& ChangeEvent::operator=(const ChangeEvent&) = default;
ChangeEvent::~ChangeEvent() = default;

qint64 ChangeEvent::seq() const {
    return d->seq;
}
QString ChangeEvent::sourceId() const {
    return d->sourceId;
}
Namespace ChangeEvent::ns() const {
    return d->ns;
}
Operation ChangeEvent::operation() const {
    return d->op;
}
QByteArray ChangeEvent::operationType() const {
    return d->op == Operation::Ddl && !d->ddlName.isEmpty() ? d->ddlName : operationName(d->op);
}
Bson ChangeEvent::documentKey() const {
    return d->documentKey;
}
Bson ChangeEvent::fullDocument() const {
    return d->fullDocument;
}
Bson ChangeEvent::updateDescription() const {
    return d->updateDescription;
}
Bson ChangeEvent::fullDocumentBeforeChange() const {
    return d->fullDocumentBeforeChange;
}
ClusterTime ChangeEvent::clusterTime() const {
    return d->clusterTime;
}
qint64 ChangeEvent::wallTimeMs() const {
    return d->wallTimeMs;
}
Bson ChangeEvent::resumeToken() const {
    return d->resumeToken;
}
Namespace ChangeEvent::renameTarget() const {
    return d->renameTarget;
}
QString ChangeEvent::reason() const {
    return d->reason;
}
Bson ChangeEvent::extra() const {
    return d->extra;
}

// Every setter drops the rendered caches: an event is only rendered once it is final.
#define TW_SET(member, value)                                                                                \
    d->member = value;                                                                                       \
    d->document = Bson();                                                                                    \
    d->json.clear();                                                                                         \
    d->body = Bson();                                                                                        \
    d->bodyJson.clear();                                                                                     \
    d->stored.clear()

void ChangeEvent::setSourceId(const QString& id) {
    TW_SET(sourceId, id);
}
void ChangeEvent::setNs(const Namespace& ns) {
    TW_SET(ns, ns);
}
void ChangeEvent::setOperation(Operation op, QByteArrayView ddlName) {
    TW_SET(op, op);
    d->ddlName = ddlName.toByteArray();
}
void ChangeEvent::setDocumentKey(const Bson& key) {
    TW_SET(documentKey, key);
}
void ChangeEvent::setFullDocument(const Bson& doc) {
    TW_SET(fullDocument, doc);
}
void ChangeEvent::setUpdateDescription(const Bson& desc) {
    TW_SET(updateDescription, desc);
}
void ChangeEvent::setFullDocumentBeforeChange(const Bson& doc) {
    TW_SET(fullDocumentBeforeChange, doc);
}
void ChangeEvent::setClusterTime(ClusterTime time) {
    TW_SET(clusterTime, time);
}
void ChangeEvent::setWallTimeMs(qint64 ms) {
    TW_SET(wallTimeMs, ms);
}
void ChangeEvent::setResumeToken(const Bson& token) {
    TW_SET(resumeToken, token);
}
void ChangeEvent::setRenameTarget(const Namespace& to) {
    TW_SET(renameTarget, to);
}
void ChangeEvent::setReason(const QString& reason) {
    TW_SET(reason, reason);
}
void ChangeEvent::setExtra(const Bson& extra) {
    TW_SET(extra, extra);
}
#undef TW_SET

Bson ChangeEvent::makeUpdateDescription(const Bson& updatedFields, const QList<QByteArray>& removedFields) {
    BsonBuilder b;
    appendDocument(b.get(), "updatedFields", updatedFields.isAbsent() ? Bson::empty() : updatedFields);
    bson_t removed;
    bson_append_array_begin(b.get(), "removedFields", -1, &removed);
    for (int i = 0; i < removedFields.size(); ++i) {
        const QByteArray key = QByteArray::number(i);
        bson_append_utf8(&removed, key.constData(), -1, removedFields[i].constData(),
                         int(removedFields[i].size()));
    }
    bson_append_array_end(b.get(), &removed);
    bson_t truncated;
    bson_append_array_begin(b.get(), "truncatedArrays", -1, &truncated);
    bson_append_array_end(b.get(), &truncated);
    return b.take();
}

ChangeEvent ChangeEvent::makeGap(const QString& sourceId, const Namespace& ns, const QString& reason,
                                 const GapPosition& position) {
    ChangeEvent e;
    e.setSourceId(sourceId);
    e.setNs(ns);
    e.setOperation(Operation::Gap);
    e.setReason(reason);
    e.setWallTimeMs(QDateTime::currentMSecsSinceEpoch());
    // Kept as extra fields, so the journal and every renderer carry them like any other.
    if (position.requested >= 0 || position.firstAvailable >= 0 || position.resumeAfter >= 0) {
        BsonBuilder extra;
        if (position.requested >= 0)
            bson_append_int64(extra.get(), "requested", -1, position.requested);
        if (position.firstAvailable >= 0)
            bson_append_int64(extra.get(), "firstAvailable", -1, position.firstAvailable);
        if (position.resumeAfter >= 0)
            bson_append_int64(extra.get(), "resumeAfter", -1, position.resumeAfter);
        e.setExtra(extra.take());
    }
    return e;
}

static void appendUtf8(bson_t* doc, const char* key, const QString& value) {
    const QByteArray utf8 = value.toUtf8();
    bson_append_utf8(doc, key, -1, utf8.constData(), int(utf8.size()));
}

static void appendNs(bson_t* doc, const char* key, const Namespace& ns) {
    bson_t sub;
    bson_append_document_begin(doc, key, -1, &sub);
    appendUtf8(&sub, "db", ns.db);
    if (!ns.coll.isEmpty())
        appendUtf8(&sub, "coll", ns.coll);
    bson_append_document_end(doc, &sub);
}

static void appendIfPresent(bson_t* doc, const char* key, const Bson& value) {
    if (!value.isAbsent())
        appendDocument(doc, key, value);
}

Bson ChangeEvent::buildDocument(bool withSeq) const {
    BsonBuilder b;
    bson_t* doc = b.get();
    if (withSeq)
        bson_append_int64(doc, "seq", -1, d->seq);
    appendUtf8(doc, "source", d->sourceId);
    const QByteArray op = operationType();
    bson_append_utf8(doc, "operationType", -1, op.constData(), int(op.size()));
    if (!d->ns.db.isEmpty() || !d->ns.coll.isEmpty())
        appendNs(doc, "ns", d->ns);
    appendIfPresent(doc, "documentKey", d->documentKey);
    appendIfPresent(doc, "updateDescription", d->updateDescription);
    appendIfPresent(doc, "fullDocument", d->fullDocument);
    appendIfPresent(doc, "fullDocumentBeforeChange", d->fullDocumentBeforeChange);
    if (!d->renameTarget.db.isEmpty())
        appendNs(doc, "to", d->renameTarget);
    if (!d->clusterTime.isNull())
        bson_append_timestamp(doc, "clusterTime", -1, d->clusterTime.t, d->clusterTime.i);
    if (d->wallTimeMs)
        bson_append_date_time(doc, "wallTime", -1, d->wallTimeMs);
    if (!d->reason.isEmpty())
        appendUtf8(doc, "reason", d->reason);
    bson_t extra;
    if (d->extra.view(&extra)) {
        bson_iter_t it;
        if (bson_iter_init(&it, &extra))
            while (bson_iter_next(&it))
                bson_append_iter(doc, bson_iter_key(&it), -1, &it);
    }
    if (!d->resumeToken.isAbsent())
        appendDocument(doc, "_id", d->resumeToken);
    return b.take();
}

void ChangeEvent::prepare(const BodyCodec* codec) const {
    auto* data = const_cast<Data*>(d.constData());
    if (data->body.isAbsent() && data->json.isEmpty()) {
        data->body = buildDocument(false);
        data->bodyJson = data->body.toJson();
        if (codec)
            data->stored = codec->compress(data->body.raw());
        return;
    }
    // A final event (a gateway's, made from the ingest's document by fromDocument()) is
    // compressed too, from its document without the leading seq element that
    // finalize() put there: its journal stores it like any other.
    if (!codec || !data->stored.isEmpty() || data->document.isAbsent())
        return;
    const QByteArray& document = data->document.raw();
    constexpr qsizetype seqEnd = 4 + 1 + 4 + 8; // length, type byte, "seq\0", int64
    if (document.size() <= seqEnd || document.at(4) != char(BSON_TYPE_INT64) ||
        memcmp(document.constData() + 5, "seq", 4) != 0)
        return;
    QByteArray body(document.size() - (seqEnd - 4), Qt::Uninitialized);
    const qint32 length = qToLittleEndian(qint32(body.size()));
    memcpy(body.data(), &length, 4);
    memcpy(body.data() + 4, document.constData() + seqEnd, size_t(document.size() - seqEnd));
    data->stored = codec->compress(body);
}

QByteArray ChangeEvent::takeStoredBytes() {
    if (!d->stored.isEmpty())
        return std::exchange(d->stored, QByteArray());
    return document().raw();
}

void ChangeEvent::finalize(qint64 seq) {
    finalizeWith(seq, QByteArray());
}

void ChangeEvent::finalizeWith(qint64 seq, const QByteArray& rendered) {
    if (d->body.isAbsent()) {
        d->body = buildDocument(false);
        if (rendered.isEmpty())
            d->bodyJson = d->body.toJson();
    }
    d->seq = seq;
    // BSON: header, then the int64 "seq" element, then the body's elements as they are.
    const QByteArray& body = d->body.raw();
    const qsizetype elements = body.size() - 5; // without the length prefix and the terminator
    constexpr qsizetype seqElement = 1 + 4 + 8; // type byte, "seq\0", int64
    QByteArray raw(4 + seqElement + elements + 1, Qt::Uninitialized);
    char* p = raw.data();
    const qint32 total = qToLittleEndian(qint32(raw.size()));
    memcpy(p, &total, 4);
    p[4] = char(BSON_TYPE_INT64);
    memcpy(p + 5, "seq", 4);
    const qint64 le = qToLittleEndian(seq);
    memcpy(p + 9, &le, 8);
    memcpy(p + 17, body.constData() + 4, size_t(elements));
    p[raw.size() - 1] = 0;
    d->document = Bson::fromRaw(raw);
    if (!rendered.isEmpty()) {
        d->json = rendered;
        d->body = Bson();
        d->bodyJson = QByteArray();
        return;
    }
    // JSON: {"seq":N, + the body without its opening brace.
    QByteArray json;
    json.reserve(d->bodyJson.size() + 24);
    json.append("{\"seq\":").append(QByteArray::number(seq));
    // A body that could not be rendered (a source sent a malformed sub-document) is
    // "null", not an object to splice into: the event goes out as its seq alone, still
    // JSON, so a stream's reader skips it instead of failing on a broken line.
    if (d->bodyJson.size() > 2 && d->bodyJson.startsWith('{'))
        json.append(",").append(d->bodyJson.constData() + 1, d->bodyJson.size() - 1);
    else
        json.append('}');
    d->json = json;
    // The seq-less renderings were only scaffolding: an event in a 250 000-row feed
    // would otherwise carry its document and JSON twice.
    d->body = Bson();
    // Not clear(): that drops the buffer's reference inside QtCore, where ThreadSanitizer
    // cannot see it, and the source's copy of the event frees the buffer later.
    d->bodyJson = QByteArray();
}

Bson ChangeEvent::document() const {
    return d->document.isAbsent() ? buildDocument(d->seq > 0) : d->document;
}

QByteArray ChangeEvent::toJson() const {
    return d->json.isEmpty() ? document().toJson() : d->json;
}

QByteArray ChangeEvent::toCanonicalJson() const {
    return document().toJson(Bson::JsonMode::Canonical);
}

ChangeEvent ChangeEvent::fromDocument(const Bson& source, qint64 seq, QString* error) {
    ChangeEvent e;
    if (readFields(source, &e, error))
        e.finalize(seq);
    return e;
}

ChangeEvent ChangeEvent::fromRendered(const Bson& source, qint64 seq, const QByteArray& json,
                                      QString* error) {
    ChangeEvent e;
    if (!readFields(source, &e, error))
        return e;
    // Only the rendering of an event with this seq in front, as finalize() makes it;
    // anything else is rendered here as fromDocument() would.
    char prefix[32] = "{\"seq\":";
    const auto end = std::to_chars(prefix + 7, prefix + sizeof prefix, seq).ptr;
    const qsizetype n = end - prefix;
    const bool ours = json.size() > n && json.endsWith('}') &&
                      memcmp(json.constData(), prefix, size_t(n)) == 0 &&
                      (json.at(n) == ',' || json.at(n) == '}');
    e.finalizeWith(seq, ours ? json : QByteArray());
    return e;
}

bool ChangeEvent::readFields(const Bson& source, ChangeEvent* out, QString* error) {
    ChangeEvent& e = *out;
    bson_t doc;
    bson_iter_t it;
    if (!source.view(&doc) || !bson_iter_init(&it, &doc)) {
        if (error)
            *error = QStringLiteral("not a BSON document");
        return false;
    }
    BsonBuilder extra;
    bool haveExtra = false;
    while (bson_iter_next(&it)) {
        const char* key = bson_iter_key(&it);
        if (!strcmp(key, "seq")) {
            continue;
        } else if (!strcmp(key, "source") && BSON_ITER_HOLDS_UTF8(&it)) {
            e.d->sourceId = iterString(&it);
        } else if (!strcmp(key, "operationType") && BSON_ITER_HOLDS_UTF8(&it)) {
            uint32_t len = 0;
            const char* name = bson_iter_utf8(&it, &len);
            const QByteArrayView view(name, qsizetype(len));
            e.d->op = operationFromName(view).value_or(Operation::Ddl);
            if (e.d->op == Operation::Ddl)
                e.d->ddlName = view.toByteArray();
        } else if (!strcmp(key, "ns")) {
            e.d->ns = namespaceAt(&it);
        } else if (!strcmp(key, "to")) {
            e.d->renameTarget = namespaceAt(&it);
        } else if (!strcmp(key, "documentKey")) {
            e.d->documentKey = copyContainer(&it);
        } else if (!strcmp(key, "updateDescription")) {
            e.d->updateDescription = copyContainer(&it);
        } else if (!strcmp(key, "fullDocument")) {
            e.d->fullDocument = copyContainer(&it);
        } else if (!strcmp(key, "fullDocumentBeforeChange")) {
            e.d->fullDocumentBeforeChange = copyContainer(&it);
        } else if (!strcmp(key, "clusterTime") && BSON_ITER_HOLDS_TIMESTAMP(&it)) {
            bson_iter_timestamp(&it, &e.d->clusterTime.t, &e.d->clusterTime.i);
        } else if (!strcmp(key, "wallTime") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
            e.d->wallTimeMs = bson_iter_date_time(&it);
        } else if (!strcmp(key, "reason") && BSON_ITER_HOLDS_UTF8(&it)) {
            e.d->reason = iterString(&it);
        } else if (!strcmp(key, "_id")) {
            e.d->resumeToken = copyContainer(&it);
        } else {
            bson_append_iter(extra.get(), key, -1, &it);
            haveExtra = true;
        }
    }
    if (haveExtra)
        e.d->extra = extra.take();
    return true;
}

} // namespace tw

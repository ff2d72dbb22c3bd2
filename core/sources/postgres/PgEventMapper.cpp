#include "PgEventMapper.h"

#include "PgTypes.h"

#include <algorithm>

namespace tw {

void PgEventMapper::resolveKeys(PgRelationInfo& r, const QStringList& catalogKeys) {
    // The primary key names a row; under REPLICA IDENTITY FULL pgoutput flags every
    // column as identity, so its flags are only the fallback, and all columns the last.
    r.keyColumns.clear();
    for (const QString& key : catalogKeys)
        for (int i = 0; i < r.rel.columns.size(); ++i)
            if (r.rel.columns[i].name == key.toUtf8())
                r.keyColumns.append(i);
    if (r.keyColumns.isEmpty())
        for (int i = 0; i < r.rel.columns.size(); ++i)
            if (r.rel.columns[i].isKey)
                r.keyColumns.append(i);
    if (r.keyColumns.isEmpty())
        for (int i = 0; i < r.rel.columns.size(); ++i)
            r.keyColumns.append(i);
    r.keysResolved = true;
}

Bson PgEventMapper::rowDocument(const PgRelationInfo& r, const pg::PgTuple& tuple,
                                const pg::PgTuple* fallback) {
    BsonBuilder b;
    const qsizetype n = std::min(tuple.size(), r.rel.columns.size());
    for (qsizetype i = 0; i < n; ++i) {
        const pg::PgColumn& c = r.rel.columns[i];
        const pg::PgValue* v = &tuple[i];
        // An unchanged TOASTed value is not in the new row: take the old row's (REPLICA
        // IDENTITY FULL), else leave the column out. Never null, never "changed".
        if (v->kind == pg::PgValue::Kind::UnchangedToast) {
            if (!fallback || i >= fallback->size() || (*fallback)[i].kind != pg::PgValue::Kind::Text)
                continue;
            v = &(*fallback)[i];
        }
        if (v->kind == pg::PgValue::Kind::Null)
            bson_append_null(b.get(), c.name.constData(), int(c.name.size()));
        else
            pg::appendValue(b.get(), c.name.constData(), int(c.name.size()), c.typeOid, v->text);
    }
    return b.take();
}

Bson PgEventMapper::keyDocument(const PgRelationInfo& r, const pg::PgTuple& tuple) {
    BsonBuilder b;
    for (const int i : r.keyColumns) {
        if (i >= tuple.size())
            continue;
        const pg::PgColumn& c = r.rel.columns[i];
        const pg::PgValue& v = tuple[i];
        if (v.kind == pg::PgValue::Kind::Text)
            pg::appendValue(b.get(), c.name.constData(), int(c.name.size()), c.typeOid, v.text);
        else if (v.kind == pg::PgValue::Kind::Null)
            bson_append_null(b.get(), c.name.constData(), int(c.name.size()));
    }
    return b.take();
}

ChangeEvent PgEventMapper::change(const QString& sourceId, const PgRelationInfo& r, const pg::PgMessage& m,
                                  qint64 wallTimeMs) {
    using Kind = pg::PgMessage::Kind;
    ChangeEvent e;
    e.setSourceId(sourceId);
    e.setNs(r.ns);
    e.setWallTimeMs(wallTimeMs);
    const bool fullOld = m.oldKind == 'O';
    if (m.kind == Kind::Insert) {
        e.setOperation(Operation::Insert);
        e.setDocumentKey(keyDocument(r, m.newTuple));
        e.setFullDocument(rowDocument(r, m.newTuple, nullptr));
    } else if (m.kind == Kind::Update) {
        e.setOperation(Operation::Update);
        e.setDocumentKey(keyDocument(r, m.newTuple));
        const pg::PgTuple* old = fullOld ? &m.oldTuple : nullptr;
        const Bson full = rowDocument(r, m.newTuple, old);
        e.setFullDocument(full);
        // With the old row: exactly the columns whose value changed. Without it
        // (REPLICA IDENTITY DEFAULT): every column of the new row that was sent.
        BsonBuilder changed;
        const qsizetype n = std::min(m.newTuple.size(), r.rel.columns.size());
        for (qsizetype i = 0; i < n; ++i) {
            const pg::PgValue& v = m.newTuple[i];
            if (v.kind == pg::PgValue::Kind::UnchangedToast)
                continue;
            if (old && i < old->size() && (*old)[i].kind == v.kind && (*old)[i].text == v.text)
                continue;
            const pg::PgColumn& c = r.rel.columns[i];
            if (v.kind == pg::PgValue::Kind::Null)
                bson_append_null(changed.get(), c.name.constData(), int(c.name.size()));
            else
                pg::appendValue(changed.get(), c.name.constData(), int(c.name.size()), c.typeOid, v.text);
        }
        e.setUpdateDescription(ChangeEvent::makeUpdateDescription(changed.take(), {}));
        if (old)
            e.setFullDocumentBeforeChange(rowDocument(r, *old, nullptr));
    } else {
        e.setOperation(Operation::Delete);
        e.setDocumentKey(keyDocument(r, m.oldTuple));
        if (fullOld)
            e.setFullDocumentBeforeChange(rowDocument(r, m.oldTuple, nullptr));
    }
    return e;
}

ChangeEvent PgEventMapper::truncate(const QString& sourceId, const Namespace& ns, qint64 wallTimeMs) {
    // A data change of its own: as a DDL-named event it counted as a schema change,
    // and reached the subscriptions that take schema changes only.
    ChangeEvent e;
    e.setSourceId(sourceId);
    e.setNs(ns);
    e.setOperation(Operation::Truncate);
    e.setWallTimeMs(wallTimeMs);
    return e;
}

} // namespace tw

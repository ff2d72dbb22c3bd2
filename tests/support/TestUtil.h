#pragma once

#include "model/ChangeBatch.h"

#include <QByteArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QString>
#include <QStringList>

namespace tw::test {

// Runs the sqlite3 program on `path` with `sql`: a separate process writing to the
// watched file, as another application would. Returns its stderr on failure.
inline QString runSqlite3(const QString& path, const QString& sql) {
    QProcess p;
    p.start(QStringLiteral("sqlite3"), {QStringLiteral("-bail"), path, sql});
    if (!p.waitForFinished(30000))
        return QStringLiteral("sqlite3 did not finish");
    if (p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0)
        return QStringLiteral("sqlite3 failed: ") + QString::fromUtf8(p.readAllStandardError());
    return {};
}

inline QJsonObject parseJson(const QByteArray& json) {
    return QJsonDocument::fromJson(json).object();
}

// A change event with a fullDocument {_id: i, n: i, pad: <size bytes>}.
inline ChangeEvent makeEvent(const QString& source, const QString& coll, int i, int padBytes = 16) {
    ChangeEvent e;
    e.setSourceId(source);
    e.setNs(Namespace{QStringLiteral("main"), coll});
    e.setOperation(Operation::Insert);
    BsonBuilder key;
    bson_append_int32(key.get(), "_id", 3, i);
    e.setDocumentKey(key.take());
    BsonBuilder doc;
    bson_append_int32(doc.get(), "_id", 3, i);
    bson_append_int32(doc.get(), "n", 1, i);
    const QByteArray pad(padBytes, 'x');
    bson_append_utf8(doc.get(), "pad", 3, pad.constData(), int(pad.size()));
    e.setFullDocument(doc.take());
    e.setWallTimeMs(1700000000000 + i);
    return e;
}

} // namespace tw::test

#pragma once

#include "model/Bson.h"

#include <QString>
#include <QStringList>

namespace tw::test {

class MongoPeerStore;
struct MongoPeerSettings;

// The envelope of the MongoDB test peer's command replies: ok, and on a replica set
// the gossiped $clusterTime and operationTime, as a real member adds to each reply;
// errors in the server's {ok: 0, errmsg, code, codeName} shape.
class MongoPeerReplies {
public:
    // Both must outlive this object.
    MongoPeerReplies(const MongoPeerSettings& settings, const MongoPeerStore& store);

    Bson finish(bson_t* body) const; // adds ok and the replica set's cluster time
    void appendClusterTime(bson_t* body) const;
    Bson error(int code, const QString& codeName, const QString& errmsg,
               const QStringList& errorLabels = {}) const;
    // {ok: 0, errmsg, code, codeName[, errorLabels]}, without cluster time.
    static Bson errorDocument(int code, const QString& codeName, const QString& errmsg,
                              const QStringList& errorLabels = {});

private:
    const MongoPeerSettings& m_settings;
    const MongoPeerStore& m_store;
};

} // namespace tw::test

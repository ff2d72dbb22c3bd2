#pragma once

#include "sources/Source.h"

#include <QByteArray>
#include <QList>

namespace tw {

// What a narrowing source reads of one of its watched scopes: everything in it
// (`readers` empty), or only what `readers` want. A source that journals less than all
// of its watches (a MongoDB $match, a NATS gateway's narrowed consumer) puts the whole
// list in ChangeBatch::narrowings whenever it changes, as JSON; the engine keeps it in
// the journal and a replay reads it back (CoverageLog).
struct ScopeReading {
    Namespace scope;
    QList<WatchOptions::Reader> readers;
    // The scope's events keep the source ids they had upstream (a NATS gateway's), so
    // a subscription naming any source can read them.
    bool anySource = false;
    friend bool operator==(const ScopeReading& a, const ScopeReading& b) = default;
};

struct SourceReading {
    // [{"db","coll","anySource":bool,"readers":[{"db","coll",
    //   "filter":"<canonical Extended JSON>","all":bool,"schemaOnly":bool}]}]
    static QByteArray toJson(const QList<ScopeReading>& scopes);
    // False when `json` is not such a list (then nothing can be said about coverage).
    static bool fromJson(QByteArrayView json, QList<ScopeReading>* scopes);
};

} // namespace tw

#pragma once

#include "model/Namespace.h"

#include <QByteArray>
#include <QList>
#include <QString>

namespace tw {

class ChangeEvent;

// How a committed event is named on NATS: `tidewatch.<source>.<db>.<coll>`, each part
// one subject token. A token keeps ASCII letters, digits, `_` and `-`; every other byte
// of its UTF-8 (dots, spaces, `*`, `>`, `%`, anything non-ASCII) becomes `%XX` with
// upper-case hex, so any database or table name is one valid token that no wildcard
// can match by accident, and decoding gives the name back. An empty part (a gap that
// belongs to no source) is the lone token `%`, which no encoded name can be.
struct NatsSubject {
    static constexpr char kPrefix[] = "tidewatch";

    static QByteArray token(const QString& name);
    static QString fromToken(QByteArrayView token);
    static QByteArray forEvent(const ChangeEvent& event);
    // What a stream must hold to receive every subject above.
    static QByteArray all() { return QByteArray(kPrefix) + ".>"; }
    // The one filter subject (nats-server 2.9 takes one per consumer) that receives the
    // events of every namespace in `namespaces`, whatever their source: one namespace,
    // tidewatch.*.<db>.<coll>; several in one database, tidewatch.*.<db>.*; anything
    // wider, all(). Empty list: all().
    static QByteArray filterFor(const QList<Namespace>& namespaces);
    // What filterFor() receives, as a namespace (the whole deployment for all()).
    static Namespace namespaceOf(const QByteArray& filter);
    // Every subject of an event wider than one collection (a database's or the whole
    // deployment's: a dropDatabase, the gap of a database watch, the ingest's own gaps),
    // which a narrowed filter leaves out and a gateway reads beside it.
    static QByteArray wide() { return QByteArray(kPrefix) + ".*.*.%"; }
};

} // namespace tw

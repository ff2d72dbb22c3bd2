#pragma once

#include <QByteArray>
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
};

} // namespace tw

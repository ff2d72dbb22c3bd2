#include "NatsSubject.h"

#include "model/ChangeEvent.h"

namespace tw {

QByteArray NatsSubject::token(const QString& name) {
    if (name.isEmpty())
        return QByteArrayLiteral("%");
    const QByteArray utf8 = name.toUtf8();
    QByteArray out;
    out.reserve(utf8.size() + 8);
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (const char c : utf8) {
        const auto u = static_cast<unsigned char>(c);
        const bool keep = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                          u == '_' || u == '-';
        if (keep) {
            out.append(c);
        } else {
            out.append('%');
            out.append(kHex[u >> 4]);
            out.append(kHex[u & 0x0f]);
        }
    }
    return out;
}

QString NatsSubject::fromToken(QByteArrayView token) {
    if (token == "%")
        return {};
    return QString::fromUtf8(QByteArray::fromPercentEncoding(token.toByteArray()));
}

QByteArray NatsSubject::forEvent(const ChangeEvent& event) {
    const Namespace ns = event.ns();
    return QByteArray(kPrefix) + '.' + token(event.sourceId()) + '.' + token(ns.db) + '.' + token(ns.coll);
}

QByteArray NatsSubject::filterFor(const QList<Namespace>& namespaces) {
    if (namespaces.isEmpty())
        return all();
    const Namespace& first = namespaces.first();
    bool oneDb = !first.db.isEmpty();
    bool oneNs = oneDb && !first.coll.isEmpty();
    for (const Namespace& ns : namespaces) {
        oneDb = oneDb && ns.db == first.db;
        oneNs = oneNs && ns == first;
    }
    if (oneNs)
        return QByteArray(kPrefix) + ".*." + token(first.db) + '.' + token(first.coll);
    if (oneDb)
        return QByteArray(kPrefix) + ".*." + token(first.db) + ".*";
    return all();
}

Namespace NatsSubject::namespaceOf(const QByteArray& filter) {
    const QList<QByteArray> parts = filter.split('.');
    if (parts.size() != 4 || parts[2] == "*")
        return {};
    return Namespace{fromToken(parts[2]), parts[3] == "*" ? QString() : fromToken(parts[3])};
}

} // namespace tw

#pragma once

#include <QHashFunctions>
#include <QMetaType>
#include <QString>

namespace tw {

// A watched collection: MongoDB db.coll, SQLite main.<table>, PostgreSQL
// <database>.<schema>.<table> (db = database, coll = schema.table). An empty coll
// means the whole database; an empty db and coll, the whole deployment.
struct Namespace {
    QString db;
    QString coll;

    bool isDatabase() const { return !db.isEmpty() && coll.isEmpty(); }
    bool isDeployment() const { return db.isEmpty() && coll.isEmpty(); }
    QString toString() const { return coll.isEmpty() ? db : db + QLatin1Char('.') + coll; }
    // Splits at the first dot: "shop.orders.archive" -> db "shop", coll "orders.archive".
    static Namespace fromString(const QString& text) {
        const qsizetype dot = text.indexOf(QLatin1Char('.'));
        if (dot < 0)
            return {text, {}};
        return {text.left(dot), text.mid(dot + 1)};
    }
    // True when an event in `other` falls inside this scope.
    bool contains(const Namespace& other) const {
        if (isDeployment())
            return true;
        if (db != other.db)
            return false;
        return coll.isEmpty() || coll == other.coll;
    }
    friend bool operator==(const Namespace& a, const Namespace& b) {
        return a.db == b.db && a.coll == b.coll;
    }
    friend size_t qHash(const Namespace& ns, size_t seed = 0) { return qHashMulti(seed, ns.db, ns.coll); }
};

} // namespace tw

Q_DECLARE_METATYPE(tw::Namespace)

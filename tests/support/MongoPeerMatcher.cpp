#include "MongoPeerMatcher.h"

#include "MongoPeerBson.h"

#include <QByteArrayView>
#include <QSet>

#include <algorithm>
#include <cstring>
#include <vector>

namespace tw::test {

using namespace peerbson;

namespace {

// --- value comparison (MongoDB's BSON comparison order) -----------------------

int canonicalRank(bson_type_t type) {
    switch (type) {
    case BSON_TYPE_MINKEY:
        return 1;
    case BSON_TYPE_EOD:
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_NULL:
        return 2;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128:
        return 3;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL:
        return 4;
    case BSON_TYPE_DOCUMENT:
        return 5;
    case BSON_TYPE_ARRAY:
        return 6;
    case BSON_TYPE_BINARY:
        return 7;
    case BSON_TYPE_OID:
        return 8;
    case BSON_TYPE_BOOL:
        return 9;
    case BSON_TYPE_DATE_TIME:
        return 10;
    case BSON_TYPE_TIMESTAMP:
        return 11;
    case BSON_TYPE_REGEX:
        return 12;
    case BSON_TYPE_MAXKEY:
        return 100;
    default:
        return 50;
    }
}

template <typename T> int threeWay(T a, T b) {
    return a < b ? -1 : (b < a ? 1 : 0);
}

// A missing value compares as null. Returns <0, 0, >0.
int compareValues(const bson_value_t* a, const bson_value_t* b) {
    const bson_type_t ta = a ? a->value_type : BSON_TYPE_NULL;
    const bson_type_t tb = b ? b->value_type : BSON_TYPE_NULL;
    const int ra = canonicalRank(ta);
    const int rb = canonicalRank(tb);
    if (ra != rb)
        return threeWay(ra, rb);
    if (!a || !b)
        return 0;
    switch (ra) {
    case 3: {
        const auto asInt = [](const bson_value_t* v, qint64* out) {
            if (v->value_type == BSON_TYPE_INT32)
                *out = v->value.v_int32;
            else if (v->value_type == BSON_TYPE_INT64)
                *out = v->value.v_int64;
            else
                return false;
            return true;
        };
        qint64 ia = 0, ib = 0;
        if (asInt(a, &ia) && asInt(b, &ib))
            return threeWay(ia, ib);
        const auto asDouble = [](const bson_value_t* v) {
            switch (v->value_type) {
            case BSON_TYPE_INT32:
                return double(v->value.v_int32);
            case BSON_TYPE_INT64:
                return double(v->value.v_int64);
            case BSON_TYPE_DOUBLE:
                return v->value.v_double;
            default:
                return 0.0; // Decimal128 is not compared numerically here
            }
        };
        return threeWay(asDouble(a), asDouble(b));
    }
    case 4: {
        const QByteArrayView sa(a->value.v_utf8.str, a->value.v_utf8.len);
        const QByteArrayView sb(b->value.v_utf8.str, b->value.v_utf8.len);
        return sa.compare(sb) < 0 ? -1 : (sa == sb ? 0 : 1);
    }
    case 5:
    case 6: {
        const QByteArrayView da(a->value.v_doc.data, a->value.v_doc.data_len);
        const QByteArrayView db(b->value.v_doc.data, b->value.v_doc.data_len);
        return da == db ? 0 : (da.compare(db) < 0 ? -1 : 1);
    }
    case 7: {
        if (a->value.v_binary.data_len != b->value.v_binary.data_len)
            return threeWay(a->value.v_binary.data_len, b->value.v_binary.data_len);
        if (a->value.v_binary.subtype != b->value.v_binary.subtype)
            return threeWay(int(a->value.v_binary.subtype), int(b->value.v_binary.subtype));
        const int c = memcmp(a->value.v_binary.data, b->value.v_binary.data, a->value.v_binary.data_len);
        return threeWay(c, 0);
    }
    case 8:
        return threeWay(bson_oid_compare(&a->value.v_oid, &b->value.v_oid), 0);
    case 9:
        return threeWay(a->value.v_bool, b->value.v_bool);
    case 10:
        return threeWay(a->value.v_datetime, b->value.v_datetime);
    case 11:
        if (a->value.v_timestamp.timestamp != b->value.v_timestamp.timestamp)
            return threeWay(a->value.v_timestamp.timestamp, b->value.v_timestamp.timestamp);
        return threeWay(a->value.v_timestamp.increment, b->value.v_timestamp.increment);
    default:
        return 0;
    }
}

bool sameBracket(const bson_value_t* a, const bson_value_t* b) {
    return canonicalRank(a->value_type) == canonicalRank(b->value_type);
}

// --- a small query matcher ----------------------------------------------------

// Collects the values a dotted path reaches, with MongoDB's array semantics: an
// array field yields the array itself and each of its elements. The values are
// shallow copies that point into `doc`'s bytes. (Not bson_iter_t: it is declared
// 128-byte aligned, which heap containers do not honour.)
struct Value {
    bson_value_t v; // wrapped: a bare bson_value_t as a template argument drops its alignment attribute
};

void collectPath(const bson_t* doc, QByteArrayView path, std::vector<Value>* out) {
    const qsizetype dot = path.indexOf('.');
    const QByteArray head = (dot < 0 ? path : path.first(dot)).toByteArray();
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, head.constData()))
        return;
    if (dot < 0) {
        out->push_back({*bson_iter_value(&it)});
        bson_iter_t child;
        if (BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &child)) {
            while (bson_iter_next(&child))
                out->push_back({*bson_iter_value(&child)});
        }
        return;
    }
    const QByteArrayView rest = path.sliced(dot + 1);
    const auto descend = [&](const bson_iter_t* at) {
        uint32_t len = 0;
        const uint8_t* data = nullptr;
        bson_t sub;
        if (BSON_ITER_HOLDS_DOCUMENT(at))
            bson_iter_document(at, &len, &data);
        else if (BSON_ITER_HOLDS_ARRAY(at))
            bson_iter_array(at, &len, &data);
        else
            return;
        if (bson_init_static(&sub, data, len))
            collectPath(&sub, rest, out);
    };
    if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
        descend(&it);
    } else if (BSON_ITER_HOLDS_ARRAY(&it)) {
        // "a.0.b" addresses by index (handled by descend on the array itself);
        // "a.b" looks into every subdocument element.
        descend(&it);
        bson_iter_t child;
        if (bson_iter_recurse(&it, &child)) {
            while (bson_iter_next(&child)) {
                if (BSON_ITER_HOLDS_DOCUMENT(&child))
                    descend(&child);
            }
        }
    }
}

bool matchFilter(const bson_t* doc, const bson_t* filter);

bool anyEquals(std::vector<Value>& values, const bson_value_t* operand) {
    if (values.empty())
        return operand->value_type == BSON_TYPE_NULL;
    for (const Value& value : values) {
        const bson_value_t* v = &value.v;
        if (sameBracket(v, operand) && compareValues(v, operand) == 0)
            return true;
    }
    return false;
}

bool isOperatorDocument(const bson_iter_t* it) {
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return false;
    bson_iter_t child;
    if (!bson_iter_recurse(it, &child) || !bson_iter_next(&child))
        return false;
    return bson_iter_key(&child)[0] == '$';
}

bool matchCondition(std::vector<Value>& values, const bson_iter_t* condition) {
    bson_iter_t cond = *condition;
    if (!isOperatorDocument(&cond))
        return anyEquals(values, bson_iter_value(&cond));
    bson_iter_t op;
    bson_iter_recurse(&cond, &op);
    while (bson_iter_next(&op)) {
        const QByteArrayView name(bson_iter_key(&op));
        const bson_value_t* operand = bson_iter_value(&op);
        bool ok = true;
        if (name == "$eq") {
            ok = anyEquals(values, operand);
        } else if (name == "$ne") {
            ok = !anyEquals(values, operand);
        } else if (name == "$gt" || name == "$gte" || name == "$lt" || name == "$lte") {
            ok = false;
            for (const Value& value : values) {
                const bson_value_t* v = &value.v;
                if (!sameBracket(v, operand))
                    continue; // type bracketing: 5 is not > "a"
                const int c = compareValues(v, operand);
                if ((name == "$gt" && c > 0) || (name == "$gte" && c >= 0) || (name == "$lt" && c < 0) ||
                    (name == "$lte" && c <= 0)) {
                    ok = true;
                    break;
                }
            }
        } else if (name == "$in" || name == "$nin") {
            bool found = false;
            bson_iter_t element;
            if (BSON_ITER_HOLDS_ARRAY(&op) && bson_iter_recurse(&op, &element)) {
                while (!found && bson_iter_next(&element))
                    found = anyEquals(values, bson_iter_value(&element));
            }
            ok = name == "$in" ? found : !found;
        } else if (name == "$exists") {
            ok = bson_iter_as_bool(&op) == !values.empty();
        } else if (name == "$not") {
            ok = !matchCondition(values, &op);
        } else {
            qCWarning(lcMongoPeer) << "operator not implemented by the peer, treated as matching:"
                                   << name.toByteArray();
        }
        if (!ok)
            return false;
    }
    return true;
}

bool matchFilter(const bson_t* doc, const bson_t* filter) {
    bson_iter_t it;
    if (!filter || !bson_iter_init(&it, filter))
        return true;
    while (bson_iter_next(&it)) {
        const QByteArrayView key(bson_iter_key(&it));
        if (key == "$and" || key == "$or" || key == "$nor") {
            bool any = false, all = true;
            bson_iter_t clause;
            if (BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &clause)) {
                while (bson_iter_next(&clause)) {
                    const Bson sub = iterDocument(&clause);
                    View view(sub);
                    const bool m = matchFilter(doc, view.get());
                    any = any || m;
                    all = all && m;
                }
            }
            const bool ok = key == "$and" ? all : (key == "$or" ? any : !any);
            if (!ok)
                return false;
            continue;
        }
        if (key.startsWith('$')) {
            qCWarning(lcMongoPeer) << "top-level operator not implemented by the peer:" << key.toByteArray();
            continue;
        }
        std::vector<Value> values;
        collectPath(doc, key, &values);
        if (!matchCondition(values, &it))
            return false;
    }
    return true;
}

} // namespace

bool MongoPeerMatcher::isOperatorDocument(const bson_iter_t* it) {
    return tw::test::isOperatorDocument(it);
}

bool MongoPeerMatcher::matches(const Bson& doc, const Bson& filter) {
    if (filter.isAbsent())
        return true;
    View d(doc), f(filter);
    return d.isValid() && matchFilter(d.get(), f.get());
}

void MongoPeerMatcher::sort(QList<Bson>* docs, const Bson& sortSpec) {
    View spec(sortSpec);
    if (!spec.isValid() || bson_empty(spec.get()))
        return;
    std::stable_sort(docs->begin(), docs->end(), [&](const Bson& a, const Bson& b) {
        bson_iter_t key;
        bson_iter_init(&key, spec.get());
        while (bson_iter_next(&key)) {
            const int direction = bson_iter_as_int64(&key) < 0 ? -1 : 1;
            std::vector<Value> va, vb;
            View da(a), db(b);
            collectPath(da.get(), bson_iter_key(&key), &va);
            collectPath(db.get(), bson_iter_key(&key), &vb);
            const bson_value_t* x = va.empty() ? nullptr : &va.front().v;
            const bson_value_t* y = vb.empty() ? nullptr : &vb.front().v;
            const int c = compareValues(x, y) * direction;
            if (c != 0)
                return c < 0;
        }
        return false;
    });
}

Bson MongoPeerMatcher::project(const Bson& doc, const Bson& projection) {
    View spec(projection);
    if (!spec.isValid() || bson_empty(spec.get()))
        return doc;
    QSet<QByteArray> included, excluded;
    bool idExcluded = false;
    bson_iter_t it;
    bson_iter_init(&it, spec.get());
    while (bson_iter_next(&it)) {
        const QByteArray key(bson_iter_key(&it));
        const bool on = bson_iter_as_bool(&it);
        if (key == "_id" && !on)
            idExcluded = true;
        else if (on)
            included.insert(key);
        else
            excluded.insert(key);
    }
    View source(doc);
    BsonBuilder out;
    bson_iter_init(&it, source.get());
    while (bson_iter_next(&it)) {
        const QByteArray key(bson_iter_key(&it));
        bool keep = included.isEmpty() ? !excluded.contains(key) : (included.contains(key) || key == "_id");
        if (key == "_id" && idExcluded)
            keep = false;
        if (keep)
            bson_append_iter(out.get(), nullptr, 0, &it);
    }
    return out.take();
}

QList<Bson> MongoPeerMatcher::runPipeline(QList<Bson> docs, const QList<Bson>& stages, QString* error) {
    for (const Bson& stage : stages) {
        const QString op = firstKey(stage);
        bson_iter_t it;
        findField(stage, op.toUtf8().constData(), &it);
        if (op == QLatin1String("$match")) {
            const Bson filter = iterDocument(&it);
            QList<Bson> kept;
            for (const Bson& doc : std::as_const(docs)) {
                if (matches(doc, filter))
                    kept.append(doc);
            }
            docs = kept;
        } else if (op == QLatin1String("$sort")) {
            sort(&docs, iterDocument(&it));
        } else if (op == QLatin1String("$skip")) {
            docs.remove(0, std::min<qsizetype>(bson_iter_as_int64(&it), docs.size()));
        } else if (op == QLatin1String("$limit")) {
            if (docs.size() > bson_iter_as_int64(&it))
                docs.resize(bson_iter_as_int64(&it));
        } else if (op == QLatin1String("$project")) {
            const Bson spec = iterDocument(&it);
            for (Bson& doc : docs)
                doc = project(doc, spec);
        } else if (op == QLatin1String("$count")) {
            BsonBuilder b;
            bson_append_int32(b.get(), iterString(&it).toUtf8().constData(), -1, int(docs.size()));
            docs = docs.isEmpty() ? QList<Bson>() : QList<Bson>{b.take()};
        } else if (op == QLatin1String("$group")) {
            // Only the counting shape drivers send for countDocuments:
            // {$group: {_id: <constant>, n: {$sum: 1}}}.
            const Bson spec = iterDocument(&it);
            View view(spec);
            BsonBuilder b;
            bson_iter_t field;
            bson_iter_init(&field, view.get());
            while (bson_iter_next(&field)) {
                if (QByteArrayView(bson_iter_key(&field)) == "_id")
                    bson_append_iter(b.get(), "_id", 3, &field);
                else
                    bson_append_int32(b.get(), bson_iter_key(&field), -1, int(docs.size()));
            }
            docs = docs.isEmpty() ? QList<Bson>() : QList<Bson>{b.take()};
        } else {
            if (error)
                *error = op;
            return {};
        }
    }
    return docs;
}

} // namespace tw::test

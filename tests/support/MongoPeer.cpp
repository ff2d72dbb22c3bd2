#include "MongoPeer.h"

#include <QDateTime>
#include <QHostAddress>
#include <QLoggingCategory>
#include <QMap>
#include <QRandomGenerator>
#include <QSet>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTimer>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

Q_LOGGING_CATEGORY(lcMongoPeer, "tidewatch.test.mongopeer")

namespace tw::test {

namespace {

// Wire protocol constants (MongoDB "Legacy Opcodes" and "OP_MSG" pages).
constexpr qint32 OpReply = 1;
constexpr qint32 OpQuery = 2004;
constexpr qint32 OpMsg = 2013;
constexpr quint32 MsgChecksumPresent = 1u << 0;
constexpr quint32 MsgMoreToCome = 1u << 1;
constexpr quint32 MsgExhaustAllowed = 1u << 16;
constexpr qint32 ReplyQueryFailure = 1 << 1;
constexpr qint32 ReplyAwaitCapable = 1 << 3;
// The server's limits, also what hello advertises.
constexpr qint32 MaxBsonObjectSize = 16 * 1024 * 1024;
constexpr qint32 MaxMessageSizeBytes = 48000000;
constexpr int DefaultBatchSize = 101;

qint32 readInt32(const char* p) {
    quint32 v = 0;
    for (int i = 3; i >= 0; --i)
        v = (v << 8) | quint8(p[i]);
    return qint32(v);
}

void appendInt32(QByteArray& out, quint32 v) {
    for (int i = 0; i < 4; ++i)
        out.append(char((v >> (8 * i)) & 0xff));
}

void appendInt64(QByteArray& out, quint64 v) {
    for (int i = 0; i < 8; ++i)
        out.append(char((v >> (8 * i)) & 0xff));
}

// A read-only bson_t over a Bson's bytes, valid while the Bson lives.
class View {
public:
    explicit View(const Bson& bson)
        : m_ok(bson.view(&m_doc)) {}
    const bson_t* get() const { return m_ok ? &m_doc : nullptr; }
    bool isValid() const { return m_ok; }

private:
    bson_t m_doc;
    bool m_ok = false;
};

Bson iterDocument(const bson_iter_t* it) {
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    if (BSON_ITER_HOLDS_DOCUMENT(it))
        bson_iter_document(it, &len, &data);
    else if (BSON_ITER_HOLDS_ARRAY(it))
        bson_iter_array(it, &len, &data);
    else
        return {};
    return Bson::fromRaw(QByteArray(reinterpret_cast<const char*>(data), qsizetype(len)));
}

QString iterString(const bson_iter_t* it) {
    if (!BSON_ITER_HOLDS_UTF8(it))
        return {};
    uint32_t len = 0;
    const char* s = bson_iter_utf8(it, &len);
    return QString::fromUtf8(s, qsizetype(len));
}

bool findField(const Bson& doc, const char* key, bson_iter_t* it) {
    View view(doc);
    return view.isValid() && bson_iter_init_find(it, view.get(), key);
}

QString stringField(const Bson& doc, const char* key) {
    bson_iter_t it;
    return findField(doc, key, &it) ? iterString(&it) : QString();
}

Bson documentField(const Bson& doc, const char* key) {
    bson_iter_t it;
    return findField(doc, key, &it) ? iterDocument(&it) : Bson();
}

bool isNumber(const bson_iter_t* it) {
    return BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_INT64(it) || BSON_ITER_HOLDS_DOUBLE(it);
}

// Numeric fields come as int32, int64 or double depending on the driver.
std::optional<qint64> intField(const Bson& doc, const char* key) {
    bson_iter_t it;
    if (!findField(doc, key, &it) || !isNumber(&it))
        return std::nullopt;
    return qint64(bson_iter_as_int64(&it));
}

bool boolField(const Bson& doc, const char* key) {
    bson_iter_t it;
    return findField(doc, key, &it) && bson_iter_as_bool(&it);
}

QString firstKey(const Bson& doc) {
    View view(doc);
    bson_iter_t it;
    if (!view.isValid() || !bson_iter_init(&it, view.get()) || !bson_iter_next(&it))
        return {};
    return QString::fromUtf8(bson_iter_key(&it));
}

QList<Bson> arrayDocuments(const bson_iter_t* arrayIt) {
    QList<Bson> out;
    bson_iter_t child;
    if (!BSON_ITER_HOLDS_ARRAY(arrayIt) || !bson_iter_recurse(arrayIt, &child))
        return out;
    while (bson_iter_next(&child)) {
        if (BSON_ITER_HOLDS_DOCUMENT(&child))
            out.append(iterDocument(&child));
    }
    return out;
}

void appendArray(bson_t* parent, const char* key, const QList<Bson>& docs) {
    bson_t array;
    bson_append_array_begin(parent, key, -1, &array);
    for (qsizetype i = 0; i < docs.size(); ++i)
        appendDocument(&array, QByteArray::number(i).constData(), docs.at(i));
    bson_append_array_end(parent, &array);
}

void appendUtf8(bson_t* doc, const char* key, const QString& value) {
    const QByteArray utf8 = value.toUtf8();
    bson_append_utf8(doc, key, -1, utf8.constData(), int(utf8.size()));
}

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

bool matches(const Bson& doc, const Bson& filter) {
    if (filter.isAbsent())
        return true;
    View d(doc), f(filter);
    return d.isValid() && matchFilter(d.get(), f.get());
}

void sortDocuments(QList<Bson>* docs, const Bson& sortSpec) {
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

// Top-level inclusion or exclusion projection; _id is kept unless excluded.
Bson project(const Bson& doc, const Bson& projection) {
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

// An ordered list of top-level fields, for building update results.
struct Fields {
    QList<QByteArray> keys;
    QList<Bson> values; // each {"v": value}

    static Fields from(const Bson& doc) {
        Fields f;
        View view(doc);
        bson_iter_t it;
        if (view.isValid() && bson_iter_init(&it, view.get())) {
            while (bson_iter_next(&it))
                f.set(bson_iter_key(&it), &it);
        }
        return f;
    }
    void set(const QByteArray& key, const bson_iter_t* valueIt) {
        BsonBuilder b;
        bson_append_iter(b.get(), "v", 1, valueIt);
        setWrapped(key, b.take());
    }
    void setWrapped(const QByteArray& key, const Bson& wrapped) {
        const qsizetype i = keys.indexOf(key);
        if (i >= 0) {
            values[i] = wrapped;
        } else {
            keys.append(key);
            values.append(wrapped);
        }
    }
    bool remove(const QByteArray& key) {
        const qsizetype i = keys.indexOf(key);
        if (i < 0)
            return false;
        keys.removeAt(i);
        values.removeAt(i);
        return true;
    }
    Bson build() const {
        BsonBuilder b;
        for (qsizetype i = 0; i < keys.size(); ++i) {
            bson_iter_t it;
            if (findField(values.at(i), "v", &it))
                bson_append_iter(b.get(), keys.at(i).constData(), int(keys.at(i).size()), &it);
        }
        return b.take();
    }
};

Bson idKey(const Bson& doc) {
    BsonBuilder key;
    bson_iter_t it;
    if (findField(doc, "_id", &it))
        bson_append_iter(key.get(), "_id", 3, &it);
    return key.take();
}

QString versionForWire(int wire) {
    if (wire >= 21)
        return QStringLiteral("7.0.0");
    if (wire >= 17)
        return QStringLiteral("6.0.0");
    if (wire >= 13)
        return QStringLiteral("5.0.0");
    if (wire >= 9)
        return QStringLiteral("4.4.0");
    if (wire >= 8)
        return QStringLiteral("4.2.0");
    if (wire >= 7)
        return QStringLiteral("4.0.0");
    return QStringLiteral("3.6.0");
}

QString codeNameFor(int code) {
    switch (code) {
    case 260:
        return QStringLiteral("InvalidResumeToken");
    case 280:
        return QStringLiteral("ChangeStreamFatalError");
    case 286:
        return QStringLiteral("ChangeStreamHistoryLost");
    default:
        return QStringLiteral("Location%1").arg(code);
    }
}

bool isHelloName(const QString& name) {
    return name == QLatin1String("hello") ||
           name.compare(QLatin1String("isMaster"), Qt::CaseInsensitive) == 0;
}

bool isExpandedEvent(const QString& op) {
    static const QStringList expanded = {QStringLiteral("create"),
                                         QStringLiteral("createIndexes"),
                                         QStringLiteral("dropIndexes"),
                                         QStringLiteral("modify"),
                                         QStringLiteral("shardCollection"),
                                         QStringLiteral("reshardCollection"),
                                         QStringLiteral("refineCollectionShardKey")};
    return expanded.contains(op);
}

} // namespace

// -------------------------------------------------------------------------------

struct MongoPeer::Connection {
    QTcpSocket* socket = nullptr; // owned; deleteLater() on destruction
    QByteArray buffer;
    int id = 0;
    bool waiting = false; // a getMore is parked; the driver sends nothing until it is answered
    bool closing = false;
    ~Connection() {
        if (socket) {
            socket->disconnect();
            socket->deleteLater();
        }
    }
};

struct MongoPeer::Request {
    qint32 requestId = 0;
    qint32 opCode = OpMsg;
    bool moreToCome = false;
    Bson body;
    QString name;
    QString db;
};

struct MongoPeer::Cursor {
    enum class Kind { Find, ChangeStream };
    Kind kind = Kind::Find;
    qint64 id = 0;
    QString ns; // as reported in the cursor reply
    // Find
    QList<Bson> remaining;
    // Change stream
    QString db, coll;
    bool allDatabases = false;
    qint64 position = 0; // last log position scanned
    QList<Bson> matchStages;
    QString fullDocument = QStringLiteral("default");
    QString fullDocumentBeforeChange = QStringLiteral("off");
    bool showExpandedEvents = false;
    bool invalidated = false;
    Bson postBatchResumeToken;
};

struct MongoPeer::PendingGetMore {
    Connection* connection = nullptr;
    Request request;
    qint64 cursorId = 0;
    int batchSize = 0;
    bool timedOut = false;
    QTimer* timer = nullptr; // owned by the peer (child); deleted with this entry
};

struct MongoPeer::LogEntry {
    qint64 position = 0;
    QString db, coll, operationType;
    Bson event; // with _id, as delivered (before per-cursor full document options)
    Bson preImage, postImage;
    bool fromWrite = false;
    quint32 t = 0, i = 0;
};

struct MongoPeer::Collection {
    QString db, name;
    QList<Bson> documents;
    bool isView = false;
    QString viewOn;
    QList<Bson> pipeline;
    QByteArray uuid;
};

MongoPeer::MongoPeer(QObject* parent)
    : QObject(parent)
    , m_server(new QTcpServer(this)) {
    connect(m_server, &QTcpServer::newConnection, this, &MongoPeer::onNewConnection);
}

MongoPeer::~MongoPeer() {
    for (PendingGetMore* pending : std::as_const(m_pending))
        delete pending;
    m_pending.clear();
}

bool MongoPeer::listen(quint16 port) {
    return m_server->listen(QHostAddress::LocalHost, port);
}

quint16 MongoPeer::port() const {
    return m_server->serverPort();
}

QString MongoPeer::hostAndPort() const {
    return QStringLiteral("127.0.0.1:%1").arg(port());
}

QString MongoPeer::uri() const {
    if (m_replicaSet)
        return QStringLiteral("mongodb://%1/?replicaSet=%2").arg(hostAndPort(), m_setName);
    return QStringLiteral("mongodb://%1/?directConnection=true").arg(hostAndPort());
}

void MongoPeer::setReplicaSet(bool replicaSet) {
    m_replicaSet = replicaSet;
}

quint32 MongoPeer::crc32c(QByteArrayView data) {
    // CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, as OP_MSG's checksum.
    static const std::array<quint32, 256> table = [] {
        std::array<quint32, 256> t{};
        for (quint32 n = 0; n < 256; ++n) {
            quint32 c = n;
            for (int k = 0; k < 8; ++k)
                c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            t[n] = c;
        }
        return t;
    }();
    quint32 crc = 0xFFFFFFFFu;
    for (char ch : data)
        crc = table[(crc ^ quint8(ch)) & 0xff] ^ (crc >> 8);
    return ~crc;
}

// --- store ------------------------------------------------------------------------

void MongoPeer::setDocuments(const QString& db, const QString& coll, const QList<Bson>& documents) {
    createCollection(db, coll);
    m_store.value(db + QLatin1Char('.') + coll)->documents = documents;
}

QList<Bson> MongoPeer::documents(const QString& db, const QString& coll) const {
    const auto c = m_store.value(db + QLatin1Char('.') + coll);
    return c ? c->documents : QList<Bson>();
}

void MongoPeer::createCollection(const QString& db, const QString& coll) {
    const QString key = db + QLatin1Char('.') + coll;
    if (m_store.contains(key))
        return;
    auto c = std::make_shared<Collection>();
    c->db = db;
    c->name = coll;
    c->uuid.resize(16);
    QRandomGenerator::global()->fillRange(reinterpret_cast<quint32*>(c->uuid.data()), 4);
    m_store.insert(key, c);
}

void MongoPeer::createView(const QString& db, const QString& name, const QString& viewOn,
                           const QList<Bson>& pipeline) {
    createCollection(db, name);
    auto c = m_store.value(db + QLatin1Char('.') + name);
    c->isView = true;
    c->viewOn = viewOn;
    c->pipeline = pipeline;
}

void MongoPeer::dropAll() {
    m_store.clear();
}

// --- change log ---------------------------------------------------------------------

Bson MongoPeer::resumeTokenFor(qint64 position) {
    BsonBuilder b;
    appendUtf8(b.get(), "_data", QStringLiteral("%1").arg(position, 16, 16, QLatin1Char('0')).toUpper());
    return b.take();
}

namespace {
// Parses {_data: "<16 hex>"} or an invalidate token "<16 hex>01". Returns false
// for anything else.
bool parseResumeToken(const Bson& token, qint64* position, bool* invalidate) {
    const QString data = stringField(token, "_data");
    if (data.size() != 16 && data.size() != 18)
        return false;
    bool ok = false;
    *position = data.left(16).toLongLong(&ok, 16);
    *invalidate = data.size() == 18;
    return ok && (data.size() == 16 || data.endsWith(QLatin1String("01")));
}

Bson invalidateTokenFor(qint64 position) {
    BsonBuilder b;
    appendUtf8(b.get(), "_data",
               QStringLiteral("%1").arg(position, 16, 16, QLatin1Char('0')).toUpper() + "01");
    return b.take();
}
} // namespace

Bson MongoPeer::latestResumeToken() const {
    return resumeTokenFor(m_lastPosition);
}

void MongoPeer::forgetHistory() {
    // Skipping one position makes even the newest issued token unusable, which is
    // what a test of "history lost" wants; a fresh cursor reports the new position.
    m_log.clear();
    ++m_lastPosition;
    m_historyStart = m_lastPosition;
}

int MongoPeer::changeLogSize() const {
    return int(m_log.size());
}

int MongoPeer::openChangeStreamCount() const {
    return int(std::count_if(m_cursors.begin(), m_cursors.end(), [](const auto& entry) {
        return entry.second->kind == Cursor::Kind::ChangeStream;
    }));
}

void MongoPeer::nextClusterTime(quint32* t, quint32* i) {
    const quint32 now = quint32(QDateTime::currentSecsSinceEpoch());
    if (now > m_clusterSeconds) {
        m_clusterSeconds = now;
        m_clusterIncrement = 1;
    } else {
        ++m_clusterIncrement;
    }
    *t = m_clusterSeconds;
    *i = m_clusterIncrement;
}

Bson MongoPeer::pushChange(const QString& db, const QString& coll, const Bson& event) {
    appendChange(db, coll, event, {}, {});
    return resumeTokenFor(m_lastPosition);
}

void MongoPeer::appendChange(const QString& db, const QString& coll, const Bson& event, const Bson& preImage,
                             const Bson& postImage) {
    LogEntry entry;
    entry.position = ++m_lastPosition;
    entry.db = db;
    entry.coll = coll;
    entry.operationType = stringField(event, "operationType");
    entry.preImage = preImage;
    entry.postImage = postImage;
    entry.fromWrite = !preImage.isAbsent() || !postImage.isAbsent();

    View source(event);
    BsonBuilder b;
    bson_iter_t it;
    if (!findField(event, "_id", &it))
        appendDocument(b.get(), "_id", resumeTokenFor(entry.position));
    if (source.isValid())
        bson_concat(b.get(), source.get());
    if (findField(event, "clusterTime", &it) && BSON_ITER_HOLDS_TIMESTAMP(&it)) {
        bson_iter_timestamp(&it, &entry.t, &entry.i);
    } else {
        nextClusterTime(&entry.t, &entry.i);
        bson_append_timestamp(b.get(), "clusterTime", -1, entry.t, entry.i);
    }
    if (!findField(event, "wallTime", &it))
        bson_append_date_time(b.get(), "wallTime", -1, QDateTime::currentMSecsSinceEpoch());
    if (!findField(event, "ns", &it)) {
        bson_t ns;
        bson_append_document_begin(b.get(), "ns", -1, &ns);
        appendUtf8(&ns, "db", db);
        if (!coll.isEmpty())
            appendUtf8(&ns, "coll", coll);
        bson_append_document_end(b.get(), &ns);
    }
    entry.event = b.take();
    m_log.append(entry);
    wakeWaitingGetMores();
}

bool MongoPeer::changeCursorHasEvents(const Cursor& cursor) const {
    if (cursor.invalidated || cursor.position < m_historyStart)
        return true; // the answer (invalidate or history lost) is ready now
    for (const LogEntry& entry : m_log) {
        if (entry.position <= cursor.position)
            continue;
        if (!cursor.allDatabases && entry.db != cursor.db)
            continue;
        if (!cursor.coll.isEmpty() && entry.coll != cursor.coll)
            continue;
        return true; // may still be filtered by $match; then the getMore waits again
    }
    return false;
}

QList<Bson> MongoPeer::takeChangeBatch(Cursor& cursor, int batchSize) {
    QList<Bson> batch;
    while (!cursor.invalidated && batch.size() < batchSize && cursor.position < m_lastPosition) {
        const qint64 index = cursor.position + 1 - (m_historyStart + 1);
        if (index < 0 || index >= m_log.size())
            break;
        const LogEntry& entry = m_log.at(index);
        cursor.position = entry.position;
        if (!cursor.allDatabases && entry.db != cursor.db)
            continue;
        if (!cursor.coll.isEmpty() && entry.coll != cursor.coll)
            continue;
        if (isExpandedEvent(entry.operationType) && !cursor.showExpandedEvents)
            continue;

        Bson delivered = entry.event;
        if (entry.fromWrite) {
            BsonBuilder b;
            View base(entry.event);
            bson_concat(b.get(), base.get());
            const bool wantsPost = cursor.fullDocument != QLatin1String("default");
            if (entry.operationType == QLatin1String("update") && wantsPost)
                appendDocument(b.get(), "fullDocument", entry.postImage);
            const bool wantsPre = cursor.fullDocumentBeforeChange != QLatin1String("off");
            if (wantsPre && entry.operationType != QLatin1String("insert"))
                appendDocument(b.get(), "fullDocumentBeforeChange", entry.preImage);
            delivered = b.take();
        }
        const bool invalidates =
            cursor.coll.isEmpty()
                ? (!cursor.allDatabases && entry.operationType == QLatin1String("dropDatabase"))
                : (entry.operationType == QLatin1String("drop") ||
                   entry.operationType == QLatin1String("rename"));
        bool passes = true;
        for (const Bson& stage : std::as_const(cursor.matchStages))
            passes = passes && matches(delivered, stage);
        if (passes)
            batch.append(delivered);
        cursor.postBatchResumeToken = resumeTokenFor(cursor.position);
        if (invalidates) {
            BsonBuilder inv;
            appendDocument(inv.get(), "_id", invalidateTokenFor(entry.position));
            bson_append_utf8(inv.get(), "operationType", -1, "invalidate", -1);
            bson_append_timestamp(inv.get(), "clusterTime", -1, entry.t, entry.i);
            bson_append_date_time(inv.get(), "wallTime", -1, QDateTime::currentMSecsSinceEpoch());
            batch.append(inv.take());
            cursor.invalidated = true;
            cursor.postBatchResumeToken = invalidateTokenFor(entry.position);
        }
    }
    if (!cursor.invalidated)
        cursor.postBatchResumeToken = resumeTokenFor(cursor.position);
    return batch;
}

// --- fault injection ------------------------------------------------------------------

void MongoPeer::failNextCommand(const QString& command, const Bson& errorDoc, int times) {
    m_failures.append({command, errorDoc, times});
}

Bson MongoPeer::errorDocument(int code, const QString& codeName, const QString& errmsg,
                              const QStringList& errorLabels) {
    BsonBuilder b;
    bson_append_double(b.get(), "ok", 2, 0.0);
    appendUtf8(b.get(), "errmsg", errmsg);
    bson_append_int32(b.get(), "code", 4, code);
    appendUtf8(b.get(), "codeName", codeName);
    if (!errorLabels.isEmpty()) {
        bson_t labels;
        bson_append_array_begin(b.get(), "errorLabels", -1, &labels);
        for (qsizetype i = 0; i < errorLabels.size(); ++i)
            appendUtf8(&labels, QByteArray::number(i).constData(), errorLabels.at(i));
        bson_append_array_end(b.get(), &labels);
    }
    return b.take();
}

void MongoPeer::dropConnections() {
    std::vector<QTcpSocket*> sockets;
    for (const auto& entry : m_connections)
        sockets.push_back(entry.first);
    for (QTcpSocket* socket : sockets)
        socket->abort(); // emits disconnected, which cleans up the connection
}

void MongoPeer::stall(bool stalled) {
    m_stalled = stalled;
    if (stalled)
        return;
    const QList<PendingGetMore*> pending = m_pending;
    for (PendingGetMore* p : pending) {
        if (m_pending.contains(p) && p->timedOut)
            answerGetMore(p, true);
    }
    wakeWaitingGetMores();
    std::vector<Connection*> connections;
    for (const auto& entry : m_connections)
        connections.push_back(entry.second.get());
    for (Connection* c : connections)
        QMetaObject::invokeMethod(
            this,
            [this, socket = c->socket] {
                auto found = m_connections.find(socket);
                if (found != m_connections.end())
                    processInput(found->second.get());
            },
            Qt::QueuedConnection);
}

// --- observation ----------------------------------------------------------------------

QList<Bson> MongoPeer::receivedCommands(const QString& name) const {
    if (name.isEmpty())
        return m_received;
    QList<Bson> out;
    for (qsizetype i = 0; i < m_received.size(); ++i) {
        if (m_receivedNames.at(i).compare(name, Qt::CaseInsensitive) == 0)
            out.append(m_received.at(i));
    }
    return out;
}

QStringList MongoPeer::receivedCommandNames() const {
    return m_receivedNames;
}

void MongoPeer::clearReceivedCommands() {
    m_received.clear();
    m_receivedNames.clear();
}

// --- sockets and framing --------------------------------------------------------------

void MongoPeer::onNewConnection() {
    while (QTcpSocket* socket = m_server->nextPendingConnection()) {
        // As mongod does: no Nagle delay on replies (otherwise each getMore round trip
        // waited for the driver's delayed ACK, 25 ms a batch).
        socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
        auto connection = std::make_unique<Connection>();
        connection->socket = socket;
        connection->id = m_nextConnectionId++;
        Connection* raw = connection.get();
        m_connections.emplace(socket, std::move(connection));
        ++m_totalConnections;
        connect(socket, &QTcpSocket::readyRead, this, [this, raw] { onReadyRead(raw); });
        connect(socket, &QTcpSocket::disconnected, this, [this, raw] { onDisconnected(raw); });
        Q_EMIT clientConnected();
    }
}

void MongoPeer::onReadyRead(Connection* connection) {
    connection->buffer.append(connection->socket->readAll());
    processInput(connection);
}

void MongoPeer::onDisconnected(Connection* connection) {
    auto found = m_connections.find(connection->socket);
    if (found == m_connections.end())
        return;
    connection->closing = true;
    const QList<PendingGetMore*> pending = m_pending;
    for (PendingGetMore* p : pending) {
        if (p->connection == connection) {
            m_pending.removeOne(p);
            delete p->timer;
            delete p;
        }
    }
    // Deleted on the next event-loop pass: this may run inside processInput()
    // (a failpoint closing the socket) which still holds the pointer.
    m_closed.push_back(std::move(found->second));
    m_connections.erase(found);
    QMetaObject::invokeMethod(
        this, [this] { m_closed.clear(); }, Qt::QueuedConnection);
    Q_EMIT clientDisconnected();
}

void MongoPeer::processInput(Connection* connection) {
    while (!m_stalled && !connection->closing && !connection->waiting && connection->buffer.size() >= 4) {
        const qint32 length = readInt32(connection->buffer.constData());
        if (length < 16 || length > MaxMessageSizeBytes) {
            qCWarning(lcMongoPeer) << "invalid messageLength" << length << "- closing the connection";
            connection->closing = true;
            connection->socket->abort();
            return;
        }
        if (connection->buffer.size() < length)
            return;
        const QByteArray message = connection->buffer.left(length);
        connection->buffer.remove(0, length);
        if (!processMessage(connection, message)) {
            if (!connection->closing) {
                connection->closing = true;
                connection->socket->abort();
            }
            return;
        }
    }
}

bool MongoPeer::processMessage(Connection* connection, const QByteArray& message) {
    const char* p = message.constData();
    const qint32 length = qint32(message.size());
    Request request;
    request.requestId = readInt32(p + 4);
    request.opCode = readInt32(p + 12);

    if (request.opCode == OpQuery) {
        // flags, fullCollectionName, numberToSkip, numberToReturn, query
        qint32 pos = 20;
        const qint32 nameEnd = qint32(message.indexOf('\0', pos));
        if (nameEnd < 0 || nameEnd + 1 + 8 + 5 > length)
            return false;
        const QString fullName = QString::fromUtf8(p + pos, nameEnd - pos);
        pos = nameEnd + 1 + 8;
        const qint32 docLength = readInt32(p + pos);
        if (docLength < 5 || pos + docLength > length)
            return false;
        Bson query = Bson::fromRaw(QByteArray(p + pos, docLength));
        // Drivers wrap the command as {$query: cmd, $readPreference: …} when they
        // pass a read preference.
        for (const char* wrapper : {"$query", "query"}) {
            if (firstKey(query) == QLatin1String(wrapper)) {
                const Bson inner = documentField(query, wrapper);
                if (!inner.isAbsent())
                    query = inner;
                break;
            }
        }
        if (!fullName.endsWith(QLatin1String(".$cmd"))) {
            // Real servers dropped OP_QUERY reads long ago; answer as they do.
            BsonBuilder b;
            appendUtf8(b.get(), "$err", QStringLiteral("OP_QUERY is not supported for %1").arg(fullName));
            bson_append_int32(b.get(), "code", 4, 5739101);
            QByteArray out;
            const Bson doc = b.take();
            const qint32 total = 16 + 20 + qint32(doc.size());
            appendInt32(out, quint32(total));
            appendInt32(out, 0);
            appendInt32(out, quint32(request.requestId));
            appendInt32(out, OpReply);
            appendInt32(out, ReplyQueryFailure);
            appendInt64(out, 0);
            appendInt32(out, 0);
            appendInt32(out, 1);
            out.append(doc.raw());
            connection->socket->write(out);
            return true;
        }
        request.db = fullName.left(fullName.size() - 5);
        request.body = query;
        request.name = firstKey(query);
        dispatch(connection, request);
        return true;
    }

    if (request.opCode != OpMsg) {
        qCWarning(lcMongoPeer) << "unsupported opCode" << request.opCode << "- closing the connection";
        return false;
    }
    if (length < 21)
        return false;
    const quint32 flags = quint32(readInt32(p + 16));
    // Bits 0-15 are "required": a receiver must reject unknown ones.
    if (flags & 0xffffu & ~(MsgChecksumPresent | MsgMoreToCome)) {
        qCWarning(lcMongoPeer) << "unknown required OP_MSG flag bits" << Qt::hex << flags;
        return false;
    }
    Q_UNUSED(MsgExhaustAllowed) // accepted and ignored: the peer never streams replies
    request.moreToCome = flags & MsgMoreToCome;
    qint32 end = length;
    if (flags & MsgChecksumPresent) {
        end -= 4;
        const quint32 expected = quint32(readInt32(p + end));
        if (crc32c(QByteArrayView(p, end)) != expected) {
            qCWarning(lcMongoPeer) << "OP_MSG checksum mismatch - closing the connection";
            return false;
        }
    }
    Bson body;
    QList<QPair<QByteArray, QList<Bson>>> sequences;
    qint32 pos = 20;
    while (pos < end) {
        const quint8 kind = quint8(p[pos++]);
        if (pos + 4 > end)
            return false;
        const qint32 size = readInt32(p + pos);
        if (kind == 0) {
            if (!body.isAbsent() || size < 5 || pos + size > end)
                return false; // exactly one body section
            body = Bson::fromRaw(QByteArray(p + pos, size));
            pos += size;
        } else if (kind == 1) {
            const qint32 sectionEnd = pos + size;
            if (size < 5 || sectionEnd > end)
                return false;
            qint32 cur = pos + 4;
            const qint32 idEnd = qint32(message.indexOf('\0', cur));
            if (idEnd < 0 || idEnd >= sectionEnd)
                return false;
            QByteArray identifier(p + cur, idEnd - cur);
            cur = idEnd + 1;
            QList<Bson> docs;
            while (cur < sectionEnd) {
                if (cur + 4 > sectionEnd)
                    return false;
                const qint32 docLength = readInt32(p + cur);
                if (docLength < 5 || cur + docLength > sectionEnd)
                    return false;
                docs.append(Bson::fromRaw(QByteArray(p + cur, docLength)));
                cur += docLength;
            }
            sequences.append({identifier, docs});
            pos = sectionEnd;
        } else {
            qCWarning(lcMongoPeer) << "unknown OP_MSG section kind" << kind;
            return false;
        }
    }
    if (body.isAbsent())
        return false;
    if (!sequences.isEmpty()) {
        BsonBuilder merged;
        View view(body);
        if (!view.isValid())
            return false;
        bson_concat(merged.get(), view.get());
        for (const auto& [identifier, docs] : std::as_const(sequences))
            appendArray(merged.get(), identifier.constData(), docs);
        body = merged.take();
    }
    {
        View check(body);
        if (!check.isValid() || !bson_validate(check.get(), BSON_VALIDATE_NONE, nullptr))
            return false;
    }
    request.body = body;
    request.name = firstKey(body);
    request.db = stringField(body, "$db");
    dispatch(connection, request);
    return true;
}

void MongoPeer::sendReply(Connection* connection, const Request& request, const Bson& reply) {
    if (request.moreToCome || connection->closing)
        return; // the client asked for no reply (unacknowledged write)
    QByteArray out;
    if (request.opCode == OpQuery) {
        const qint32 total = 16 + 20 + qint32(reply.size());
        out.reserve(total);
        appendInt32(out, quint32(total));
        appendInt32(out, quint32(m_nextRequestId++));
        appendInt32(out, quint32(request.requestId));
        appendInt32(out, OpReply);
        appendInt32(out, ReplyAwaitCapable);
        appendInt64(out, 0); // cursorID: commands return their cursors in the document
        appendInt32(out, 0); // startingFrom
        appendInt32(out, 1); // numberReturned
        out.append(reply.raw());
    } else {
        const qint32 total = 16 + 4 + 1 + qint32(reply.size());
        out.reserve(total);
        appendInt32(out, quint32(total));
        appendInt32(out, quint32(m_nextRequestId++));
        appendInt32(out, quint32(request.requestId));
        appendInt32(out, OpMsg);
        appendInt32(out, 0); // flagBits: no checksum, no moreToCome (no exhaust)
        out.append(char(0));
        out.append(reply.raw());
    }
    connection->socket->write(out);
}

// --- replies --------------------------------------------------------------------------

Bson MongoPeer::finishReply(bson_t* body) const {
    bson_append_double(body, "ok", 2, 1.0);
    appendClusterTime(body);
    return Bson::fromBsonT(body);
}

void MongoPeer::appendClusterTime(bson_t* body) const {
    if (!m_replicaSet)
        return; // a standalone does not gossip cluster time
    const quint32 t = m_clusterSeconds ? m_clusterSeconds : quint32(QDateTime::currentSecsSinceEpoch());
    const quint32 i = m_clusterSeconds ? m_clusterIncrement : 1;
    bson_t clusterTime, signature;
    bson_append_document_begin(body, "$clusterTime", -1, &clusterTime);
    bson_append_timestamp(&clusterTime, "clusterTime", -1, t, i);
    bson_append_document_begin(&clusterTime, "signature", -1, &signature);
    static const uint8_t zeroHash[20] = {};
    bson_append_binary(&signature, "hash", -1, BSON_SUBTYPE_BINARY, zeroHash, sizeof zeroHash);
    bson_append_int64(&signature, "keyId", -1, 0);
    bson_append_document_end(&clusterTime, &signature);
    bson_append_document_end(body, &clusterTime);
    bson_append_timestamp(body, "operationTime", -1, t, i);
}

Bson MongoPeer::errorReply(int code, const QString& codeName, const QString& errmsg,
                           const QStringList& errorLabels) const {
    const Bson base = errorDocument(code, codeName, errmsg, errorLabels);
    BsonBuilder b;
    View view(base);
    bson_concat(b.get(), view.get());
    appendClusterTime(b.get());
    return b.take();
}

void MongoPeer::dispatch(Connection* connection, const Request& request) {
    const QString& name = request.name;
    m_received.append(request.body);
    m_receivedNames.append(name);
    Q_EMIT commandReceived(name);
    if (connection->closing)
        return;

    for (qsizetype i = 0; i < m_failures.size(); ++i) {
        Failure& failure = m_failures[i];
        if (failure.command.compare(name, Qt::CaseInsensitive) != 0 || failure.remaining <= 0)
            continue;
        const Bson reply = failure.reply;
        if (--failure.remaining == 0)
            m_failures.removeAt(i);
        if (boolField(reply, "closeConnection")) {
            connection->closing = true;
            connection->socket->abort();
            return;
        }
        BsonBuilder b;
        bson_iter_t it;
        if (!findField(reply, "ok", &it))
            bson_append_double(b.get(), "ok", 2, 0.0);
        View view(reply);
        bson_concat(b.get(), view.get());
        if (!findField(reply, "$clusterTime", &it))
            appendClusterTime(b.get());
        sendReply(connection, request, b.take());
        return;
    }

    Bson reply;
    if (request.opCode == OpQuery && !isHelloName(name) && m_maxWireVersion >= 14) {
        // Since 5.1 OP_QUERY carries only the handshake.
        reply =
            errorReply(352, QStringLiteral("UnsupportedOpQueryCommand"),
                       QStringLiteral("Unsupported OP_QUERY command: %1. The client driver may require an "
                                      "upgrade. For more details see https://dochub.mongodb.org/core/"
                                      "legacy-opcode-removal")
                           .arg(name));
    } else if (request.opCode == OpMsg && request.db.isEmpty()) {
        reply = errorReply(40571, QStringLiteral("Location40571"),
                           QStringLiteral("OP_MSG requests require a $db argument"));
    } else if (name == QLatin1String("hello")) {
        reply = handleHello(connection, request, false);
    } else if (name.compare(QLatin1String("isMaster"), Qt::CaseInsensitive) == 0) {
        reply = handleHello(connection, request, true);
    } else if (name == QLatin1String("ping") || name == QLatin1String("endSessions")) {
        BsonBuilder b;
        reply = finishReply(b.get());
    } else if (name.compare(QLatin1String("buildInfo"), Qt::CaseInsensitive) == 0) {
        reply = handleBuildInfo();
    } else if (name == QLatin1String("listDatabases")) {
        reply = handleListDatabases(request);
    } else if (name == QLatin1String("listCollections")) {
        reply = handleListCollections(request);
    } else if (name == QLatin1String("find")) {
        reply = handleFind(request);
    } else if (name == QLatin1String("aggregate")) {
        reply = handleAggregate(request);
    } else if (name == QLatin1String("getMore")) {
        if (!handleGetMore(connection, request, &reply))
            return; // parked until events arrive or maxTimeMS passes
    } else if (name == QLatin1String("killCursors")) {
        reply = handleKillCursors(request);
    } else if (name == QLatin1String("insert")) {
        reply = handleInsert(request);
    } else if (name == QLatin1String("update")) {
        reply = handleUpdate(request);
    } else if (name == QLatin1String("delete")) {
        reply = handleDelete(request);
    } else if (name == QLatin1String("count")) {
        reply = handleCount(request);
    } else {
        reply = errorReply(59, QStringLiteral("CommandNotFound"),
                           QStringLiteral("no such command: '%1'").arg(name));
    }
    sendReply(connection, request, reply);
}

Bson MongoPeer::handleHello(Connection* connection, const Request& request, bool legacyName) {
    BsonBuilder b;
    bson_t* d = b.get();
    const QString me = hostAndPort();
    bson_append_bool(d, legacyName ? "ismaster" : "isWritablePrimary", -1, true);
    if (boolField(request.body, "helloOk"))
        bson_append_bool(d, "helloOk", -1, true);
    if (m_replicaSet) {
        bson_append_bool(d, "secondary", -1, false);
        appendUtf8(d, "setName", m_setName);
        bson_append_int32(d, "setVersion", -1, 1);
        bson_t hosts;
        bson_append_array_begin(d, "hosts", -1, &hosts);
        appendUtf8(&hosts, "0", me);
        bson_append_array_end(d, &hosts);
        appendUtf8(d, "primary", me);
        appendUtf8(d, "me", me);
        bson_oid_t election;
        bson_oid_init_from_string(&election, "7fffffff0000000000000001");
        bson_append_oid(d, "electionId", -1, &election);
        quint32 t = m_clusterSeconds ? m_clusterSeconds : quint32(QDateTime::currentSecsSinceEpoch());
        quint32 i = m_clusterSeconds ? m_clusterIncrement : 1;
        const qint64 nowMs = QDateTime::currentMSecsSinceEpoch();
        bson_t lastWrite, opTime, majority;
        bson_append_document_begin(d, "lastWrite", -1, &lastWrite);
        bson_append_document_begin(&lastWrite, "opTime", -1, &opTime);
        bson_append_timestamp(&opTime, "ts", -1, t, i);
        bson_append_int64(&opTime, "t", -1, 1);
        bson_append_document_end(&lastWrite, &opTime);
        bson_append_date_time(&lastWrite, "lastWriteDate", -1, nowMs);
        bson_append_document_begin(&lastWrite, "majorityOpTime", -1, &majority);
        bson_append_timestamp(&majority, "ts", -1, t, i);
        bson_append_int64(&majority, "t", -1, 1);
        bson_append_document_end(&lastWrite, &majority);
        bson_append_date_time(&lastWrite, "majorityWriteDate", -1, nowMs);
        bson_append_document_end(d, &lastWrite);
    }
    bson_append_int32(d, "maxBsonObjectSize", -1, MaxBsonObjectSize);
    bson_append_int32(d, "maxMessageSizeBytes", -1, MaxMessageSizeBytes);
    bson_append_int32(d, "maxWriteBatchSize", -1, 100000);
    bson_append_date_time(d, "localTime", -1, QDateTime::currentMSecsSinceEpoch());
    bson_append_int32(d, "logicalSessionTimeoutMinutes", -1, 30);
    bson_append_int32(d, "connectionId", -1, connection->id);
    bson_append_int32(d, "minWireVersion", -1, 0);
    bson_append_int32(d, "maxWireVersion", -1, m_maxWireVersion);
    bson_append_bool(d, "readOnly", -1, false);
    return finishReply(d);
}

Bson MongoPeer::handleBuildInfo() const {
    const QString version = versionForWire(m_maxWireVersion);
    BsonBuilder b;
    appendUtf8(b.get(), "version", version);
    appendUtf8(b.get(), "gitVersion", QStringLiteral("0000000000000000000000000000000000000000"));
    bson_t array;
    bson_append_array_begin(b.get(), "versionArray", -1, &array);
    const QStringList parts = version.split(QLatin1Char('.'));
    for (int i = 0; i < 4; ++i)
        bson_append_int32(&array, QByteArray::number(i).constData(), -1,
                          i < parts.size() ? parts.at(i).toInt() : 0);
    bson_append_array_end(b.get(), &array);
    bson_append_int32(b.get(), "bits", -1, 64);
    bson_append_bool(b.get(), "debug", -1, false);
    bson_append_int32(b.get(), "maxBsonObjectSize", -1, MaxBsonObjectSize);
    return finishReply(b.get());
}

Bson MongoPeer::handleListDatabases(const Request& request) const {
    QMap<QString, int> databases; // name -> collections, sorted by name
    for (const QString& name : {QStringLiteral("admin"), QStringLiteral("config"), QStringLiteral("local")})
        databases.insert(name, 1);
    for (const auto& c : m_store)
        databases[c->db] += 1;
    const bool nameOnly = boolField(request.body, "nameOnly");
    const Bson filter = documentField(request.body, "filter");
    BsonBuilder b;
    bson_t array;
    bson_append_array_begin(b.get(), "databases", -1, &array);
    qint64 total = 0;
    int index = 0;
    for (auto it = databases.cbegin(); it != databases.cend(); ++it) {
        BsonBuilder entry;
        appendUtf8(entry.get(), "name", it.key());
        const qint64 size = qint64(it.value()) * 8192;
        if (!nameOnly) {
            bson_append_int64(entry.get(), "sizeOnDisk", -1, size);
            bson_append_bool(entry.get(), "empty", -1, false);
        }
        const Bson doc = entry.take();
        if (!matches(doc, filter))
            continue;
        total += size;
        appendDocument(&array, QByteArray::number(index++).constData(), doc);
    }
    bson_append_array_end(b.get(), &array);
    if (!nameOnly) {
        bson_append_int64(b.get(), "totalSize", -1, total);
        bson_append_int64(b.get(), "totalSizeMb", -1, total / (1024 * 1024));
    }
    return finishReply(b.get());
}

Bson MongoPeer::cursorReply(const Cursor& cursor, const QList<Bson>& batch, bool first, qint64 id) const {
    BsonBuilder b;
    bson_t c;
    bson_append_document_begin(b.get(), "cursor", -1, &c);
    appendArray(&c, first ? "firstBatch" : "nextBatch", batch);
    if (cursor.kind == Cursor::Kind::ChangeStream)
        appendDocument(&c, "postBatchResumeToken", cursor.postBatchResumeToken);
    bson_append_int64(&c, "id", -1, id);
    appendUtf8(&c, "ns", cursor.ns);
    bson_append_document_end(b.get(), &c);
    return finishReply(b.get());
}

namespace {
int batchSizeOf(const Bson& command, const char* parent) {
    Bson holder = parent ? documentField(command, parent) : command;
    const auto size = intField(holder, "batchSize");
    return size ? int(*size) : -1;
}
} // namespace

QList<Bson> MongoPeer::takeFindBatch(Cursor& cursor, int batchSize) {
    const qsizetype n =
        batchSize < 0 ? cursor.remaining.size() : std::min<qsizetype>(batchSize, cursor.remaining.size());
    QList<Bson> batch = cursor.remaining.first(n);
    cursor.remaining.remove(0, n);
    return batch;
}

// Opens a find-style cursor over `docs` and returns the first reply; a cursor is
// kept only while documents remain.
Bson MongoPeer::openFindCursor(const QString& ns, QList<Bson> docs, int batchSize, bool singleBatch) {
    auto cursor = std::make_unique<Cursor>();
    cursor->ns = ns;
    cursor->remaining = std::move(docs);
    const QList<Bson> batch = takeFindBatch(*cursor, batchSize < 0 ? DefaultBatchSize : batchSize);
    qint64 id = 0;
    if (!cursor->remaining.isEmpty() && !singleBatch) {
        id = newCursorId();
        cursor->id = id;
    }
    const Bson reply = cursorReply(*cursor, batch, true, id);
    if (id)
        m_cursors.emplace(id, std::move(cursor));
    return reply;
}

qint64 MongoPeer::newCursorId() {
    qint64 id = 0;
    while (id <= 0 || m_cursors.count(id))
        id = qint64(QRandomGenerator::global()->generate64() & 0x7fffffffffffffffULL);
    return id;
}

Bson MongoPeer::handleListCollections(const Request& request) const {
    const bool nameOnly = boolField(request.body, "nameOnly");
    const Bson filter = documentField(request.body, "filter");
    QList<std::shared_ptr<Collection>> collections;
    for (const auto& c : m_store) {
        if (c->db == request.db)
            collections.append(c);
    }
    std::sort(collections.begin(), collections.end(),
              [](const auto& a, const auto& b) { return a->name < b->name; });
    QList<Bson> docs;
    for (const auto& c : std::as_const(collections)) {
        BsonBuilder e;
        appendUtf8(e.get(), "name", c->name);
        bson_append_utf8(e.get(), "type", -1, c->isView ? "view" : "collection", -1);
        if (!nameOnly) {
            bson_t options, info;
            bson_append_document_begin(e.get(), "options", -1, &options);
            if (c->isView) {
                appendUtf8(&options, "viewOn", c->viewOn);
                appendArray(&options, "pipeline", c->pipeline);
            }
            bson_append_document_end(e.get(), &options);
            bson_append_document_begin(e.get(), "info", -1, &info);
            bson_append_bool(&info, "readOnly", -1, c->isView);
            if (!c->isView)
                bson_append_binary(&info, "uuid", -1, BSON_SUBTYPE_UUID,
                                   reinterpret_cast<const uint8_t*>(c->uuid.constData()), 16);
            bson_append_document_end(e.get(), &info);
            if (!c->isView) {
                bson_t idIndex, key;
                bson_append_document_begin(e.get(), "idIndex", -1, &idIndex);
                bson_append_int32(&idIndex, "v", -1, 2);
                bson_append_document_begin(&idIndex, "key", -1, &key);
                bson_append_int32(&key, "_id", -1, 1);
                bson_append_document_end(&idIndex, &key);
                bson_append_utf8(&idIndex, "name", -1, "_id_", -1);
                bson_append_document_end(e.get(), &idIndex);
            }
        }
        const Bson doc = e.take();
        if (matches(doc, filter))
            docs.append(doc);
    }
    // The whole list fits in the first batch: a cursor id of 0 tells the driver so.
    Cursor cursor;
    cursor.ns = request.db + QStringLiteral(".$cmd.listCollections");
    return cursorReply(cursor, docs, true, 0);
}

QList<Bson> MongoPeer::collectionDocuments(const QString& db, const QString& coll,
                                           QList<Bson>* pipeline) const {
    auto c = m_store.value(db + QLatin1Char('.') + coll);
    int depth = 0;
    while (c && c->isView && depth++ < 10) {
        if (pipeline)
            *pipeline = c->pipeline + *pipeline;
        c = m_store.value(db + QLatin1Char('.') + c->viewOn);
    }
    return c ? c->documents : QList<Bson>();
}

Bson MongoPeer::handleFind(const Request& request) {
    const QString coll = stringField(request.body, "find");
    QList<Bson> viewStages;
    QList<Bson> docs = collectionDocuments(request.db, coll, &viewStages);
    QString error;
    docs = runPipeline(docs, viewStages, &error);
    const Bson filter = documentField(request.body, "filter");
    QList<Bson> selected;
    for (const Bson& doc : std::as_const(docs)) {
        if (matches(doc, filter))
            selected.append(doc);
    }
    sortDocuments(&selected, documentField(request.body, "sort"));
    const qint64 skip = intField(request.body, "skip").value_or(0);
    selected.remove(0, std::min<qsizetype>(skip, selected.size()));
    qint64 limit = intField(request.body, "limit").value_or(0);
    bool singleBatch = boolField(request.body, "singleBatch");
    if (limit < 0) {
        limit = -limit;
        singleBatch = true;
    }
    if (limit > 0 && selected.size() > limit)
        selected.resize(limit);
    const Bson projection = documentField(request.body, "projection");
    for (Bson& doc : selected)
        doc = project(doc, projection);
    return openFindCursor(request.db + QLatin1Char('.') + coll, selected, batchSizeOf(request.body, nullptr),
                          singleBatch);
}

QList<Bson> MongoPeer::runPipeline(QList<Bson> docs, const QList<Bson>& stages, QString* error) const {
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
            sortDocuments(&docs, iterDocument(&it));
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

Bson MongoPeer::handleAggregate(const Request& request) {
    bson_iter_t it;
    if (!findField(request.body, "pipeline", &it) || !BSON_ITER_HOLDS_ARRAY(&it))
        return errorReply(14, QStringLiteral("TypeMismatch"),
                          QStringLiteral("'pipeline' option must be specified as an array"));
    const QList<Bson> stages = arrayDocuments(&it);
    if (documentField(request.body, "cursor").isAbsent() && !boolField(request.body, "explain"))
        return errorReply(
            9, QStringLiteral("FailedToParse"),
            QStringLiteral("The 'cursor' option is required, except for aggregate with the explain "
                           "argument"));
    for (qsizetype i = 1; i < stages.size(); ++i) {
        if (firstKey(stages.at(i)) == QLatin1String("$changeStream"))
            return errorReply(40602, QStringLiteral("Location40602"),
                              QStringLiteral("$changeStream is only valid as the first stage in a pipeline"));
    }
    QString coll;
    if (findField(request.body, "aggregate", &it) && BSON_ITER_HOLDS_UTF8(&it))
        coll = iterString(&it);
    if (!stages.isEmpty() && firstKey(stages.first()) == QLatin1String("$changeStream"))
        return handleChangeStream(request, coll, stages);
    if (coll.isEmpty())
        return errorReply(73, QStringLiteral("InvalidNamespace"),
                          QStringLiteral("{aggregate: 1} is not valid for '%1'; a collection is required.")
                              .arg(stages.isEmpty() ? QString() : firstKey(stages.first())));
    QList<Bson> viewStages;
    const QList<Bson> docs = collectionDocuments(request.db, coll, &viewStages);
    QString unknown;
    const QList<Bson> result = runPipeline(docs, viewStages + stages, &unknown);
    if (!unknown.isEmpty())
        return errorReply(40324, QStringLiteral("Location40324"),
                          QStringLiteral("Unrecognized pipeline stage name: '%1'").arg(unknown));
    return openFindCursor(request.db + QLatin1Char('.') + coll, result, batchSizeOf(request.body, "cursor"),
                          false);
}

Bson MongoPeer::handleChangeStream(const Request& request, const QString& coll, const QList<Bson>& stages) {
    if (!changeStreamsSupported())
        return errorReply(40573, QStringLiteral("Location40573"),
                          QStringLiteral("The $changeStream stage is only supported on replica sets"));
    const Bson options = documentField(stages.first(), "$changeStream");
    auto cursor = std::make_unique<Cursor>();
    cursor->kind = Cursor::Kind::ChangeStream;
    cursor->db = request.db;
    cursor->coll = coll;
    cursor->position = m_lastPosition;

    static const QStringList known = {
        QStringLiteral("fullDocument"),         QStringLiteral("fullDocumentBeforeChange"),
        QStringLiteral("resumeAfter"),          QStringLiteral("startAfter"),
        QStringLiteral("startAtOperationTime"), QStringLiteral("allChangesForCluster"),
        QStringLiteral("showExpandedEvents"),   QStringLiteral("allowToRunOnConfigDB"),
        QStringLiteral("showSystemEvents"),     QStringLiteral("showMigrationEvents")};
    int resumeOptions = 0;
    View view(options);
    bson_iter_t it;
    if (view.isValid() && bson_iter_init(&it, view.get())) {
        while (bson_iter_next(&it)) {
            const QString key = QString::fromUtf8(bson_iter_key(&it));
            if (!known.contains(key))
                return errorReply(
                    40415, QStringLiteral("Location40415"),
                    QStringLiteral("BSON field '$changeStream.%1' is an unknown field.").arg(key));
            if (key == QLatin1String("resumeAfter") || key == QLatin1String("startAfter") ||
                key == QLatin1String("startAtOperationTime"))
                ++resumeOptions;
        }
    }
    if (resumeOptions > 1)
        return errorReply(
            40674, QStringLiteral("Location40674"),
            QStringLiteral("Only one type of resume option is allowed, but multiple were found."));

    const QString fullDocument = stringField(options, "fullDocument");
    if (!fullDocument.isEmpty())
        cursor->fullDocument = fullDocument;
    const QString before = stringField(options, "fullDocumentBeforeChange");
    if (!before.isEmpty())
        cursor->fullDocumentBeforeChange = before;
    cursor->showExpandedEvents = boolField(options, "showExpandedEvents");
    cursor->allDatabases = boolField(options, "allChangesForCluster");
    if (cursor->allDatabases && (request.db != QLatin1String("admin") || !coll.isEmpty()))
        return errorReply(
            72, QStringLiteral("InvalidOptions"),
            QStringLiteral(
                "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' "
                "database, and with no collection name"));
    if (!cursor->allDatabases && request.db == QLatin1String("admin"))
        return errorReply(73, QStringLiteral("InvalidNamespace"),
                          QStringLiteral("$changeStream may not be opened on the internal admin database"));

    const bool isStartAfter = findField(options, "startAfter", &it);
    if (isStartAfter || findField(options, "resumeAfter", &it)) {
        const Bson token = iterDocument(&it);
        qint64 position = 0;
        bool invalidate = false;
        if (!parseResumeToken(token, &position, &invalidate) || position < m_historyStart ||
            position > m_lastPosition) {
            const int code = m_historyLostCode;
            const QString message =
                code == 286   ? QStringLiteral("Resume of change stream was not possible, as the "
                                                 "resume point may no longer be in the oplog.")
                : code == 260 ? QStringLiteral("Bad resume token: the resume token was not found")
                              : QStringLiteral("resume of change stream was not possible, as "
                                               "the resume token was not found.");
            return errorReply(code, codeNameFor(code), message);
        }
        if (invalidate && !isStartAfter)
            return errorReply(
                260, QStringLiteral("InvalidResumeToken"),
                QStringLiteral("Attempting to resume a change stream using 'resumeAfter' is not "
                               "allowed from an invalidate notification."));
        cursor->position = position;
    } else if (findField(options, "startAtOperationTime", &it) && BSON_ITER_HOLDS_TIMESTAMP(&it)) {
        quint32 t = 0, i = 0;
        bson_iter_timestamp(&it, &t, &i);
        cursor->position = m_historyStart;
        for (const LogEntry& entry : std::as_const(m_log)) {
            if (entry.t > t || (entry.t == t && entry.i >= i))
                break;
            cursor->position = entry.position;
        }
    }
    for (qsizetype i = 1; i < stages.size(); ++i) {
        if (firstKey(stages.at(i)) == QLatin1String("$match"))
            cursor->matchStages.append(documentField(stages.at(i), "$match"));
        // $project, $addFields, $set, $unset, $replaceRoot, $redact are accepted and
        // not applied: tests only assert that they were sent.
    }
    cursor->ns = coll.isEmpty() ? request.db + QStringLiteral(".$cmd.aggregate")
                                : request.db + QLatin1Char('.') + coll;
    const int batchSize = batchSizeOf(request.body, "cursor");
    const QList<Bson> batch = takeChangeBatch(*cursor, batchSize < 0 ? DefaultBatchSize : batchSize);
    const qint64 id = cursor->invalidated ? 0 : newCursorId();
    cursor->id = id;
    const Bson reply = cursorReply(*cursor, batch, true, id);
    if (id)
        m_cursors.emplace(id, std::move(cursor));
    return reply;
}

bool MongoPeer::handleGetMore(Connection* connection, const Request& request, Bson* reply) {
    bson_iter_t it;
    const qint64 id = findField(request.body, "getMore", &it) ? bson_iter_as_int64(&it) : 0;
    auto found = m_cursors.find(id);
    if (found == m_cursors.end()) {
        *reply = errorReply(43, QStringLiteral("CursorNotFound"),
                            QStringLiteral("cursor id %1 not found").arg(id));
        return true;
    }
    Cursor& cursor = *found->second;
    const int batchSize = batchSizeOf(request.body, nullptr);
    if (cursor.kind == Cursor::Kind::Find) {
        const QList<Bson> batch = takeFindBatch(cursor, batchSize);
        const qint64 replyId = cursor.remaining.isEmpty() ? 0 : id;
        *reply = cursorReply(cursor, batch, false, replyId);
        if (!replyId)
            m_cursors.erase(found);
        return true;
    }
    if (changeCursorHasEvents(cursor)) {
        PendingGetMore now;
        now.connection = connection;
        now.request = request;
        now.cursorId = id;
        now.batchSize = batchSize;
        *reply = changeStreamGetMoreReply(&now);
        if (!reply->isAbsent())
            return true;
    }
    // awaitData: park the request and answer on the next event or at maxTimeMS.
    auto* pending = new PendingGetMore;
    pending->connection = connection;
    pending->request = request;
    pending->cursorId = id;
    pending->batchSize = batchSize;
    pending->timer = new QTimer(this);
    pending->timer->setSingleShot(true);
    connect(pending->timer, &QTimer::timeout, this, [this, pending] { answerGetMore(pending, true); });
    pending->timer->start(int(intField(request.body, "maxTimeMS").value_or(m_defaultAwaitMs)));
    connection->waiting = true;
    m_pending.append(pending);
    return false;
}

// Builds the reply for a change stream getMore. Returns an absent Bson when the
// batch came out empty (events filtered by $match) and the request should keep
// waiting.
Bson MongoPeer::changeStreamGetMoreReply(PendingGetMore* pending, bool force) {
    auto found = m_cursors.find(pending->cursorId);
    if (found == m_cursors.end())
        return errorReply(237, QStringLiteral("CursorKilled"),
                          QStringLiteral("cursor id %1 was killed").arg(pending->cursorId));
    Cursor& cursor = *found->second;
    if (cursor.position < m_historyStart) {
        m_cursors.erase(found);
        return errorReply(
            286, QStringLiteral("ChangeStreamHistoryLost"),
            QStringLiteral("Resume of change stream was not possible, as the resume point may no "
                           "longer be in the oplog."));
    }
    // Without batchSize a getMore returns everything available (up to 16 MB on a server).
    const QList<Bson> batch = takeChangeBatch(cursor, pending->batchSize < 0 ? std::numeric_limits<int>::max()
                                                                             : pending->batchSize);
    if (batch.isEmpty() && !force && !cursor.invalidated)
        return {};
    const qint64 replyId = cursor.invalidated ? 0 : cursor.id;
    const Bson reply = cursorReply(cursor, batch, false, replyId);
    if (!replyId)
        m_cursors.erase(found);
    return reply;
}

void MongoPeer::answerGetMore(PendingGetMore* pending, bool timedOut) {
    if (m_stalled) {
        pending->timedOut = pending->timedOut || timedOut;
        return; // answered when the stall ends
    }
    const Bson reply = changeStreamGetMoreReply(pending, timedOut || pending->timedOut);
    if (reply.isAbsent())
        return;
    m_pending.removeOne(pending);
    Connection* connection = pending->connection;
    sendReply(connection, pending->request, reply);
    connection->waiting = false;
    pending->timer->stop();
    pending->timer->deleteLater();
    delete pending;
    QMetaObject::invokeMethod(
        this,
        [this, socket = connection->socket] {
            auto found = m_connections.find(socket);
            if (found != m_connections.end())
                processInput(found->second.get());
        },
        Qt::QueuedConnection);
}

void MongoPeer::wakeWaitingGetMores() {
    const QList<PendingGetMore*> pending = m_pending;
    for (PendingGetMore* p : pending) {
        if (!m_pending.contains(p))
            continue;
        auto found = m_cursors.find(p->cursorId);
        if (found == m_cursors.end() || changeCursorHasEvents(*found->second))
            answerGetMore(p, false);
    }
}

Bson MongoPeer::handleKillCursors(const Request& request) {
    bson_iter_t it, child;
    QList<qint64> killed, notFound;
    if (findField(request.body, "cursors", &it) && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &child)) {
        while (bson_iter_next(&child)) {
            const qint64 id = bson_iter_as_int64(&child);
            if (m_cursors.erase(id))
                killed.append(id);
            else
                notFound.append(id);
        }
    }
    BsonBuilder b;
    const auto appendIds = [&](const char* key, const QList<qint64>& ids) {
        bson_t array;
        bson_append_array_begin(b.get(), key, -1, &array);
        for (qsizetype i = 0; i < ids.size(); ++i)
            bson_append_int64(&array, QByteArray::number(i).constData(), -1, ids.at(i));
        bson_append_array_end(b.get(), &array);
    };
    appendIds("cursorsKilled", killed);
    appendIds("cursorsNotFound", notFound);
    appendIds("cursorsAlive", {});
    appendIds("cursorsUnknown", {});
    const Bson reply = finishReply(b.get());
    wakeWaitingGetMores(); // a parked getMore on a killed cursor gets CursorKilled
    return reply;
}

// --- writes ---------------------------------------------------------------------------

namespace {
Bson changeEvent(const char* operationType, const QString& db, const QString& coll, const Bson& documentKey) {
    BsonBuilder b;
    bson_append_utf8(b.get(), "operationType", -1, operationType, -1);
    bson_t ns;
    bson_append_document_begin(b.get(), "ns", -1, &ns);
    appendUtf8(&ns, "db", db);
    appendUtf8(&ns, "coll", coll);
    bson_append_document_end(b.get(), &ns);
    appendDocument(b.get(), "documentKey", documentKey);
    return b.take();
}

Bson withField(const Bson& doc, const char* key, const Bson& value) {
    BsonBuilder b;
    View view(doc);
    bson_concat(b.get(), view.get());
    appendDocument(b.get(), key, value);
    return b.take();
}

bool sameId(const Bson& a, const Bson& b) {
    return idKey(a) == idKey(b);
}
} // namespace

Bson MongoPeer::handleInsert(const Request& request) {
    const QString coll = stringField(request.body, "insert");
    createCollection(request.db, coll);
    auto collection = m_store.value(request.db + QLatin1Char('.') + coll);
    bson_iter_t it;
    QList<Bson> docs;
    if (findField(request.body, "documents", &it))
        docs = arrayDocuments(&it);
    const bool ordered = !findField(request.body, "ordered", &it) || bson_iter_as_bool(&it);
    int n = 0;
    QList<Bson> writeErrors;
    for (qsizetype index = 0; index < docs.size(); ++index) {
        Bson doc = docs.at(index);
        if (!findField(doc, "_id", &it)) {
            BsonBuilder b;
            bson_oid_t oid;
            bson_oid_init(&oid, nullptr);
            bson_append_oid(b.get(), "_id", 3, &oid);
            View view(doc);
            bson_concat(b.get(), view.get());
            doc = b.take();
        }
        const bool duplicate = std::any_of(collection->documents.cbegin(), collection->documents.cend(),
                                           [&](const Bson& existing) { return sameId(existing, doc); });
        if (duplicate) {
            BsonBuilder e;
            bson_append_int32(e.get(), "index", -1, int(index));
            bson_append_int32(e.get(), "code", -1, 11000);
            appendUtf8(e.get(), "errmsg",
                       QStringLiteral("E11000 duplicate key error collection: %1.%2 index: _id_ dup key: %3")
                           .arg(request.db, coll, QString::fromUtf8(idKey(doc).toJson())));
            writeErrors.append(e.take());
            if (ordered)
                break;
            continue;
        }
        collection->documents.append(doc);
        ++n;
        if (m_writesProduceChanges && changeStreamsSupported())
            appendChange(request.db, coll,
                         withField(changeEvent("insert", request.db, coll, idKey(doc)), "fullDocument", doc),
                         {}, doc);
    }
    BsonBuilder b;
    bson_append_int32(b.get(), "n", -1, n);
    if (!writeErrors.isEmpty())
        appendArray(b.get(), "writeErrors", writeErrors);
    return finishReply(b.get());
}

namespace {
// Applies an update document (operators $set/$unset/$inc on top-level fields, or
// a replacement) to `doc`. Fills the update description for change events.
bool applyUpdate(const Bson& doc, const Bson& update, Bson* result, Bson* updatedFields,
                 QList<QByteArray>* removedFields, bool* replacement, QString* error) {
    const QString first = firstKey(update);
    *replacement = !first.startsWith(QLatin1Char('$'));
    if (*replacement) {
        BsonBuilder b;
        bson_iter_t it;
        if (!findField(update, "_id", &it) && findField(doc, "_id", &it))
            bson_append_iter(b.get(), "_id", 3, &it);
        View view(update);
        bson_concat(b.get(), view.get());
        *result = b.take();
        return true;
    }
    Fields fields = Fields::from(doc);
    BsonBuilder updated;
    View spec(update);
    bson_iter_t op;
    bson_iter_init(&op, spec.get());
    while (bson_iter_next(&op)) {
        const QByteArrayView name(bson_iter_key(&op));
        bson_iter_t field;
        if (!BSON_ITER_HOLDS_DOCUMENT(&op) || !bson_iter_recurse(&op, &field)) {
            *error = QStringLiteral("Modifiers operate on fields but we found another type instead");
            return false;
        }
        while (bson_iter_next(&field)) {
            const QByteArray key(bson_iter_key(&field));
            if (name == "$set") {
                fields.set(key, &field);
                bson_append_iter(updated.get(), key.constData(), int(key.size()), &field);
            } else if (name == "$unset") {
                if (fields.remove(key))
                    removedFields->append(key);
            } else if (name == "$inc") {
                const qsizetype i = fields.keys.indexOf(key);
                bson_iter_t current;
                double sum = bson_iter_as_double(&field);
                bool integral = !BSON_ITER_HOLDS_DOUBLE(&field);
                if (i >= 0 && findField(fields.values.at(i), "v", &current)) {
                    sum += bson_iter_as_double(&current);
                    integral = integral && !BSON_ITER_HOLDS_DOUBLE(&current);
                }
                BsonBuilder v;
                if (integral)
                    bson_append_int64(v.get(), "v", 1, qint64(sum));
                else
                    bson_append_double(v.get(), "v", 1, sum);
                const Bson wrapped = v.take();
                fields.setWrapped(key, wrapped);
                bson_iter_t value;
                findField(wrapped, "v", &value);
                bson_append_iter(updated.get(), key.constData(), int(key.size()), &value);
            } else {
                *error = QStringLiteral("Unknown modifier: %1").arg(QString::fromUtf8(name.toByteArray()));
                return false;
            }
        }
    }
    *result = fields.build();
    *updatedFields = updated.take();
    return true;
}
} // namespace

Bson MongoPeer::handleUpdate(const Request& request) {
    const QString coll = stringField(request.body, "update");
    createCollection(request.db, coll);
    auto collection = m_store.value(request.db + QLatin1Char('.') + coll);
    bson_iter_t it;
    QList<Bson> updates;
    if (findField(request.body, "updates", &it))
        updates = arrayDocuments(&it);
    int n = 0, modified = 0;
    QList<Bson> upserted, writeErrors;
    for (qsizetype index = 0; index < updates.size(); ++index) {
        const Bson& spec = updates.at(index);
        const Bson query = documentField(spec, "q");
        bson_iter_t u;
        if (!findField(spec, "u", &u) || !BSON_ITER_HOLDS_DOCUMENT(&u)) {
            return errorReply(9, QStringLiteral("FailedToParse"),
                              QStringLiteral("the peer supports only document updates, not pipelines"));
        }
        const Bson update = iterDocument(&u);
        const bool multi = boolField(spec, "multi");
        bool matchedAny = false;
        for (Bson& doc : collection->documents) {
            if (!matches(doc, query))
                continue;
            matchedAny = true;
            Bson result, updatedFields;
            QList<QByteArray> removed;
            bool replacement = false;
            QString error;
            if (!applyUpdate(doc, update, &result, &updatedFields, &removed, &replacement, &error)) {
                BsonBuilder e;
                bson_append_int32(e.get(), "index", -1, int(index));
                bson_append_int32(e.get(), "code", -1, 9);
                appendUtf8(e.get(), "errmsg", error);
                writeErrors.append(e.take());
                break;
            }
            ++n;
            const Bson before = doc;
            if (!(result == doc))
                ++modified;
            doc = result;
            if (m_writesProduceChanges && changeStreamsSupported()) {
                if (replacement) {
                    appendChange(request.db, coll,
                                 withField(changeEvent("replace", request.db, coll, idKey(result)),
                                           "fullDocument", result),
                                 before, result);
                } else {
                    BsonBuilder desc;
                    appendDocument(desc.get(), "updatedFields",
                                   updatedFields.isAbsent() ? Bson::empty() : updatedFields);
                    bson_t removedArray, truncated;
                    bson_append_array_begin(desc.get(), "removedFields", -1, &removedArray);
                    for (qsizetype r = 0; r < removed.size(); ++r)
                        bson_append_utf8(&removedArray, QByteArray::number(r).constData(), -1,
                                         removed.at(r).constData(), int(removed.at(r).size()));
                    bson_append_array_end(desc.get(), &removedArray);
                    bson_append_array_begin(desc.get(), "truncatedArrays", -1, &truncated);
                    bson_append_array_end(desc.get(), &truncated);
                    appendChange(request.db, coll,
                                 withField(changeEvent("update", request.db, coll, idKey(result)),
                                           "updateDescription", desc.take()),
                                 before, result);
                }
            }
            if (!multi)
                break;
        }
        if (!matchedAny && boolField(spec, "upsert")) {
            Bson base = Bson::empty();
            Bson result, updatedFields;
            QList<QByteArray> removed;
            bool replacement = false;
            QString error;
            // Equality fields of the query seed the new document, as on the server.
            Fields seed = Fields::from(query);
            for (qsizetype k = seed.keys.size() - 1; k >= 0; --k) {
                bson_iter_t v;
                if (seed.keys.at(k).startsWith('$') || !findField(seed.values.at(k), "v", &v) ||
                    isOperatorDocument(&v))
                    seed.remove(seed.keys.at(k));
            }
            base = seed.build();
            if (!applyUpdate(base, update, &result, &updatedFields, &removed, &replacement, &error))
                continue;
            if (!findField(result, "_id", &it)) {
                BsonBuilder b;
                bson_oid_t oid;
                bson_oid_init(&oid, nullptr);
                bson_append_oid(b.get(), "_id", 3, &oid);
                View view(result);
                bson_concat(b.get(), view.get());
                result = b.take();
            }
            collection->documents.append(result);
            ++n;
            BsonBuilder up;
            bson_append_int32(up.get(), "index", -1, int(index));
            findField(result, "_id", &it);
            bson_append_iter(up.get(), "_id", 3, &it);
            upserted.append(up.take());
            if (m_writesProduceChanges && changeStreamsSupported())
                appendChange(
                    request.db, coll,
                    withField(changeEvent("insert", request.db, coll, idKey(result)), "fullDocument", result),
                    {}, result);
        }
    }
    BsonBuilder b;
    bson_append_int32(b.get(), "n", -1, n);
    bson_append_int32(b.get(), "nModified", -1, modified);
    if (!upserted.isEmpty())
        appendArray(b.get(), "upserted", upserted);
    if (!writeErrors.isEmpty())
        appendArray(b.get(), "writeErrors", writeErrors);
    return finishReply(b.get());
}

Bson MongoPeer::handleDelete(const Request& request) {
    const QString coll = stringField(request.body, "delete");
    auto collection = m_store.value(request.db + QLatin1Char('.') + coll);
    bson_iter_t it;
    QList<Bson> deletes;
    if (findField(request.body, "deletes", &it))
        deletes = arrayDocuments(&it);
    int n = 0;
    for (const Bson& spec : std::as_const(deletes)) {
        if (!collection)
            break;
        const Bson query = documentField(spec, "q");
        const bool one = intField(spec, "limit").value_or(0) == 1;
        for (qsizetype i = 0; i < collection->documents.size();) {
            const Bson doc = collection->documents.at(i);
            if (!matches(doc, query)) {
                ++i;
                continue;
            }
            collection->documents.removeAt(i);
            ++n;
            if (m_writesProduceChanges && changeStreamsSupported())
                appendChange(request.db, coll, changeEvent("delete", request.db, coll, idKey(doc)), doc, {});
            if (one)
                break;
        }
    }
    BsonBuilder b;
    bson_append_int32(b.get(), "n", -1, n);
    return finishReply(b.get());
}

Bson MongoPeer::handleCount(const Request& request) {
    const QString coll = stringField(request.body, "count");
    QList<Bson> viewStages;
    QList<Bson> docs = collectionDocuments(request.db, coll, &viewStages);
    docs = runPipeline(docs, viewStages, nullptr);
    const Bson query = documentField(request.body, "query");
    const qsizetype n =
        std::count_if(docs.cbegin(), docs.cend(), [&](const Bson& d) { return matches(d, query); });
    BsonBuilder b;
    bson_append_int32(b.get(), "n", -1, int(n));
    return finishReply(b.get());
}

} // namespace tw::test

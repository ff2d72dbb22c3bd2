#include "Projection.h"

#include "filter/QueryJson.h"

#include <vector>

namespace tw {

namespace {

// One level of the projection tree: a leaf projects the whole field (in or out), a
// branch projects the fields of the sub-document (or of each document in an array).
struct Node {
    QByteArray name;
    bool leaf = false;
    std::vector<Node> children;

    const Node* child(const char* key, size_t length) const {
        for (const Node& c : children)
            if (size_t(c.name.size()) == length && memcmp(c.name.constData(), key, length) == 0)
                return &c;
        return nullptr;
    }
    Node* child(const QByteArray& key) {
        for (Node& c : children)
            if (c.name == key)
                return &c;
        return nullptr;
    }
};

struct Leaf {
    QByteArray path;
    bool include = false;
};

QString failure(QString* error, const QString& message) {
    if (error)
        *error = message;
    return message;
}

// Reads the spec into dotted leaves; nested objects are paths ({"a": {"b": 1}} is "a.b").
bool collectLeaves(const bson_t* spec, const QByteArray& prefix, std::vector<Leaf>* leaves, QString* error) {
    for (const bson_iter_t& field : BsonFields(spec)) {
        const QByteArray key(bson_iter_key(&field));
        const QByteArray path = prefix.isEmpty() ? key : prefix + '.' + key;
        const QList<QByteArray> parts = key.split('.');
        for (const QByteArray& part : parts) {
            if (part.isEmpty()) {
                failure(error, QStringLiteral("projection: \"%1\": field names may not be empty; write "
                                              "a dotted path such as \"fullDocument.title\"")
                                   .arg(QString::fromUtf8(path)));
                return false;
            }
            if (part.startsWith('$')) {
                failure(error, QStringLiteral("projection: \"%1\": field names may not start with '$' "
                                              "(operators such as $slice and $elemMatch are not supported)")
                                   .arg(QString::fromUtf8(path)));
                return false;
            }
        }
        switch (bson_iter_type(&field)) {
        case BSON_TYPE_DOCUMENT: {
            bson_t sub;
            if (!iterView(&field, &sub) || bson_count_keys(&sub) == 0) {
                failure(error, QStringLiteral("projection: an empty sub-projection is not a valid value; "
                                              "found an empty object at path %1")
                                   .arg(QString::fromUtf8(path)));
                return false;
            }
            if (!collectLeaves(&sub, path, leaves, error))
                return false;
            continue;
        }
        case BSON_TYPE_BOOL:
            leaves->push_back({path, bson_iter_bool(&field)});
            continue;
        case BSON_TYPE_INT32:
        case BSON_TYPE_INT64:
        case BSON_TYPE_DOUBLE: {
            const double value = bson_iter_as_double(&field);
            if (value == 0 || value == 1) {
                leaves->push_back({path, value == 1});
                continue;
            }
            break;
        }
        default:
            break;
        }
        failure(error, QStringLiteral("projection: \"%1\": must be 0, 1, true or false (expressions are "
                                      "not supported)")
                           .arg(QString::fromUtf8(path)));
        return false;
    }
    return true;
}

bool insertLeaf(Node* root, const QByteArray& path, QString* error) {
    const QList<QByteArray> parts = path.split('.');
    Node* node = root;
    for (qsizetype i = 0; i < parts.size(); ++i) {
        Node* next = node->child(parts[i]);
        const bool last = i == parts.size() - 1;
        if (next && (last || next->leaf)) {
            failure(error,
                    QStringLiteral("projection: Path collision at %1: %2 is projected already")
                        .arg(QString::fromUtf8(path), QString::fromUtf8(parts.mid(0, i + 1).join('.'))));
            return false;
        }
        if (!next) {
            node->children.push_back(Node{parts[i], last, {}});
            next = &node->children.back();
        }
        node = next;
    }
    return true;
}

// Appends the array's elements, renumbered: documents projected through `node`, nested
// arrays walked the same way, other values kept only by an exclusion.
void projectArray(bson_t* out, const bson_iter_t* array, const Node& node, bool inclusion);

void projectDocument(bson_t* out, const bson_iter_t* parent, const bson_t* doc, const Node& node,
                     bool inclusion) {
    bson_iter_t it;
    const bool ok = parent ? bson_iter_recurse(parent, &it) : bson_iter_init(&it, doc);
    if (!ok)
        return;
    while (bson_iter_next(&it)) {
        const uint32_t length = bson_iter_key_len(&it);
        const char* key = bson_iter_key(&it);
        const Node* child = node.child(key, length);
        if (!child) {
            if (!inclusion)
                bson_append_iter(out, key, int(length), &it);
            continue;
        }
        if (child->leaf) {
            if (inclusion)
                bson_append_iter(out, key, int(length), &it);
            continue;
        }
        if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_t sub;
            bson_append_document_begin(out, key, int(length), &sub);
            projectDocument(&sub, &it, nullptr, *child, inclusion);
            bson_append_document_end(out, &sub);
        } else if (BSON_ITER_HOLDS_ARRAY(&it)) {
            bson_t sub;
            bson_append_array_begin(out, key, int(length), &sub);
            projectArray(&sub, &it, *child, inclusion);
            bson_append_array_end(out, &sub);
        } else if (!inclusion) {
            // A path through a scalar excludes nothing; an inclusion finds nothing there.
            bson_append_iter(out, key, int(length), &it);
        }
    }
}

void projectArray(bson_t* out, const bson_iter_t* array, const Node& node, bool inclusion) {
    bson_iter_t it;
    if (!bson_iter_recurse(array, &it))
        return;
    uint32_t index = 0;
    char buffer[16];
    while (bson_iter_next(&it)) {
        const char* key = nullptr;
        const bool document = BSON_ITER_HOLDS_DOCUMENT(&it);
        const bool nested = BSON_ITER_HOLDS_ARRAY(&it);
        if (!document && !nested && inclusion)
            continue;
        const size_t length = bson_uint32_to_string(index++, &key, buffer, sizeof buffer);
        bson_t sub;
        if (document) {
            bson_append_document_begin(out, key, int(length), &sub);
            projectDocument(&sub, &it, nullptr, node, inclusion);
            bson_append_document_end(out, &sub);
        } else if (nested) {
            bson_append_array_begin(out, key, int(length), &sub);
            projectArray(&sub, &it, node, inclusion);
            bson_append_array_end(out, &sub);
        } else {
            bson_append_iter(out, key, int(length), &it);
        }
    }
}

} // namespace

struct Projection::Data {
    Node root;
    bool inclusion = false;
    QByteArray json;
};

Projection Projection::fromJson(QByteArrayView json, QString* error) {
    if (error)
        error->clear();
    const QByteArray trimmed = json.toByteArray().trimmed();
    if (!trimmed.startsWith('{')) {
        failure(error, QStringLiteral("projection: must be \"full\", \"keys\" or an object such as "
                                      "{\"documentKey\": 1, \"fullDocument.title\": 1}"));
        return {};
    }
    Bson spec;
    QString parseError;
    if (!parseQueryJson(trimmed, &spec, &parseError)) {
        failure(error, QStringLiteral("projection: %1").arg(parseError));
        return {};
    }
    return fromBson(spec, error);
}

Projection Projection::fromBson(const Bson& spec, QString* error) {
    if (error)
        error->clear();
    bson_t view;
    if (!spec.view(&view) || bson_count_keys(&view) == 0)
        return {};
    std::vector<Leaf> leaves;
    if (!collectLeaves(&view, QByteArray(), &leaves, error))
        return {};

    // The mode is the one of the first field other than `_id`; `_id` alone decides when
    // it is the only one.
    const Leaf* decider = nullptr;
    for (const Leaf& leaf : leaves)
        if (leaf.path != "_id") {
            decider = &leaf;
            break;
        }
    auto data = std::make_shared<Data>();
    data->inclusion = decider ? decider->include : leaves.front().include;
    data->json = spec.toJson();
    bool idMentioned = false;
    for (const Leaf& leaf : leaves) {
        const bool topId = leaf.path == "_id";
        idMentioned = idMentioned || topId || leaf.path.startsWith("_id.");
        if (!topId && leaf.include != data->inclusion) {
            failure(error,
                    QStringLiteral("projection: Cannot do %1 on field %2 in %3 projection")
                        .arg(leaf.include ? QStringLiteral("inclusion") : QStringLiteral("exclusion"),
                             QString::fromUtf8(leaf.path),
                             data->inclusion ? QStringLiteral("inclusion") : QStringLiteral("exclusion")));
            return {};
        }
        // {"_id": 0} in an inclusion leaves `_id` out of the tree, {"_id": 1} in an
        // exclusion keeps it; excluding seq keeps it too.
        if (topId && leaf.include != data->inclusion)
            continue;
        if (!data->inclusion && (leaf.path == "seq" || leaf.path.startsWith("seq.")))
            continue;
        if (!insertLeaf(&data->root, leaf.path, error))
            return {};
    }
    if (data->inclusion) {
        if (!idMentioned)
            data->root.children.push_back(Node{QByteArrayLiteral("_id"), true, {}});
        Node* seq = data->root.child(QByteArrayLiteral("seq"));
        if (!seq) {
            data->root.children.push_back(Node{QByteArrayLiteral("seq"), true, {}});
        } else {
            seq->leaf = true;
            seq->children.clear();
        }
    }
    Projection projection;
    projection.m_d = std::move(data);
    return projection;
}

Projection Projection::keysOnly() {
    static const Projection keys = fromJson(R"({"fullDocument": 0, "fullDocumentBeforeChange": 0})", nullptr);
    return keys;
}

bool Projection::isInclusion() const {
    return m_d && m_d->inclusion;
}

QByteArray Projection::json() const {
    return m_d ? m_d->json : QByteArray();
}

Bson Projection::apply(const Bson& doc) const {
    bson_t source;
    if (!m_d || !doc.view(&source))
        return doc;
    BsonBuilder out;
    projectDocument(out.get(), nullptr, &source, m_d->root, m_d->inclusion);
    return out.take();
}

} // namespace tw

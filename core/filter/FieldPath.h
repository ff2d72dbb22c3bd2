#pragma once

#include <QByteArrayView>

#include <bson/bson.h>

#include <cstdint>
#include <vector>

// Dotted-path resolution with MongoDB's array rules, shared by Filter and
// SubscriptionIndex so that the index can never disagree with matches(). Private to core/.
namespace tw {

struct PathComponent {
    const char* name = nullptr; // not NUL-terminated; points into the path's owner
    int len = 0;
    int64_t index = -1; // the component read as an array index, or -1
};

// Splits "a.b.0" into components that point into `dotted`, which must outlive them.
std::vector<PathComponent> splitPath(QByteArrayView dotted);

// Advances `it` to the field named `part`; false when the document has no such field.
bool findNext(bson_iter_t* it, const PathComponent& part);
// Finds `part` among the fields of the document (or array) `container` points at.
bool findChild(const bson_iter_t* container, const PathComponent& part, bson_iter_t* out);

// Calls visit(const bson_iter_t* value) for every value that the components
// [k, n) reach from `value` (the element reached by the first k components, or nullptr
// when that was missing); nullptr stands for "missing". Stops and returns true as soon
// as visit does.
//
// MongoDB's rules: an array met before the last component is traversed (every element
// that is a document is searched for the next component; a numeric component also
// indexes the array); nested arrays are not traversed; a document without the field
// yields "missing". With expandLeaf, an array at the end yields each element and then
// the array itself ({a: 1} matches {a: [1, 2]}; {a: [1, 2]} matches it too).
// `yielded` is set when visit ran at least once: a path through arrays that reaches
// nothing at all counts as missing, which the caller decides.
template <class Visit>
bool walkPath(const PathComponent* parts, size_t n, size_t k, const bson_iter_t* value, bool expandLeaf,
              bool& yielded, Visit& visit) {
    if (k == n || !value) {
        yielded = true;
        if (value && expandLeaf && BSON_ITER_HOLDS_ARRAY(value)) {
            bson_iter_t element;
            if (bson_iter_recurse(value, &element))
                while (bson_iter_next(&element))
                    if (visit(&element))
                        return true;
        }
        return visit(value);
    }
    if (BSON_ITER_HOLDS_DOCUMENT(value)) {
        bson_iter_t child;
        const bool found = findChild(value, parts[k], &child);
        return walkPath(parts, n, k + 1, found ? &child : nullptr, expandLeaf, yielded, visit);
    }
    if (BSON_ITER_HOLDS_ARRAY(value)) {
        bson_iter_t element;
        if (!bson_iter_recurse(value, &element))
            return false;
        const int64_t wanted = parts[k].index;
        for (int64_t i = 0; bson_iter_next(&element); ++i) {
            if (i == wanted && walkPath(parts, n, k + 1, &element, expandLeaf, yielded, visit))
                return true;
            if (BSON_ITER_HOLDS_DOCUMENT(&element)) {
                bson_iter_t child;
                const bool found = findChild(&element, parts[k], &child);
                if (walkPath(parts, n, k + 1, found ? &child : nullptr, expandLeaf, yielded, visit))
                    return true;
            }
        }
        return false;
    }
    // A scalar where a document was needed: the rest of the path is missing.
    yielded = true;
    return visit(nullptr);
}

// walkPath from the top, with "reached nothing" reported as one missing value.
template <class Visit>
bool forEachPathValue(const PathComponent* parts, size_t n, const bson_iter_t* first, bool expandLeaf,
                      Visit& visit) {
    bool yielded = false;
    if (walkPath(parts, n, 1, first, expandLeaf, yielded, visit))
        return true;
    return !yielded && visit(nullptr);
}

} // namespace tw

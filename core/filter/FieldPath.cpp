#include "FieldPath.h"

#include <cstring>

namespace tw {

std::vector<PathComponent> splitPath(QByteArrayView dotted) {
    std::vector<PathComponent> parts;
    qsizetype start = 0;
    for (;;) {
        qsizetype dot = dotted.indexOf('.', start);
        if (dot < 0)
            dot = dotted.size();
        PathComponent part;
        part.name = dotted.data() + start;
        part.len = int(dot - start);
        // "0" or digits without a leading zero index arrays; "01" is a field name, as in
        // MongoDB. 18 digits keep the value inside int64.
        if (part.len > 0 && part.len <= 18 && (part.len == 1 || part.name[0] != '0')) {
            int64_t value = 0;
            bool digits = true;
            for (int i = 0; i < part.len && digits; ++i) {
                const char c = part.name[i];
                digits = c >= '0' && c <= '9';
                value = value * 10 + (c - '0');
            }
            if (digits)
                part.index = value;
        }
        part.prefixHash = hashPathComponent(parts.empty() ? kPathHashSeed : parts.back().prefixHash,
                                            part.name, uint32_t(part.len), parts.empty());
        parts.push_back(part);
        if (dot >= dotted.size())
            break;
        start = dot + 1;
    }
    return parts;
}

bool findNext(bson_iter_t* it, const PathComponent& part) {
    const size_t len = size_t(part.len);
    while (bson_iter_next(it))
        if (bson_iter_key_len(it) == len && std::memcmp(bson_iter_key(it), part.name, len) == 0)
            return true;
    return false;
}

bool findInDocument(const uint8_t* data, uint32_t len, const PathComponent& part, bson_iter_t* out) {
    const uint32_t wanted = uint32_t(part.len);
    uint32_t found = UINT32_MAX;
    const bool wellFormed = scanElements(data, len, [&](uint32_t offset, const char* key, uint32_t keyLen) {
        // First byte before memcmp: most keys differ there, and the call is not free.
        if (keyLen == wanted &&
            (wanted == 0 || (key[0] == part.name[0] && std::memcmp(key, part.name, wanted) == 0))) {
            found = offset;
            return true;
        }
        return false;
    });
    if (found != UINT32_MAX)
        return bson_iter_init_from_data_at_offset(out, data, len, found, wanted);
    if (wellFormed)
        return false;
    // Bytes the scanner does not accept: let libbson decide.
    return bson_iter_init_from_data(out, data, len) && findNext(out, part);
}

bool findChild(const bson_iter_t* container, const PathComponent& part, bson_iter_t* out) {
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    if ((iterType(container) == BSON_TYPE_DOCUMENT))
        bson_iter_document(container, &len, &data);
    else if ((iterType(container) == BSON_TYPE_ARRAY))
        bson_iter_array(container, &len, &data);
    else
        return false;
    return findInDocument(data, len, part, out);
}

} // namespace tw

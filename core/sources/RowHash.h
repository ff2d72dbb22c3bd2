#pragma once

#include <QtGlobal>

#include <cstddef>

namespace tw {

// FNV-1a, 64 bit, over `len` bytes, going on from `h`: stable across runs, platforms
// and Qt versions, which matters because the MongoDB and PostgreSQL pollers persist the
// row hashes they build with it in the journal.
inline quint64 fnv1a(const void* data, size_t len, quint64 h = 0xcbf29ce484222325ULL) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < len; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

} // namespace tw

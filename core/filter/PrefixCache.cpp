#include "PrefixCache.h"

namespace tw::filterimpl {

int PrefixTrie::add(const std::vector<PathComponent>& parts) {
    int parent = -1;
    for (const PathComponent& part : parts) {
        int found = -1;
        for (size_t n = 0; n < nodes.size() && found < 0; ++n) {
            const TrieNode& node = nodes[n];
            if (node.parent == parent && node.part.len == part.len &&
                std::memcmp(node.part.name, part.name, size_t(part.len)) == 0)
                found = int(n);
        }
        if (found < 0) {
            if (nodes.size() >= kCacheNodes)
                return -1;
            nodes.push_back(TrieNode{part, parent});
            found = int(nodes.size() - 1);
        }
        parent = found;
    }
    return parent;
}

void PrefixTrie::indexChildren() {
    children.clear();
    for (int parent = -1; parent < int(kCacheNodes); ++parent) {
        childStart[parent + 1] = uint8_t(children.size());
        childLengths[parent + 1] = 0;
        for (size_t n = 0; n < nodes.size(); ++n)
            if (nodes[n].parent == parent) {
                children.push_back(uint8_t(n));
                // Bit L: a child's name is L bytes long; bit 63 also stands for longer.
                childLengths[parent + 1] |= uint64_t(1) << std::min(nodes[n].part.len, 63);
            }
    }
    childStart[kCacheNodes + 1] = uint8_t(children.size());
}

} // namespace tw::filterimpl

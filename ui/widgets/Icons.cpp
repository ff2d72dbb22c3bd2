#include "Icons.h"

#include <QHash>

// The resources live in a static library: without an explicit reference the linker
// drops them. Q_INIT_RESOURCE must be used outside any namespace.
static void initResources() {
    Q_INIT_RESOURCE(tidewatch);
}

namespace tw::ui::Icons {

void ensureResources() {
    static const bool done = [] {
        initResources();
        return true;
    }();
    Q_UNUSED(done);
}

QIcon get(const QString& name) {
    // GUI thread only, like every QIcon.
    ensureResources();
    static QHash<QString, QIcon> cache;
    auto it = cache.find(name);
    if (it == cache.end())
        it = cache.insert(name, QIcon(QStringLiteral(":/tidewatch/icons/%1.svg").arg(name)));
    return *it;
}

} // namespace tw::ui::Icons

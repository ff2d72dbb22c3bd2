#pragma once

#include "sources/Source.h"

#include <QIcon>
#include <QString>

namespace tw::ui::Icons {

// The SVG icon resources/icons/<name>.svg (compiled into the binary), cached.
QIcon get(const QString& name);
// The icon of a source state: resources/icons/state-<SourceStatus::stateName()>.svg.
inline QIcon forState(SourceStatus::State state) {
    return get(QStringLiteral("state-") + SourceStatus::stateName(state));
}
// The Live Feed's mark for a schema change (create, drop, rename, index, modify); no
// icon for data changes, so the schema rows stand out.
inline QIcon forOperation(Operation op) {
    return isSchemaOperation(op) ? get(QStringLiteral("schema")) : QIcon();
}
// Registers the compiled-in resources (icons, app icon); idempotent.
void ensureResources();

} // namespace tw::ui::Icons

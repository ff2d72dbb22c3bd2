#pragma once

#include <QIcon>
#include <QString>

namespace tw::ui::Icons {

// The SVG icon resources/icons/<name>.svg (compiled into the binary), cached.
QIcon get(const QString& name);
// Registers the compiled-in resources (icons, app icon); idempotent.
void ensureResources();

} // namespace tw::ui::Icons

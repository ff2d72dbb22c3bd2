#pragma once

#include "model/ChangeEvent.h"

#include <QColor>
#include <QPalette>
#include <QSet>
#include <QString>

namespace tw::ui {

// Short, human-readable renderings of a change event for tables and headers. All of
// them read the event's BSON on demand; callers cache what they show often.
namespace EventFormat {

QString timeText(const ChangeEvent& event);      // "14:03:07.215" (local time)
QString namespaceText(const ChangeEvent& event); // "demo · main.orders"
QString keyText(const ChangeEvent& event);       // the _id value, or the key as JSON
QString summaryText(const ChangeEvent& event);   // "status → "paid", total → 41.5; removed: note"
QString operationText(const ChangeEvent& event); // "update", "createIndexes", …
// Schema events: operationDescription in words, one line per part ("index by_status on
// status ↑, total ↓ (unique)", "columns before: …", "columns after: …"); empty for
// data changes. The feed shows the lines joined, the Event Detail one per line.
QStringList schemaLines(const ChangeEvent& event);

// A short one-line rendering of the value `iter` points at (strings quoted,
// documents abbreviated).
QString valueText(const bson_iter_t* iter, int maxLength = 60);

// Dotted paths of updateDescription.updatedFields and removedFields.
QSet<QString> updatedPaths(const ChangeEvent& event);
QSet<QString> removedPaths(const ChangeEvent& event);

// Colour of an operation, readable on `palette`'s base colour (dark or light).
QColor operationColor(Operation op, const QPalette& palette);
bool isDark(const QPalette& palette);

// Re-indents one line of (Extended) JSON, two spaces per level; strings untouched.
QString prettyJson(QByteArrayView compact);

} // namespace EventFormat

} // namespace tw::ui

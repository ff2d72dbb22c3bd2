#pragma once

#include "filter/EventShape.h"
#include "model/ChangeEvent.h"

#include <atomic>
#include <functional>
#include <QIODevice>

namespace tw::ui {

// Writes events as NDJSON (one line per event in `shape`, exactly what headless prints
// and a long poll returns for that shape) or CSV (seq, time, source, operation, namespace, key, changes,
// document as JSON). Thread-agnostic: the GUI runs it on a worker thread and polls
// `progress`; setting `cancel` stops it between events.
class FeedExporter {
public:
    enum class Format { Ndjson, Csv };

    static bool write(const ChangeEventList& events, Format format, QIODevice* out,
                      std::atomic<qint64>* progress, const std::atomic<bool>* cancel, QString* error,
                      const EventShape& shape = EventShape());
    static QByteArray csvHeader();
    static QByteArray csvRow(const ChangeEvent& event);
    static Format formatForPath(const QString& path); // by extension; NDJSON unless .csv
};

} // namespace tw::ui

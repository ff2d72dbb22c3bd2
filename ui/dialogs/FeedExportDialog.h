#pragma once

#include "filter/EventShape.h"
#include "model/ChangeEvent.h"

#include <functional>
#include <QString>

class QWidget;

namespace tw::ui {

// File → Export: asks for a file (NDJSON or CSV), writes the events on a worker
// thread behind a progress dialog that can cancel, and reports the outcome. The
// worker owns the file from open to commit; the GUI only polls its progress.
class FeedExportDialog {
public:
    // `parent` owns the progress dialog; `done` gets the success message (not called
    // on failure, which is shown in a message box, or on cancel), and is dropped when
    // `parent` goes first.
    static void run(const ChangeEventList& events, bool selectedOnly, QWidget* parent,
                    std::function<void(const QString& message)> done, const EventShape& shape = EventShape());
};

} // namespace tw::ui

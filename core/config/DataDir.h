#pragma once

#include <QString>

namespace tw {

// Where Tidewatch keeps its files: the settings, the journal, the workspace and the
// demo database. TIDEWATCH_DATA_DIR points a test or a second instance elsewhere.
QString defaultDataDir(); // TIDEWATCH_DATA_DIR, or the platform's application data folder
QString defaultJournalPath();

} // namespace tw

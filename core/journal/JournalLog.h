#pragma once

#include <QLoggingCategory>

// "tidewatch.journal", shared by the writer, the WAL folder, dictionary training and the
// reader. Defined in Journal.cpp.
Q_DECLARE_LOGGING_CATEGORY(lcJournal)

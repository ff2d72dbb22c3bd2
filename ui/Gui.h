#pragma once

#include "CommandLine.h"

namespace tw::ui {

// Builds the main window for `options` inside the running QApplication and runs the
// event loop. Returns the exit code.
int runGui(const AppOptions& options);

} // namespace tw::ui

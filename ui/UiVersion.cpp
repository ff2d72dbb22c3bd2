namespace tw::ui {
const char* version() { return "0.1.0"; }
} // namespace tw::ui

#pragma once

#include "filter/Filter.h"

#include <QTimer>
#include <QWidget>

class QLabel;
class QPlainTextEdit;

namespace tw::ui {

class JsonHighlighter;

// A JSON editor for a subscription filter: highlighting, and validation 150 ms after
// the last keystroke with the message under the editor. JSON syntax errors are
// located (line and column, underlined); query errors come from Filter::compile and
// name the offending path. Empty text means "everything".
class FilterEditor : public QWidget {
    Q_OBJECT
public:
    explicit FilterEditor(QWidget* parent = nullptr);

    QString text() const;
    void setText(const QString& text); // validates at once

    bool isValid() const { return m_valid; }
    QString errorMessage() const { return m_error; }
    Filter filter() const { return m_filter; } // the compiled filter when valid

    void validateNow();

    QPlainTextEdit* editor() const { return m_editor; }
    QLabel* messageLabel() const { return m_message; }

    // The check itself, without a widget: on failure sets *error (and *position to
    // the character offset of a syntax error, or -1).
    static bool validate(const QString& text, Filter* out, QString* error, int* position = nullptr);

Q_SIGNALS:
    void validated(bool valid);
    void edited();

protected:
    void changeEvent(QEvent* event) override;

private:
    QPlainTextEdit* m_editor;       // child
    QLabel* m_message;              // child
    JsonHighlighter* m_highlighter; // owned by m_editor's document
    QTimer m_debounce;
    bool m_valid = true;
    QString m_error;
    Filter m_filter;
};

} // namespace tw::ui

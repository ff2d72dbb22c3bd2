#include "FilterEditor.h"

#include "JsonHighlighter.h"
#include "models/EventFormat.h"

#include <QEvent>
#include <QFontDatabase>
#include <QJsonDocument>
#include <QJsonParseError>
#include <QLabel>
#include <QPlainTextEdit>
#include <QVBoxLayout>

namespace tw::ui {

FilterEditor::FilterEditor(QWidget* parent)
    : QWidget(parent)
    , m_editor(new QPlainTextEdit(this))
    , m_message(new QLabel(this))
    , m_highlighter(new JsonHighlighter(m_editor->document())) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(4);
    m_editor->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_editor->setTabChangesFocus(true);
    m_editor->setPlaceholderText(QStringLiteral("{\"fullDocument.status\": \"paid\"}"));
    m_editor->setLineWrapMode(QPlainTextEdit::WidgetWidth);
    layout->addWidget(m_editor, 1);
    m_message->setWordWrap(true);
    m_message->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(m_message);

    m_debounce.setSingleShot(true);
    m_debounce.setInterval(150);
    connect(&m_debounce, &QTimer::timeout, this, &FilterEditor::validateNow);
    connect(m_editor, &QPlainTextEdit::textChanged, this, [this] {
        m_debounce.start();
        Q_EMIT edited();
    });
    validateNow();
}

QString FilterEditor::text() const {
    return m_editor->toPlainText();
}

void FilterEditor::setText(const QString& text) {
    const QSignalBlocker blocker(m_editor);
    m_editor->setPlainText(text);
    validateNow();
}

bool FilterEditor::validate(const QString& text, Filter* out, QString* error, int* position) {
    if (position)
        *position = -1;
    const QByteArray utf8 = text.trimmed().isEmpty() ? QByteArray("{}") : text.toUtf8();
    // QJsonDocument only to locate syntax errors; the filter itself is compiled from the
    // original text so int64 and key order survive.
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(utf8, &parseError);
    if (parseError.error != QJsonParseError::NoError) {
        const QString prefix = QString::fromUtf8(utf8.left(parseError.offset));
        const int line = int(prefix.count(QLatin1Char('\n'))) + 1;
        const int column = int(prefix.size() - prefix.lastIndexOf(QLatin1Char('\n')));
        if (error)
            *error = tr("Line %1, column %2: %3").arg(line).arg(column).arg(parseError.errorString());
        if (position)
            *position = int(prefix.size());
        return false;
    }
    if (!document.isObject()) {
        if (error)
            *error = tr("A filter is a JSON object, e.g. {\"operationType\": \"insert\"}.");
        return false;
    }
    QString message;
    const Filter filter = Filter::compile(utf8, &message);
    if (!filter.isValid()) {
        if (error)
            *error = message;
        return false;
    }
    if (out)
        *out = filter;
    return true;
}

void FilterEditor::validateNow() {
    m_debounce.stop();
    int position = -1;
    QString error;
    Filter filter;
    m_valid = validate(text(), &filter, &error, &position);
    m_error = m_valid ? QString() : error;
    m_filter = m_valid ? filter : Filter();
    m_highlighter->setErrorPosition(position);
    const bool dark = EventFormat::isDark(palette());
    if (m_valid) {
        m_message->setText(text().trimmed().isEmpty() || filter.matchesEverything()
                               ? tr("✓ Matches every event")
                               : tr("✓ Valid filter"));
        m_message->setStyleSheet(QStringLiteral("color: %1;").arg(dark ? "#6cd07a" : "#1a7f37"));
    } else {
        m_message->setText(QStringLiteral("✗ ") + m_error);
        m_message->setStyleSheet(QStringLiteral("color: %1;").arg(dark ? "#ff7b72" : "#cf222e"));
    }
    Q_EMIT validated(m_valid);
}

void FilterEditor::changeEvent(QEvent* event) {
    if (event->type() == QEvent::PaletteChange) {
        m_highlighter->updateColors(palette());
        validateNow();
    }
    QWidget::changeEvent(event);
}

} // namespace tw::ui

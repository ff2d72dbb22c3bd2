#pragma once

#include <QSyntaxHighlighter>
#include <QTextCharFormat>

namespace tw::ui {

// Colours (Extended) JSON: keys, strings, numbers, literals and MongoDB operators
// ("$gt", "$oid"), which are the part of a filter people get wrong most. An optional
// error position is underlined with a red wave.
class JsonHighlighter : public QSyntaxHighlighter {
    Q_OBJECT
public:
    explicit JsonHighlighter(QTextDocument* document);

    // Absolute character position of a syntax error, or -1.
    void setErrorPosition(int position);
    void updateColors(const QPalette& palette);

protected:
    void highlightBlock(const QString& text) override;

private:
    QTextCharFormat m_key, m_operator, m_string, m_number, m_literal, m_punctuation, m_error;
    int m_errorPosition = -1;
};

} // namespace tw::ui

#include "JsonHighlighter.h"

#include "models/EventFormat.h"

#include <QGuiApplication>
#include <QTextDocument>

namespace tw::ui {

JsonHighlighter::JsonHighlighter(QTextDocument* document)
    : QSyntaxHighlighter(document) {
    updateColors(QGuiApplication::palette());
}

void JsonHighlighter::updateColors(const QPalette& palette) {
    const bool dark = EventFormat::isDark(palette);
    m_key.setForeground(dark ? QColor(0x9c, 0xdc, 0xfe) : QColor(0x0b, 0x45, 0x8c));
    m_operator.setForeground(dark ? QColor(0xd7, 0xa6, 0xff) : QColor(0x82, 0x50, 0xdf));
    m_operator.setFontWeight(QFont::Bold);
    m_string.setForeground(dark ? QColor(0xce, 0x91, 0x78) : QColor(0xa3, 0x15, 0x15));
    m_number.setForeground(dark ? QColor(0xb5, 0xce, 0xa8) : QColor(0x09, 0x86, 0x58));
    m_literal.setForeground(dark ? QColor(0x56, 0x9c, 0xd6) : QColor(0x00, 0x00, 0xff));
    m_punctuation.setForeground(palette.color(QPalette::Disabled, QPalette::Text));
    m_error.setUnderlineStyle(QTextCharFormat::WaveUnderline);
    m_error.setUnderlineColor(QColor(0xe5, 0x3e, 0x3e));
    rehighlight();
}

void JsonHighlighter::setErrorPosition(int position) {
    if (position == m_errorPosition)
        return;
    m_errorPosition = position;
    rehighlight();
}

void JsonHighlighter::highlightBlock(const QString& text) {
    const qsizetype n = text.size();
    qsizetype i = 0;
    while (i < n) {
        const QChar c = text.at(i);
        if (c == QLatin1Char('"')) {
            qsizetype j = i + 1;
            while (j < n && text.at(j) != QLatin1Char('"'))
                j += text.at(j) == QLatin1Char('\\') ? 2 : 1;
            j = std::min(j + 1, n);
            // A string followed by ':' is a key.
            qsizetype k = j;
            while (k < n && text.at(k).isSpace())
                ++k;
            const bool isKey = k < n && text.at(k) == QLatin1Char(':');
            const bool isOperator = j - i > 2 && text.at(i + 1) == QLatin1Char('$');
            setFormat(int(i), int(j - i), isOperator ? m_operator : isKey ? m_key : m_string);
            i = j;
        } else if (c.isDigit() || c == QLatin1Char('-')) {
            qsizetype j = i + 1;
            while (j < n && (text.at(j).isDigit() || QStringLiteral(".eE+-").contains(text.at(j))))
                ++j;
            setFormat(int(i), int(j - i), m_number);
            i = j;
        } else if (c.isLetter()) {
            qsizetype j = i + 1;
            while (j < n && text.at(j).isLetter())
                ++j;
            setFormat(int(i), int(j - i), m_literal);
            i = j;
        } else {
            if (QStringLiteral("{}[]:,").contains(c))
                setFormat(int(i), 1, m_punctuation);
            ++i;
        }
    }
    if (m_errorPosition >= 0) {
        const int start = currentBlock().position();
        const int local = m_errorPosition - start;
        if (local >= 0 && local <= text.size()) {
            // Underline the token at the error (or the last character of the line when
            // the parser stopped at its end).
            int from = std::min<int>(local, std::max<int>(0, int(text.size()) - 1));
            int to = from + 1;
            while (to < text.size() && !text.at(to).isSpace() && !QStringLiteral(",}]").contains(text.at(to)))
                ++to;
            QTextCharFormat f = format(from);
            f.setUnderlineStyle(m_error.underlineStyle());
            f.setUnderlineColor(m_error.underlineColor());
            setFormat(from, to - from, f);
        }
    }
}

} // namespace tw::ui

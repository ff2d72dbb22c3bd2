#include "SparklineDelegate.h"

#include <QApplication>
#include <QPainter>
#include <QPainterPath>

namespace tw::ui {

void SparklineDelegate::paint(QPainter* painter, const QStyleOptionViewItem& option,
                              const QModelIndex& index) const {
    QStyleOptionViewItem opt = option;
    initStyleOption(&opt, index);
    const QString text = opt.text;
    opt.text.clear();
    const QWidget* widget = option.widget;
    QStyle* style = widget ? widget->style() : QApplication::style();
    style->drawControl(QStyle::CE_ItemViewItem, &opt, painter, widget);

    const QList<int> samples = index.data(Role).value<QList<int>>();
    const int textWidth = option.fontMetrics.horizontalAdvance(QStringLiteral("00000/s")) + 6;
    QRect chart = option.rect.adjusted(4, 3, -textWidth - 4, -3);
    painter->save();
    painter->setRenderHint(QPainter::Antialiasing);
    if (samples.size() > 1 && chart.width() > 10) {
        int peak = 1;
        for (int v : samples)
            peak = std::max(peak, v);
        QPainterPath line;
        const qreal step = qreal(chart.width()) / (samples.size() - 1);
        for (int i = 0; i < samples.size(); ++i) {
            const QPointF p(chart.left() + i * step,
                            chart.bottom() - qreal(samples[i]) / peak * chart.height());
            if (i == 0)
                line.moveTo(p);
            else
                line.lineTo(p);
        }
        QPainterPath area = line;
        area.lineTo(chart.right(), chart.bottom());
        area.lineTo(chart.left(), chart.bottom());
        area.closeSubpath();
        QColor accent = option.palette.color(QPalette::Highlight);
        if (option.state & QStyle::State_Selected)
            accent = option.palette.color(QPalette::HighlightedText);
        QColor fill = accent;
        fill.setAlphaF(0.18f);
        painter->fillPath(area, fill);
        painter->setPen(QPen(accent, 1.3));
        painter->drawPath(line);
    }
    painter->setPen(option.palette.color(option.state & QStyle::State_Selected ? QPalette::HighlightedText
                                                                               : QPalette::Text));
    painter->drawText(option.rect.adjusted(0, 0, -4, 0), Qt::AlignRight | Qt::AlignVCenter, text);
    painter->restore();
}

QSize SparklineDelegate::sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const {
    QSize size = QStyledItemDelegate::sizeHint(option, index);
    size.setWidth(std::max(size.width(), 150));
    return size;
}

} // namespace tw::ui

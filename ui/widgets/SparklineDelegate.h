#pragma once

#include <QStyledItemDelegate>

namespace tw::ui {

// Paints a QList<int> stored under Role (oldest first) as a small filled line, with
// the item's display text (the latest rate) at the right.
class SparklineDelegate : public QStyledItemDelegate {
    Q_OBJECT
public:
    static constexpr int Role = Qt::UserRole + 10;
    using QStyledItemDelegate::QStyledItemDelegate;

    void paint(QPainter* painter, const QStyleOptionViewItem& option,
               const QModelIndex& index) const override;
    QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override;
};

} // namespace tw::ui

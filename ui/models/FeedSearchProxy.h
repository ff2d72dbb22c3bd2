#pragma once

#include <QSortFilterProxyModel>

namespace tw::ui {

class ChangeFeedModel;

// Quick search over a feed: keeps the rows whose rendered JSON, namespace or
// operation contains the text (ASCII case-insensitive). It reads the events' cached
// JSON bytes directly instead of going through data(), so filtering 250 000 rows does
// not build 250 000 display strings. Only installed on a view while a search is typed.
class FeedSearchProxy : public QSortFilterProxyModel {
    Q_OBJECT
public:
    explicit FeedSearchProxy(QObject* parent = nullptr);

    void setFeed(ChangeFeedModel* feed); // not owned
    QString searchText() const { return m_text; }
    void setSearchText(const QString& text);

protected:
    bool filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const override;

private:
    ChangeFeedModel* m_feed = nullptr;
    QString m_text;
    QByteArray m_needle;
};

} // namespace tw::ui

#include "FeedSearchProxy.h"

#include "ChangeFeedModel.h"

namespace tw::ui {

FeedSearchProxy::FeedSearchProxy(QObject* parent)
    : QSortFilterProxyModel(parent) {}

void FeedSearchProxy::setFeed(ChangeFeedModel* feed) {
    m_feed = feed;
    setSourceModel(feed);
}

void FeedSearchProxy::setSearchText(const QString& text) {
    if (text == m_text)
        return;
    m_text = text;
    m_needle = text.toUtf8();
    invalidateRowsFilter();
}

bool FeedSearchProxy::filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const {
    Q_UNUSED(sourceParent);
    if (m_needle.isEmpty() || !m_feed)
        return true;
    const ChangeEvent event = m_feed->eventAt(sourceRow);
    const QLatin1StringView needle(m_needle);
    // Latin-1 views over UTF-8 bytes: ASCII letters fold case, other bytes compare
    // exactly, which is what a quick search needs.
    if (QLatin1StringView(event.toJson()).contains(needle, Qt::CaseInsensitive))
        return true;
    return event.sourceId().contains(m_text, Qt::CaseInsensitive);
}

} // namespace tw::ui

#include "PgSlotName.h"

#include <QCryptographicHash>
#include <QRegularExpression>

namespace tw {

namespace {

const QString kPrefix = QStringLiteral("tidewatch_");
// 48 bits of the journal's UUID: two journals on one server colliding is a one in
// 2^24 chance only past 16 million journals, and it leaves 40 bytes for the source id.
constexpr int kJournalDigits = 12;
constexpr int kHashDigits = 8;

} // namespace

QString PgSlotName::sanitize(const QString& text) {
    static const QRegularExpression other(QStringLiteral("[^a-z0-9_]+"));
    QString s = text.toLower();
    s.replace(other, QStringLiteral("_"));
    return s;
}

QString PgSlotName::legacy(const QString& sourceId) {
    return (kPrefix + sanitize(sourceId)).left(kMaxLength);
}

QString PgSlotName::forJournal(const QString& journalId, const QString& sourceId) {
    QString journal = journalId.toLower();
    journal.remove(QRegularExpression(QStringLiteral("[^0-9a-f]")));
    if (journal.isEmpty())
        return legacy(sourceId);
    const QString head = kPrefix + journal.left(kJournalDigits) + QLatin1Char('_');
    const QString source = sanitize(sourceId);
    // An id that had to change ("Shop-DB" and "shop_db" both read shop_db) carries a
    // hash of itself, so two sources never share a slot.
    if (source == sourceId && head.size() + source.size() <= kMaxLength)
        return head + source;
    const QString hash = QString::fromLatin1(
        QCryptographicHash::hash(sourceId.toUtf8(), QCryptographicHash::Sha1).toHex().left(kHashDigits));
    return head + source.left(kMaxLength - head.size() - 1 - kHashDigits) + QLatin1Char('_') + hash;
}

} // namespace tw

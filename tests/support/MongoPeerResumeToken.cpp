#include "MongoPeerResumeToken.h"

#include "MongoPeerBson.h"

#include <QString>

namespace tw::test {

using namespace peerbson;

namespace {
QString hexPosition(qint64 position) {
    return QStringLiteral("%1").arg(position, 16, 16, QLatin1Char('0')).toUpper();
}
} // namespace

Bson MongoPeerResumeToken::forPosition(qint64 position) {
    BsonBuilder b;
    appendUtf8(b.get(), "_data", hexPosition(position));
    return b.take();
}

Bson MongoPeerResumeToken::invalidateFor(qint64 position) {
    BsonBuilder b;
    appendUtf8(b.get(), "_data", hexPosition(position) + "01");
    return b.take();
}

bool MongoPeerResumeToken::parse(const Bson& token, qint64* position, bool* invalidate) {
    const QString data = stringField(token, "_data");
    if (data.size() != 16 && data.size() != 18)
        return false;
    bool ok = false;
    *position = data.left(16).toLongLong(&ok, 16);
    *invalidate = data.size() == 18;
    return ok && (data.size() == 16 || data.endsWith(QLatin1String("01")));
}

} // namespace tw::test

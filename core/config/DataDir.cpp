#include "DataDir.h"

#include <QDir>
#include <QStandardPaths>

namespace tw {

QString defaultDataDir() {
    const QByteArray override = qgetenv("TIDEWATCH_DATA_DIR");
    if (!override.isEmpty())
        return QString::fromLocal8Bit(override);
    return QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
}

QString defaultJournalPath() {
    return QDir(defaultDataDir()).filePath(QStringLiteral("journal.sqlite"));
}

} // namespace tw

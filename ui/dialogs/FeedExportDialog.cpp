#include "FeedExportDialog.h"

#include "models/FeedExporter.h"

#include <memory>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QMessageBox>
#include <QProgressDialog>
#include <QSaveFile>
#include <QThread>
#include <QTimer>

namespace tw::ui {

void FeedExportDialog::run(const ChangeEventList& events, bool selectedOnly, QWidget* parent,
                           std::function<void(const QString& message)> done, const EventShape& shape) {
    if (events.isEmpty()) {
        QMessageBox::information(parent, QObject::tr("Export"),
                                 selectedOnly ? QObject::tr("Select rows in the feed first.")
                                              : QObject::tr("The feed is empty."));
        return;
    }
    QString selectedFilter;
    QString path =
        QFileDialog::getSaveFileName(parent, QObject::tr("Export %1 Events").arg(events.size()),
                                     QDir::home().filePath(QStringLiteral("tidewatch-export.ndjson")),
                                     QObject::tr("NDJSON (*.ndjson *.jsonl);;CSV (*.csv)"), &selectedFilter);
    if (path.isEmpty())
        return;
    if (selectedFilter.startsWith(QLatin1String("CSV")) && QFileInfo(path).suffix().isEmpty())
        path += QStringLiteral(".csv");
    const FeedExporter::Format format = FeedExporter::formatForPath(path);

    auto progress = std::make_shared<std::atomic<qint64>>(0);
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    auto error = std::make_shared<QString>();
    auto ok = std::make_shared<bool>(false);
    // The worker owns the file from open to commit; the GUI only polls `progress`.
    QThread* worker = QThread::create([=] {
        QSaveFile file(path);
        if (!file.open(QIODevice::WriteOnly)) {
            *error = file.errorString();
            return;
        }
        *ok = FeedExporter::write(events, format, &file, progress.get(), cancel.get(), error.get(), shape) &&
              file.commit();
        if (!*ok && error->isEmpty())
            *error = file.errorString();
    });
    auto* dialog = new QProgressDialog(QObject::tr("Exporting %1 events…").arg(events.size()),
                                       QObject::tr("Cancel"), 0, int(events.size()), parent);
    dialog->setWindowModality(Qt::WindowModal);
    dialog->setMinimumDuration(300); // short exports finish without a flash of a dialog
    auto* poll = new QTimer(dialog);
    QObject::connect(poll, &QTimer::timeout, dialog,
                     [dialog, progress] { dialog->setValue(int(progress->load())); });
    QObject::connect(dialog, &QProgressDialog::canceled, dialog, [cancel] { cancel->store(true); });
    QObject::connect(worker, &QThread::finished, parent, [=] {
        poll->stop();
        dialog->deleteLater();
        worker->deleteLater();
        if (*ok)
            done(QObject::tr("Exported %1 events to %2").arg(events.size()).arg(path));
        else if (!cancel->load())
            QMessageBox::warning(parent, QObject::tr("Export"),
                                 QObject::tr("Export to %1 failed: %2").arg(path, *error));
    });
    poll->start(100);
    worker->start();
}

} // namespace tw::ui

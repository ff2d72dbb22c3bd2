#include "Gui.h"

#include "AppSession.h"
#include "engine/Engine.h"
#include "MainWindow.h"

#include <QApplication>
#include <QImage>
#include <QMessageBox>
#include <QPixmap>
#include <QPushButton>
#include <QTimer>

#include <cstdio>

namespace tw::ui {

namespace {

// Starts the window; on a journal that cannot be opened offers to move it aside and
// start a fresh one (nothing is deleted).
bool startWithRecovery(MainWindow* window, const AppOptions& options) {
    for (;;) {
        QString error;
        Engine::StartError code = Engine::StartError::None;
        if (window->start(&error, &code))
            return true;
        if (!options.screenshot.isEmpty()) {
            std::fprintf(stderr, "tidewatch: %s\n", qPrintable(error));
            return false;
        }
        // Another Tidewatch holds it: a fresh journal would not help.
        const bool inUse = code == Engine::StartError::JournalInUse;
        QMessageBox box(QMessageBox::Critical, QObject::tr("Tidewatch"),
                        QObject::tr("Tidewatch cannot open its journal."), QMessageBox::NoButton);
        box.setInformativeText(error);
        QPushButton* moveAside = nullptr;
        if (!inUse) {
            moveAside = box.addButton(QObject::tr("Move Aside and Start Fresh"), QMessageBox::AcceptRole);
            box.setDetailedText(
                QObject::tr("Moving aside renames the journal to <name>.broken-<time>; nothing is "
                            "deleted, and the old events can still be read from it."));
        }
        box.addButton(QMessageBox::Close);
        box.exec();
        if (!moveAside || box.clickedButton() != moveAside)
            return false;
        QString movedTo;
        if (!window->session()->moveJournalAside(&movedTo, &error)) {
            QMessageBox::critical(nullptr, QObject::tr("Tidewatch"), error);
            return false;
        }
    }
}

} // namespace

int runGui(const AppOptions& options) {
    QApplication::setWindowIcon(QIcon(QStringLiteral(":/tidewatch/icon.svg")));
    QApplication::setApplicationDisplayName(QStringLiteral("Tidewatch"));
    MainWindow window(options);
    if (options.moveJournalAside) {
        QString movedTo, error;
        if (!window.session()->moveJournalAside(&movedTo, &error))
            std::fprintf(stderr, "tidewatch: %s\n", qPrintable(error));
    }
    if (!startWithRecovery(&window, options))
        return 1;
    if (!options.screenshot.isEmpty())
        window.resize(1440, 900);
    window.show();

    if (!options.screenshot.isEmpty()) {
        // Shortly before the shot, select an event so the detail dock shows one.
        // TIDEWATCH_SCREENSHOT_RAISE=Filters,SSE (dock titles, comma-separated) brings
        // tabbed docks to the front, for reviewing the ones hidden by default.
        QTimer::singleShot(std::max(0, options.screenshotDelayMs - 600), &window, [&window] {
            window.selectRecentEvent();
            const QStringList raise = qEnvironmentVariable("TIDEWATCH_SCREENSHOT_RAISE")
                                          .split(QLatin1Char(','), Qt::SkipEmptyParts);
            for (QDockWidget* dock : window.docks())
                for (const QString& title : raise)
                    if (dock->windowTitle().startsWith(title.trimmed(), Qt::CaseInsensitive))
                        dock->raise();
        });
        QTimer::singleShot(options.screenshotDelayMs, &window, [&window, &options] {
            const QImage image = window.grab().toImage();
            if (image.isNull() || !image.save(options.screenshot, "PNG")) {
                std::fprintf(stderr, "tidewatch: cannot write the screenshot to %s\n",
                             qPrintable(options.screenshot));
                QApplication::exit(1);
                return;
            }
            std::fprintf(stderr, "tidewatch: screenshot written to %s (%dx%d)\n",
                         qPrintable(options.screenshot), image.width(), image.height());
            QApplication::exit(0);
        });
    }
    return QApplication::exec();
}

} // namespace tw::ui

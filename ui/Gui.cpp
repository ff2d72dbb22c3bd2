#include "Gui.h"

#include <QApplication>
#include <QLabel>
#include <QMainWindow>

namespace tw::ui {

int runGui(const AppOptions& options)
{
    Q_UNUSED(options);
    QMainWindow window;
    window.setWindowTitle(QStringLiteral("Tidewatch"));
    window.setCentralWidget(new QLabel(QStringLiteral("Tidewatch")));
    window.resize(1200, 800);
    window.show();
    return QApplication::exec();
}

} // namespace tw::ui

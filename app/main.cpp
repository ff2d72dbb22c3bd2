#include "CommandLine.h"
#include "HeadlessRunner.h"
#include "McpRunner.h"

#include "Gui.h"

#include <cstdio>
#include <memory>
#include <QApplication>
#include <QCoreApplication>

int main(int argc, char** argv) {
    QCoreApplication::setOrganizationName(QStringLiteral("Tidewatch"));
    QCoreApplication::setApplicationName(QStringLiteral("tidewatch"));
    QCoreApplication::setApplicationVersion(QStringLiteral(TIDEWATCH_VERSION));

    QStringList arguments;
    for (int i = 0; i < argc; ++i)
        arguments.append(QString::fromLocal8Bit(argv[i]));
    tw::AppOptions options;
    QString error;
    bool exitNow = false;
    {
        // QCommandLineParser needs an application object for its messages.
        QCoreApplication probe(argc, argv);
        if (!tw::parseCommandLine(arguments, &options, &error, &exitNow)) {
            std::fprintf(stderr, "tidewatch: %s\n", qPrintable(error));
            return 2;
        }
    }
    if (exitNow)
        return 0;

    if (options.mcp) {
        QCoreApplication app(argc, argv);
        tw::installQuitOnSignals();
        tw::McpRunner runner(options);
        const int code = runner.start();
        return code >= 0 ? code : app.exec();
    }

    if (options.headless) {
        QCoreApplication app(argc, argv);
        tw::installQuitOnSignals();
        tw::HeadlessRunner runner(options);
        const int code = runner.start();
        if (code >= 0)
            return code;
        return app.exec();
    }

    QApplication app(argc, argv);
    tw::installQuitOnSignals();
    return tw::ui::runGui(options);
}

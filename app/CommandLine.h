#pragma once

#include <QString>
#include <QStringList>

namespace tw {

// Everything the command line can say, for the GUI and headless alike.
struct AppOptions {
    bool headless = false;
    bool mcp = false; // --mcp: the Model Context Protocol on stdin/stdout
    bool demo = false;
    double demoRate = 20.0;
    QString source;   // URI
    QString sourceId; // defaults from the URI
    QStringList watches;
    QString filter;     // JSON
    QString projection; // full, keys or a projection object as JSON; empty: full
    QString event;      // event-name template; empty: NDJSON lines are the events themselves
    bool capture = false;
    QString sse;                  // "[ADDR:]PORT"; empty: no server
    QString publish;              // nats://HOST:PORT: publish committed events to JetStream
    QString gateway;              // nats://HOST:PORT[/STREAM]: serve an ingest's stream, no database
    QString natsStream;           // empty: TIDEWATCH
    qint64 natsMaxAgeSeconds = 0; // limits of a stream --publish creates; 0: none
    qint64 natsMaxBytes = 0;
    bool natsMemoryStorage = false; // --nats-storage memory
    qint64 fromSeq = -1;
    QString workspace;
    QString journal;
    bool moveJournalAside = false;
    QString screenshot;
    int screenshotDelayMs = 4000;
};

// Parses argv. On a usage error returns false with a one-line message; on --help or
// --version prints and sets *exitNow.
bool parseCommandLine(const QStringList& arguments, AppOptions* options, QString* error, bool* exitNow);

QString defaultSourceId(const QString& uri);

} // namespace tw

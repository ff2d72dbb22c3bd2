#pragma once

#include <atomic>
#include <QObject>
#include <QString>
#include <QThread>

struct sqlite3;

namespace tw {

// The built-in demo: an SQLite file with a small shop (customers, orders,
// notifications) and a writer thread that keeps changing it the way an application
// would: new orders, status moves paid → shipped → delivered, notifications created,
// read and purged, the odd customer update. Each table keeps its newest few thousand
// rows (older ones are archived, that is deleted, with the insert that passes the
// mark), so the demo can run for hours at thousands of changes per second.
class DemoWriter : public QThread {
    Q_OBJECT
public:
    explicit DemoWriter(const QString& path, QObject* parent = nullptr);
    ~DemoWriter() override; // stops and joins

    // Creates the file and its tables with a few hundred seed rows if absent.
    static bool ensureDatabase(const QString& path, QString* error = nullptr);
    static QString defaultPath(); // <data dir>/demo.sqlite

    // Changes per second (default 20). Takes effect at once.
    void setRate(double changesPerSecond) { m_rate.store(changesPerSecond); }
    double rate() const { return m_rate.load(); }
    qint64 changesWritten() const { return m_written.load(); }
    void requestStop() { m_stop.store(true); }

protected:
    void run() override;

private:
    QString m_path;
    std::atomic<double> m_rate{20.0};
    std::atomic<bool> m_stop{false};
    std::atomic<qint64> m_written{0};
};

} // namespace tw

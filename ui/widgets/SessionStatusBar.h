#pragma once

#include <QStatusBar>
#include <QTimer>

class QLabel;

namespace tw {
class AppSession;
} // namespace tw

namespace tw::ui {

// The window's status bar: each connection's state, events per second, the journal's
// last seq and where SSE serves. Refreshed once a second and when the session reports
// a change; showMessage() works as on any status bar.
class SessionStatusBar : public QStatusBar {
    Q_OBJECT
public:
    // `session` is not owned and must outlive the bar.
    explicit SessionStatusBar(AppSession* session, QWidget* parent = nullptr);

    void refresh();

Q_SIGNALS:
    void ticked(); // once a second, after the refresh

private:
    AppSession* m_session; // not owned
    qint64 m_eventsThisSecond = 0;
    qint64 m_eventsLastSecond = 0;
    QTimer m_timer;
    QLabel* m_sources = nullptr; // children, all of them
    QLabel* m_rate = nullptr;
    QLabel* m_seq = nullptr;
    QLabel* m_sse = nullptr;
};

} // namespace tw::ui

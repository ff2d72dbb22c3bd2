#pragma once

#include <QDockWidget>
#include <QTimer>

class QCheckBox;
class QLabel;
class QLineEdit;
class QPushButton;

namespace tw {
class AppSession;
}

namespace tw::ui {

// Publishing to NATS JetStream, the window's --publish: the server's URL and the
// stream, a button to start or stop, and how far the publisher has got (the seq
// JetStream acknowledged, how many events and seconds it is behind, why it backs off).
// Settings (on/off, URL, stream) persist through tw::Settings, so a window that
// published goes on publishing at its next start. The publisher is the session's.
class PublishDock : public QDockWidget {
    Q_OBJECT
public:
    // `session` is not owned and must outlive the dock.
    explicit PublishDock(AppSession* session, QWidget* parent = nullptr);

    // Starts publishing to the URL and stream shown; false with a message naming
    // what is wrong (the URL, most of the time).
    bool startPublishing(QString* error = nullptr);
    void stopPublishing();
    bool isPublishing() const;
    QString stateText() const; // what the state line says

private:
    void updateState();

    AppSession* m_session; // not owned
    QTimer m_refresh;

    QLabel* m_state = nullptr; // children, all of them
    QPushButton* m_toggle = nullptr;
    QLineEdit* m_url = nullptr;
    QLineEdit* m_stream = nullptr;
    QCheckBox* m_memory = nullptr;
    QLabel* m_error = nullptr;
};

} // namespace tw::ui

#pragma once

#include <QDockWidget>
#include <QHash>
#include <QTimer>

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QToolButton;
class QTreeWidget;

namespace tw {
class AppSession;
class SseServer;
} // namespace tw

namespace tw::ui {

// The SSE Server: on/off, address and port, the bearer token (hidden until revealed,
// copyable), connected clients with their subscription and how far behind they are,
// and "Copy curl command" for the subscription selected in the Live Feed. Settings
// (enabled, address, port) persist through tw::Settings. The server is the
// session's: the dock only shows it and asks the session to start or stop it.
class SseDock : public QDockWidget {
    Q_OBJECT
public:
    // `session` is not owned and must outlive the dock.
    explicit SseDock(AppSession* session, QWidget* parent = nullptr);

    SseServer* server() const;
    bool isRunning() const;
    // Asks the session to serve on the address and port shown; the settings follow
    // once it serves. The token may still be on its way from the keychain: the
    // server then starts when it arrives.
    bool startServer(QString* error = nullptr);
    void stopServer();
    void setCurrentSubscription(const QString& id, const QString& name);
    QString curlCommand() const;

Q_SIGNALS:
    void runningChanged(bool running, const QUrl& url);

private:
    void updateState();
    // The client list changes with every connection: refreshed at most every
    // kClientsRefreshMs, and only while the dock is shown.
    void scheduleClientsRefresh();
    void refreshClients();
    void showError(const QString& message);

    AppSession* m_session; // not owned
    QString m_subscriptionId;
    QString m_subscriptionName;
    QTimer m_refresh;
    QTimer m_coalesce;
    QHash<quint64, QTreeWidgetItem*> m_clientItems; // by client id; items owned by m_clients

    QLabel* m_state = nullptr; // children, all of them
    QPushButton* m_toggle = nullptr;
    QComboBox* m_address = nullptr;
    QSpinBox* m_port = nullptr;
    QLabel* m_url = nullptr;
    QLineEdit* m_token = nullptr;
    QToolButton* m_reveal = nullptr;
    QPushButton* m_curl = nullptr;
    QLabel* m_error = nullptr;
    QTreeWidget* m_clients = nullptr;
};

} // namespace tw::ui

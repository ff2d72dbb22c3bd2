#include "SseDock.h"

#include "AppSession.h"
#include "config/Settings.h"
#include "engine/Engine.h"
#include "http/SseServer.h"
#include "widgets/Icons.h"

#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QPushButton>
#include <QSet>
#include <QSpinBox>
#include <QToolButton>
#include <QTreeWidget>
#include <QVBoxLayout>

namespace tw::ui {

namespace {
// Twice a second is as fresh as a person reads a list of connections.
constexpr int kClientsRefreshMs = 500;
} // namespace

SseDock::SseDock(AppSession* session, QWidget* parent)
    : QDockWidget(tr("SSE Server"), parent)
    , m_session(session) {
    setObjectName(QStringLiteral("SseDock"));
    auto* body = new QWidget(this);
    auto* columns = new QHBoxLayout(body);
    columns->setContentsMargins(8, 6, 8, 6);
    columns->setSpacing(12);

    auto* left = new QVBoxLayout;
    auto* stateRow = new QHBoxLayout;
    m_state = new QLabel(body);
    stateRow->addWidget(m_state, 1);
    m_toggle = new QPushButton(body);
    stateRow->addWidget(m_toggle);
    left->addLayout(stateRow);

    auto* form = new QFormLayout;
    form->setContentsMargins(0, 0, 0, 0);
    m_address = new QComboBox(body);
    m_address->setEditable(true);
    m_address->addItems({QStringLiteral("127.0.0.1"), QStringLiteral("::1"), QStringLiteral("0.0.0.0")});
    m_address->setToolTip(tr("127.0.0.1 serves this machine only; any other address needs the token"));
    m_port = new QSpinBox(body);
    m_port->setRange(0, 65535);
    m_port->setSpecialValueText(tr("any free port"));
    auto* bind = new QHBoxLayout;
    bind->addWidget(m_address, 1);
    bind->addWidget(new QLabel(tr("port"), body));
    bind->addWidget(m_port);
    form->addRow(tr("Listen on:"), bind);
    m_url = new QLabel(body);
    m_url->setTextInteractionFlags(Qt::TextBrowserInteraction);
    m_url->setOpenExternalLinks(true);
    form->addRow(tr("URL:"), m_url);

    auto* tokenRow = new QHBoxLayout;
    m_token = new QLineEdit(body);
    m_token->setReadOnly(true);
    m_token->setEchoMode(QLineEdit::Password);
    m_reveal = new QToolButton(body);
    m_reveal->setIcon(Icons::get(QStringLiteral("eye")));
    m_reveal->setCheckable(true);
    m_reveal->setToolTip(tr("Show the token"));
    auto* copyToken = new QToolButton(body);
    copyToken->setIcon(Icons::get(QStringLiteral("copy")));
    copyToken->setToolTip(tr("Copy the token"));
    tokenRow->addWidget(m_token, 1);
    tokenRow->addWidget(m_reveal);
    tokenRow->addWidget(copyToken);
    form->addRow(tr("Token:"), tokenRow);
    left->addLayout(form);

    m_curl = new QPushButton(Icons::get(QStringLiteral("copy")), tr("Copy curl command"), body);
    left->addWidget(m_curl);
    m_error = new QLabel(body);
    m_error->setWordWrap(true);
    m_error->setStyleSheet(QStringLiteral("color: #cf222e;"));
    m_error->hide();
    left->addWidget(m_error);
    left->addStretch(1);
    columns->addLayout(left, 2);

    m_clients = new QTreeWidget(body);
    m_clients->setRootIsDecorated(false);
    m_clients->setUniformRowHeights(true);
    m_clients->setHeaderLabels(
        {tr("Client"), tr("Subscription"), tr("Last seq"), tr("Behind"), tr("Buffered"), tr("Connected")});
    m_clients->header()->setStretchLastSection(true);
    m_clients->header()->resizeSection(0, 110);
    m_clients->header()->resizeSection(1, 90);
    m_clients->header()->resizeSection(2, 70);
    m_clients->header()->resizeSection(3, 60);
    m_clients->header()->resizeSection(4, 70);
    columns->addWidget(m_clients, 3);
    setWidget(body);

    Settings settings;
    m_address->setCurrentText(settings.stringValue(Settings::Key::SseAddress));
    m_port->setValue(settings.intValue(Settings::Key::SsePort));

    connect(m_toggle, &QPushButton::clicked, this, [this] {
        if (isRunning()) {
            stopServer();
        } else {
            QString error;
            if (!startServer(&error))
                showError(error);
        }
    });
    connect(m_reveal, &QToolButton::toggled, this, [this](bool on) {
        m_token->setEchoMode(on ? QLineEdit::Normal : QLineEdit::Password);
        m_reveal->setToolTip(on ? tr("Hide the token") : tr("Show the token"));
    });
    connect(copyToken, &QToolButton::clicked, this,
            [this] { QApplication::clipboard()->setText(m_token->text()); });
    connect(m_curl, &QPushButton::clicked, this,
            [this] { QApplication::clipboard()->setText(curlCommand()); });
    // Rebuilding the list for every connection made and ended, 500 clients coming and
    // going ~45 times a second, took the GUI thread most of a core (items, local-time
    // formatting) and left the Live Feed minutes behind the journal.
    m_coalesce.setSingleShot(true);
    m_coalesce.setInterval(kClientsRefreshMs);
    connect(&m_coalesce, &QTimer::timeout, this, &SseDock::refreshClients);
    connect(m_session, &AppSession::sseClientsChanged, this, &SseDock::scheduleClientsRefresh);
    connect(this, &QDockWidget::visibilityChanged, this, [this](bool visible) {
        if (visible)
            refreshClients();
    });
    connect(m_session, &AppSession::sseStarted, this, [this] {
        // Persisted once it serves, so a failed start leaves the settings as they were.
        Settings settings;
        settings.setValue(Settings::Key::SseEnabled, true);
        settings.setValue(Settings::Key::SseAddress, m_address->currentText().trimmed());
        settings.setValue(Settings::Key::SsePort, m_port->value());
        m_error->hide();
        updateState();
    });
    connect(m_session, &AppSession::sseStopped, this, &SseDock::updateState);
    connect(m_session, &AppSession::sseFailed, this, &SseDock::showError);
    connect(m_session, &AppSession::sseTokenLoaded, m_token, &QLineEdit::setText);
    m_refresh.setInterval(1000);
    connect(&m_refresh, &QTimer::timeout, this, &SseDock::refreshClients);
    // Shown once it is there; from the keychain that takes a moment.
    m_token->setText(m_session->sseToken());
    m_session->loadSseToken();
    updateState();
}

SseServer* SseDock::server() const {
    return m_session->sseServer();
}

bool SseDock::isRunning() const {
    return m_session->isSseRunning();
}

bool SseDock::startServer(QString* error) {
    return m_session->startSse(m_address->currentText().trimmed(), quint16(m_port->value()), error);
}

void SseDock::stopServer() {
    m_session->stopSse();
    Settings().setValue(Settings::Key::SseEnabled, false);
    updateState();
}

void SseDock::showError(const QString& message) {
    m_error->setText(message);
    m_error->show();
}

void SseDock::setCurrentSubscription(const QString& id, const QString& name) {
    m_subscriptionId = id;
    m_subscriptionName = name;
    updateState();
}

QString SseDock::curlCommand() const {
    return server()->curlCommand(m_subscriptionId);
}

void SseDock::updateState() {
    const bool running = isRunning();
    const QUrl url = server()->baseUrl();
    m_state->setText(running ? tr("<span style='color:#2da44e'>●</span> <b>Serving</b> %1 client(s)")
                                   .arg(server()->clients().size())
                             : tr("<span style='color:gray'>○</span> <b>Stopped</b>"));
    m_toggle->setText(running ? tr("Stop") : tr("Start"));
    m_address->setEnabled(!running);
    m_port->setEnabled(!running);
    if (running) {
        const QString events =
            url.toString() + QStringLiteral("/v1/subscriptions/%1/events").arg(m_subscriptionId);
        m_url->setText(QStringLiteral("<a href='%1/v1/health'>%1</a>").arg(url.toString()));
        m_url->setToolTip(events);
    } else {
        m_url->setText(tr("<span style='color:gray'>not serving</span>"));
    }
    m_curl->setEnabled(!m_subscriptionId.isEmpty());
    m_curl->setText(m_subscriptionName.isEmpty() ? tr("Copy curl command")
                                                 : tr("Copy curl command for “%1”").arg(m_subscriptionName));
    m_curl->setToolTip(curlCommand());
    if (running)
        m_refresh.start();
    else
        m_refresh.stop();
    refreshClients();
    Q_EMIT runningChanged(running, url);
}

void SseDock::scheduleClientsRefresh() {
    if (!m_coalesce.isActive())
        m_coalesce.start();
}

void SseDock::refreshClients() {
    const QList<SseServer::ClientInfo> clients = server()->clients();
    if (isRunning())
        m_state->setText(
            tr("<span style='color:#2da44e'>●</span> <b>Serving</b> · %1 client(s)").arg(clients.size()));
    if (!isVisible()) {
        // A tab behind another: filled again when shown (ids start over with a new
        // server, so kept items could show another client's peer).
        m_clients->clear();
        m_clientItems.clear();
        return;
    }
    const qint64 head = m_session->engine()->lastCommittedSeq();
    const QLocale locale;
    // Items are kept by client id: what never changes is set once.
    QSet<quint64> present;
    present.reserve(clients.size());
    for (const SseServer::ClientInfo& c : clients) {
        present.insert(c.id);
        QTreeWidgetItem*& item = m_clientItems[c.id];
        if (!item) {
            item = new QTreeWidgetItem(m_clients);
            item->setText(0, c.peer);
            item->setText(1, c.subscriptionId);
            item->setText(5, c.connectedAt.toLocalTime().toString(QStringLiteral("HH:mm:ss")));
        }
        item->setText(2, QString::number(c.lastSentSeq));
        item->setText(3, locale.toString(std::max<qint64>(0, head - c.lastSentSeq)));
        item->setText(4, locale.formattedDataSize(c.pendingBytes));
    }
    for (auto it = m_clientItems.begin(); it != m_clientItems.end();) {
        if (present.contains(it.key())) {
            ++it;
        } else {
            delete it.value();
            it = m_clientItems.erase(it);
        }
    }
}

} // namespace tw::ui

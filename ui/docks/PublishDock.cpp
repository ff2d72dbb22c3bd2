#include "PublishDock.h"

#include "AppSession.h"
#include "config/Settings.h"
#include "nats/NatsPublisher.h"

#include <QCheckBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QPushButton>
#include <QVBoxLayout>

namespace tw::ui {

PublishDock::PublishDock(AppSession* session, QWidget* parent)
    : QDockWidget(tr("NATS Publish"), parent)
    , m_session(session) {
    setObjectName(QStringLiteral("PublishDock"));
    auto* body = new QWidget(this);
    auto* layout = new QVBoxLayout(body);
    layout->setContentsMargins(8, 6, 8, 6);

    auto* stateRow = new QHBoxLayout;
    m_state = new QLabel(body);
    m_state->setWordWrap(true);
    m_state->setTextInteractionFlags(Qt::TextSelectableByMouse);
    stateRow->addWidget(m_state, 1);
    m_toggle = new QPushButton(body);
    m_toggle->setObjectName(QStringLiteral("publishToggle"));
    stateRow->addWidget(m_toggle, 0, Qt::AlignTop);
    layout->addLayout(stateRow);

    auto* form = new QFormLayout;
    form->setContentsMargins(0, 0, 0, 0);
    m_url = new QLineEdit(body);
    m_url->setObjectName(QStringLiteral("publishUrl"));
    m_url->setPlaceholderText(QStringLiteral("nats://127.0.0.1:4222"));
    m_url->setToolTip(tr("The NATS server with JetStream enabled (nats-server -js)"));
    form->addRow(tr("Server:"), m_url);
    m_stream = new QLineEdit(body);
    m_stream->setPlaceholderText(QStringLiteral("TIDEWATCH"));
    m_stream->setToolTip(tr("The JetStream stream; made when it does not exist"));
    form->addRow(tr("Stream:"), m_stream);
    m_memory = new QCheckBox(tr("Keep a new stream in memory"), body);
    m_memory->setObjectName(QStringLiteral("publishMemory"));
    m_memory->setToolTip(tr("Faster once gateways read it, but lost when nats-server stops: gateways then "
                            "report a gap for what they had not read. Off: the stream is kept on files. "
                            "An existing stream keeps its own storage."));
    form->addRow(QString(), m_memory);
    layout->addLayout(form);

    auto* note = new QLabel(tr("Every committed event goes to subject tidewatch.<source>.<db>.<coll>, once "
                               "and in order, also after a crash. Gateways (tidewatch --gateway) serve "
                               "it to their own clients with the same ids."),
                            body);
    note->setWordWrap(true);
    note->setStyleSheet(QStringLiteral("color: palette(placeholder-text);"));
    layout->addWidget(note);
    m_error = new QLabel(body);
    m_error->setObjectName(QStringLiteral("publishError"));
    m_error->setWordWrap(true);
    m_error->setStyleSheet(QStringLiteral("color: #cf222e;"));
    m_error->hide();
    layout->addWidget(m_error);
    layout->addStretch(1);
    setWidget(body);

    const Settings settings;
    m_url->setText(settings.stringValue(Settings::Key::NatsUrl));
    m_stream->setText(settings.stringValue(Settings::Key::NatsStream));
    m_memory->setChecked(settings.boolValue(Settings::Key::NatsMemoryStorage));

    connect(m_toggle, &QPushButton::clicked, this, [this] {
        if (isPublishing()) {
            stopPublishing();
            return;
        }
        QString error;
        if (!startPublishing(&error)) {
            m_error->setText(error);
            m_error->show();
        }
    });
    // The publisher's figures move with every acknowledgement: once a second is enough.
    m_refresh.setInterval(1000);
    connect(&m_refresh, &QTimer::timeout, this, &PublishDock::updateState);
    m_refresh.start();
    updateState();
}

bool PublishDock::isPublishing() const {
    return m_session->publisher() != nullptr;
}

bool PublishDock::startPublishing(QString* error) {
    NatsPublisher::Options options;
    options.url = m_url->text().trimmed();
    if (options.url.isEmpty())
        options.url = m_url->placeholderText();
    if (!m_stream->text().trimmed().isEmpty())
        options.stream = m_stream->text().trimmed();
    options.memoryStorage = m_memory->isChecked();
    if (!NatsPublisher::checkUrl(options.url, error) || !m_session->startPublisher(options, error)) {
        updateState();
        return false;
    }
    Settings settings;
    settings.setValue(Settings::Key::NatsPublish, true);
    settings.setValue(Settings::Key::NatsUrl, options.url);
    settings.setValue(Settings::Key::NatsStream, options.stream);
    settings.setValue(Settings::Key::NatsMemoryStorage, options.memoryStorage);
    m_error->hide();
    updateState();
    return true;
}

void PublishDock::stopPublishing() {
    m_session->stopPublisher();
    Settings().setValue(Settings::Key::NatsPublish, false);
    updateState();
}

QString PublishDock::stateText() const {
    return m_state->text();
}

void PublishDock::updateState() {
    const NatsPublisher* publisher = m_session->publisher();
    m_toggle->setText(publisher ? tr("Stop") : tr("Publish"));
    m_url->setEnabled(!publisher);
    m_stream->setEnabled(!publisher);
    m_memory->setEnabled(!publisher);
    if (!publisher) {
        m_state->setText(tr("Not publishing."));
        return;
    }
    const NatsPublisher::Status s = publisher->status();
    const QLocale locale;
    QString text;
    switch (s.state) {
    case NatsPublisher::State::Publishing:
        text = tr("Publishing: JetStream holds every event through seq %1.").arg(locale.toString(s.ackedSeq));
        break;
    case NatsPublisher::State::Connecting:
        text = tr("Connecting…");
        break;
    case NatsPublisher::State::Backoff:
        text = tr("Waiting to try again: %1").arg(s.reason);
        break;
    case NatsPublisher::State::Stopped:
        text = tr("Stopped.");
        break;
    }
    if (s.lagEvents > 0)
        text += QLatin1Char(' ') + tr("Behind by %1 events (%2 s).")
                                       .arg(locale.toString(s.lagEvents))
                                       .arg(locale.toString(s.lagSeconds, 'f', 1));
    if (s.gaps > 0)
        text += QLatin1Char(' ') +
                tr("%1 gap messages for events pruned before they were sent.").arg(locale.toString(s.gaps));
    m_state->setText(text);
}

} // namespace tw::ui

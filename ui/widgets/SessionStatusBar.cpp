#include "SessionStatusBar.h"

#include "AppSession.h"
#include "http/SseServer.h"

#include <QDir>
#include <QLabel>
#include <QLocale>

namespace tw::ui {

SessionStatusBar::SessionStatusBar(AppSession* session, QWidget* parent)
    : QStatusBar(parent)
    , m_session(session) {
    m_sources = new QLabel(this);
    m_rate = new QLabel(this);
    m_seq = new QLabel(this);
    m_sse = new QLabel(this);
    addWidget(m_sources, 1);
    addPermanentWidget(m_rate);
    addPermanentWidget(m_seq);
    addPermanentWidget(m_sse);

    connect(session, &AppSession::committed, this,
            [this](const CommittedBatch& batch) { m_eventsThisSecond += batch.events.size(); });
    connect(session, &AppSession::sourceStatusChanged, this, &SessionStatusBar::refresh);
    connect(session, &AppSession::connectionAdded, this, &SessionStatusBar::refresh);
    connect(session, &AppSession::connectionRemoved, this, &SessionStatusBar::refresh);
    connect(session, &AppSession::sseStarted, this, &SessionStatusBar::refresh);
    connect(session, &AppSession::sseStopped, this, &SessionStatusBar::refresh);
    m_timer.setInterval(1000);
    connect(&m_timer, &QTimer::timeout, this, [this] {
        m_eventsLastSecond = m_eventsThisSecond;
        m_eventsThisSecond = 0;
        refresh();
        Q_EMIT ticked();
    });
    m_timer.start();
    refresh();
}

void SessionStatusBar::refresh() {
    const Engine* engine = m_session->engine();
    const QHash<QString, SourceStatus> statuses = engine->sourceStatuses();
    QStringList parts;
    for (const ConnectionSpec& c : m_session->connections())
        parts.append(QStringLiteral("%1: %2").arg(c.id, statuses.value(c.id).stateName()));
    m_sources->setText(parts.isEmpty() ? tr("No connections — Connection → Add Connection…")
                                       : parts.join(QStringLiteral("   ")));
    const QLocale locale;
    m_rate->setText(tr("%1 events/s").arg(locale.toString(m_eventsLastSecond)));
    m_seq->setText(tr("journal seq %1").arg(locale.toString(engine->lastCommittedSeq())));
    m_seq->setToolTip(QDir::toNativeSeparators(engine->journalPath()));
    m_sse->setText(m_session->isSseRunning() ? tr("SSE %1").arg(m_session->sseServer()->baseUrl().toString())
                                             : tr("SSE off"));
}

} // namespace tw::ui

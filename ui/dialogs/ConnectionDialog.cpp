#include "ConnectionDialog.h"

#include "CommandLine.h"
#include "sources/nats/NatsGatewaySource.h"
#include "sources/Source.h"
#include "sources/SourceUri.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QVBoxLayout>

namespace tw::ui {

namespace {

enum Kind { MongoKind, PostgresKind, SqliteKind, NatsKind };

Kind kindOf(const QString& uri) {
    switch (SourceUri(uri).kind()) {
    case SourceUri::Kind::Postgres:
        return PostgresKind;
    case SourceUri::Kind::Sqlite:
        return SqliteKind;
    case SourceUri::Kind::Nats:
        return NatsKind;
    case SourceUri::Kind::MongoDb:
    case SourceUri::Kind::Unknown:
        break;
    }
    return MongoKind;
}

} // namespace

ConnectionDialog::ConnectionDialog(const QStringList& existingIds, QWidget* parent)
    : QDialog(parent)
    , m_name(new QLineEdit(this))
    , m_kind(new QComboBox(this))
    , m_uri(new QLineEdit(this))
    , m_browse(new QPushButton(tr("Browse…"), this))
    , m_password(new QLineEdit(this))
    , m_capture(new QCheckBox(tr("Capture exact before/after images (installs triggers in the file)"), this))
    , m_error(new QLabel(this))
    , m_buttons(new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this))
    , m_existingIds(existingIds) {
    setWindowTitle(tr("Add Connection"));
    setMinimumWidth(520);
    m_kind->addItem(tr("MongoDB"));
    m_kind->addItem(tr("PostgreSQL"));
    m_kind->addItem(tr("SQLite file"));
    m_kind->addItem(tr("NATS gateway (an ingest's stream)"));
    m_name->setPlaceholderText(tr("orders-db"));
    m_password->setEchoMode(QLineEdit::Password);
    m_password->setPlaceholderText(tr("stored in the system keychain, never in the workspace"));

    auto* uriRow = new QHBoxLayout;
    uriRow->addWidget(m_uri, 1);
    uriRow->addWidget(m_browse);

    auto* form = new QFormLayout;
    form->addRow(tr("&Kind:"), m_kind);
    form->addRow(tr("&URI:"), uriRow);
    form->addRow(tr("&Password:"), m_password);
    form->addRow(tr("&Name:"), m_name);
    form->addRow(QString(), m_capture);

    m_error->setWordWrap(true);
    m_error->setStyleSheet(QStringLiteral("color: #cf222e;"));
    m_error->hide();

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(m_error);
    layout->addStretch(1);
    layout->addWidget(m_buttons);

    connect(m_buttons, &QDialogButtonBox::accepted, this, &ConnectionDialog::accept);
    connect(m_buttons, &QDialogButtonBox::rejected, this, &ConnectionDialog::reject);
    connect(m_kind, &QComboBox::currentIndexChanged, this, &ConnectionDialog::onKindChanged);
    connect(m_browse, &QPushButton::clicked, this, &ConnectionDialog::browse);
    connect(m_uri, &QLineEdit::textEdited, this, [this](const QString& text) {
        m_error->hide();
        if (!m_editing && !text.isEmpty())
            m_name->setPlaceholderText(defaultSourceId(text));
        const Kind kind = kindOf(text);
        if (text.contains(QLatin1Char(':')) && kind != m_kind->currentIndex()) {
            const QSignalBlocker blocker(m_kind);
            m_kind->setCurrentIndex(kind);
            onKindChanged(kind);
        }
    });
    onKindChanged(MongoKind);
}

void ConnectionDialog::onKindChanged(int index) {
    const bool sqlite = index == SqliteKind;
    m_browse->setVisible(sqlite);
    m_password->setEnabled(!sqlite && index != NatsKind);
    m_capture->setVisible(sqlite);
    switch (index) {
    case MongoKind:
        m_uri->setPlaceholderText(QStringLiteral("mongodb://user@host:27017/?replicaSet=rs0"));
        break;
    case PostgresKind:
        m_uri->setPlaceholderText(QStringLiteral("postgresql://user@host:5432/dbname"));
        break;
    case SqliteKind:
        m_uri->setPlaceholderText(QStringLiteral("sqlite:/path/to/file.sqlite"));
        break;
    case NatsKind:
        m_uri->setPlaceholderText(QStringLiteral("nats://host:4222/TIDEWATCH"));
        break;
    }
}

void ConnectionDialog::browse() {
    const QString path =
        QFileDialog::getOpenFileName(this, tr("SQLite Database"), QString(),
                                     tr("SQLite databases (*.sqlite *.sqlite3 *.db);;All files (*)"));
    if (path.isEmpty())
        return;
    m_uri->setText(QStringLiteral("sqlite:") + path);
    if (!m_editing && m_name->text().isEmpty())
        m_name->setPlaceholderText(defaultSourceId(m_uri->text()));
}

void ConnectionDialog::setConnection(const ConnectionSpec& spec) {
    m_editing = true;
    m_original = spec;
    setWindowTitle(tr("Edit Connection"));
    m_name->setText(spec.id);
    m_name->setReadOnly(true);
    m_kind->setCurrentIndex(kindOf(spec.uri));
    m_uri->setText(spec.uri);
    if (spec.hasPassword)
        m_password->setPlaceholderText(tr("unchanged (stored in the keychain)"));
    m_password->setText(spec.password);
    m_capture->setChecked(spec.captureMode);
}

ConnectionSpec ConnectionDialog::connection() const {
    ConnectionSpec spec = m_original;
    spec.id = m_name->text().trimmed();
    if (spec.id.isEmpty())
        spec.id = defaultSourceId(m_uri->text().trimmed());
    QString inlinePassword;
    spec.uri = Workspace::splitPassword(m_uri->text().trimmed(), &inlinePassword);
    if (!m_password->text().isEmpty())
        spec.password = m_password->text();
    else if (!inlinePassword.isEmpty())
        spec.password = inlinePassword;
    spec.hasPassword = !spec.password.isEmpty() || (m_editing && m_original.hasPassword);
    spec.captureMode = kindOf(spec.uri) == SqliteKind && m_capture->isChecked();
    return spec;
}

bool ConnectionDialog::validateUri(const QString& input, QString* error) {
    const auto fail = [error](const QString& message) {
        if (error)
            *error = message;
        return false;
    };
    const QString uri = input.trimmed();
    if (uri.isEmpty())
        return fail(
            tr("Enter a URI: mongodb://host:27017, postgresql://host/db or sqlite:/path/to/file.sqlite."));
    // Keyed on the scheme, not the kind: a bare path is accepted on the command line
    // but the dialog asks for a URI (Browse… writes sqlite:PATH).
    const SourceUri parsed(uri);
    const QString name = parsed.scheme();
    if (name == QLatin1String("sqlite")) {
        const QString path = parsed.sqlitePath();
        if (path.isEmpty())
            return fail(tr("The SQLite URI names no file: use sqlite:/path/to/file.sqlite."));
        const QFileInfo info(path);
        if (!info.exists())
            return fail(tr("No SQLite file at %1: check the path, or pick the file with Browse…")
                            .arg(info.absoluteFilePath()));
        if (!info.isFile())
            return fail(tr("%1 is a folder, not an SQLite file.").arg(info.absoluteFilePath()));
        return true;
    }
    if (parsed.kind() == SourceUri::Kind::Nats) {
        QString url, stream;
        return NatsGatewaySource::parseUri(uri, &url, &stream, error);
    }
    if (parsed.kind() == SourceUri::Kind::Postgres && name.isEmpty())
        return true; // libpq's "host=… dbname=…" form; libpq checks it when connecting
    if (parsed.kind() == SourceUri::Kind::MongoDb || parsed.kind() == SourceUri::Kind::Postgres) {
        if (!uri.mid(name.size()).startsWith(QLatin1String("://")))
            return fail(tr("%1 URIs start with %1://, e.g. %1://localhost").arg(name));
        QString rest = uri.mid(name.size() + 3);
        rest = rest.section(QLatin1Char('/'), 0, 0).section(QLatin1Char('?'), 0, 0);
        const QString hosts = rest.section(QLatin1Char('@'), -1);
        if (hosts.isEmpty() && parsed.kind() != SourceUri::Kind::Postgres)
            return fail(
                tr("%1 names no host: add one, e.g. %2://localhost:27017").arg(parsed.redacted(), name));
        if (hosts.contains(QLatin1Char(' ')))
            return fail(tr("The host list \"%1\" contains a space.").arg(hosts));
        return true;
    }
    if (name.isEmpty())
        return fail(tr("\"%1\" is not a URI: start with mongodb://, postgresql:// or sqlite:")
                        .arg(parsed.redacted()));
    return fail(tr("Unknown scheme \"%1:\": Tidewatch connects to mongodb://, mongodb+srv://, postgresql://, "
                   "sqlite: and nats:// URIs.")
                    .arg(name));
}

QString ConnectionDialog::errorText() const {
    return m_error->text();
}

void ConnectionDialog::showError(const QString& message) {
    m_error->setText(message);
    m_error->show();
}

void ConnectionDialog::accept() {
    QString error;
    if (!validateUri(m_uri->text(), &error)) {
        showError(error);
        m_uri->setFocus();
        return;
    }
    const ConnectionSpec spec = connection();
    static const QRegularExpression idPattern(QStringLiteral("^[A-Za-z0-9_.-]+$"));
    if (!idPattern.match(spec.id).hasMatch()) {
        showError(tr("Names use letters, digits, '-', '_' and '.' only (it appears in SSE URLs)."));
        m_name->setFocus();
        return;
    }
    if (!m_editing && m_existingIds.contains(spec.id)) {
        showError(tr("A connection named \"%1\" exists already; pick another name.").arg(spec.id));
        m_name->setFocus();
        return;
    }
    if (m_commit && !m_commit(spec, &error)) {
        showError(error);
        return;
    }
    m_error->clear();
    QDialog::accept();
}

} // namespace tw::ui

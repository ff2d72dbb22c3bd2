#include "ConnectionActions.h"

#include "AppSession.h"
#include "ConnectionDialog.h"
#include "engine/Engine.h"
#include "sources/SourceUri.h"

#include <QMessageBox>
#include <QPushButton>

namespace tw::ui {

ConnectionActions::ConnectionActions(AppSession* session, QWidget* dialogParent)
    : QObject(dialogParent)
    , m_session(session)
    , m_dialogParent(dialogParent) {}

void ConnectionActions::add() {
    QStringList ids;
    for (const ConnectionSpec& c : m_session->connections())
        ids.append(c.id);
    ConnectionDialog dialog(ids, m_dialogParent);
    dialog.setCommitFunction(
        [this](const ConnectionSpec& spec, QString* error) { return m_session->addConnection(spec, error); });
    dialog.exec();
}

void ConnectionActions::edit(const QString& id) {
    const std::optional<ConnectionSpec> original = m_session->connection(id);
    if (!original)
        return;
    ConnectionDialog dialog({}, m_dialogParent);
    dialog.setConnection(*original);
    // What can be checked at once is, and the dialog stays open to show it. Then the
    // old source stops (within a second); the session brings up the edited one, or
    // puts the old one back and reports through connectionFailed().
    dialog.setCommitFunction([this, id](const ConnectionSpec& spec, QString* error) {
        return m_session->replaceConnection(id, spec, error);
    });
    dialog.exec();
}

void ConnectionActions::remove(const QString& id) {
    const std::optional<ConnectionSpec> spec = m_session->connection(id);
    if (!spec || SourceUri(spec->uri).kind() != SourceUri::Kind::Postgres)
        return m_session->removeConnection(id);
    const QString slot = m_session->engine()->sourceStatuses().value(id).slotName;
    QMessageBox box(QMessageBox::Question, tr("Remove Connection"), tr("Remove the connection “%1”?").arg(id),
                    QMessageBox::NoButton, m_dialogParent);
    box.setInformativeText(
        tr("Tidewatch keeps a replication slot and a publication%1 on the server. While the slot "
           "exists the server keeps every WAL file from the slot's position on, so a forgotten slot "
           "fills its disk. Keep them to add the connection again later without losing a change; drop "
           "them if Tidewatch will not watch this database again.")
            .arg(slot.isEmpty() ? QString() : tr(" (“%1”)").arg(slot)));
    QPushButton* keep = box.addButton(tr("Remove, Keep Slot"), QMessageBox::AcceptRole);
    QPushButton* drop = box.addButton(tr("Remove and Drop Slot"), QMessageBox::DestructiveRole);
    box.addButton(QMessageBox::Cancel);
    box.setDefaultButton(keep);
    box.exec();
    if (box.clickedButton() == keep || box.clickedButton() == drop)
        m_session->removeConnection(id, box.clickedButton() == drop);
}

} // namespace tw::ui

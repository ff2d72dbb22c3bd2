#pragma once

#include <QObject>

class QWidget;

namespace tw {
class AppSession;
}

namespace tw::ui {

// What the window does when a person adds, edits or removes a connection: the
// connection dialog for the first two, and for a PostgreSQL connection the question
// of what becomes of its replication slot. The window and the Connections dock only
// ask; the session does the work.
class ConnectionActions : public QObject {
    Q_OBJECT
public:
    // `session` outlives this object; dialogs open over `dialogParent`, which owns it.
    ConnectionActions(AppSession* session, QWidget* dialogParent);

    void add();
    void edit(const QString& id);
    // A PostgreSQL connection first asks whether to drop its slot and publication.
    void remove(const QString& id);

private:
    AppSession* m_session;   // not owned
    QWidget* m_dialogParent; // the owner
};

} // namespace tw::ui

#pragma once

#include "Workspace.h"

#include <functional>
#include <QDialog>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QDialogButtonBox;

namespace tw::ui {

// Add or edit one connection: a name, the kind (MongoDB, PostgreSQL, SQLite file)
// and its URI, plus a password field kept apart from the URI so it can go to the
// keychain. Obviously bad input (empty, unknown scheme, missing SQLite file) is
// refused here with a message; what only the source can judge comes back from the
// commit callback (AppSession::addConnection's error) and is shown in the same place.
class ConnectionDialog : public QDialog {
    Q_OBJECT
public:
    // Tries to put the connection into service; returns false with a message to show.
    using CommitFunction = std::function<bool(const ConnectionSpec&, QString* error)>;

    // `existingIds`: names already taken (minus the edited one).
    explicit ConnectionDialog(const QStringList& existingIds, QWidget* parent = nullptr);

    void setConnection(const ConnectionSpec& spec); // edit mode: the name is fixed
    ConnectionSpec connection() const;
    void setCommitFunction(CommitFunction commit) { m_commit = std::move(commit); }

    QString errorText() const;
    QLineEdit* uriEdit() const { return m_uri; }
    QLineEdit* nameEdit() const { return m_name; }

    // The checks done before anything is contacted.
    static bool validateUri(const QString& uri, QString* error);

public Q_SLOTS:
    void accept() override;

private:
    void onKindChanged(int index);
    void browse();
    void showError(const QString& message);

    QLineEdit* m_name; // children, all of them
    QComboBox* m_kind;
    QLineEdit* m_uri;
    QPushButton* m_browse;
    QLineEdit* m_password;
    QCheckBox* m_capture;
    QLabel* m_error;
    QDialogButtonBox* m_buttons;
    QStringList m_existingIds;
    bool m_editing = false;
    ConnectionSpec m_original;
    CommitFunction m_commit;
};

} // namespace tw::ui

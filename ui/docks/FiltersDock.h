#pragma once

#include "engine/Subscription.h"

#include <functional>
#include <QDockWidget>
#include <QTimer>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;

namespace tw::ui {

class FilterEditor;

// Edits one subscription: name, namespaces, operation types, the JSON filter and what a
// consumer receives (a projection and an SSE event name), validated as you type, with "N of the last M events
// would match" computed against recent events before anything is applied. Apply hands the edited subscription
// to the main window, which gives it to the engine.
class FiltersDock : public QDockWidget {
    Q_OBJECT
public:
    using RecentEventsFunction = std::function<ChangeEventList()>;

    explicit FiltersDock(QWidget* parent = nullptr);

    void
    setSubscriptions(const SubscriptionList& subscriptions); // keeps the current one when it still exists
    void setCurrentSubscription(const QString& id);
    QString currentSubscriptionId() const;
    // Namespaces offered as check boxes, as (sourceId, ns).
    void setKnownNamespaces(const QList<SourceNamespace>& namespaces);
    void setRecentEventsFunction(RecentEventsFunction function) { m_recent = std::move(function); }

    // The subscription as edited (filter compiled; invalid when the JSON is).
    Subscription editedSubscription(bool* valid = nullptr) const;
    FilterEditor* editor() const { return m_editor; }
    QString previewText() const;
    void updatePreview();

    // {"$and": [user, {"operationType": {"$nin": excluded}}]}, reduced when one side is empty.
    static QByteArray combineFilter(const QString& userJson, const QStringList& excludedOperations);
    // The inverse, for filters this dock wrote; false when `json` has another shape.
    static bool splitFilter(const QByteArray& json, QString* userJson, QStringList* excludedOperations);
    static const QStringList& operationNames();

Q_SIGNALS:
    void applyRequested(const tw::Subscription& subscription);
    void newSubscriptionRequested();
    void deleteRequested(const QString& id);
    void currentSubscriptionChanged(const QString& id);

private:
    void load(const Subscription& subscription);
    void onEdited();
    void updateButtons();
    // Compiles the projection and event-name fields into `s`; the message names what is
    // wrong (empty when both are fine).
    QString applyShape(Subscription* s) const;
    void validateShape();

    SubscriptionList m_subscriptions;
    Subscription m_loaded;
    QList<SourceNamespace> m_known;
    RecentEventsFunction m_recent;
    QTimer m_previewTimer;
    QTimer m_refreshTimer;
    bool m_dirty = false;
    bool m_loading = false;
    bool m_shapeValid = true;

    QComboBox* m_combo = nullptr; // children, all of them
    QPushButton* m_delete = nullptr;
    QLineEdit* m_name = nullptr;
    QLineEdit* m_projection = nullptr;
    QLineEdit* m_event = nullptr;
    QLabel* m_shapeError = nullptr;
    QListWidget* m_namespaces = nullptr;
    QList<QCheckBox*> m_operations;
    QCheckBox* m_dataChanges = nullptr; // with m_schemaChanges: Subscription::changes
    QCheckBox* m_schemaChanges = nullptr;
    FilterEditor* m_editor = nullptr;
    QLabel* m_preview = nullptr;
    QPushButton* m_apply = nullptr;
    QPushButton* m_revert = nullptr;
};

} // namespace tw::ui

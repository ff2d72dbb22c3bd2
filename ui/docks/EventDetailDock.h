#pragma once

#include "model/ChangeEvent.h"

#include <QDockWidget>
#include <QSet>

class QLabel;
class QPlainTextEdit;
class QStackedWidget;
class QTabWidget;
class QTreeWidget;
class QTreeWidgetItem;
class QToolButton;

namespace tw::ui {

class JsonHighlighter;

// The selected event: an expandable tree of the whole change-event document with the
// updated fields highlighted (and removed ones struck through inside fullDocument),
// the raw Extended JSON, and before/after side by side when a pre-image exists.
class EventDetailDock : public QDockWidget {
    Q_OBJECT
public:
    explicit EventDetailDock(QWidget* parent = nullptr);

    void setEvent(const ChangeEvent& event);
    ChangeEvent event() const { return m_event; }

    QTreeWidget* tree() const { return m_tree; }
    QString jsonText() const;
    bool hasBeforeAfter() const;
    // Items of the tree highlighted as updated, as dotted paths (for tests).
    QStringList highlightedPaths() const;
    // A schema event's operationDescription in words, one line per index or column
    // list ("columns before: …" / "columns after: …"); empty otherwise.
    QString schemaText() const;

    void copyJson(bool canonical = false) const;

protected:
    void changeEvent(QEvent* event) override;

private:
    void fillTree(QTreeWidget* tree, const Bson& document, const QString& rootPath,
                  const QSet<QString>& updated, const QSet<QString>& removed,
                  const QHash<QString, QString>* compareWith);
    void rebuild();

    ChangeEvent m_event;
    QStackedWidget* m_stack = nullptr; // children, all of them
    QLabel* m_header = nullptr;
    QLabel* m_schema = nullptr; // shown for schema events only
    QTabWidget* m_tabs = nullptr;
    QTreeWidget* m_tree = nullptr;
    QPlainTextEdit* m_json = nullptr;
    JsonHighlighter* m_highlighter = nullptr; // owned by m_json's document
    QStackedWidget* m_compareStack = nullptr;
    QTreeWidget* m_before = nullptr;
    QTreeWidget* m_after = nullptr;
};

} // namespace tw::ui

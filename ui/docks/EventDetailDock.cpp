#include "EventDetailDock.h"

#include "models/EventFormat.h"
#include "widgets/Icons.h"
#include "widgets/JsonHighlighter.h"

#include <QApplication>
#include <QClipboard>
#include <QEvent>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMenu>
#include <QPlainTextEdit>
#include <QSplitter>
#include <QStackedWidget>
#include <QTabWidget>
#include <QToolButton>
#include <QTreeWidget>
#include <QTreeWidgetItemIterator>

#include <QVBoxLayout>

#include <functional>

namespace tw::ui {

namespace {

constexpr int PathRole = Qt::UserRole + 1;
constexpr int HighlightRole = Qt::UserRole + 2;

QString typeName(bson_type_t type) {
    switch (type) {
    case BSON_TYPE_DOUBLE:
        return QStringLiteral("double");
    case BSON_TYPE_UTF8:
        return QStringLiteral("string");
    case BSON_TYPE_DOCUMENT:
        return QStringLiteral("object");
    case BSON_TYPE_ARRAY:
        return QStringLiteral("array");
    case BSON_TYPE_BINARY:
        return QStringLiteral("binData");
    case BSON_TYPE_OID:
        return QStringLiteral("objectId");
    case BSON_TYPE_BOOL:
        return QStringLiteral("bool");
    case BSON_TYPE_DATE_TIME:
        return QStringLiteral("date");
    case BSON_TYPE_NULL:
        return QStringLiteral("null");
    case BSON_TYPE_REGEX:
        return QStringLiteral("regex");
    case BSON_TYPE_INT32:
        return QStringLiteral("int");
    case BSON_TYPE_TIMESTAMP:
        return QStringLiteral("timestamp");
    case BSON_TYPE_INT64:
        return QStringLiteral("long");
    case BSON_TYPE_DECIMAL128:
        return QStringLiteral("decimal");
    default:
        return QStringLiteral("other");
    }
}

QTreeWidget* makeTree(QWidget* parent) {
    auto* tree = new QTreeWidget(parent);
    tree->setColumnCount(3);
    tree->setHeaderLabels({QObject::tr("Field"), QObject::tr("Value"), QObject::tr("Type")});
    tree->header()->setStretchLastSection(false);
    tree->header()->setSectionResizeMode(0, QHeaderView::Interactive);
    tree->header()->setSectionResizeMode(1, QHeaderView::Stretch);
    tree->header()->setSectionResizeMode(2, QHeaderView::ResizeToContents);
    tree->header()->resizeSection(0, 190);
    tree->setUniformRowHeights(true);
    tree->setAlternatingRowColors(true);
    tree->setFrameShape(QFrame::NoFrame);
    tree->setContextMenuPolicy(Qt::CustomContextMenu);
    QObject::connect(tree, &QTreeWidget::customContextMenuRequested, tree, [tree](const QPoint& pos) {
        QTreeWidgetItem* item = tree->itemAt(pos);
        if (!item)
            return;
        QMenu menu(tree);
        menu.addAction(QObject::tr("Copy Value"), tree,
                       [item] { QApplication::clipboard()->setText(item->text(1)); });
        menu.addAction(QObject::tr("Copy Path"), tree,
                       [item] { QApplication::clipboard()->setText(item->data(0, PathRole).toString()); });
        menu.exec(tree->viewport()->mapToGlobal(pos));
    });
    return tree;
}

void collectValues(const bson_iter_t* parentIter, const QString& prefix, QHash<QString, QString>* out) {
    bson_iter_t child;
    if (!bson_iter_recurse(parentIter, &child))
        return;
    while (bson_iter_next(&child)) {
        const QString path = prefix.isEmpty()
                                 ? QString::fromUtf8(bson_iter_key(&child))
                                 : prefix + QLatin1Char('.') + QString::fromUtf8(bson_iter_key(&child));
        out->insert(path, EventFormat::valueText(&child, 200));
        if (BSON_ITER_HOLDS_DOCUMENT(&child) || BSON_ITER_HOLDS_ARRAY(&child))
            collectValues(&child, path, out);
    }
}

QHash<QString, QString> flatten(const Bson& doc) {
    QHash<QString, QString> out;
    bson_t view;
    bson_iter_t it;
    if (!doc.view(&view) || !bson_iter_init(&it, &view))
        return out;
    // bson_iter_recurse needs an iterator on a document value: walk the top level here.
    while (bson_iter_next(&it)) {
        const QString path = QString::fromUtf8(bson_iter_key(&it));
        out.insert(path, EventFormat::valueText(&it, 200));
        if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it))
            collectValues(&it, path, &out);
    }
    return out;
}

} // namespace

EventDetailDock::EventDetailDock(QWidget* parent)
    : QDockWidget(tr("Event Detail"), parent) {
    setObjectName(QStringLiteral("EventDetailDock"));
    m_stack = new QStackedWidget(this);

    auto* empty = new QLabel(tr("Select an event in the Live Feed to see it here."), m_stack);
    empty->setAlignment(Qt::AlignCenter);
    empty->setWordWrap(true);
    empty->setForegroundRole(QPalette::PlaceholderText);
    m_stack->addWidget(empty);

    auto* body = new QWidget(m_stack);
    auto* layout = new QVBoxLayout(body);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    auto* headerRow = new QHBoxLayout;
    headerRow->setContentsMargins(8, 4, 4, 4);
    m_header = new QLabel(body);
    m_header->setTextInteractionFlags(Qt::TextSelectableByMouse);
    headerRow->addWidget(m_header, 1);
    auto* copy = new QToolButton(body);
    copy->setIcon(Icons::get(QStringLiteral("copy")));
    copy->setText(tr("Copy JSON"));
    copy->setToolTip(tr("Copy the event as one line of Relaxed Extended JSON"));
    copy->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    copy->setAutoRaise(true);
    copy->setPopupMode(QToolButton::MenuButtonPopup);
    auto* copyMenu = new QMenu(copy);
    copyMenu->addAction(tr("Copy as Relaxed Extended JSON"), this, [this] { copyJson(false); });
    copyMenu->addAction(tr("Copy as Canonical Extended JSON"), this, [this] { copyJson(true); });
    copy->setMenu(copyMenu);
    connect(copy, &QToolButton::clicked, this, [this] { copyJson(false); });
    headerRow->addWidget(copy);
    layout->addLayout(headerRow);
    m_schema = new QLabel(body);
    m_schema->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_schema->setWordWrap(true);
    m_schema->setContentsMargins(8, 0, 8, 4);
    m_schema->hide();
    layout->addWidget(m_schema);

    m_tabs = new QTabWidget(body);
    m_tabs->setDocumentMode(true);
    m_tree = makeTree(m_tabs);
    m_tabs->addTab(m_tree, tr("Tree"));
    m_json = new QPlainTextEdit(m_tabs);
    m_json->setReadOnly(true);
    m_json->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_json->setFrameShape(QFrame::NoFrame);
    m_highlighter = new JsonHighlighter(m_json->document());
    m_tabs->addTab(m_json, tr("JSON"));

    m_compareStack = new QStackedWidget(m_tabs);
    auto* noPreImage =
        new QLabel(tr("No pre-image for this event.\n\nMongoDB sends one when the collection has "
                      "changeStreamPreAndPostImages enabled and the watch asks for "
                      "fullDocumentBeforeChange; SQLite sources send one in capture mode."),
                   m_compareStack);
    noPreImage->setAlignment(Qt::AlignCenter);
    noPreImage->setWordWrap(true);
    noPreImage->setMargin(16);
    noPreImage->setForegroundRole(QPalette::PlaceholderText);
    m_compareStack->addWidget(noPreImage);
    auto* splitter = new QSplitter(Qt::Horizontal, m_compareStack);
    m_before = makeTree(splitter);
    m_after = makeTree(splitter);
    m_before->setHeaderLabels({tr("Before"), tr("Value"), tr("Type")});
    m_after->setHeaderLabels({tr("After"), tr("Value"), tr("Type")});
    m_compareStack->addWidget(splitter);
    m_tabs->addTab(m_compareStack, tr("Before / After"));
    layout->addWidget(m_tabs, 1);

    m_stack->addWidget(body);
    setWidget(m_stack);
}

void EventDetailDock::setEvent(const ChangeEvent& event) {
    m_event = event;
    rebuild();
}

void EventDetailDock::rebuild() {
    if (m_event.seq() == 0 && m_event.sourceId().isEmpty() && m_event.documentKey().isAbsent()) {
        m_stack->setCurrentIndex(0);
        return;
    }
    m_stack->setCurrentIndex(1);
    const QColor opColor = EventFormat::operationColor(m_event.operation(), palette());
    m_header->setText(
        QStringLiteral("<b style='color:%1'>%2</b>&nbsp; %3 &nbsp;<span style='color:%4'>seq %5 · %6 "
                       "· key %7</span>")
            .arg(opColor.name(), EventFormat::operationText(m_event).toHtmlEscaped(),
                 EventFormat::namespaceText(m_event).toHtmlEscaped(),
                 palette().color(QPalette::Disabled, QPalette::Text).name())
            .arg(m_event.seq())
            .arg(EventFormat::timeText(m_event), EventFormat::keyText(m_event).toHtmlEscaped()));

    const QStringList schemaLines = EventFormat::schemaLines(m_event);
    m_schema->setText(schemaLines.join(QLatin1Char('\n')));
    m_schema->setStyleSheet(QStringLiteral("color:%1").arg(opColor.name()));
    m_schema->setVisible(!schemaLines.isEmpty());

    const QSet<QString> updated = EventFormat::updatedPaths(m_event);
    const QSet<QString> removed = EventFormat::removedPaths(m_event);
    fillTree(m_tree, m_event.document(), QString(), updated, removed, nullptr);

    const QString pretty = EventFormat::prettyJson(m_event.toJson());
    m_json->setPlainText(pretty);

    const Bson before = m_event.fullDocumentBeforeChange();
    if (before.isAbsent()) {
        m_compareStack->setCurrentIndex(0);
        m_before->clear();
        m_after->clear();
    } else {
        m_compareStack->setCurrentIndex(1);
        const QHash<QString, QString> beforeValues = flatten(before);
        const QHash<QString, QString> afterValues = flatten(m_event.fullDocument());
        fillTree(m_before, before, QString(), {}, {}, &afterValues);
        fillTree(m_after, m_event.fullDocument(), QString(), {}, {}, &beforeValues);
    }
}

void EventDetailDock::fillTree(QTreeWidget* tree, const Bson& document, const QString& rootPath,
                               const QSet<QString>& updated, const QSet<QString>& removed,
                               const QHash<QString, QString>* compareWith) {
    tree->clear();
    const bool dark = EventFormat::isDark(palette());
    const QBrush changedBrush(dark ? QColor(0x4d, 0x44, 0x10) : QColor(0xff, 0xf3, 0xb0));
    const QColor removedColor = dark ? QColor(0xff, 0x7b, 0x72) : QColor(0xcf, 0x22, 0x2e);
    const QColor mutedColor = palette().color(QPalette::Disabled, QPalette::Text);

    // Inside the event document, the updated paths are relative to fullDocument; inside
    // updateDescription.updatedFields every entry is an update.
    std::function<void(QTreeWidgetItem*, const bson_iter_t*, const QString&)> addChildren;
    const auto addItem = [&](QTreeWidgetItem* parent, const bson_iter_t* it, const QString& path) {
        auto* item = parent ? new QTreeWidgetItem(parent) : new QTreeWidgetItem(tree);
        const QString key = QString::fromUtf8(bson_iter_key(it));
        item->setText(0, key);
        item->setText(1, EventFormat::valueText(it, 500));
        item->setText(2, typeName(bson_iter_type(it)));
        item->setForeground(2, mutedColor);
        item->setData(0, PathRole, path);
        item->setToolTip(1, item->text(1));
        bool highlight = false;
        if (compareWith) {
            const auto other = compareWith->constFind(path);
            const bool container = BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it);
            highlight = other == compareWith->constEnd() || (!container && *other != item->text(1));
        } else if (path.startsWith(QLatin1String("fullDocument."))) {
            const QString relative = path.mid(13);
            for (const QString& u : updated)
                if (relative == u || relative.startsWith(u + QLatin1Char('.')))
                    highlight = true;
        } else if (path.startsWith(QLatin1String("updateDescription.updatedFields."))) {
            highlight = true;
        }
        if (highlight) {
            for (int c = 0; c < 3; ++c)
                item->setBackground(c, changedBrush);
            item->setData(0, HighlightRole, true);
            for (QTreeWidgetItem* p = item->parent(); p; p = p->parent())
                p->setExpanded(true);
        }
        if (BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it))
            addChildren(item, it, path);
        return item;
    };
    addChildren = [&](QTreeWidgetItem* parent, const bson_iter_t* it, const QString& path) {
        bson_iter_t child;
        if (!bson_iter_recurse(it, &child))
            return;
        while (bson_iter_next(&child))
            addItem(parent, &child, path + QLatin1Char('.') + QString::fromUtf8(bson_iter_key(&child)));
        if (parent && parent->data(0, PathRole).toString() == QLatin1String("fullDocument")) {
            for (const QString& r : removed) {
                auto* gone = new QTreeWidgetItem(parent, {r, tr("(removed)"), QString()});
                QFont font = gone->font(0);
                font.setStrikeOut(true);
                gone->setFont(0, font);
                gone->setForeground(0, removedColor);
                gone->setForeground(1, removedColor);
                gone->setData(0, PathRole, QStringLiteral("fullDocument.") + r);
            }
        }
    };

    bson_t view;
    bson_iter_t it;
    if (!document.view(&view) || !bson_iter_init(&it, &view))
        return;
    while (bson_iter_next(&it)) {
        const QString key = QString::fromUtf8(bson_iter_key(&it));
        QTreeWidgetItem* item =
            addItem(nullptr, &it, rootPath.isEmpty() ? key : rootPath + QLatin1Char('.') + key);
        if (key == QLatin1String("fullDocument") || key == QLatin1String("updateDescription") ||
            key == QLatin1String("documentKey") || key == QLatin1String("ns") || compareWith)
            item->setExpanded(true);
        // Index specs and column lists are the point of a schema event: open them all.
        if (key == QLatin1String("operationDescription")) {
            const std::function<void(QTreeWidgetItem*)> expand = [&expand](QTreeWidgetItem* node) {
                node->setExpanded(true);
                for (int c = 0; c < node->childCount(); ++c)
                    expand(node->child(c));
            };
            expand(item);
        }
    }
    if (compareWith)
        tree->expandAll();
}

QString EventDetailDock::schemaText() const {
    return m_schema->isHidden() ? QString() : m_schema->text();
}

QString EventDetailDock::jsonText() const {
    return m_json->toPlainText();
}

bool EventDetailDock::hasBeforeAfter() const {
    return m_compareStack->currentIndex() == 1;
}

QStringList EventDetailDock::highlightedPaths() const {
    QStringList out;
    for (QTreeWidgetItemIterator it(m_tree); *it; ++it)
        if ((*it)->data(0, HighlightRole).toBool())
            out.append((*it)->data(0, PathRole).toString());
    return out;
}

void EventDetailDock::copyJson(bool canonical) const {
    if (m_stack->currentIndex() == 0)
        return;
    QApplication::clipboard()->setText(
        QString::fromUtf8(canonical ? m_event.toCanonicalJson() : m_event.toJson()));
}

void EventDetailDock::changeEvent(QEvent* event) {
    if (event->type() == QEvent::PaletteChange && m_highlighter) {
        m_highlighter->updateColors(palette());
        rebuild();
    }
    QDockWidget::changeEvent(event);
}

} // namespace tw::ui

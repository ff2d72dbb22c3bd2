#include "FiltersDock.h"

#include "widgets/FilterEditor.h"
#include "widgets/Icons.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QLocale>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QVBoxLayout>

namespace tw::ui {

namespace {

// DDL events carry their own operationType; one check box stands for all of them.
const QStringList& ddlNames() {
    static const QStringList names = {QStringLiteral("create"),          QStringLiteral("createIndexes"),
                                      QStringLiteral("dropIndexes"),     QStringLiteral("modify"),
                                      QStringLiteral("shardCollection"), QStringLiteral("ddl")};
    return names;
}

constexpr int kPreviewEvents = 1000;

} // namespace

const QStringList& FiltersDock::operationNames() {
    static const QStringList names = {
        QStringLiteral("insert"),       QStringLiteral("update"),     QStringLiteral("replace"),
        QStringLiteral("delete"),       QStringLiteral("drop"),       QStringLiteral("rename"),
        QStringLiteral("dropDatabase"), QStringLiteral("invalidate"), QStringLiteral("DDL")};
    return names;
}

QByteArray FiltersDock::combineFilter(const QString& userJson, const QStringList& excluded) {
    QByteArray user = userJson.trimmed().toUtf8();
    if (user.isEmpty())
        user = "{}";
    if (excluded.isEmpty())
        return user;
    QJsonArray names;
    for (const QString& op : excluded) {
        if (op == QLatin1String("DDL"))
            for (const QString& ddl : ddlNames())
                names.append(ddl);
        else
            names.append(op);
    }
    const QByteArray opPart =
        "{\"operationType\": {\"$nin\": " + QJsonDocument(names).toJson(QJsonDocument::Compact) + "}}";
    const QJsonDocument parsed = QJsonDocument::fromJson(user);
    if (parsed.isObject() && parsed.object().isEmpty())
        return opPart;
    // The user's text is spliced in as typed, so key order and int64 survive.
    return "{\"$and\": [" + user + ", " + opPart + "]}";
}

bool FiltersDock::splitFilter(const QByteArray& json, QString* userJson, QStringList* excluded) {
    const QJsonObject root = QJsonDocument::fromJson(json).object();
    const auto opsOf = [](const QJsonObject& part, QStringList* out) {
        if (part.size() != 1)
            return false;
        const QJsonObject cond = part.value(QStringLiteral("operationType")).toObject();
        if (cond.size() != 1 || !cond.value(QStringLiteral("$nin")).isArray())
            return false;
        QStringList names;
        bool ddl = false;
        for (const QJsonValue& v : cond.value(QStringLiteral("$nin")).toArray()) {
            if (ddlNames().contains(v.toString()))
                ddl = true;
            else
                names.append(v.toString());
        }
        if (ddl)
            names.append(QStringLiteral("DDL"));
        *out = names;
        return true;
    };
    QStringList ops;
    if (opsOf(root, &ops)) {
        *userJson = QString();
        *excluded = ops;
        return true;
    }
    const QJsonArray conjuncts = root.value(QStringLiteral("$and")).toArray();
    if (root.size() == 1 && conjuncts.size() == 2 && conjuncts.at(1).isObject() &&
        opsOf(conjuncts.at(1).toObject(), &ops)) {
        *userJson =
            QString::fromUtf8(QJsonDocument(conjuncts.at(0).toObject()).toJson(QJsonDocument::Indented));
        *excluded = ops;
        return true;
    }
    return false;
}

FiltersDock::FiltersDock(QWidget* parent)
    : QDockWidget(tr("Filters"), parent) {
    setObjectName(QStringLiteral("FiltersDock"));
    auto* body = new QWidget(this);
    auto* layout = new QVBoxLayout(body);
    layout->setContentsMargins(8, 6, 8, 8);
    layout->setSpacing(6);

    auto* top = new QHBoxLayout;
    m_combo = new QComboBox(body);
    m_combo->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_combo->setMinimumContentsLength(12);
    top->addWidget(m_combo, 1);
    auto* add = new QPushButton(Icons::get(QStringLiteral("add")), tr("New"), body);
    add->setToolTip(tr("New subscription (Ctrl+Shift+S)"));
    connect(add, &QPushButton::clicked, this, &FiltersDock::newSubscriptionRequested);
    top->addWidget(add);
    m_delete = new QPushButton(Icons::get(QStringLiteral("remove")), QString(), body);
    m_delete->setToolTip(tr("Delete this subscription"));
    connect(m_delete, &QPushButton::clicked, this, [this] {
        if (!currentSubscriptionId().isEmpty())
            Q_EMIT deleteRequested(currentSubscriptionId());
    });
    top->addWidget(m_delete);
    layout->addLayout(top);

    auto* form = new QFormLayout;
    form->setContentsMargins(0, 0, 0, 0);
    m_name = new QLineEdit(body);
    form->addRow(tr("Name:"), m_name);
    m_projection = new QLineEdit(body);
    m_projection->setObjectName(QStringLiteral("projection"));
    m_projection->setPlaceholderText(tr("full, keys or {\"documentKey\": 1, \"fullDocument.title\": 1}"));
    m_projection->setToolTip(tr("What each event keeps: a MongoDB projection over the change event"));
    form->addRow(tr("Projection:"), m_projection);
    m_event = new QLineEdit(body);
    m_event->setObjectName(QStringLiteral("eventName"));
    m_event->setPlaceholderText(QStringLiteral("{operationType}"));
    m_event->setToolTip(tr("The SSE event name: a constant, or fields such as {ns.coll}.{operationType}"));
    form->addRow(tr("Event name:"), m_event);
    layout->addLayout(form);
    m_shapeError = new QLabel(body);
    m_shapeError->setObjectName(QStringLiteral("shapeError"));
    m_shapeError->setWordWrap(true);
    m_shapeError->setStyleSheet(QStringLiteral("color: #b00020"));
    m_shapeError->hide();
    layout->addWidget(m_shapeError);

    auto* nsLabel =
        new QLabel(tr("<b>Namespaces</b> <span style='color:gray'>(none ticked: all)</span>"), body);
    layout->addWidget(nsLabel);
    m_namespaces = new QListWidget(body);
    m_namespaces->setMaximumHeight(84);
    layout->addWidget(m_namespaces);

    layout->addWidget(new QLabel(tr("<b>Operations</b>"), body));
    auto* grid = new QGridLayout;
    grid->setContentsMargins(0, 0, 0, 0);
    grid->setHorizontalSpacing(12);
    grid->setVerticalSpacing(2);
    const QStringList& names = operationNames();
    for (int i = 0; i < names.size(); ++i) {
        auto* box = new QCheckBox(names.at(i), body);
        box->setChecked(true);
        connect(box, &QCheckBox::toggled, this, &FiltersDock::onEdited);
        grid->addWidget(box, i / 3, i % 3);
        m_operations.append(box);
    }
    layout->addLayout(grid);
    // Subscription::changes; at least one stays ticked, since neither would match nothing.
    auto* kinds = new QHBoxLayout;
    m_dataChanges = new QCheckBox(tr("Data changes"), body);
    m_schemaChanges = new QCheckBox(tr("Schema changes"), body);
    m_schemaChanges->setToolTip(tr("create, drop, rename, modify, createIndexes, dropIndexes, …"));
    for (QCheckBox* box : {m_dataChanges, m_schemaChanges}) {
        box->setChecked(true);
        QCheckBox* other = box == m_dataChanges ? m_schemaChanges : m_dataChanges;
        connect(box, &QCheckBox::toggled, this, [this, other](bool on) {
            if (!on && !other->isChecked())
                other->setChecked(true);
            onEdited();
        });
        kinds->addWidget(box);
    }
    kinds->addStretch(1);
    layout->addLayout(kinds);

    layout->addWidget(new QLabel(tr("<b>Filter</b> <span style='color:gray'>(MongoDB query on the change "
                                    "event)</span>"),
                                 body));
    m_editor = new FilterEditor(body);
    layout->addWidget(m_editor, 1);

    m_preview = new QLabel(body);
    m_preview->setWordWrap(true);
    layout->addWidget(m_preview);

    auto* buttons = new QHBoxLayout;
    buttons->addStretch(1);
    m_revert = new QPushButton(tr("Revert"), body);
    m_apply = new QPushButton(tr("Apply"), body);
    m_apply->setDefault(true);
    m_apply->setToolTip(tr("Apply to the subscription (Ctrl+Return)"));
    m_apply->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Return));
    buttons->addWidget(m_revert);
    buttons->addWidget(m_apply);
    layout->addLayout(buttons);
    setWidget(body);

    m_previewTimer.setSingleShot(true);
    m_previewTimer.setInterval(200);
    connect(&m_previewTimer, &QTimer::timeout, this, &FiltersDock::updatePreview);
    // The recent events move on: refresh the count while the dock is on screen.
    m_refreshTimer.setInterval(2000);
    connect(&m_refreshTimer, &QTimer::timeout, this, [this] {
        if (isVisible() && !visibleRegion().isEmpty())
            updatePreview();
    });
    m_refreshTimer.start();
    // Brought to the front (a tab switch): count at once rather than at the next tick.
    connect(this, &QDockWidget::visibilityChanged, this, [this](bool visible) {
        if (visible)
            updatePreview();
    });
    connect(m_editor, &FilterEditor::validated, this, &FiltersDock::onEdited);
    connect(m_name, &QLineEdit::textEdited, this, &FiltersDock::onEdited);
    for (QLineEdit* field : {m_projection, m_event})
        connect(field, &QLineEdit::textEdited, this, [this] {
            validateShape();
            onEdited();
        });
    connect(m_namespaces, &QListWidget::itemChanged, this, &FiltersDock::onEdited);
    connect(m_combo, &QComboBox::currentIndexChanged, this, [this](int index) {
        if (m_loading || index < 0 || index >= m_subscriptions.size())
            return;
        load(m_subscriptions.at(index));
        Q_EMIT currentSubscriptionChanged(m_subscriptions.at(index).id);
    });
    connect(m_revert, &QPushButton::clicked, this, [this] { load(m_loaded); });
    connect(m_apply, &QPushButton::clicked, this, [this] {
        bool valid = false;
        const Subscription s = editedSubscription(&valid);
        if (!valid)
            return;
        m_loaded = s;
        m_dirty = false;
        updateButtons();
        Q_EMIT applyRequested(s);
    });
    updateButtons();
}

void FiltersDock::setSubscriptions(const SubscriptionList& subscriptions) {
    const QString current = currentSubscriptionId();
    m_loading = true;
    m_subscriptions = subscriptions;
    m_combo->clear();
    int currentIndex = subscriptions.isEmpty() ? -1 : 0;
    for (int i = 0; i < subscriptions.size(); ++i) {
        const Subscription& s = subscriptions.at(i);
        m_combo->addItem(Icons::get(QStringLiteral("subscription")), s.name.isEmpty() ? s.id : s.name, s.id);
        if (s.id == current)
            currentIndex = i;
    }
    m_combo->setCurrentIndex(currentIndex);
    m_loading = false;
    if (currentIndex < 0) {
        load(Subscription());
        return;
    }
    const Subscription& now = subscriptions.at(currentIndex);
    // An edit in progress on the same subscription is kept; anything else reloads.
    if (!m_dirty || now.id != m_loaded.id)
        load(now);
}

void FiltersDock::setCurrentSubscription(const QString& id) {
    const int index = m_combo->findData(id);
    if (index >= 0 && index != m_combo->currentIndex())
        m_combo->setCurrentIndex(index);
}

QString FiltersDock::currentSubscriptionId() const {
    return m_combo->currentData().toString();
}

void FiltersDock::setKnownNamespaces(const QList<SourceNamespace>& namespaces) {
    m_known = namespaces;
    // Keep what the loaded subscription scopes even when it is not watched now.
    for (const SourceNamespace& scope : std::as_const(m_loaded.namespaces))
        if (!m_known.contains(scope))
            m_known.append(scope);
    QList<SourceNamespace> ticked;
    for (int i = 0; i < m_namespaces->count(); ++i)
        if (m_namespaces->item(i)->checkState() == Qt::Checked)
            ticked.append(m_known.value(i));
    const bool wasLoading = m_loading;
    m_loading = true;
    const QSignalBlocker blocker(m_namespaces);
    const QList<SourceNamespace> previous = m_dirty ? ticked : m_loaded.namespaces;
    m_namespaces->clear();
    for (const SourceNamespace& scope : std::as_const(m_known)) {
        auto* item =
            new QListWidgetItem(scope.sourceId + QStringLiteral(" · ") + scope.ns.toString(), m_namespaces);
        item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
        item->setCheckState(previous.contains(scope) ? Qt::Checked : Qt::Unchecked);
    }
    m_loading = wasLoading;
}

void FiltersDock::load(const Subscription& subscription) {
    m_loading = true;
    m_loaded = subscription;
    m_dirty = false;
    m_name->setText(subscription.name);
    setKnownNamespaces(m_known);
    {
        const QSignalBlocker blocker(m_namespaces);
        for (int i = 0; i < m_namespaces->count(); ++i)
            m_namespaces->item(i)->setCheckState(
                subscription.namespaces.contains(m_known.value(i)) ? Qt::Checked : Qt::Unchecked);
    }
    const QByteArray json = subscription.filter.isValid() ? subscription.filter.json() : QByteArray("{}");
    QString user;
    QStringList excluded;
    if (!splitFilter(json, &user, &excluded)) {
        excluded.clear();
        user = json == "{}" ? QString() : QString::fromUtf8(QJsonDocument::fromJson(json).toJson());
        if (user.isEmpty() && json != "{}")
            user = QString::fromUtf8(json);
    }
    for (QCheckBox* box : std::as_const(m_operations)) {
        const QSignalBlocker blocker(box);
        box->setChecked(!excluded.contains(box->text()));
    }
    for (QCheckBox* box : {m_dataChanges, m_schemaChanges}) {
        const QSignalBlocker blocker(box);
        box->setChecked(subscription.changes == Subscription::Changes::All ||
                        (box == m_schemaChanges) == (subscription.changes == Subscription::Changes::Schema));
    }
    m_editor->setText(user.trimmed());
    const QByteArray projection = subscription.projectionJson();
    m_projection->setText(projection == "full" ? QString() : QString::fromUtf8(projection));
    m_event->setText(subscription.event.text());
    validateShape();
    m_dirty = false;
    m_loading = false;
    updateButtons();
    m_previewTimer.start(0);
}

Subscription FiltersDock::editedSubscription(bool* valid) const {
    Subscription s = m_loaded;
    s.name = m_name->text().trimmed();
    s.namespaces.clear();
    for (int i = 0; i < m_namespaces->count(); ++i)
        if (m_namespaces->item(i)->checkState() == Qt::Checked)
            s.namespaces.append(m_known.value(i));
    QStringList excluded;
    for (QCheckBox* box : m_operations)
        if (!box->isChecked())
            excluded.append(box->text());
    s.changes = !m_schemaChanges->isChecked() ? Subscription::Changes::Data
                : !m_dataChanges->isChecked() ? Subscription::Changes::Schema
                                              : Subscription::Changes::All;
    QString error;
    s.filter = Filter::compile(combineFilter(m_editor->text(), excluded), &error);
    const bool shaped = applyShape(&s).isEmpty();
    if (valid)
        *valid = m_editor->isValid() && s.filter.isValid() && shaped;
    return s;
}

QString FiltersDock::applyShape(Subscription* s) const {
    QString error;
    if (!s->setProjection(m_projection->text().toUtf8(), &error))
        return error;
    s->event = EventTemplate::compile(m_event->text().trimmed(), &error);
    return error;
}

void FiltersDock::validateShape() {
    Subscription scratch;
    const QString error = applyShape(&scratch);
    m_shapeValid = error.isEmpty();
    m_shapeError->setText(error);
    m_shapeError->setVisible(!m_shapeValid);
    updateButtons();
}

void FiltersDock::onEdited() {
    if (m_loading)
        return;
    m_dirty = true;
    updateButtons();
    m_previewTimer.start();
}

void FiltersDock::updateButtons() {
    const bool haveSubscription = !m_loaded.id.isEmpty();
    m_apply->setEnabled(haveSubscription && m_dirty && m_editor->isValid() && m_shapeValid);
    m_revert->setEnabled(haveSubscription && m_dirty);
    m_delete->setEnabled(haveSubscription);
    m_name->setEnabled(haveSubscription);
    m_editor->setEnabled(haveSubscription);
    m_projection->setEnabled(haveSubscription);
    m_event->setEnabled(haveSubscription);
}

void FiltersDock::updatePreview() {
    bool valid = false;
    const Subscription s = editedSubscription(&valid);
    if (!valid) {
        m_preview->setText(tr("Fix the filter to see how many events it matches."));
        return;
    }
    const ChangeEventList recent = m_recent ? m_recent() : ChangeEventList();
    const ChangeEventList sample = recent.mid(std::max<qsizetype>(0, recent.size() - kPreviewEvents));
    if (sample.isEmpty()) {
        m_preview->setText(tr("No recent events to try the filter on yet."));
        return;
    }
    int matches = 0;
    for (const ChangeEvent& e : sample)
        if (s.matches(e))
            ++matches;
    const QLocale locale;
    m_preview->setText(tr("<b>%1</b> of the last %2 events would match%3")
                           .arg(locale.toString(matches), locale.toString(sample.size()),
                                m_dirty ? tr(" — not applied yet") : QString()));
}

QString FiltersDock::previewText() const {
    return m_preview->text();
}

} // namespace tw::ui

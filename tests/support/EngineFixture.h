#pragma once

#include "TestUtil.h"

#include "engine/Engine.h"

#include <memory>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

namespace tw::test {

// An Engine on a journal in a temporary folder, collecting every committed event
// (in commit order) on the test's thread.
class EngineFixture : public QObject {
    Q_OBJECT
public:
    explicit EngineFixture(const QString& journalPath)
        : EngineFixture(optionsFor(journalPath)) {}
    explicit EngineFixture(const Engine::Options& options)
        : engine(std::make_unique<Engine>(options)) {}
    ~EngineFixture() override { stop(); }

    bool start(QString* error = nullptr) {
        if (!engine->start(error))
            return false;
        connect(
            engine.get(), &Engine::committed, this,
            [this](const CommittedBatch& batch) {
                events.append(batch.events);
                commits.append(batch.events);
                for (auto it = batch.bySubscription.cbegin(); it != batch.bySubscription.cend(); ++it)
                    routed[it.key()].append(it.value());
            },
            Qt::QueuedConnection);
        connect(
            engine.get(), &Engine::watchFailed, this,
            [this](const QString&, const Namespace&, const QString& error) { watchErrors.append(error); },
            Qt::QueuedConnection);
        connect(
            engine.get(), &Engine::watchReady, this,
            [this](const QString&, const Namespace& ns) { ready.append(ns); }, Qt::QueuedConnection);
        connect(
            engine.get(), &Engine::sourceStatusChanged, this,
            [this](const QString&, const SourceStatus& status) { statuses.append(status); },
            Qt::QueuedConnection);
        return true;
    }
    void stop() {
        if (engine) {
            engine->stop();
            // Batches committed while stopping were emitted to us by queued calls.
            QCoreApplication::sendPostedEvents(this, QEvent::MetaCall);
        }
    }
    QList<ChangeEvent> ofOperation(Operation op) const {
        QList<ChangeEvent> out;
        for (const ChangeEvent& e : events)
            if (e.operation() == op)
                out.append(e);
        return out;
    }
    bool seqStrictlyIncreasing() const {
        for (int i = 1; i < events.size(); ++i)
            if (events[i].seq() <= events[i - 1].seq())
                return false;
        return true;
    }

    static Engine::Options optionsFor(const QString& journalPath) {
        Engine::Options options;
        options.journalPath = journalPath;
        return options;
    }

    std::unique_ptr<Engine> engine;
    QList<ChangeEvent> events;
    QList<QList<ChangeEvent>> commits; // the same events, as the engine committed them
    QHash<QString, QList<ChangeEvent>> routed;
    QStringList watchErrors;
    QList<Namespace> ready; // watches whose baseline is taken
    QList<SourceStatus> statuses;
};

// The value of `field` in a BSON document, as JSON text (e.g. "\"paid\"" or "42").
inline QString fieldJson(const Bson& doc, const char* field) {
    bson_t view;
    bson_iter_t it;
    if (!doc.view(&view) || !bson_iter_init_find(&it, &view, field))
        return QStringLiteral("<missing>");
    BsonBuilder b;
    bson_append_iter(b.get(), "v", 1, &it);
    const QByteArray json = b.take().toJson();
    // {"v":X} -> X
    return QString::fromUtf8(json.mid(5, json.size() - 6));
}

} // namespace tw::test

#pragma once

#include "filter/EventShape.h"
#include "filter/Filter.h"
#include "model/Namespace.h"

#include <optional>
#include <QDateTime>
#include <QJsonObject>
#include <QList>
#include <QMetaType>
#include <QString>

namespace tw {

// A watched scope inside one source: "the orders table of source demo".
struct SourceNamespace {
    QString sourceId; // empty: any source
    Namespace ns;     // empty: everything in the source
    friend bool operator==(const SourceNamespace& a, const SourceNamespace& b) {
        return a.sourceId == b.sourceId && a.ns == b.ns;
    }
};

// A named, filtered view of the committed feed. Value type; the Engine owns the
// authoritative list and persists it in the journal.
struct Subscription {
    enum class Projection { FullDocument, KeysOnly };
    // Which kinds of change the subscription receives (isSchemaOperation() splits them).
    // A gap reaches every subscription of its namespace whatever this says.
    enum class Changes { All, Data, Schema };

    QString id;
    QString name;
    QList<SourceNamespace> namespaces; // empty: every namespace of every source
    Filter filter;
    Projection projection = Projection::FullDocument;
    // A MongoDB projection object over the event; when set it replaces the shorthand
    // `projection` ("full" or "keys").
    tw::Projection fieldProjection;
    // The SSE event name (and the NDJSON "event" of a headless run); default {operationType}.
    EventTemplate event;
    Changes changes = Changes::All;
    QDateTime created;
    bool persistent = true; // ad hoc streams are not stored in the journal
    // A front end's own settings, stored with the subscription verbatim (MCP keeps its
    // resource_type, polling_interval, include_data and batch_size here). The engine
    // does not read them.
    QJsonObject options;

    bool coversNamespace(const QString& sourceId, const Namespace& ns) const {
        if (namespaces.isEmpty())
            return true;
        for (const SourceNamespace& scope : namespaces)
            if ((scope.sourceId.isEmpty() || scope.sourceId == sourceId) && scope.ns.contains(ns))
                return true;
        return false;
    }
    // Whether a gap of `ns` concerns this subscription: one of a namespace it covers, and
    // one wider than a scope of it (a database's or the whole deployment's, such as a
    // stream a gateway found made again), which may have held events of that scope. A
    // gap of no source (the ingest's or a gateway's own) concerns every source.
    bool concernedByGap(const QString& sourceId, const Namespace& ns) const {
        if (coversNamespace(sourceId, ns))
            return true;
        for (const SourceNamespace& scope : namespaces)
            if ((sourceId.isEmpty() || scope.sourceId.isEmpty() || scope.sourceId == sourceId) &&
                ns.contains(scope.ns))
                return true;
        return false;
    }
    bool wantsKind(Operation op) const {
        if (changes == Changes::All || op == Operation::Gap)
            return true;
        return isSchemaOperation(op) == (changes == Changes::Schema);
    }
    bool matches(const ChangeEvent& event) const {
        // A gap concerns every subscription of its namespace, whatever the filter.
        if (event.operation() == Operation::Gap)
            return concernedByGap(event.sourceId(), event.ns());
        if (!coversNamespace(event.sourceId(), event.ns()))
            return false;
        return wantsKind(event.operation()) && filter.matches(event);
    }
    // What a consumer of the subscription receives, in Relaxed or Canonical Extended JSON.
    EventShape shape(bool canonical = false) const;
    // "full", "keys" or a projection object as JSON, the way toJson() writes it.
    QByteArray projectionJson() const;
    // Reads "full", "keys" or a projection object (Extended JSON) into `projection` and
    // `fieldProjection`; false with a message naming the path on error.
    bool setProjection(QByteArrayView text, QString* error);

    // "all", "data", "schema"; nullopt for anything else.
    static QString changesName(Changes changes);
    static std::optional<Changes> changesFromName(const QString& name);

    // {"id","name","namespaces":[{"source","ns"}],"filter":{…},"projection":"full"|"keys"|{…},
    //  "event":"…","created","changes":"all"|"data"|"schema","options":{…}}
    QByteArray toJson() const;
    static Subscription fromJson(QByteArrayView json, QString* error);
};

using SubscriptionList = QList<Subscription>;

} // namespace tw

Q_DECLARE_METATYPE(tw::Subscription)

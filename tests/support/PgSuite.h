#pragma once

#include "EngineFixture.h"
#include "PgCluster.h"

#include <QTemporaryDir>
#include <QtTest>

#include <memory>

namespace tw::test {

// What the PostgreSQL suites share: one throwaway cluster for the whole suite, a
// temporary folder per case for the journal, and sources that watch a table of the
// "public" schema of database "tidewatch". A suite derives from QObject and from this;
// it declares no slots, so QtTest runs none of it as a case.
class PgSuite {
protected:
    // For initTestCase(): empty once the cluster accepts connections, else what failed.
    QString startCluster(const testsupport::PgCluster::Options& options = {}) {
        m_cluster = std::make_unique<testsupport::PgCluster>(options);
        return m_cluster->start();
    }
    // For init(): a folder of the case's own, for its journal.
    void makeCaseDir() { m_dir = std::make_unique<QTemporaryDir>(); }

    QString exec(const QString& sql) const { return m_cluster->exec(sql); }
    QString value(const QString& sql) const { return m_cluster->value(sql); }
    QString journalPath() const { return m_dir->filePath(QStringLiteral("journal.sqlite")); }

    // Starts f's engine with source `id` on `uri` (the suite's cluster as "postgres"
    // when empty) and watches tidewatch.public.<table>.
    bool startWatching(EngineFixture& f, const QString& id, const QString& table,
                       const WatchOptions& options = {}, const QString& uri = {}) const {
        if (!f.start() || !f.engine->addSource(id, uri.isEmpty() ? m_cluster->uri() : uri))
            return false;
        f.engine->watch(id, Namespace{QStringLiteral("tidewatch"), QStringLiteral("public.") + table},
                        options);
        return true;
    }

    // For cleanup() in the suites that stream: the next case starts on a server without
    // Tidewatch's slots and publications. The server releases a slot a moment after its
    // stream's connection closed.
    void dropSlotsAndPublications() const {
        QTRY_COMPARE_WITH_TIMEOUT(
            value(QStringLiteral("SELECT count(*) FROM pg_replication_slots WHERE active")),
            QStringLiteral("0"), 20000);
        exec(QStringLiteral("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"));
        for (const QStringList& row : m_cluster->query(QStringLiteral("SELECT pubname FROM pg_publication")))
            exec(QStringLiteral("DROP PUBLICATION \"%1\"").arg(row[0]));
    }

    std::unique_ptr<testsupport::PgCluster> m_cluster;
    std::unique_ptr<QTemporaryDir> m_dir;
};

} // namespace tw::test

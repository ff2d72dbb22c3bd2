#include "MongoPeer.h"

#include "MongoPeerChangeStreams.h"
#include "MongoPeerCommands.h"
#include "MongoPeerCursors.h"
#include "MongoPeerReplies.h"
#include "MongoPeerResumeToken.h"
#include "MongoPeerSchema.h"
#include "MongoPeerStore.h"
#include "MongoPeerWire.h"
#include "MongoPeerWrites.h"

namespace tw::test {

MongoPeer::MongoPeer(QObject* parent)
    : QObject(parent)
    , m_store(std::make_unique<MongoPeerStore>())
    , m_wire(std::make_unique<MongoPeerWire>())
    , m_replies(std::make_unique<MongoPeerReplies>(m_settings, *m_store))
    , m_cursors(std::make_unique<MongoPeerCursors>(*m_replies))
    , m_changeStreams(
          std::make_unique<MongoPeerChangeStreams>(m_settings, *m_store, *m_cursors, *m_wire, *m_replies))
    , m_writes(std::make_unique<MongoPeerWrites>(m_settings, *m_store, *m_replies))
    , m_schema(std::make_unique<MongoPeerSchema>(m_settings, *m_store, *m_replies))
    , m_commands(std::make_unique<MongoPeerCommands>(m_settings, *m_store, *m_cursors, *m_changeStreams,
                                                     *m_writes, *m_schema, *m_wire, *m_replies)) {
    m_wire->setRequestHandler(
        [this](MongoPeerWire::Connection* connection, const MongoPeerWire::Request& request) {
            m_received.append(request.body);
            m_receivedNames.append(request.name);
            Q_EMIT commandReceived(request.name);
            m_commands->dispatch(connection, request);
        });
    m_wire->setClosedHandler(
        [this](MongoPeerWire::Connection* connection) { m_changeStreams->dropWaiting(connection); });
    m_store->setChangeAppendedHandler([this] { m_changeStreams->wakeWaitingGetMores(); });
    connect(m_wire.get(), &MongoPeerWire::clientConnected, this, &MongoPeer::clientConnected);
    connect(m_wire.get(), &MongoPeerWire::clientDisconnected, this, &MongoPeer::clientDisconnected);
}

MongoPeer::~MongoPeer() {
    // The handlers reach into the parts; none may run while they go.
    m_wire->setRequestHandler({});
    m_wire->setClosedHandler({});
    m_store->setChangeAppendedHandler({});
}

bool MongoPeer::listen(quint16 port) {
    return m_wire->listen(port);
}

quint16 MongoPeer::port() const {
    return m_wire->port();
}

QString MongoPeer::hostAndPort() const {
    return m_wire->hostAndPort();
}

QString MongoPeer::uri() const {
    if (m_settings.replicaSet)
        return QStringLiteral("mongodb://%1/?replicaSet=%2").arg(hostAndPort(), m_settings.setName);
    return QStringLiteral("mongodb://%1/?directConnection=true").arg(hostAndPort());
}

void MongoPeer::setReplicaSet(bool replicaSet) {
    m_settings.replicaSet = replicaSet;
}

// --- store ------------------------------------------------------------------------

void MongoPeer::setDocuments(const QString& db, const QString& coll, const QList<Bson>& documents) {
    m_store->setDocuments(db, coll, documents);
}

QList<Bson> MongoPeer::documents(const QString& db, const QString& coll) const {
    return m_store->documents(db, coll);
}

void MongoPeer::createCollection(const QString& db, const QString& coll) {
    m_store->createCollection(db, coll);
}

void MongoPeer::createView(const QString& db, const QString& name, const QString& viewOn,
                           const QList<Bson>& pipeline) {
    m_store->createView(db, name, viewOn, pipeline);
}

void MongoPeer::dropAll() {
    m_store->dropAll();
}

// --- change log ---------------------------------------------------------------------

Bson MongoPeer::pushChange(const QString& db, const QString& coll, const Bson& event) {
    return MongoPeerResumeToken::forPosition(m_store->appendChange(db, coll, event, {}, {}));
}

Bson MongoPeer::latestResumeToken() const {
    return MongoPeerResumeToken::forPosition(m_store->lastPosition());
}

Bson MongoPeer::resumeTokenFor(qint64 position) {
    return MongoPeerResumeToken::forPosition(position);
}

void MongoPeer::forgetHistory() {
    m_store->forgetHistory();
}

int MongoPeer::changeLogSize() const {
    return int(m_store->log().size());
}

int MongoPeer::openChangeStreamCount() const {
    return m_changeStreams->openCount();
}

// --- fault injection ------------------------------------------------------------------

void MongoPeer::failNextCommand(const QString& command, const Bson& errorDoc, int times) {
    m_commands->failNextCommand(command, errorDoc, times);
}

Bson MongoPeer::errorDocument(int code, const QString& codeName, const QString& errmsg,
                              const QStringList& errorLabels) {
    return MongoPeerReplies::errorDocument(code, codeName, errmsg, errorLabels);
}

quint32 MongoPeer::crc32c(QByteArrayView data) {
    return MongoPeerWire::crc32c(data);
}

void MongoPeer::dropConnections() {
    m_wire->dropConnections();
}

void MongoPeer::stall(bool stalled) {
    m_wire->setStalled(stalled);
    if (stalled)
        return;
    m_changeStreams->stallEnded();
    m_wire->resumeAllLater();
}

bool MongoPeer::isStalled() const {
    return m_wire->isStalled();
}

// --- observation ----------------------------------------------------------------------

QList<Bson> MongoPeer::receivedCommands(const QString& name) const {
    if (name.isEmpty())
        return m_received;
    QList<Bson> out;
    for (qsizetype i = 0; i < m_received.size(); ++i) {
        if (m_receivedNames.at(i).compare(name, Qt::CaseInsensitive) == 0)
            out.append(m_received.at(i));
    }
    return out;
}

QStringList MongoPeer::receivedCommandNames() const {
    return m_receivedNames;
}

void MongoPeer::clearReceivedCommands() {
    m_received.clear();
    m_receivedNames.clear();
}

int MongoPeer::connectionCount() const {
    return m_wire->connectionCount();
}

int MongoPeer::totalConnections() const {
    return m_wire->totalConnections();
}

} // namespace tw::test

#pragma once

#include <functional>
#include <QObject>
#include <QString>

namespace tw {

// The system keychain (QtKeychain), under the service "tidewatch": connection
// passwords (connectionKey(id)) and the SSE token (kSseTokenKey). Every call is
// asynchronous and never runs an event loop of its own: the callback runs later on
// the thread of `context`, and is dropped when `context` is destroyed first. When the
// keychain cannot be reached (a build without QtKeychain, no session bus, under
// TIDEWATCH_TEST) the callback runs before the call returns, with Status::Unavailable.
namespace Keychain {

enum class Status {
    Ok,
    NotFound,    // read: no such entry
    Unavailable, // no keychain to ask
    Failed,      // the keychain answered with an error, or not within kTimeoutMs
};

// A locked keyring waits for a prompt nobody may answer: past this the job counts as
// failed and its late answer is ignored.
inline constexpr int kTimeoutMs = 5000;
inline constexpr auto kSseTokenKey = "sse-token";

using ReadCallback = std::function<void(Status status, const QString& value, const QString& message)>;
using WriteCallback = std::function<void(Status status, const QString& message)>;

bool isAvailable();
QString connectionKey(const QString& connectionId); // "connection/<id>"
void read(const QString& key, QObject* context, ReadCallback done);
void write(const QString& key, const QString& value, QObject* context, WriteCallback done = {});
void remove(const QString& key);

} // namespace Keychain

} // namespace tw

#pragma once

#include <functional>
#include <QObject>
#include <QString>

namespace tw::ui {

// Connection passwords in the system keychain (QtKeychain), keyed by connection id
// under the service "tidewatch". Jobs are asynchronous; the callback runs on the GUI
// thread and is dropped when `context` is destroyed first. Without QtKeychain (or a
// running secret service) reads fail with a message and writes keep the password in
// memory only, for this session.
namespace Keychain {

bool isAvailable();
void writePassword(const QString& connectionId, const QString& password, QObject* context,
                   std::function<void(const QString& error)> done = {});
void readPassword(const QString& connectionId, QObject* context,
                  std::function<void(const QString& password, const QString& error)> done);
void deletePassword(const QString& connectionId);

} // namespace Keychain

} // namespace tw::ui

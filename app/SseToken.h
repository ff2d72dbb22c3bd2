#pragma once

#include <functional>
#include <QObject>
#include <QString>

namespace tw {

// The SSE bearer token: TIDEWATCH_TOKEN when set; otherwise from the system keychain
// when it can be reached (Keychain::kSseTokenKey), else from Settings
// (Key::SseToken); generated (32 random bytes, base64url) on first use. `where` says
// where it came from, for the headless log.
//
// Asynchronous when the keychain is asked (see Keychain.h): `done` then runs later on
// the thread of `context`, and not at all when `context` is destroyed first. From the
// environment or the settings file it runs before the call returns.
using SseTokenCallback = std::function<void(const QString& token, const QString& where)>;
void loadOrCreateToken(QObject* context, SseTokenCallback done);

} // namespace tw

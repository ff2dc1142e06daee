// Redactor: the process-wide set of secret strings (DSN passwords, API keys, tokens) that must never
// reach logs or output. Every secret headshift loads is registered here the moment it is read; the
// log sink and the CLI's output path pass all text through Redact().
//
// Thread-safety: all functions are safe to call concurrently.
#pragma once

#include <string>
#include <string_view>

namespace headshift {

// Registers `secret` (ignored if shorter than 4 bytes: too short to redact without mangling text).
void RegisterSecret(std::string_view secret);

// Registers the password of a libpq DSN (key/value or URI form), if it has one.
void RegisterDsnSecrets(std::string_view dsn);

// Returns `text` with every registered secret (and its JSON-escaped form) replaced by "***", longest
// first, and any `password=...` in a key/value DSN, `user:pass@` in a URI, or `Bearer X` /
// `Basic X` credential masked even if it was never registered.
std::string Redact(std::string_view text);
// Redact() in place: no copy when there is nothing to mask (the output path of a large report).
void RedactInPlace(std::string& text);

// True when `text` contains a registered secret (e.g. an environment value a child must not inherit).
bool ContainsSecret(std::string_view text);

// Forgets all registered secrets (tests only).
void ClearSecretsForTest();

}  // namespace headshift

// HaproxyRuntimeClient: commands over HAProxy's runtime API (the `stats socket ... level admin`
// unix socket), one connection per command (HAProxy's non-interactive mode: it answers, then
// closes). Only the map and backend commands headshift needs are wrapped; each checks the reply so
// a refusal ("Unknown map identifier", "Permission denied", ...) becomes a Status naming it.
//
// Arguments are never quoted by HAProxy's CLI parser, so callers must pass only validated names
// (NameTemplate / ValidateBackendName); Execute() refuses arguments with whitespace or ';'.
//
// Thread-safety: stateless apart from the configuration; safe to share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace headshift {

struct MapEntry {
  std::string key;
  std::string value;
};

class HaproxyRuntimeClient {
 public:
  HaproxyRuntimeClient(std::string socket_path, int64_t timeout_ms);

  // Sends one command line and returns HAProxy's reply. Failed if the socket is missing, refuses
  // the connection or does not answer within the timeout.
  StatusOr<std::string> Execute(const std::string& command) const;

  // Every entry of `map` in HAProxy's order (`show map`). Failed if HAProxy does not know the map.
  StatusOr<std::vector<MapEntry>> ShowMap(const std::string& map) const;
  // The value HAProxy's lookup returns for `key` (`get map`), nullopt if no entry matches.
  StatusOr<std::optional<std::string>> GetMap(const std::string& map, const std::string& key) const;
  // `set map` (key must exist), `add map` (appends), `del map` (removes every entry with the key).
  Status SetMap(const std::string& map, const std::string& key, const std::string& value) const;
  Status AddMap(const std::string& map, const std::string& key, const std::string& value) const;
  Status DelMap(const std::string& map, const std::string& key) const;

  // Names of the backends HAProxy runs (`show backend`).
  StatusOr<std::vector<std::string>> Backends() const;
  // The BACKEND row's status from `show stat` ("UP", "DOWN", ...). Failed if the backend is unknown.
  StatusOr<std::string> BackendStatus(const std::string& backend) const;

  const std::string& socket_path() const { return socket_path_; }

 private:
  // Runs a command whose successful reply is empty; anything else is the error text.
  Status ExpectEmpty(const std::string& command) const;

  std::string socket_path_;
  int64_t timeout_ms_;
};

}  // namespace headshift

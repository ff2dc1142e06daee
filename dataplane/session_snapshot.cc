#include "dataplane/session_snapshot.h"

#include <chrono>
#include <ctime>
#include <fstream>
#include <sys/socket.h>

#include "common/atomic_file.h"
#include "dataplane/tcp_state.h"
#include "dataplane/termination_report.h"

namespace headshift {
namespace {

constexpr const char* kFormat = "headshift-session-snapshot";
constexpr int kVersion = 1;

std::string Rfc3339(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

Status Bad(const std::string& what) {
  return Status::BadInput("not a headshift session snapshot: " + what,
                          "pass a file written by `headshift sessions list --snapshot-out FILE`");
}

StatusOr<uint8_t> StateFromName(const std::string& name) {
  for (uint8_t s = 1; s <= kTcpNewSynRecv; ++s) {
    if (TcpStateName(s) == name) return s;
  }
  return Bad("unknown state '" + name + "'");
}

}  // namespace

std::string CurrentBootId() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(f, id);
  return id;
}

nlohmann::json SessionSnapshot::ToJson() const {
  nlohmann::json socks = nlohmann::json::array();
  for (const auto& s : sockets) {
    nlohmann::json j = SocketToJson(s);
    j["ifindex"] = s.id.idiag_if;
    socks.push_back(std::move(j));
  }
  return {{"host", host},
          {"netns", netns},
          {"netns_inode", netns_inode},
          {"boot_id", boot_id},
          {"ports", ports},
          {"clients", clients},
          {"taken_at", Rfc3339(taken_at_ms)},
          {"taken_at_ms", taken_at_ms},
          {"sockets", std::move(socks)}};
}

StatusOr<SessionSnapshot> SessionSnapshot::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Bad("a snapshot is not a JSON object");
  SessionSnapshot s;
  try {
    s.host = j.at("host").get<std::string>();
    s.netns = j.at("netns").get<std::string>();
    s.netns_inode = j.at("netns_inode").get<uint64_t>();
    s.boot_id = j.at("boot_id").get<std::string>();
    s.ports = j.at("ports").get<std::vector<uint16_t>>();
    s.clients = j.value("clients", std::vector<std::string>{});
    s.taken_at_ms = j.at("taken_at_ms").get<int64_t>();
    for (const auto& e : j.at("sockets")) {
      std::string fam = e.at("family").get<std::string>();
      if (fam != "inet" && fam != "inet6") return Bad("family '" + fam + "'");
      auto local = InetEndpoint::Parse(e.at("local").get<std::string>());
      if (!local.ok()) return Bad(local.status().message());
      auto remote = InetEndpoint::Parse(e.at("remote").get<std::string>());
      if (!remote.ok()) return Bad(remote.status().message());
      auto state = StateFromName(e.at("state").get<std::string>());
      if (!state.ok()) return state.status();
      s.sockets.push_back(DiagSocket::FromParts(fam == "inet6" ? AF_INET6 : AF_INET, *state, *local, *remote,
                                                e.at("cookie").get<uint64_t>(), e.value("ifindex", 0u)));
    }
  } catch (const nlohmann::json::exception& e) {
    return Bad(e.what());
  }
  return s;
}

Status SaveSnapshots(const std::string& path, const std::vector<SessionSnapshot>& snapshots) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& s : snapshots) arr.push_back(s.ToJson());
  nlohmann::json doc = {{"format", kFormat}, {"version", kVersion}, {"snapshots", std::move(arr)}};
  return WriteFileAtomically(path, doc.dump(1) + "\n", 0600);
}

StatusOr<std::vector<SessionSnapshot>> LoadSnapshots(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    return Status::BadInput("snapshot file '" + path + "' cannot be read",
                            "pass the file written by `headshift sessions list --snapshot-out FILE`");
  }
  nlohmann::json doc = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::BadInput("snapshot file '" + path + "' is not valid JSON");
  if (!doc.is_object() || !doc.contains("format") || doc["format"] != kFormat) {
    return Status::BadInput("'" + path + "' is not a headshift session snapshot (format field)",
                            "pass the file written by `headshift sessions list --snapshot-out FILE`");
  }
  if (!doc.contains("version") || doc["version"] != kVersion) {
    return Status::BadInput("snapshot file '" + path + "' has unsupported version " + doc.value("version", nlohmann::json()).dump(),
                            "write the snapshot with this headshift version");
  }
  std::vector<SessionSnapshot> out;
  if (!doc.contains("snapshots") || !doc["snapshots"].is_array()) return Bad("no snapshots array in " + path);
  for (const auto& j : doc["snapshots"]) {
    auto s = SessionSnapshot::FromJson(j);
    if (!s.ok()) return s.status().WithContext(path);
    out.push_back(std::move(s).value());
  }
  return out;
}

}  // namespace headshift

// Doctor: checks that this host and the configured deployment can run a migration, and reports
// each item with OK/FAIL and a fix hint. Read-only: it changes nothing outside a throwaway network
// namespace of its own (the SOCK_DESTROY probe).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.h"

namespace headshift {

struct DoctorCheck {
  std::string name;    // e.g. "cap_net_admin", "database[shared]", "noise_keys"
  bool ok = false;
  bool privilege = false;  // a privilege / kernel-support check (failure → exit 5)
  std::string detail;  // what was seen
  std::string hint;    // the fix, when not ok
};

struct DoctorReport {
  std::vector<DoctorCheck> checks;
  // 0 when all pass, 5 when a privilege/kernel check failed, 1 otherwise.
  int ExitCode() const;
  nlohmann::json ToJson() const;
  std::string ToText() const;
};

// `config` may be null: then only the host checks (privilege, kernel) run. `proxy_host`: what a proxy
// host of a fleet needs for the cut (host checks, session namespaces, the proxy answering on its
// runtime interface); no database or control plane is contacted (a proxy host may reach neither).
DoctorReport RunDoctor(const Config* config, bool proxy_host = false);

// Individual checks, exposed for tests.
DoctorCheck CheckCapNetAdmin();
DoctorCheck CheckNetns(const std::string& host, const std::string& netns);
// What the tenant tables' cluster column must look like (from the schema profile and
// database.cluster_column).
struct ClusterColumnExpectation {
  std::string column = "cluster_id";  // "" = none: stock headscale, split layout (the DSN is the cluster)
  std::string forbidden;              // with none: a fork's column that must be absent (e.g. cluster_id)
};
// Connects with `dsn` and looks for users/nodes/pre_auth_keys: with their cluster column (its type is
// reported), or, when none is expected, without the fork's column ("no cluster column (stock headscale,
// split layout)"). A column configured but absent, or present but configured as none, fails naming the
// database.cluster_column setting that fixes it. Reports the headscale version in database_versions.
DoctorCheck CheckDatabase(const std::string& label, const std::string& dsn, int64_t timeout_ms,
                          const ClusterColumnExpectation& expect = {});
// Fetches /key from every cluster and checks they all report the same Noise public key.
std::vector<DoctorCheck> CheckNoiseKeys(const Config& config);
DoctorCheck CheckProxy(const Config& config);

}  // namespace headshift

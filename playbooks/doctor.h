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

// `config` may be null: then only the host checks (privilege, kernel) run.
DoctorReport RunDoctor(const Config* config);

// Individual checks, exposed for tests.
DoctorCheck CheckCapNetAdmin();
DoctorCheck CheckNetns(const std::string& host, const std::string& netns);
// Connects with `dsn` and looks for users/nodes/pre_auth_keys with a cluster_id column.
DoctorCheck CheckDatabase(const std::string& label, const std::string& dsn, int64_t timeout_ms);
// Fetches /key from every cluster and checks they all report the same Noise public key.
std::vector<DoctorCheck> CheckNoiseKeys(const Config& config);
DoctorCheck CheckProxy(const Config& config);

}  // namespace headshift

// ParityReport: how two headscale nodes differ in what a moved tenant depends on, each difference with
// its consequence, its fix and whether it refuses the move or is a named risk.
//
//   fact          refuse when                                   risk when
//   noise_key     the keys differ (devices reject the target)   -
//   version       major.minor differ (schema, API, policy)      only the patch level differs
//   base_domain   differs and MagicDNS is on on either node     differs, MagicDNS off on both
//   magic_dns     -                                             on one node only (names stop resolving)
//   prefixes      -                                             a tenant IP outside the target's prefixes
//   derp_map      -                                             the maps differ (relay paths change)
//   policy_mode   -                                             differ (the policy step writes differently)
//   oidc_issuer   differs and the tenant has OIDC users         differs, the tenant has none
//   unread        -                                             a fact could not be read on a node
//
// Thread-safety: a value type.
#pragma once

#include <string>
#include <vector>

#include "controlplane/node_facts.h"

namespace headshift {

enum class ParitySeverity { kRefuse, kRisk };

struct ParityDifference {
  std::string fact;          // "noise_key", "version", "base_domain", ...
  ParitySeverity severity = ParitySeverity::kRisk;
  std::string source_value;  // never a secret (the Noise public key is public)
  std::string target_value;
  std::string consequence;
  std::string fix;
  std::string ToString() const;
};

struct ParityInput {
  std::vector<std::string> tenant_ips;  // the tenant's device addresses (checked against target prefixes)
  bool tenant_has_oidc_users = false;
};

class ParityReport {
 public:
  static ParityReport Compare(const NodeFacts& source, const NodeFacts& target, const ParityInput& input);

  const std::vector<ParityDifference>& differences() const { return differences_; }
  bool refused() const;
  // Refused (exit 3) listing the refusals, else OK.
  Status RefusalStatus() const;
  // Risks only, one line each.
  std::vector<std::string> RiskLines() const;

 private:
  std::vector<ParityDifference> differences_;
};

}  // namespace headshift

// PolicyDiff: a readable line diff between two versions of one node's policy, for `plan`:
//   + acls[3]: {"action":"accept","src":["hsa@"],"dst":["hsa@:*"]}
//   - groups.group:hsa-admins: ["hsa@"]
//   - autoApprovers.routes.10.1.0.0/24: ["hsa@"]
// Rule sections (acls, grants, ssh, nodeAttrs) are compared as lists of rules (a rule's index is its
// position in the version that has it); named sections (groups, tagOwners, hosts,
// autoApprovers.routes) per name; anything else per top-level key. Member order is ignored.
//
// Thread-safety: stateless functions.
#pragma once

#include <string>
#include <vector>

#include "controlplane/policy_document.h"

namespace headshift {

class PolicyDiff {
 public:
  // Lines removed ("- ...") then added ("+ ..."), section by section; empty when the same policy.
  static std::vector<std::string> Lines(const PolicyDocument& before, const PolicyDocument& after);
};

}  // namespace headshift

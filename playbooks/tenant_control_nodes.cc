#include "playbooks/tenant_control_nodes.h"

#include <set>

namespace headshift {

bool HasTaggedDevices(const std::vector<migrate::TenantNode>& nodes) {
  for (const auto& n : nodes) {
    if (!n.user_id) return true;
  }
  return false;
}

StatusOr<std::vector<ControlNode>> TenantControlNodes(HeadscaleClient& api, const std::string& tenant,
                                                      const std::vector<migrate::TenantNode>& nodes) {
  if (!HasTaggedDevices(nodes)) return api.ListNodes(tenant);
  std::set<std::string> keys;
  for (const auto& n : nodes) keys.insert(n.node_key);
  auto all = api.ListNodes("");
  if (!all.ok()) return all.status();
  std::vector<ControlNode> out;
  for (auto& n : *all) {
    if (n.user == tenant || keys.count(n.node_key)) out.push_back(std::move(n));
  }
  return out;
}

}  // namespace headshift

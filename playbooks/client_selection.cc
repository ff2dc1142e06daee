#include "playbooks/client_selection.h"

#include <set>

namespace headshift {

StatusOr<ClientSelection> SelectClients(migrate::TenantMover& mover, const Config& config, const std::string& tenant,
                                        const std::string& cluster, bool allow_shared) {
  auto ours = mover.PublicClientAddresses(tenant, cluster);
  if (!ours.ok()) return ours.status();
  auto load = mover.Load();
  if (!load.ok()) return load.status();
  std::map<std::string, std::vector<std::string>> owners;  // address -> other tenants using it
  std::set<std::string> our_set(ours->begin(), ours->end());
  for (const auto& [cl, tenants] : load->devices) {
    for (const auto& [other, devices] : tenants) {
      if (other == tenant || devices == 0) continue;
      auto theirs = mover.PublicClientAddresses(other, cl);
      if (!theirs.ok()) return theirs.status();
      for (const auto& a : *theirs) {
        if (our_set.count(a)) owners[a].push_back(other);
      }
    }
  }
  ClientSelection sel;
  sel.shared = owners;
  for (const auto& a : *ours) {
    if (owners.count(a) && !allow_shared) continue;
    sel.selected.push_back(a);
  }
  if (auto it = config.tenants.find(tenant); it != config.tenants.end()) {
    for (const auto& c : it->second.extra_cidrs) sel.selected.push_back(c);
  }
  return sel;
}

}  // namespace headshift

// LabPlan: what a lab's options resolve to before anything is made: the tenants, their clusters,
// device counts, client source addresses and tailnet IP blocks (LabOptions itself is in sandbox/lab.h,
// checked by ValidateLabOptions there).
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "sandbox/lab.h"

namespace headshift::sandbox::lab {

// One tenant as the lab seeds and serves it.
struct TenantPlan {
  std::string name, cluster;
  int devices = 0;
  std::string public_base;      // first client source address (198.18.0.1 + k·4096)
  int public_addresses = 1;     // about four devices per address
  std::string shared_address;   // the NAT address shared with its pair tenant ("" = none)
  int shared_devices = 0;       // devices behind shared_address
  int ip_offset = 0;            // first tailnet IP index (one block per tenant across all clusters)
};

// "hsa", "hsb", …, "hsz", "hsaa", … (n names).
std::vector<std::string> DefaultTenantNames(int n);
// REQUIRES: ValidateLabOptions(o).ok().
std::vector<TenantPlan> PlanTenants(const LabOptions& o);

}  // namespace headshift::sandbox::lab

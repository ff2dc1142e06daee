#include "sandbox/lab_plan.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "sandbox/lab_naming.h"
#include "sandbox/seed.h"

namespace headshift::sandbox {
namespace lab {

std::vector<std::string> DefaultTenantNames(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string s = "hs";
    int k = i;
    std::string suffix;
    do {
      suffix.insert(suffix.begin(), static_cast<char>('a' + k % 26));
      k = k / 26 - 1;
    } while (k >= 0);
    out.push_back(s + suffix);
  }
  return out;
}

std::vector<TenantPlan> PlanTenants(const LabOptions& o) {
  std::vector<LabTenant> ts = o.tenants;
  if (ts.empty()) {
    for (const auto& n : DefaultTenantNames(o.tenant_count)) ts.push_back({n, "", -1});
  }
  std::vector<TenantPlan> out;
  int next_ip = 0;
  for (size_t k = 0; k < ts.size(); ++k) {
    TenantPlan p;
    p.name = ts[k].name;
    p.cluster = ts[k].cluster.empty() ? o.clusters[k % o.clusters.size()] : ts[k].cluster;
    p.devices = ts[k].devices >= 0 ? ts[k].devices : o.devices;
    // Tenant k's public (client) addresses: 198.18.0.1 + k·4096, about four devices per address.
    p.public_base = AddToIpv4("198.18.0.1", static_cast<uint32_t>(k) * 4096);
    p.public_addresses = std::clamp(p.devices / 4, 1, 4000);
    // Tenants pair up (0,1), (2,3), …: each pair shares one NAT address for a share of its devices.
    if (o.shared_nat_share > 0 && (k % 2 == 1 || k + 1 < ts.size())) {
      p.shared_address = AddToIpv4("198.19.255.1", static_cast<uint32_t>(k / 2));
      p.shared_devices = static_cast<int>(std::lround(o.shared_nat_share * p.devices));
    }
    // Tailnet IPs come from one block per tenant across all clusters (as an operator who moves
    // tenants between nodes must arrange: headshift refuses a move whose IPs are taken on the
    // target, since headscale keeps them unique per node only in memory).
    p.ip_offset = next_ip;
    next_ip += p.devices;
    out.push_back(p);
  }
  return out;
}
}  // namespace lab

std::string DefaultStateDir(const std::string& name) { return "/tmp/headshift-sandbox-" + name; }

Status ValidateLabOptions(const LabOptions& o) {
  if (!lab::ValidName(o.name, 24)) {
    return Status::BadInput("--name '" + o.name + "' must be 1-24 chars of a-z, 0-9, '-'",
                            "e.g. --name e2e" + std::to_string(getpid()));
  }
  if (o.clusters.empty()) return Status::BadInput("--clusters: at least one cluster id is needed");
  if (o.clusters.size() > 30) return Status::BadInput("--clusters: at most 30 clusters");
  std::set<std::string> ids;
  for (const auto& c : o.clusters) {
    if (!lab::ValidName(c, 12)) return Status::BadInput("--clusters: cluster id '" + c + "' must be 1-12 chars of a-z, 0-9, '-'");
    if (o.cluster_id_type == ClusterIdType::kBigint && c.find_first_not_of("0123456789") != std::string::npos) {
      return Status::BadInput("--clusters: '" + c + "' is not an integer but --cluster-id-type is bigint");
    }
    if (!ids.insert(c).second) return Status::BadInput("--clusters: cluster id '" + c + "' given twice");
  }
  for (const auto& [c, n] : o.absorb_per_s) {
    if (!ids.count(c)) return Status::BadInput("absorb_per_s: cluster '" + c + "' is not one of --clusters");
    if (n < 0) return Status::BadInput("absorb_per_s of cluster " + c + " must be >= 0");
  }
  if (o.tenants.empty() && (o.tenant_count < 1 || o.tenant_count > 31)) {
    return Status::BadInput("--tenants must be between 1 and 31");
  }
  if (o.tenants.size() > 31) return Status::BadInput("at most 31 tenants");
  if (o.devices < 0 || o.devices > 16000) return Status::BadInput("--devices must be between 0 and 16000");
  std::set<std::string> names;
  int64_t total = 0;
  for (const auto& t : o.tenants) {
    if (!lab::ValidName(t.name, 40)) return Status::BadInput("--tenant: name '" + t.name + "' must be a-z, 0-9, '-'");
    if (!names.insert(t.name).second) return Status::BadInput("--tenant: '" + t.name + "' given twice");
    if (!t.cluster.empty() && !ids.count(t.cluster)) {
      return Status::BadInput("--tenant " + t.name + ": cluster '" + t.cluster + "' is not one of --clusters");
    }
    if (t.devices > 16000) return Status::BadInput("--tenant " + t.name + ": at most 16000 devices");
    total += t.devices >= 0 ? t.devices : o.devices;
  }
  if (o.tenants.empty()) total = static_cast<int64_t>(o.tenant_count) * o.devices;
  if (o.fleet && total > lab::kMaxClients) {
    return Status::BadInput("the fleet would have " + std::to_string(total) + " clients; the lab's HAProxy holds at most " +
                            std::to_string(lab::kMaxClients) + " (20,000 fds per process)",
                            "use fewer devices or --no-fleet");
  }
  if (o.shared_nat_share < 0 || o.shared_nat_share > 1) return Status::BadInput("--shared-nat-share must be in [0, 1]");
  if (o.https_share < 0 || o.https_share > 1) return Status::BadInput("--https-share must be in [0, 1]");
  if (o.clients_per_process < 1 || o.clients_per_process > 19000) {
    return Status::BadInput("--clients-per-process must be in [1, 19000] (20,000 fds per process)");
  }
  if (!o.sweep_prefix.empty() && (o.name.rfind(o.sweep_prefix, 0) != 0 || o.name == o.sweep_prefix)) {
    return Status::BadInput("sweep prefix '" + o.sweep_prefix + "' is not a proper prefix of lab name '" + o.name + "'");
  }
  if (o.keepalive_ms < 10) return Status::BadInput("--keepalive-ms must be >= 10");
  if (o.disconnect_grace_ms < 0) return Status::BadInput("--disconnect-grace-ms must be >= 0");
  return Status::Ok();
}
}  // namespace headshift::sandbox

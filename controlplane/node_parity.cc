#include "controlplane/node_parity.h"

#include "controlplane/ip_range.h"

namespace headshift {
namespace {

std::string MajorMinor(const std::string& v) {
  std::string s = v.rfind('v', 0) == 0 ? v.substr(1) : v;
  size_t dot = s.find('.');
  if (dot == std::string::npos) return s;
  size_t second = s.find('.', dot + 1);
  return s.substr(0, second);
}

std::string Show(const std::optional<std::string>& v) { return v ? (v->empty() ? "(none)" : *v) : "(unread)"; }

}  // namespace

std::string ParityDifference::ToString() const {
  return fact + (severity == ParitySeverity::kRefuse ? " (refused)" : " (risk)") + ": source " + source_value +
         ", target " + target_value + ": " + consequence + (fix.empty() ? "" : " (fix: " + fix + ")");
}

bool ParityReport::refused() const {
  for (const auto& d : differences_) {
    if (d.severity == ParitySeverity::kRefuse) return true;
  }
  return false;
}

Status ParityReport::RefusalStatus() const {
  std::string msg;
  for (const auto& d : differences_) {
    if (d.severity == ParitySeverity::kRefuse) msg += (msg.empty() ? "" : "; ") + d.ToString();
  }
  if (msg.empty()) return Status::Ok();
  return Status::Refused("the two nodes differ in what the tenant depends on: " + msg,
                         "make the nodes agree as named, then retry; nothing was changed");
}

std::vector<std::string> ParityReport::RiskLines() const {
  std::vector<std::string> out;
  for (const auto& d : differences_) {
    if (d.severity == ParitySeverity::kRisk) out.push_back(d.ToString());
  }
  return out;
}

ParityReport ParityReport::Compare(const NodeFacts& s, const NodeFacts& t, const ParityInput& in) {
  ParityReport r;
  auto add = [&r](std::string fact, ParitySeverity sev, std::string sv, std::string tv, std::string why,
                  std::string fix) {
    r.differences_.push_back({std::move(fact), sev, std::move(sv), std::move(tv), std::move(why), std::move(fix)});
  };
  if (s.noise_key && t.noise_key && *s.noise_key != *t.noise_key) {
    add("noise_key", ParitySeverity::kRefuse, *s.noise_key, *t.noise_key,
        "devices pinned to the source's key reject the target's control connection",
        "give both nodes the same noise.private_key_path file and restart the target");
  }
  if (s.version && t.version && *s.version != *t.version) {
    bool minor = MajorMinor(*s.version) != MajorMinor(*t.version);
    add("version", minor ? ParitySeverity::kRefuse : ParitySeverity::kRisk, *s.version, *t.version,
        minor ? "another headscale release: database schema, API and policy semantics may differ"
              : "another patch release of the same headscale",
        "run the same headscale release on both nodes");
  }
  bool magic = (s.magic_dns && *s.magic_dns) || (t.magic_dns && *t.magic_dns);
  if (s.base_domain && t.base_domain && *s.base_domain != *t.base_domain) {
    add("base_domain", magic ? ParitySeverity::kRefuse : ParitySeverity::kRisk, Show(s.base_domain),
        Show(t.base_domain),
        magic ? "the tenant's MagicDNS names (device.base_domain) change" : "device FQDNs change (MagicDNS is off)",
        "set the same dns.base_domain on both nodes");
  }
  if (s.magic_dns && t.magic_dns && *s.magic_dns != *t.magic_dns) {
    add("magic_dns", ParitySeverity::kRisk, *s.magic_dns ? "on" : "off", *t.magic_dns ? "on" : "off",
        "device names stop or start resolving on the tenant's devices", "set the same dns.magic_dns on both nodes");
  }
  if (t.prefix_v4 || t.prefix_v6) {
    auto v4 = IpRange::Parse(t.prefix_v4.value_or(""));
    auto v6 = IpRange::Parse(t.prefix_v6.value_or(""));
    std::string outside;
    for (const auto& ip : in.tenant_ips) {
      if ((v4 && v4->Contains(ip)) || (v6 && v6->Contains(ip))) continue;
      outside += (outside.empty() ? "" : ", ") + ip;
    }
    if (!outside.empty()) {
      add("prefixes", ParitySeverity::kRisk, Show(s.prefix_v4) + " " + Show(s.prefix_v6),
          Show(t.prefix_v4) + " " + Show(t.prefix_v6),
          "tenant addresses outside the target's prefixes (" + outside +
              ") are served as stored, but `headscale nodes backfillips` on the target would renumber them",
          "never run backfillips on the target, or include the tenant's range in its prefixes");
    }
  }
  if (s.derp && t.derp && *s.derp != *t.derp) {
    add("derp_map", ParitySeverity::kRisk, s.derp->dump(), t.derp->dump(),
        "the tenant's devices get the target's relays: DERP paths and home regions change",
        "serve the same DERP map (derp.urls / derp.paths) on both nodes");
  }
  if (s.policy_mode && t.policy_mode && *s.policy_mode != *t.policy_mode) {
    add("policy_mode", ParitySeverity::kRisk, *s.policy_mode, *t.policy_mode,
        "the tenant's policy is written through the API on one node and as a file on the other",
        "use the same policy.mode on both nodes");
  }
  if (s.oidc_issuer && t.oidc_issuer && *s.oidc_issuer != *t.oidc_issuer) {
    add("oidc_issuer", in.tenant_has_oidc_users ? ParitySeverity::kRefuse : ParitySeverity::kRisk,
        Show(s.oidc_issuer), Show(t.oidc_issuer),
        in.tenant_has_oidc_users ? "the tenant's users log in through another identity provider on the target"
                                 : "users created later by OIDC would come from another provider",
        "configure the same oidc.issuer on both nodes");
  }
  for (const NodeFacts* f : {&s, &t}) {
    for (const auto& u : f->unread) {
      add("unread", ParitySeverity::kRisk, f == &s ? "node " + f->node : "", f == &t ? "node " + f->node : "",
          "not compared: " + u, "set clusters[].debug_url and make the node reachable from this host");
    }
  }
  return r;
}

}  // namespace headshift

#include "playbooks/node_parity_check.h"

#include "controlplane/node_facts.h"
#include "controlplane/node_parity.h"

namespace headshift {

namespace {

// policy.mode as the node reports it against how headshift would write that node's policy.
void CheckPolicyMode(const ClusterConfig& c, const NodeFacts& facts, bool changes, std::vector<std::string>& problems) {
  if (!changes || !facts.policy_mode) return;
  if (*facts.policy_mode == "file" && c.policy_file.empty()) {
    problems.push_back("cluster " + c.id + " keeps its ACL policy in a file (policy.mode: file) and the move "
                       "changes it (fix: set clusters[" + c.id + "].policy_file and policy_reload_command)");
  } else if (*facts.policy_mode == "database" && !c.policy_file.empty()) {
    problems.push_back("cluster " + c.id + " keeps its ACL policy in its database (policy.mode: database) but "
                       "clusters[" + c.id + "].policy_file is set (fix: remove policy_file and "
                       "policy_reload_command; headshift uses the API's SetPolicy)");
  }
}

}  // namespace

void CheckNodeParity(MigrationEnv& env, const std::string& from, const std::string& to,
                     const std::vector<migrate::TenantNode>& tenant_nodes, const PolicyMovePlan* policy,
                     MigrationReport& rep, std::vector<std::string>& problems) {
  const ClusterConfig* s = env.config.FindCluster(from);
  const ClusterConfig* t = env.config.FindCluster(to);
  NodeFactsReader sr(from, s->control_url, s->debug_url, env.config.timeouts.http_ms);
  NodeFactsReader tr(to, t->control_url, t->debug_url, env.config.timeouts.http_ms);
  auto sf = sr.Read();
  auto tf = tr.Read();
  if (!sf.ok() || !tf.ok()) return;  // unreachable: preflight's control-plane check says so
  bool policy_moves = policy && policy->read;
  CheckPolicyMode(*s, *sf, policy_moves && policy->changes_source(), problems);
  CheckPolicyMode(*t, *tf, policy_moves && policy->changes_target(), problems);

  ParityInput in;
  for (const auto& n : tenant_nodes) {
    if (n.deleted) continue;
    if (!n.ipv4.empty()) in.tenant_ips.push_back(n.ipv4);
    if (!n.ipv6.empty()) in.tenant_ips.push_back(n.ipv6);
  }
  bool debug = !s->debug_url.empty() || !t->debug_url.empty();
  ParityReport report = ParityReport::Compare(*sf, *tf, in);
  for (const auto& d : report.differences()) {
    if (d.fact == "noise_key") continue;          // preflight's own check, with its fix
    if (d.fact == "unread" && !debug) continue;   // no debug_url: the facts were not asked for
    bool refuse = d.severity == ParitySeverity::kRefuse;
    rep.parity.push_back({{"fact", d.fact},
                          {"severity", refuse ? "refuse" : "risk"},
                          {"source", d.source_value},
                          {"target", d.target_value},
                          {"consequence", d.consequence},
                          {"fix", d.fix}});
    if (refuse) problems.push_back("node parity: " + d.ToString());
    else rep.risks.push_back({"parity_" + d.fact, d.ToString()});
  }
}

}  // namespace headshift

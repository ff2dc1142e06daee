// tailnet: after the devices are back, proves from headscale itself that the tenant's tailnet on the
// target is the one it had on the source: the target's compiled packet filter (debug_url/debug/filter)
// grants every pair of the tenant's devices exactly what the source's did before the cut (journaled by
// `policy`). A difference stops the migration for the operator (exit 4) naming the devices' addresses.
// Needs debug_url on both clusters; without it (or when the target's filter cannot be read after 3 tries)
// the check is journaled as skipped and the report warns.
// At thousands of devices the pairs of a deterministic sample of addresses are compared (kMaxAddresses).
#include <algorithm>
#include <chrono>
#include <thread>

#include "controlplane/node_facts.h"
#include "controlplane/packet_filter.h"
#include "playbooks/journal_details.h"
#include "playbooks/migration_run.h"
#include "playbooks/steps/steps.h"

namespace headshift::steps {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxAddresses = 400;  // 160,000 ordered pairs
constexpr int64_t kFilterReadTimeoutMs = 30000;
constexpr int kFilterReadAttempts = 3;

StatusOr<json> Run(MigrationRun& run) {
  json policy = StepDetails(run.rec, "policy");
  const ClusterConfig* target = run.env.config.FindCluster(run.ref.to);
  auto skipped = [&](const std::string& why) {
    run.rep.tailnet = {{"checked", false}, {"reason", why}};
    run.rep.warnings.push_back("the tenant's tailnet on cluster " + run.ref.to + " was not compared with the "
                               "source's: " + why);
    return json{{"checked", false}, {"reason", why}};
  };
  if (!policy.contains("source_filter")) {
    return skipped(policy.value("source_filter_error", "no debug_url on cluster " + run.ref.from));
  }
  if (target->debug_url.empty()) return skipped("no debug_url on cluster " + run.ref.to);
  auto before = PacketFilter::Parse(policy["source_filter"].get<std::string>(), "cluster " + run.ref.from);
  if (!before.ok()) return before.status();
  // A node of thousands of devices that just took them back can be slow to compile and serve its filter:
  // a longer timeout and a few tries. Still unreadable, the check is skipped with a warning: the move is
  // done and its devices are back; an unread verification must not leave it for the operator.
  NodeFactsReader reader(run.ref.to, target->control_url, target->debug_url,
                         std::max<int64_t>(run.env.config.timeouts.http_ms, kFilterReadTimeoutMs));
  auto now = reader.FilterJson();
  for (int attempt = 1; !now.ok() && attempt < kFilterReadAttempts; ++attempt) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    now = reader.FilterJson();
  }
  if (!now.ok()) return skipped("its packet filter could not be read (" + now.status().message() + ")");
  auto after = PacketFilter::Parse(*now, "cluster " + run.ref.to);
  if (!after.ok()) return after.status();
  auto nodes = run.env.mover->TenantNodes(run.ref.tenant, run.ref.to);
  if (!nodes.ok()) return nodes.status();
  std::vector<std::string> ips;
  for (const auto& n : *nodes) {
    if (n.deleted) continue;
    if (!n.ipv4.empty()) ips.push_back(n.ipv4);
    if (!n.ipv6.empty()) ips.push_back(n.ipv6);
  }
  size_t total = ips.size();
  if (ips.size() > kMaxAddresses) {
    std::vector<std::string> sample;
    for (size_t i = 0; i < kMaxAddresses; ++i) sample.push_back(ips[i * ips.size() / kMaxAddresses]);
    ips = std::move(sample);
  }
  auto diffs = TailnetEquivalence::Compare(*before, *after, ips);
  json d = json::array();
  for (size_t i = 0; i < diffs.size() && i < 20; ++i) d.push_back(diffs[i].ToString());
  run.rep.tailnet = {{"checked", true}, {"addresses", total}, {"compared", ips.size()},
                     {"differences", diffs.size()}, {"first_differences", d}};
  if (!diffs.empty()) return TailnetEquivalence::ToStatus(diffs);
  return run.rep.tailnet;
}

}  // namespace

MigrationStep Tailnet() {
  return MigrationStep{
      .name = "tailnet",
      .after_cut = true,
      .run = Run,
  };
}

}  // namespace headshift::steps

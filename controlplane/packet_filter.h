// PacketFilter: a headscale node's compiled packet filter as its debug listener serves it
// (GET /debug/filter, hscontrol/debug.go → state.DebugFilter → PolicyManager.Filter(), v0.29): a JSON array
// of tailscale's tailcfg.FilterRule, encoded by Go with the struct's field names:
//   [{"SrcIPs": ["100.64.3.1", "100.64.0.0/10", "*", "a-b"], "DstPorts": [{"IP": "100.64.3.2",
//     "Bits": 32 (deprecated, optional), "Ports": {"First": 0, "Last": 65535}}], "IPProto": [6, 17]}]
// A rule without IPProto allows tailscale's default protocols (TCP, UDP, ICMPv4, ICMPv6); a rule with
// only CapGrant (app capabilities) grants no packets and is not counted.
//
// Limitation (PolicyManager.Filter in v0.29): rules with autogroup:self are compiled per node and are
// not in this global filter; their equivalence is the identical-generic-rule check of
// TenantPolicySplitter::CheckTarget.
//
// TailnetEquivalence compares what two filters grant among one tenant's addresses (every src → dst
// pair, src != dst), so a move can prove the tenant's tailnet on the target equals the source's.
//
// Thread-safety: value types; const methods may be called concurrently.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "controlplane/ip_range.h"

namespace headshift {

// IP protocol number → merged, sorted inclusive port ranges.
using FilterAccess = std::map<int, std::vector<std::pair<int, int>>>;

class PacketFilter {
 public:
  // BadInput naming `origin` and the rule index for JSON that is not a FilterRule array.
  static StatusOr<PacketFilter> Parse(const std::string& json, const std::string& origin);

  // What packets from `src_ip` to `dst_ip` the filter accepts (empty: none).
  FilterAccess Between(const std::string& src_ip, const std::string& dst_ip) const;

  size_t rule_count() const { return rules_.size(); }

 private:
  struct Dst {
    IpRange ip;
    int first = 0;
    int last = 65535;
  };
  struct Rule {
    std::vector<IpRange> src;
    std::vector<Dst> dst;
    std::vector<int> protos;
  };
  std::vector<Rule> rules_;
};

// "tcp 22, 80-443; udp *; icmp" style text; "nothing" for empty access.
std::string DescribeAccess(const FilterAccess& access);

struct TailnetDifference {
  std::string src_ip;
  std::string dst_ip;
  FilterAccess source;
  FilterAccess target;
  std::string ToString() const;  // "100.64.3.1 -> 100.64.3.2: source allows tcp *, target allows nothing"
};

class TailnetEquivalence {
 public:
  // Every ordered pair of distinct `tenant_ips` whose access differs between the two filters.
  // Empty: the tenant's devices may reach each other identically on both nodes.
  static std::vector<TailnetDifference> Compare(const PacketFilter& source, const PacketFilter& target,
                                                const std::vector<std::string>& tenant_ips);
  // NeedsOperator (exit 4) naming the device addresses of each difference, else OK.
  static Status ToStatus(const std::vector<TailnetDifference>& diffs);
};

}  // namespace headshift

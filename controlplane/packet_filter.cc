#include "controlplane/packet_filter.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace headshift {
namespace {

// tailscale's default when a FilterRule has no IPProto (wgengine/filter: TCP, UDP, ICMPv4, ICMPv6).
const std::vector<int> kDefaultProtos = {6, 17, 1, 58};

std::string ProtoName(int p) {
  switch (p) {
    case 1: return "icmp";
    case 6: return "tcp";
    case 17: return "udp";
    case 58: return "icmpv6";
    default: return "proto " + std::to_string(p);
  }
}

void Merge(std::vector<std::pair<int, int>>* ranges) {
  std::sort(ranges->begin(), ranges->end());
  std::vector<std::pair<int, int>> out;
  for (const auto& r : *ranges) {
    if (!out.empty() && r.first <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, r.second);
    } else {
      out.push_back(r);
    }
  }
  *ranges = std::move(out);
}

}  // namespace

StatusOr<PacketFilter> PacketFilter::Parse(const std::string& json, const std::string& origin) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_null()) return PacketFilter();  // Go's encoding of a nil slice: no rules
  if (j.is_discarded() || !j.is_array()) {
    return Status::BadInput(origin + ": packet filter is not a JSON array of filter rules");
  }
  PacketFilter f;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& r = j[i];
    std::string where = origin + " rule " + std::to_string(i);
    if (!r.is_object()) return Status::BadInput(where + ": not an object");
    Rule rule;
    try {
      for (const auto& s : r.value("SrcIPs", nlohmann::json::array())) {
        auto range = IpRange::Parse(s.get<std::string>());
        if (!range) return Status::BadInput(where + ": source " + s.dump() + " is not an address, prefix or range");
        rule.src.push_back(*range);
      }
      for (const auto& d : r.value("DstPorts", nlohmann::json::array())) {
        std::string ip = d.at("IP").get<std::string>();
        if (d.contains("Bits") && d["Bits"].is_number_integer()) ip += "/" + std::to_string(d["Bits"].get<int>());
        auto range = IpRange::Parse(ip);
        if (!range) return Status::BadInput(where + ": destination " + ip + " is not an address, prefix or range");
        Dst dst{*range};
        if (d.contains("Ports")) {
          dst.first = d["Ports"].value("First", 0);
          dst.last = d["Ports"].value("Last", 0);
        }
        rule.dst.push_back(dst);
      }
      if (r.contains("IPProto") && r["IPProto"].is_array()) rule.protos = r["IPProto"].get<std::vector<int>>();
    } catch (const nlohmann::json::exception& e) {
      return Status::BadInput(where + ": not a tailcfg.FilterRule (" + e.what() + ")");
    }
    if (rule.protos.empty()) rule.protos = kDefaultProtos;
    f.rules_.push_back(std::move(rule));
  }
  return f;
}

FilterAccess PacketFilter::Between(const std::string& src_ip, const std::string& dst_ip) const {
  FilterAccess out;
  for (const auto& r : rules_) {
    bool src = std::any_of(r.src.begin(), r.src.end(), [&](const IpRange& s) { return s.Contains(src_ip); });
    if (!src) continue;
    for (const auto& d : r.dst) {
      if (!d.ip.Contains(dst_ip)) continue;
      for (int p : r.protos) out[p].push_back({d.first, d.last});
    }
  }
  for (auto& [proto, ranges] : out) Merge(&ranges);
  return out;
}

std::string DescribeAccess(const FilterAccess& access) {
  if (access.empty()) return "nothing";
  std::string s;
  for (const auto& [proto, ranges] : access) {
    if (!s.empty()) s += "; ";
    s += ProtoName(proto);
    if (proto == 1 || proto == 58) continue;  // ICMP has no ports
    std::string ports;
    for (const auto& [a, b] : ranges) {
      ports += ports.empty() ? " " : ",";
      ports += a == 0 && b == 65535 ? "*" : a == b ? std::to_string(a) : std::to_string(a) + "-" + std::to_string(b);
    }
    s += ports;
  }
  return s;
}

std::string TailnetDifference::ToString() const {
  return src_ip + " -> " + dst_ip + ": source allows " + DescribeAccess(source) + ", target allows " +
         DescribeAccess(target);
}

std::vector<TailnetDifference> TailnetEquivalence::Compare(const PacketFilter& source, const PacketFilter& target,
                                                           const std::vector<std::string>& tenant_ips) {
  std::vector<TailnetDifference> out;
  for (const auto& s : tenant_ips) {
    for (const auto& d : tenant_ips) {
      if (s == d) continue;
      FilterAccess a = source.Between(s, d);
      FilterAccess b = target.Between(s, d);
      if (a != b) out.push_back({s, d, std::move(a), std::move(b)});
    }
  }
  return out;
}

Status TailnetEquivalence::ToStatus(const std::vector<TailnetDifference>& diffs) {
  if (diffs.empty()) return Status::Ok();
  std::string msg;
  for (const auto& d : diffs) msg += (msg.empty() ? "" : "; ") + d.ToString();
  return Status::NeedsOperator("the tenant's tailnet on the target differs from the source's (" +
                                   std::to_string(diffs.size()) + " device pairs): " + msg,
                               "compare the two nodes' policies (plan shows the diff), fix the target's, or roll back");
}

}  // namespace headshift

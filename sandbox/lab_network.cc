// The lab's network part: namespaces, veths and addresses, and the optional DNAT namespace.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>

#include "common/atomic_file.h"
#include "common/subprocess.h"
#include "sandbox/lab_builder.h"
#include "sandbox/lab_commands.h"
#include "sandbox/lab_naming.h"

namespace fs = std::filesystem;

namespace headshift::sandbox::lab {

namespace {

// The host-wide lock for picking a lab subnet: a flock on /run/lock/headshift-sandbox.lock, shared
// by all labs and kept (like /run/netns itself). Not /run/netns: iproute2 flocks that one.
class HostLock {
 public:
  HostLock() {
    std::error_code ec;
    fs::create_directories("/run/lock", ec);
    fd_ = open("/run/lock/headshift-sandbox.lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0) flock(fd_, LOCK_EX);
  }
  ~HostLock() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  int fd_ = -1;
};

// A 10.x.y.0/24 not used by any address or route of the root netns, starting at a hash of the name.
StatusOr<std::string> PickSubnet(const std::string& lab) {
  auto addrs = RunArgv({"ip", "-4", "-o", "addr", "show"}, 5000);
  auto routes = RunArgv({"ip", "-4", "route", "show", "table", "all"}, 5000);
  if (!addrs.ok() || !routes.ok()) return Status::Failed("cannot list the host's addresses and routes");
  std::string used = addrs->output + "\n" + routes->output;
  uint32_t h = 2166136261u;
  for (unsigned char c : lab) {
    h ^= c;
    h *= 16777619u;
  }
  for (uint32_t i = 0; i < 8192; ++i) {
    uint32_t idx = (h + i) % 8192;
    std::string prefix = "10." + std::to_string(200 + idx / 256) + "." + std::to_string(idx % 256) + ".";
    if (used.find(" " + prefix) == std::string::npos && used.find("\n" + prefix) == std::string::npos &&
        used.rfind(prefix, 0) != 0) {
      return prefix;
    }
  }
  return Status::Failed("no free 10.200.0.0/13 subnet for the lab");
}

}  // namespace

Status LabBuilder::MakeNetwork() {
  HostLock lock;
  auto sn = PickSubnet(o_.name);
  if (!sn.ok()) return sn.status();
  subnet_ = *sn;
  lab_["subnet"] = subnet_ + "0/24";
  std::string clients = NsName(o_.name, "clients"), edge = NsName(o_.name, "edge"), lb = NsName(o_.name, "lb");
  std::string front = o_.lb ? lb : edge;  // the namespace clients connect to
  std::vector<std::string> all = {clients, edge};
  if (o_.lb) all.push_back(lb);
  for (const auto& c : o_.clusters) all.push_back(NsName(o_.name, "c" + c));
  lab_["netns"] = {{"clients", clients}, {"edge", edge}, {"lb", o_.lb ? nlohmann::json(lb) : nlohmann::json()}};
  for (const auto& ns : all) {
    HS_RETURN_IF_ERROR(Ip({"netns", "add", ns}));
    lab_["netns_all"].push_back(ns);
    HS_RETURN_IF_ERROR(SaveState());
    HS_RETURN_IF_ERROR(IpNs(ns, {"link", "set", "lo", "up"}));
  }
  auto veth = [](const std::string& a, const std::string& ns_a, const std::string& b, const std::string& ns_b) {
    std::vector<std::string> args = {"link", "add", "name", a};
    if (!ns_a.empty()) args.insert(args.end(), {"netns", ns_a});
    args.insert(args.end(), {"type", "veth", "peer", "name", b, "netns", ns_b});
    return Ip(args);
  };
  auto addr = [](const std::string& ns, const std::string& dev, const std::string& cidr) -> Status {
    std::vector<std::string> pre = ns.empty() ? std::vector<std::string>{"ip"} : std::vector<std::string>{"ip", "-n", ns};
    auto cmd = pre;
    cmd.insert(cmd.end(), {"addr", "add", cidr, "dev", dev});
    HS_RETURN_IF_ERROR(Run(cmd));
    cmd = pre;
    cmd.insert(cmd.end(), {"link", "set", dev, "up"});
    return Run(cmd);
  };
  // clients <-> front: .2 / .1 (the VIP)
  HS_RETURN_IF_ERROR(veth("up0", clients, "cl0", front));
  HS_RETURN_IF_ERROR(addr(clients, "up0", Addr(subnet_, 2) + "/30"));
  HS_RETURN_IF_ERROR(addr(front, "cl0", Addr(subnet_, 1) + "/30"));
  // The clients own 198.18.0.0/15 (AnyIP local route: any address in it can be bound).
  HS_RETURN_IF_ERROR(IpNs(clients, {"route", "add", "local", "198.18.0.0/15", "dev", "lo"}));
  HS_RETURN_IF_ERROR(IpNs(front, {"route", "add", "198.18.0.0/15", "via", Addr(subnet_, 2)}));
  if (o_.lb) {
    // lb <-> edge: .5 / .6
    HS_RETURN_IF_ERROR(veth("eg0", lb, "lb0", edge));
    HS_RETURN_IF_ERROR(addr(lb, "eg0", Addr(subnet_, 5) + "/30"));
    HS_RETURN_IF_ERROR(addr(edge, "lb0", Addr(subnet_, 6) + "/30"));
  }
  nlohmann::json clusters = nlohmann::json::object();
  for (size_t k = 0; k < o_.clusters.size(); ++k) {
    const std::string& c = o_.clusters[k];
    std::string cns = NsName(o_.name, "c" + c);
    int base = 8 + 8 * static_cast<int>(k);
    // edge <-> cluster: base+1 / base+2 ; root <-> cluster: base+5 / base+6
    std::string edge_dev = "c" + std::to_string(k);
    HS_RETURN_IF_ERROR(veth(edge_dev, edge, "eg0", cns));
    HS_RETURN_IF_ERROR(addr(edge, edge_dev, Addr(subnet_, base + 1) + "/30"));
    HS_RETURN_IF_ERROR(addr(cns, "eg0", Addr(subnet_, base + 2) + "/30"));
    std::string root_dev = prefix_ + "r" + std::to_string(k);
    HS_RETURN_IF_ERROR(veth(root_dev, "", "rt0", cns));
    lab_["root_links"].push_back(root_dev);
    HS_RETURN_IF_ERROR(SaveState());
    // The alias carries the lab's full prefix: the 6-hex name prefix alone may collide.
    HS_RETURN_IF_ERROR(Ip({"link", "set", "dev", root_dev, "alias", LabLinkAlias(o_.name)}));
    HS_RETURN_IF_ERROR(addr("", root_dev, Addr(subnet_, base + 5) + "/30"));
    HS_RETURN_IF_ERROR(addr(cns, "rt0", Addr(subnet_, base + 6) + "/30"));
    clusters[c] = {{"netns", cns},
                   {"control_url", "http://" + Addr(subnet_, base + 6) + ":" + std::to_string(kStandinPort)},
                   {"upstream_url", "http://" + Addr(subnet_, base + 2) + ":" + std::to_string(kStandinPort)},
                   {"backend", Backend(c)}};
  }
  lab_["clusters"] = clusters;
  lab_["edge"] = {{"netns", edge}, {"vip", Addr(subnet_, 1)}, {"ports", {80, 443}}};
  return Status::Ok();
}

Status LabBuilder::MakeLb() {
  if (!o_.lb) return Status::Ok();
  std::string lb = NsName(o_.name, "lb");
  HS_RETURN_IF_ERROR(Run({"ip", "netns", "exec", lb, "sysctl", "-qw", "net.ipv4.ip_forward=1"}));
  // DNAT the VIP's :80/:443 to the edge and masquerade towards it: HAProxy sees only the lb's address,
  // so finding a tenant's sessions needs this namespace's conntrack table.
  std::string rules =
      "table ip headshift_lab {\n"
      "  chain prerouting { type nat hook prerouting priority dstnat; iifname \"cl0\" tcp dport { 80, 443 } dnat to " +
      Addr(subnet_, 6) + "; }\n"
      "  chain postrouting { type nat hook postrouting priority srcnat; oifname \"eg0\" masquerade; }\n"
      "}\n";
  HS_RETURN_IF_ERROR(WriteFileAtomically(dir_ + "/lb.nft", rules, 0644));
  HS_RETURN_IF_ERROR(Run({"ip", "netns", "exec", lb, "nft", "-f", dir_ + "/lb.nft"}));
  lab_["lb"] = {{"netns", lb}, {"vip", Addr(subnet_, 1)}, {"edge_address", Addr(subnet_, 6)}, {"nat_address", Addr(subnet_, 5)}};
  return Status::Ok();
}
}  // namespace headshift::sandbox::lab

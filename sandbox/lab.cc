#include "sandbox/lab.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "common/atomic_file.h"
#include "common/pg.h"
#include "common/pg_server.h"
#include "common/subprocess.h"
#include "sandbox/event_loop.h"
#include "sandbox/fleet.h"
#include "sandbox/fleet_summary.h"
#include "sandbox/haproxy_ctl.h"
#include "sandbox/process.h"
#include "sandbox/seed.h"

namespace fs = std::filesystem;

namespace headshift::sandbox {
namespace {

constexpr int kStandinPort = 8080;
constexpr int kMaxClients = 9000;  // HAProxy maxconn: 2 fds per client must fit 20,000 fds

std::string NsName(const std::string& lab, const std::string& role) { return "sandbox-" + lab + "-" + role; }
std::string NsPrefix(const std::string& lab) { return "sandbox-" + lab + "-"; }

// Root-netns interface names must be unique on the host and at most 15 chars: "sb" + 6 hex of the
// lab name (FNV-1a, stable across builds) + role.
std::string LinkPrefix(const std::string& lab) {
  uint32_t h = 2166136261u;
  for (unsigned char c : lab) {
    h ^= c;
    h *= 16777619u;
  }
  char buf[16];
  snprintf(buf, sizeof buf, "sb%06x", h & 0xffffff);
  return buf;
}

std::string Backend(const std::string& cluster) { return "headscale-cluster" + cluster; }

std::string RandomHex(size_t bytes) {
  std::random_device rd;
  std::string s;
  static const char* hex = "0123456789abcdef";
  for (size_t i = 0; i < bytes; ++i) {
    unsigned v = rd() & 0xff;
    s += hex[v >> 4];
    s += hex[v & 15];
  }
  return s;
}

Status Run(const std::vector<std::string>& argv) {
  auto r = RunArgv(argv, 10000);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    std::string out = r->output;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return Status::Failed("`" + cmd + "` failed (exit " + std::to_string(r->exit_code) + "): " + out);
  }
  return Status::Ok();
}

Status Ip(std::vector<std::string> args) {
  args.insert(args.begin(), "ip");
  return Run(args);
}

Status IpNs(const std::string& ns, std::vector<std::string> args) {
  args.insert(args.begin(), {"ip", "-n", ns});
  return Run(args);
}

std::string FindProgram(const std::string& name, const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    if (d.empty()) continue;
    std::string p = d + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

std::string SandboxBinary(const LabOptions& o, const std::string& name, const char* baked) {
  std::vector<std::string> dirs;
  if (!o.bin_dir.empty()) dirs.push_back(o.bin_dir);
  if (const char* env = getenv("HEADSHIFT_SANDBOX_BIN_DIR")) dirs.push_back(env);
  std::string self = SelfDir();
  dirs.push_back(self);
  dirs.push_back(self + "/../sandbox");
  std::string found = FindProgram(name, dirs);
  if (found.empty() && access(baked, X_OK) == 0) found = baked;
  return found;
}

// Signals SIGINT/SIGTERM taken while LabUp runs (they are blocked, then consumed here).
bool Interrupted() {
  sigset_t pending;
  sigpending(&pending);
  if (!sigismember(&pending, SIGINT) && !sigismember(&pending, SIGTERM)) return false;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  timespec zero{};
  while (sigtimedwait(&s, nullptr, &zero) > 0) {
  }
  return true;
}

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

bool ValidName(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;
    }
  }
  return true;
}

// Resolved tenant plan.
struct TenantPlan {
  std::string name, cluster;
  int devices = 0;
  std::string public_base;
  int public_addresses = 1;
  std::string shared_address;
  int shared_devices = 0;
  int ip_offset = 0;
};

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

// /run/netns entries of this lab.
std::vector<std::string> LabNetnsOnHost(const std::string& lab) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/run/netns", ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind(NsPrefix(lab), 0) == 0) out.push_back(n);
  }
  return out;
}

std::vector<std::string> LabLinksOnHost(const std::string& lab) {
  std::vector<std::string> out;
  std::error_code ec;
  std::string prefix = LinkPrefix(lab);
  for (const auto& e : fs::directory_iterator("/sys/class/net", ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) == 0) out.push_back(n);
  }
  return out;
}

// Pids whose network namespace is one of `netns` (names under /run/netns).
std::vector<pid_t> PidsInNetns(const std::vector<std::string>& netns) {
  std::set<std::pair<dev_t, ino_t>> ids;
  for (const auto& n : netns) {
    struct stat st {};
    if (stat(("/run/netns/" + n).c_str(), &st) == 0) ids.insert({st.st_dev, st.st_ino});
  }
  std::vector<pid_t> out;
  if (ids.empty()) return out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    struct stat st {};
    if (stat(("/proc/" + std::string(e->d_name) + "/ns/net").c_str(), &st) != 0) continue;
    if (ids.count({st.st_dev, st.st_ino})) out.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return out;
}

// The postmaster of a lab data dir, from its pid file, verified by its working directory.
pid_t LabPostmaster(const std::string& data_dir) {
  auto text = ReadFile(data_dir + "/postmaster.pid");
  if (!text.ok()) return -1;
  pid_t pid = static_cast<pid_t>(std::atol(text->c_str()));
  if (pid <= 0) return -1;
  std::error_code ec;
  auto cwd = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
  if (ec || fs::weakly_canonical(cwd, ec) != fs::weakly_canonical(data_dir, ec)) return -1;
  return pid;
}

// Pids whose command line mentions `needle` (a path unique to one lab, e.g. "<state>/pg/"), so an
// initdb or postgres of a lab whose `up` was killed is found without its pid.
std::vector<pid_t> PidsWithArg(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == getpid()) continue;
    auto cmd = ReadFile("/proc/" + std::string(e->d_name) + "/cmdline");
    if (!cmd.ok()) continue;
    std::string args = *cmd;
    std::replace(args.begin(), args.end(), '\0', ' ');
    if (args.find(needle) != std::string::npos) out.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return out;
}

// True if every entry of `dir` is something a lab writes (so a lab dir that lost its lab.json can
// still be removed, and nothing else ever is).
bool LooksLikeLabDir(const std::string& dir) {
  static const std::set<std::string> known = {"lab.json", "headshift.yaml", "haproxy.cfg", "haproxy.sock", "tenants.map",
                                              "lb.nft", "secrets", "logs", "fleet", "pg"};
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (!known.count(n) && n.rfind("standin-", 0) != 0 && n.rfind(".", 0) != 0) return false;
  }
  return !ec;
}

Status WriteSecret(const std::string& path, const std::string& value) {
  return WriteFileAtomically(path, value + "\n", 0600);
}

// The builder: every step records what it made in `lab_` (persisted to lab.json) so a failure at any
// point can be undone by LabDown.
class LabBuilder {
 public:
  explicit LabBuilder(LabOptions o) : o_(std::move(o)) {}
  StatusOr<LabInfo> Up();

 private:
  Status Step(const char* what, const std::function<Status()>& fn);
  Status SaveState();
  Status MakeStateDir();
  Status MakeNetwork();
  Status MakeLb();
  Status MakeDatabase();
  Status StartStandins();
  Status StartHaproxy();
  Status StartFleet();
  Status WriteHeadshiftConfig();
  Status WaitConnected();
  Status Spawn(const std::string& role, const std::string& key, const SpawnOptions& so, nlohmann::json extra);

  LabOptions o_;
  std::string dir_;
  std::string subnet_;  // "10.x.y."
  std::string prefix_;  // root link prefix
  std::vector<TenantPlan> tenants_;
  std::string standin_bin_, fleet_bin_, haproxy_bin_;
  std::map<std::string, std::string> cluster_dsn_;  // cluster -> DSN (text)
  std::map<std::string, pid_t> standin_pid_;
  nlohmann::json lab_;
  int fleet_shards_ = 0;
  int64_t fleet_clients_ = 0;
};

std::string Addr(const std::string& subnet, int host) { return subnet + std::to_string(host); }

Status LabBuilder::SaveState() { return WriteFileAtomically(dir_ + "/lab.json", lab_.dump(2) + "\n", 0644); }

Status LabBuilder::Step(const char* what, const std::function<Status()>& fn) {
  if (Interrupted()) return Status::Failed("interrupted (SIGINT/SIGTERM) before: " + std::string(what));
  int64_t t0 = MonoMs();
  Status st = fn();
  spdlog::debug("sandbox: {} took {} ms", what, MonoMs() - t0);
  if (!st.ok()) return st.WithContext(what);
  lab_["timings_ms"][what] = MonoMs() - t0;
  return SaveState();
}

Status LabBuilder::Spawn(const std::string& role, const std::string& key, const SpawnOptions& so, nlohmann::json extra) {
  auto p = SpawnProcess(so);
  if (!p.ok()) return p.status();
  extra["role"] = role;
  extra["key"] = key;
  extra["pid"] = p->pid;
  extra["start_time"] = p->start_time;
  extra["netns"] = so.netns;
  extra["log"] = so.log_file;
  lab_["processes"].push_back(extra);
  return SaveState();
}

Status LabBuilder::MakeStateDir() {
  std::error_code ec;
  if (fs::exists(dir_ + "/lab.json")) {
    auto down = LabDown(o_.name, dir_);
    if (!down.ok()) return down.status().WithContext("removing the previous lab in " + dir_);
  }
  if (!LabNetnsOnHost(o_.name).empty() || !LabLinksOnHost(o_.name).empty()) {
    auto down = LabDown(o_.name, "");
    if (!down.ok()) return down.status().WithContext("removing leftovers of lab " + o_.name);
  }
  if (fs::exists(dir_) && !fs::is_empty(dir_, ec) && LooksLikeLabDir(dir_)) {
    auto down = LabDown(o_.name, dir_);  // a lab dir that lost its lab.json
    if (!down.ok()) return down.status().WithContext("removing the leftovers in " + dir_);
  }
  if (fs::exists(dir_) && !fs::is_empty(dir_, ec)) {
    return Status::BadInput("state dir " + dir_ + " exists, is not empty and holds no lab.json",
                            "remove it or pick another --state-dir");
  }
  bool existed = fs::exists(dir_);
  fs::create_directories(dir_ + "/secrets", ec);
  fs::create_directories(dir_ + "/logs", ec);
  fs::create_directories(dir_ + "/fleet", ec);
  if (ec) return Status::Failed("cannot create " + dir_ + ": " + ec.message());
  chmod(dir_.c_str(), 0755);
  chmod((dir_ + "/secrets").c_str(), 0700);
  lab_ = {{"name", o_.name},
          {"state_dir", dir_},
          {"owns_dir", !existed},
          {"config", dir_ + "/headshift.yaml"},
          {"link_prefix", prefix_},
          {"processes", nlohmann::json::array()},
          {"netns", nlohmann::json::object()},
          {"root_links", nlohmann::json::array()}};
  return SaveState();
}

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

Status LabBuilder::MakeDatabase() {
  PgServer pg;
  HS_RETURN_IF_ERROR(pg.Start(dir_ + "/pg", /*persistent=*/true));
  lab_["processes"].push_back({{"role", "postgres"}, {"key", "postgres"}, {"pid", pg.pid()},
                               {"start_time", ProcessStartTime(pg.pid())}, {"netns", ""},
                               {"log", dir_ + "/pg/postgres.log"}});
  HS_RETURN_IF_ERROR(SaveState());
  SchemaOptions schema{o_.cluster_id_type, true};
  bool text = o_.cluster_id_type == ClusterIdType::kText;
  std::vector<std::string> dbs;
  if (o_.layout == DbLayout::kShared) {
    auto dsn = pg.CreateDatabase("headscale");
    if (!dsn.ok()) return dsn.status();
    for (const auto& c : o_.clusters) cluster_dsn_[c] = *dsn;
    HS_RETURN_IF_ERROR(WriteSecret(dir_ + "/secrets/dsn", *dsn));
    lab_["postgres"] = {{"dir", dir_ + "/pg"}, {"dsn", *dsn}, {"dsn_file", dir_ + "/secrets/dsn"}};
  } else {
    lab_["postgres"] = {{"dir", dir_ + "/pg"}};
    for (const auto& c : o_.clusters) {
      auto dsn = pg.CreateDatabase("headscale_c" + c);
      if (!dsn.ok()) return dsn.status();
      cluster_dsn_[c] = *dsn;
      HS_RETURN_IF_ERROR(WriteSecret(dir_ + "/secrets/dsn-" + c, *dsn));
      lab_["postgres"]["dsn_" + c] = *dsn;
    }
  }
  // Schema + seed, per database.
  std::map<std::string, std::vector<SeedTenant>> per_db;  // dsn -> tenants
  for (const auto& t : tenants_) {
    per_db[cluster_dsn_[t.cluster]].push_back(
        {t.name, t.cluster, t.devices, t.public_base, t.public_addresses, t.shared_address, t.shared_devices, t.ip_offset, 2});
  }
  std::set<std::string> done;
  for (const auto& c : o_.clusters) {
    const std::string& dsn = cluster_dsn_[c];
    if (!done.insert(dsn).second) continue;
    auto conn = PgConn::Connect(dsn);
    if (!conn.ok()) return conn.status();
    HS_RETURN_IF_ERROR(CreateHeadscaleSchema(**conn, schema));
    SeedSpec spec;
    spec.cluster_id_is_text = text;
    spec.tenants = per_db[dsn];
    HS_RETURN_IF_ERROR(SeedTenants(**conn, spec));
  }
  // Fleet spec: one client per seeded node, from the rows themselves.
  std::vector<FleetClientSpec> clients;
  const std::string vip = Addr(subnet_, 1);
  for (const auto& t : tenants_) {
    auto conn = PgConn::Connect(cluster_dsn_[t.cluster]);
    if (!conn.ok()) return conn.status();
    auto creds = NodeCredentials(**conn, t.name);
    if (!creds.ok()) return creds.status();
    for (size_t i = 0; i < creds->size(); ++i) {
      const auto& n = (*creds)[i];
      // Spread https_share of the clients evenly onto :443.
      bool https = std::floor((i + 1) * o_.https_share) > std::floor(i * o_.https_share);
      clients.push_back({t.name, n.given_name, n.node_key, n.machine_key, n.public_ip,
                         vip + (https ? ":443" : ":80"), t.name + ".demo.com", n.endpoints});
    }
  }
  fleet_clients_ = static_cast<int64_t>(clients.size());
  HS_RETURN_IF_ERROR(WriteFileAtomically(dir_ + "/fleet/clients.json", FleetSpecToJson(clients).dump() + "\n", 0644));
  nlohmann::json tj = nlohmann::json::array();
  for (const auto& t : tenants_) {
    tj.push_back({{"name", t.name},
                  {"cluster", t.cluster},
                  {"devices", t.devices},
                  {"host", t.name + ".demo.com"},
                  {"public_base", t.public_base},
                  {"public_addresses", t.public_addresses},
                  {"shared_address", t.shared_address},
                  {"shared_devices", t.shared_devices}});
  }
  lab_["tenants"] = tj;
  return Status::Ok();
}

Status LabBuilder::StartStandins() {
  std::string noise = "mkey:" + RandomHex(32);
  for (size_t k = 0; k < o_.clusters.size(); ++k) {
    const std::string& c = o_.clusters[k];
    std::string key_file = dir_ + "/secrets/apikey-" + c;
    HS_RETURN_IF_ERROR(WriteSecret(key_file, "hskey-api-" + RandomHex(6) + "-" + RandomHex(24)));
    std::string dsn_file = o_.layout == DbLayout::kShared ? dir_ + "/secrets/dsn" : dir_ + "/secrets/dsn-" + c;
    std::string key = (k > 0 && o_.different_noise_keys) ? "mkey:" + RandomHex(32) : noise;
    std::string ready = dir_ + "/standin-" + c + ".json";
    SpawnOptions so;
    so.argv = {standin_bin_, "--cluster-id", c, "--listen", "0.0.0.0:" + std::to_string(kStandinPort), "--dsn-file",
               dsn_file, "--api-key-file", key_file, "--noise-key", key, "--lookup", LookupModeName(o_.lookup),
               "--keepalive-ms", std::to_string(o_.keepalive_ms), "--disconnect-grace-ms",
               std::to_string(o_.disconnect_grace_ms), "--ready-file", ready};
    if (o_.reload_drops_sessions) so.argv.push_back("--reload-drops-streams");
    so.netns = NsName(o_.name, "c" + c);
    so.log_file = dir_ + "/logs/standin-" + c + ".log";
    HS_RETURN_IF_ERROR(Spawn("standin", "standin-" + c, so, {{"cluster", c}}));
    standin_pid_[c] = lab_["processes"].back()["pid"].get<pid_t>();
    auto& cj = lab_["clusters"][c];
    cj["api_key_file"] = key_file;
    cj["dsn_file"] = dsn_file;
    cj["noise_key"] = key;
    cj["lookup"] = LookupModeName(o_.lookup);
    cj["pid"] = standin_pid_[c];
  }
  // Ready when each has written its ready file (after binding and, in cached mode, loading).
  int64_t deadline = MonoMs() + 15000;
  for (const auto& c : o_.clusters) {
    std::string ready = dir_ + "/standin-" + c + ".json";
    while (!fs::exists(ready)) {
      if (!ProcessAlive(standin_pid_[c], -1)) {
        auto log = ReadFile(dir_ + "/logs/standin-" + c + ".log");
        return Status::Failed("stand-in of cluster " + c + " exited at start: " + (log.ok() ? *log : ""));
      }
      if (MonoMs() > deadline) return Status::Failed("stand-in of cluster " + c + " not ready within 15 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return Status::Ok();
}

Status LabBuilder::StartHaproxy() {
  std::string map_file = dir_ + "/tenants.map";
  std::string sock = dir_ + "/haproxy.sock";
  std::string map = "# host -> backend; written by `headshift sandbox up`, changed at runtime over " + sock + "\n";
  for (const auto& t : tenants_) map += t.name + ".demo.com " + Backend(t.cluster) + "\n";
  HS_RETURN_IF_ERROR(WriteFileAtomically(map_file, map, 0644));
  std::string cfg =
      "# HAProxy for sandbox lab " + o_.name + " (written by `headshift sandbox up`)\n"
      "global\n"
      "    maxconn " + std::to_string(kMaxClients) + "\n"
      "    stats socket " + sock + " mode 600 level admin\n"
      "    stats timeout 30s\n"
      "    nbthread 2\n"
      "defaults\n"
      "    mode http\n"
      "    timeout connect 3s\n"
      "    timeout client 60s\n"
      "    timeout server 60s\n"
      "    timeout http-request 10s\n"
      "    # Upgraded (101) control streams are tunnels: they live as long as the clients do.\n"
      "    timeout tunnel 24h\n"
      "    timeout client-fin 5s\n"
      "frontend edge\n"
      "    bind :80\n"
      "    bind :443\n"
      "    maxconn " + std::to_string(kMaxClients) + "\n"
      "    use_backend %[req.hdr(host),lower,map(" + map_file + ")]\n";
  for (const auto& c : o_.clusters) {
    std::string upstream = lab_["clusters"][c]["upstream_url"].get<std::string>().substr(7);  // strip http://
    cfg += "backend " + Backend(c) + "\n    server cluster" + c + " " + upstream + "\n";
  }
  std::string cfg_file = dir_ + "/haproxy.cfg";
  HS_RETURN_IF_ERROR(WriteFileAtomically(cfg_file, cfg, 0644));
  auto check = RunArgv({haproxy_bin_, "-c", "-q", "-f", cfg_file}, 10000);
  if (!check.ok() || check->exit_code != 0) {
    return Status::Failed("haproxy rejected " + cfg_file + ": " + (check.ok() ? check->output : check.status().ToString()));
  }
  SpawnOptions so;
  so.argv = {haproxy_bin_, "-db", "-f", cfg_file};
  so.netns = NsName(o_.name, "edge");
  so.log_file = dir_ + "/logs/haproxy.log";
  HS_RETURN_IF_ERROR(Spawn("haproxy", "haproxy", so, nlohmann::json::object()));
  pid_t pid = lab_["processes"].back()["pid"].get<pid_t>();
  int64_t deadline = MonoMs() + 10000;
  for (;;) {
    auto r = HaproxyCommand(sock, "show map " + map_file, 1000);
    if (r.ok() && r->find(Backend(tenants_.front().cluster)) != std::string::npos) break;
    if (!ProcessAlive(pid, -1)) {
      auto log = ReadFile(so.log_file);
      return Status::Failed("haproxy exited at start: " + (log.ok() ? *log : ""));
    }
    if (MonoMs() > deadline) return Status::Failed("haproxy runtime socket " + sock + " not answering within 10 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  lab_["edge"]["haproxy_socket"] = sock;
  lab_["edge"]["map_file"] = map_file;
  lab_["edge"]["haproxy_cfg"] = cfg_file;
  return Status::Ok();
}

Status LabBuilder::StartFleet() {
  fleet_shards_ = 0;
  if (o_.fleet && fleet_clients_ > 0) {
    fleet_shards_ = static_cast<int>((fleet_clients_ + o_.clients_per_process - 1) / o_.clients_per_process);
  }
  lab_["fleet"] = {{"dir", dir_ + "/fleet"}, {"spec", dir_ + "/fleet/clients.json"}, {"shards", fleet_shards_},
                   {"clients", fleet_shards_ ? fleet_clients_ : 0}};
  for (int i = 0; i < fleet_shards_; ++i) {
    SpawnOptions so;
    so.argv = {fleet_bin_, "--spec", dir_ + "/fleet/clients.json", "--shard", std::to_string(i), "--shards",
               std::to_string(fleet_shards_), "--out-dir", dir_ + "/fleet"};
    so.netns = NsName(o_.name, "clients");
    so.log_file = dir_ + "/logs/fleet-" + std::to_string(i) + ".log";
    HS_RETURN_IF_ERROR(Spawn("fleet", "fleet-" + std::to_string(i), so, {{"shard", i}}));
  }
  return Status::Ok();
}

Status LabBuilder::WriteHeadshiftConfig() {
  YAML::Emitter y;
  y << YAML::Comment("headshift config for sandbox lab " + o_.name + " (written by `headshift sandbox up`)");
  y << YAML::BeginMap;
  y << YAML::Key << "database" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "layout" << YAML::Value << DbLayoutName(o_.layout);
  if (o_.layout == DbLayout::kShared) y << YAML::Key << "dsn_file" << YAML::Value << dir_ + "/secrets/dsn";
  y << YAML::EndMap;
  y << YAML::Key << "clusters" << YAML::Value << YAML::BeginSeq;
  for (const auto& c : o_.clusters) {
    const auto& cj = lab_["clusters"][c];
    y << YAML::BeginMap;
    y << YAML::Key << "id" << YAML::Value << YAML::DoubleQuoted << c;
    y << YAML::Key << "control_url" << YAML::Value << cj["control_url"].get<std::string>();
    y << YAML::Key << "upstream_url" << YAML::Value << cj["upstream_url"].get<std::string>();
    y << YAML::Key << "api_key_file" << YAML::Value << cj["api_key_file"].get<std::string>();
    y << YAML::Key << "backend" << YAML::Value << Backend(c);
    if (o_.layout == DbLayout::kSplit) y << YAML::Key << "dsn_file" << YAML::Value << cj["dsn_file"].get<std::string>();
    if (o_.reload_command) {
      y << YAML::Key << "reload_command" << YAML::Value << YAML::Flow << YAML::BeginSeq << "kill" << "-HUP"
        << std::to_string(standin_pid_[c]) << YAML::EndSeq;
      // Written explicitly: the default (true) is right for headscale, where a reload is a restart.
      y << YAML::Key << "reload_drops_sessions" << YAML::Value << o_.reload_drops_sessions;
    }
    y << YAML::Key << "cached_nodes" << YAML::Value << (o_.lookup == LookupMode::kCached);
    y << YAML::EndMap;
  }
  y << YAML::EndSeq;
  y << YAML::Key << "proxy" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "kind" << YAML::Value << "haproxy";
  y << YAML::Key << "haproxy" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "runtime_socket" << YAML::Value << dir_ + "/haproxy.sock";
  y << YAML::Key << "map_file" << YAML::Value << dir_ + "/tenants.map";
  y << YAML::Key << "host_template" << YAML::Value << "{tenant}.demo.com";
  y << YAML::EndMap << YAML::EndMap;
  y << YAML::Key << "sessions" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "hosts" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  y << YAML::Key << "name" << YAML::Value << "edge";
  y << YAML::Key << "netns" << YAML::Value << NsName(o_.name, "edge");
  y << YAML::Key << "ports" << YAML::Value << YAML::Flow << YAML::BeginSeq << 80 << 443 << YAML::EndSeq;
  if (o_.lb) y << YAML::Key << "conntrack_netns" << YAML::Value << NsName(o_.name, "lb");
  y << YAML::EndMap << YAML::EndSeq << YAML::EndMap;
  y << YAML::Key << "timeouts" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "db_connect_ms" << YAML::Value << 3000;
  y << YAML::Key << "http_ms" << YAML::Value << 2000;
  y << YAML::Key << "target_ready_ms" << YAML::Value << 10000;
  y << YAML::Key << "route_live_ms" << YAML::Value << 5000;
  y << YAML::Key << "reconnect_ms" << YAML::Value << 15000;
  y << YAML::Key << "reload_command_ms" << YAML::Value << 10000;
  y << YAML::EndMap;
  y << YAML::EndMap;
  std::string text = std::string(y.c_str()) + "\n";
  std::string path = dir_ + "/headshift.yaml";
  auto parsed = ParseConfig(text, path);
  if (!parsed.ok()) return parsed.status().WithContext("the lab's own headshift config does not parse (a lab bug)");
  return WriteFileAtomically(path, text, 0644);
}

Status LabBuilder::WaitConnected() {
  if (fleet_shards_ == 0) return Status::Ok();
  int64_t deadline = MonoMs() + o_.connected_timeout_ms;
  for (;;) {
    FleetSummary s = ReadFleetSummary(dir_ + "/fleet", fleet_shards_, 0, 0);
    if (s.AllConnected() && s.Clients() == fleet_clients_) return Status::Ok();
    if (Interrupted()) return Status::Failed("interrupted (SIGINT/SIGTERM)");
    if (MonoMs() > deadline) {
      return Status::Failed(std::to_string(s.Connected()) + " of " + std::to_string(fleet_clients_) +
                                " clients connected within " + std::to_string(o_.connected_timeout_ms) + " ms",
                            "see " + dir_ + "/logs and `headshift sandbox status`");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

StatusOr<LabInfo> LabBuilder::Up() {
  HS_RETURN_IF_ERROR(ValidateLabOptions(o_));
  if (geteuid() != 0) {
    return Status::NoPrivilege("the sandbox lab needs root (network namespaces, veths, nftables)", "run as root");
  }
  dir_ = o_.state_dir.empty() ? DefaultStateDir(o_.name) : fs::absolute(o_.state_dir).lexically_normal().string();
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  prefix_ = LinkPrefix(o_.name);
  tenants_ = PlanTenants(o_);
  standin_bin_ = SandboxBinary(o_, "headscale-standin", HEADSHIFT_STANDIN_BIN);
  fleet_bin_ = SandboxBinary(o_, "hs-fleet", HEADSHIFT_FLEET_BIN);
  haproxy_bin_ = FindProgram("haproxy", {"/usr/sbin", "/usr/local/sbin", "/usr/bin"});
  if (standin_bin_.empty() || fleet_bin_.empty()) {
    return Status::Failed("headscale-standin / hs-fleet binaries not found",
                          "build them (cmake --build build) or set HEADSHIFT_SANDBOX_BIN_DIR");
  }
  if (haproxy_bin_.empty()) return Status::Failed("haproxy is not installed", "run scripts/setup");
  if (PostgresBinDir().empty()) return Status::Failed("PostgreSQL server binaries not found", "run scripts/setup");

  Status st = Step("state_dir", [this] { return MakeStateDir(); });
  if (st.ok()) st = Step("network", [this] { return MakeNetwork(); });
  if (st.ok()) st = Step("lb", [this] { return MakeLb(); });
  if (st.ok()) st = Step("database", [this] { return MakeDatabase(); });
  if (st.ok()) st = Step("standins", [this] { return StartStandins(); });
  if (st.ok()) st = Step("haproxy", [this] { return StartHaproxy(); });
  if (st.ok()) st = Step("fleet", [this] { return StartFleet(); });
  if (st.ok()) st = Step("config", [this] { return WriteHeadshiftConfig(); });
  if (st.ok()) st = Step("connected", [this] { return WaitConnected(); });
  if (!st.ok()) {
    spdlog::error("sandbox up failed: {}; removing what was made", st.ToString());
    if (!dir_.empty() && fs::exists(dir_ + "/lab.json")) {
      (void)LabDown(o_.name, dir_);
    } else {
      (void)LabDown(o_.name, "");
    }
    return st;
  }
  LabInfo info;
  info.name = o_.name;
  info.state_dir = dir_;
  info.config_path = dir_ + "/headshift.yaml";
  info.json = lab_;
  return info;
}

}  // namespace

std::string DefaultStateDir(const std::string& name) { return "/tmp/headshift-sandbox-" + name; }

Status ValidateLabOptions(const LabOptions& o) {
  if (!ValidName(o.name, 24)) {
    return Status::BadInput("--name '" + o.name + "' must be 1-24 chars of a-z, 0-9, '-'",
                            "e.g. --name e2e" + std::to_string(getpid()));
  }
  if (o.clusters.empty()) return Status::BadInput("--clusters: at least one cluster id is needed");
  if (o.clusters.size() > 30) return Status::BadInput("--clusters: at most 30 clusters");
  std::set<std::string> ids;
  for (const auto& c : o.clusters) {
    if (!ValidName(c, 12)) return Status::BadInput("--clusters: cluster id '" + c + "' must be 1-12 chars of a-z, 0-9, '-'");
    if (o.cluster_id_type == ClusterIdType::kBigint && c.find_first_not_of("0123456789") != std::string::npos) {
      return Status::BadInput("--clusters: '" + c + "' is not an integer but --cluster-id-type is bigint");
    }
    if (!ids.insert(c).second) return Status::BadInput("--clusters: cluster id '" + c + "' given twice");
  }
  if (o.tenants.empty() && (o.tenant_count < 1 || o.tenant_count > 31)) {
    return Status::BadInput("--tenants must be between 1 and 31");
  }
  if (o.tenants.size() > 31) return Status::BadInput("at most 31 tenants");
  if (o.devices < 0 || o.devices > 16000) return Status::BadInput("--devices must be between 0 and 16000");
  std::set<std::string> names;
  int64_t total = 0;
  for (const auto& t : o.tenants) {
    if (!ValidName(t.name, 40)) return Status::BadInput("--tenant: name '" + t.name + "' must be a-z, 0-9, '-'");
    if (!names.insert(t.name).second) return Status::BadInput("--tenant: '" + t.name + "' given twice");
    if (!t.cluster.empty() && !ids.count(t.cluster)) {
      return Status::BadInput("--tenant " + t.name + ": cluster '" + t.cluster + "' is not one of --clusters");
    }
    if (t.devices > 16000) return Status::BadInput("--tenant " + t.name + ": at most 16000 devices");
    total += t.devices >= 0 ? t.devices : o.devices;
  }
  if (o.tenants.empty()) total = static_cast<int64_t>(o.tenant_count) * o.devices;
  if (o.fleet && total > kMaxClients) {
    return Status::BadInput("the fleet would have " + std::to_string(total) + " clients; the lab's HAProxy holds at most " +
                            std::to_string(kMaxClients) + " (20,000 fds per process)",
                            "use fewer devices or --no-fleet");
  }
  if (o.shared_nat_share < 0 || o.shared_nat_share > 1) return Status::BadInput("--shared-nat-share must be in [0, 1]");
  if (o.https_share < 0 || o.https_share > 1) return Status::BadInput("--https-share must be in [0, 1]");
  if (o.clients_per_process < 1 || o.clients_per_process > 19000) {
    return Status::BadInput("--clients-per-process must be in [1, 19000] (20,000 fds per process)");
  }
  if (o.keepalive_ms < 10) return Status::BadInput("--keepalive-ms must be >= 10");
  if (o.disconnect_grace_ms < 0) return Status::BadInput("--disconnect-grace-ms must be >= 0");
  return Status::Ok();
}

StatusOr<LabInfo> LabUp(const LabOptions& options) {
  // SIGINT/SIGTERM are held while the lab is built and checked between steps, so an interrupt
  // always ends in a clean teardown. Children get a clean signal mask (SpawnProcess).
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  LabBuilder b(options);
  auto r = b.Up();
  Interrupted();  // consume a late signal rather than die of it with the lab half-reported
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return r;
}

StatusOr<nlohmann::json> LabDown(const std::string& name_in, const std::string& state_dir_in) {
  if (geteuid() != 0) return Status::NoPrivilege("removing the sandbox lab needs root", "run as root");
  std::string name = name_in;
  std::string dir = state_dir_in;
  if (!dir.empty()) dir = fs::absolute(dir).lexically_normal().string();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  nlohmann::json lab;
  if (!dir.empty()) {
    auto text = ReadFile(dir + "/lab.json");
    if (text.ok()) {
      lab = nlohmann::json::parse(*text, nullptr, false);
      if (lab.is_discarded()) lab = nlohmann::json();
    }
  }
  if (lab.is_object() && lab.contains("name")) name = lab["name"].get<std::string>();
  if (name.empty()) return Status::BadInput("no lab.json in " + dir + " and no --name given");
  if (!ValidName(name, 24)) return Status::BadInput("--name '" + name + "' is not a lab name");

  nlohmann::json removed = {{"processes", nlohmann::json::array()},
                            {"netns", nlohmann::json::array()},
                            {"links", nlohmann::json::array()},
                            {"state_dir", nullptr}};
  // 1. Known processes, clients first (so they record nothing misleading), PostgreSQL last.
  if (lab.is_object() && lab.contains("processes")) {
    static const std::vector<std::string> order = {"fleet", "haproxy", "standin", "postgres"};
    for (const auto& role : order) {
      for (const auto& p : lab["processes"]) {
        if (p.value("role", "") != role) continue;
        pid_t pid = p.value("pid", -1);
        int64_t start = p.value("start_time", int64_t{-1});
        if (ProcessAlive(pid, start)) {
          StopProcess(pid, start, 3000, role == "postgres" ? SIGQUIT : SIGTERM);
          removed["processes"].push_back({{"role", role}, {"pid", pid}});
        }
      }
    }
  }
  // 2. Anything else still running in the lab's namespaces (e.g. started before lab.json recorded it).
  std::vector<std::string> netns = LabNetnsOnHost(name);
  for (int round = 0; round < 3; ++round) {
    auto pids = PidsInNetns(netns);
    if (pids.empty()) break;
    for (pid_t pid : pids) {
      StopProcess(pid, ProcessStartTime(pid), round == 0 ? 1000 : 0, round == 0 ? SIGTERM : SIGKILL);
      removed["processes"].push_back({{"role", "in-lab-netns"}, {"pid", pid}});
    }
  }
  // 3. A PostgreSQL of this lab not recorded (its pid file, verified by its working directory).
  std::string pg_dir = dir.empty() ? DefaultStateDir(name) + "/pg" : dir + "/pg";
  if (pid_t pm = LabPostmaster(pg_dir + "/data"); pm > 0) {
    StopProcess(pm, ProcessStartTime(pm), 3000, SIGQUIT);
    removed["processes"].push_back({{"role", "postgres"}, {"pid", pm}});
  }
  for (pid_t pid : PidsWithArg(pg_dir + "/")) {  // e.g. an initdb of an `up` that was killed
    StopProcess(pid, ProcessStartTime(pid), 1000, SIGQUIT);
    removed["processes"].push_back({{"role", "postgres-leftover"}, {"pid", pid}});
  }
  // 4. Namespaces (their veths go with them) and root-side veths.
  for (const auto& ns : netns) {
    Status st = Ip({"netns", "del", ns});
    if (!st.ok()) return st.WithContext("removing netns " + ns);
    removed["netns"].push_back(ns);
  }
  for (const auto& l : LabLinksOnHost(name)) {
    Status st = Ip({"link", "del", l});
    if (!st.ok() && fs::exists("/sys/class/net/" + l)) return st.WithContext("removing link " + l);
    removed["links"].push_back(l);
  }
  // 5. The state dir: all of it when the lab created it, else only the lab's own files.
  std::string leftover_dir = dir.empty() ? DefaultStateDir(name) : dir;
  if (!lab.is_object() && LooksLikeLabDir(leftover_dir)) {
    std::error_code ec;
    fs::remove_all(leftover_dir, ec);
    if (ec) return Status::Failed("removing " + leftover_dir + ": " + ec.message());
    removed["state_dir"] = leftover_dir;
  }
  if (lab.is_object()) {
    std::error_code ec;
    if (lab.value("owns_dir", false)) {
      fs::remove_all(dir, ec);
    } else {
      for (const char* f : {"lab.json", "headshift.yaml", "haproxy.cfg", "haproxy.sock", "tenants.map", "lb.nft",
                            "secrets", "logs", "fleet", "pg"}) {
        fs::remove_all(dir + "/" + f, ec);
      }
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        std::string n = e.path().filename().string();
        if (n.rfind("standin-", 0) == 0 || n.rfind(".", 0) == 0) fs::remove_all(e.path(), ec);
      }
    }
    if (ec) return Status::Failed("removing " + dir + ": " + ec.message());
    removed["state_dir"] = dir;
  }
  return removed;
}

LabStatusResult LabStatus(const std::string& state_dir, const LabQuery& q) {
  LabStatusResult res;
  auto text = ReadFile(state_dir + "/lab.json");
  if (!text.ok()) {
    res.status = Status::BadInput("no sandbox lab in " + state_dir + " (no lab.json)", "run `headshift sandbox up`");
    res.json = {{"up", false}, {"state_dir", state_dir}};
    return res;
  }
  nlohmann::json lab = nlohmann::json::parse(*text, nullptr, false);
  if (lab.is_discarded()) {
    res.status = Status::Failed(state_dir + "/lab.json is not JSON");
    return res;
  }
  int shards = lab.contains("fleet") ? lab["fleet"].value("shards", 0) : 0;
  int64_t deadline = MonoMs() + q.timeout_ms;
  bool waiting = q.wait_connected || !q.tenant.empty();
  for (;;) {
    int64_t now = WallMs();
    nlohmann::json procs = nlohmann::json::array();
    bool healthy = true;
    for (const auto& p : lab["processes"]) {
      bool alive = ProcessAlive(p.value("pid", -1), p.value("start_time", int64_t{-1}));
      healthy = healthy && alive;
      nlohmann::json pj = {{"role", p["role"]}, {"pid", p["pid"]}, {"alive", alive}};
      if (p.contains("cluster")) pj["cluster"] = p["cluster"];
      if (p.contains("shard")) pj["shard"] = p["shard"];
      procs.push_back(pj);
    }
    FleetSummary fs_sum = ReadFleetSummary(state_dir + "/fleet", shards, shards ? now : 0, shards ? 2000 : 0);
    nlohmann::json fleet = FleetSummaryToJson(fs_sum);
    nlohmann::json out = {{"up", true},
                          {"healthy", healthy},
                          {"name", lab["name"]},
                          {"state_dir", state_dir},
                          {"config", lab["config"]},
                          {"subnet", lab.value("subnet", "")},
                          {"netns", lab["netns"]},
                          {"edge", lab["edge"]},
                          {"lb", lab.contains("lb") ? lab["lb"] : nlohmann::json()},
                          {"clusters", lab["clusters"]},
                          {"seeded_tenants", lab["tenants"]},
                          {"processes", procs},
                          {"fleet", fleet},
                          {"tenants", fleet["tenants"]}};
    bool satisfied = true;
    if (q.wait_connected && !fs_sum.AllConnected()) satisfied = false;
    if (!q.tenant.empty()) {
      auto it = fs_sum.tenants.find(q.tenant);
      if (it == fs_sum.tenants.end()) {
        res.status = Status::BadInput("tenant '" + q.tenant + "' has no clients in this lab");
        res.json = out;
        return res;
      }
      auto c = it->second.connected_by_cluster.find(q.on_cluster);
      int64_t on = c == it->second.connected_by_cluster.end() ? 0 : c->second;
      if (on != it->second.clients) satisfied = false;
    }
    out["waited_for"] = waiting ? nlohmann::json(satisfied) : nlohmann::json();
    res.json = out;
    if (!waiting || satisfied) return res;
    if (!healthy) {
      res.status = Status::Failed("a lab process died (see processes[].alive and " + state_dir + "/logs)");
      return res;
    }
    if (MonoMs() > deadline) {
      std::string what = q.tenant.empty() ? "every client connected"
                                          : "all clients of " + q.tenant + " connected on cluster " + q.on_cluster;
      res.status = Status::Failed("timed out after " + std::to_string(q.timeout_ms) + " ms waiting for " + what);
      return res;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status LabResetStats(const std::string& state_dir) {
  auto text = ReadFile(state_dir + "/lab.json");
  if (!text.ok()) return Status::BadInput("no sandbox lab in " + state_dir);
  nlohmann::json lab = nlohmann::json::parse(*text, nullptr, false);
  if (lab.is_discarded()) return Status::Failed(state_dir + "/lab.json is not JSON");
  int shards = lab["fleet"].value("shards", 0);
  FleetSummary before = ReadFleetSummary(state_dir + "/fleet", shards, 0, 0);
  for (const auto& p : lab["processes"]) {
    if (p.value("role", "") != "fleet") continue;
    if (!ProcessAlive(p["pid"].get<pid_t>(), p.value("start_time", int64_t{-1}))) {
      return Status::Failed("fleet shard " + p["shard"].dump() + " is not running");
    }
    kill(p["pid"].get<pid_t>(), SIGUSR1);
  }
  int64_t deadline = MonoMs() + 5000;
  for (;;) {
    FleetSummary now = ReadFleetSummary(state_dir + "/fleet", shards, 0, 0);
    bool all = now.epochs.size() == before.epochs.size();
    for (size_t i = 0; all && i < now.epochs.size(); ++i) all = now.epochs[i] > before.epochs[i];
    if (all) return Status::Ok();
    if (MonoMs() > deadline) return Status::Failed("fleet shards did not confirm the reset within 5 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace headshift::sandbox

// The lab's `up`: the sequence of parts, the record of what was made (lab.json), the sweep of a
// previous or dead lab of the same name before anything is made, and the removal on failure.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "common/pg_server.h"
#include "sandbox/event_loop.h"
#include "sandbox/lab_builder.h"
#include "sandbox/lab_commands.h"
#include "sandbox/lab_inventory.h"
#include "sandbox/lab_naming.h"

namespace fs = std::filesystem;

namespace headshift::sandbox {
namespace lab {
namespace {

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

}  // namespace

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

Status LabBuilder::SweepDeadLabs() {
  if (o_.sweep_prefix.empty()) return Status::Ok();
  std::string base = DefaultStateDir(o_.sweep_prefix);
  fs::path parent = fs::path(base).parent_path();
  std::string stem = fs::path(base).filename().string();
  std::error_code ec;
  std::vector<std::string> failed;
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    if (e.path().filename().string().rfind(stem, 0) != 0) continue;
    auto text = ReadFile(e.path().string() + "/lab.json");
    if (!text.ok()) continue;  // no record: cannot tell whether its owner lives
    auto lab = nlohmann::json::parse(*text, nullptr, false);
    if (!lab.is_object() || !lab.contains("owner") || !lab["name"].is_string()) continue;
    std::string name = lab["name"].get<std::string>();
    if (name.rfind(o_.sweep_prefix, 0) != 0 || name == o_.name || e.path().string() != DefaultStateDir(name)) continue;
    if (ProcessAlive(lab["owner"].value("pid", -1), lab["owner"].value("start_time", int64_t{-1}))) continue;
    spdlog::info("sandbox up {}: removing dead lab {} (its owner pid {} is gone)", o_.name, name,
                 lab["owner"].value("pid", -1));
    auto down = LabDown(name, e.path().string());
    if (!down.ok()) {
      spdlog::error("sandbox up {}: removing dead lab {}: {}", o_.name, name, down.status().ToString());
      failed.push_back(name + ": " + down.status().message());
      continue;
    }
    lab_["swept"].push_back(name);
  }
  // A dead lab that cannot be removed does not stop this one (they share nothing); it is named in
  // lab.json and the log.
  if (!failed.empty()) lab_["sweep_errors"] = failed;
  return Status::Ok();
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
          {"owner", {{"pid", getpid()}, {"start_time", ProcessStartTime(getpid())}}},
          {"processes", nlohmann::json::array()},
          {"netns", nlohmann::json::object()},
          {"root_links", nlohmann::json::array()}};
  return SaveState();
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
  if (st.ok()) st = Step("sweep", [this] { return SweepDeadLabs(); });
  if (st.ok()) st = Step("network", [this] { return MakeNetwork(); });
  if (st.ok()) st = Step("lb", [this] { return MakeLb(); });
  if (st.ok()) st = Step("database", [this] { return MakeDatabase(); });
  if (st.ok()) st = Step("standins", [this] { return StartStandins(); });
  if (st.ok()) st = Step("haproxy", [this] { return StartHaproxy(); });
  if (st.ok()) st = Step("fleet", [this] { return StartFleet(); });
  if (st.ok()) st = Step("config", [this] { return WriteHeadshiftConfig(); });
  if (st.ok()) st = Step("connected", [this] { return WaitConnected(); });
  // An interrupt taken during the last step is honoured too: `up` either finishes before the
  // signal or removes everything it made.
  if (st.ok() && Interrupted()) st = Status::Failed("interrupted (SIGINT/SIGTERM) while the lab came up");
  if (!st.ok()) {
    spdlog::error("sandbox up failed: {}; removing what was made", st.ToString());
    auto down = !dir_.empty() && fs::exists(dir_ + "/lab.json") ? LabDown(o_.name, dir_) : LabDown(o_.name, "");
    if (!down.ok()) {
      // Each cleanup error was logged by LabDown; the caller sees them too, after the cause.
      spdlog::error("sandbox up: removing what was made failed too: {}", down.status().ToString());
      return Status::Failed(st.message() + "; removing what was made also failed: " + down.status().message(),
                            "remove the rest with `headshift sandbox down --name " + o_.name + "`");
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
}  // namespace lab

StatusOr<LabInfo> LabUp(const LabOptions& options) {
  // SIGINT/SIGTERM are held while the lab is built and checked between steps, so an interrupt
  // always ends in a clean teardown. Children get a clean signal mask (SpawnProcess).
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  lab::LabBuilder b(options);
  auto r = b.Up();
  lab::Interrupted();  // consume a late signal rather than die of it with the lab half-reported
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return r;
}
}  // namespace headshift::sandbox

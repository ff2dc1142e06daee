// The lab's teardown (LabDown): processes, namespaces, root veths, files. Every cleanup step runs
// even when an earlier one failed; each failure is logged as it happens and named in the returned
// status, and lab.json is kept while anything failed, so the next `down` has the whole record.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "sandbox/lab.h"
#include "sandbox/lab_commands.h"
#include "sandbox/lab_inventory.h"
#include "sandbox/lab_naming.h"
#include "sandbox/process.h"

namespace fs = std::filesystem;

namespace headshift::sandbox {
namespace {

using lab::Ip;

// What one teardown removed, found already gone, and failed to remove.
class TeardownReport {
 public:
  explicit TeardownReport(std::string name) : name_(std::move(name)) {}

  nlohmann::json& removed() { return removed_; }
  // A resource lab.json records that was gone before teardown reached it (not a failure: the goal
  // holds), reported so a resource removed behind the lab's back does not pass unnoticed.
  void Gone(const std::string& what) {
    spdlog::warn("sandbox down {}: {} was already gone", name_, what);
    gone_.push_back(what);
  }
  // A cleanup step that failed; teardown goes on with the rest.
  void Error(const std::string& what) {
    spdlog::error("sandbox down {}: {}", name_, what);
    errors_.push_back(what);
  }
  bool failed() const { return !errors_.empty(); }

  StatusOr<nlohmann::json> Result() {
    if (!gone_.empty()) removed_["already_gone"] = gone_;
    if (errors_.empty()) return removed_;
    std::string msg = "removing sandbox lab " + name_ + " left " + std::to_string(errors_.size()) + " thing(s) behind:";
    for (const auto& e : errors_) msg += "\n  " + e;
    for (const auto& g : gone_) msg += "\n  (already gone: " + g + ")";
    return Status::Failed(msg, "remove the cause, then run `headshift sandbox down --name " + name_ + "` again");
  }

 private:
  std::string name_;
  nlohmann::json removed_ = {{"processes", nlohmann::json::array()},
                             {"netns", nlohmann::json::array()},
                             {"links", nlohmann::json::array()},
                             {"state_dir", nullptr}};
  std::vector<std::string> gone_;
  std::vector<std::string> errors_;
};

void Stop(TeardownReport& r, const std::string& role, pid_t pid, int64_t start, int64_t grace_ms, int signal) {
  if (StopProcess(pid, start, grace_ms, signal)) {
    r.removed()["processes"].push_back({{"role", role}, {"pid", pid}});
  } else {
    r.Error("process " + role + " (pid " + std::to_string(pid) + ") did not stop");
  }
}

// Removes `path` and everything under it (symlinks are not followed). Each failure names the
// deepest path that could not be removed (e.g. a mount point), not the directories above it that
// are left only because of it. True if `path` is gone.
bool RemoveTree(TeardownReport& r, const fs::path& path) {
  std::error_code ec;
  auto st = fs::symlink_status(path, ec);
  if (st.type() == fs::file_type::not_found) return true;
  if (ec) {
    r.Error("removing " + path.string() + ": " + ec.message());
    return false;
  }
  bool children_gone = true;
  if (fs::is_directory(st)) {
    std::vector<fs::path> children;
    for (const auto& e : fs::directory_iterator(path, ec)) children.push_back(e.path());
    if (ec) {
      r.Error("listing " + path.string() + ": " + ec.message());
      return false;
    }
    for (const auto& c : children) children_gone = RemoveTree(r, c) && children_gone;
  }
  if (!children_gone) return false;
  fs::remove(path, ec);
  if (ec) r.Error("removing " + path.string() + ": " + ec.message());
  return !ec;
}

// Removes the lab's files from `dir`: everything but lab.json first, lab.json (and `dir` itself
// when `whole_dir`) only if nothing failed.
void RemoveLabFiles(TeardownReport& r, const std::string& dir, bool whole_dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir, ec)) entries.push_back(e.path());
  if (ec) r.Error("listing " + dir + ": " + ec.message());
  for (const auto& e : entries) {
    std::string n = e.filename().string();
    if (n == "lab.json") continue;
    bool ours = whole_dir || n.rfind("standin-", 0) == 0 || n.rfind(".", 0) == 0;
    for (const auto& known : lab::LabDirEntries()) ours = ours || n == known;
    if (ours) RemoveTree(r, e);
  }
  if (r.failed()) return;  // keep lab.json: the next `down` needs the whole record
  RemoveTree(r, dir + "/lab.json");
  if (whole_dir && !r.failed()) {
    fs::remove(dir, ec);
    if (ec) r.Error("removing " + dir + ": " + ec.message());
  }
  if (!r.failed()) r.removed()["state_dir"] = dir;
}

}  // namespace

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
  if (!lab::ValidName(name, 24)) return Status::BadInput("--name '" + name + "' is not a lab name");

  TeardownReport report(name);
  // 1. Known processes, clients first (so they record nothing misleading), PostgreSQL last.
  if (lab.is_object() && lab.contains("processes")) {
    static const std::vector<std::string> order = {"fleet", "haproxy", "standin", "postgres"};
    for (const auto& role : order) {
      for (const auto& p : lab["processes"]) {
        if (p.value("role", "") != role) continue;
        pid_t pid = p.value("pid", -1);
        int64_t start = p.value("start_time", int64_t{-1});
        if (ProcessAlive(pid, start)) Stop(report, role, pid, start, 3000, role == "postgres" ? SIGQUIT : SIGTERM);
      }
    }
  }
  // 2. Anything else still running in the lab's namespaces (e.g. started before lab.json recorded it).
  std::vector<std::string> netns = lab::LabNetnsOnHost(name);
  for (int round = 0; round < 3; ++round) {
    auto pids = lab::PidsInNetns(netns);
    if (pids.empty()) break;
    for (pid_t pid : pids) {
      int64_t start = ProcessStartTime(pid);
      if (round < 2) {
        StopProcess(pid, start, round == 0 ? 1000 : 0, round == 0 ? SIGTERM : SIGKILL);
        report.removed()["processes"].push_back({{"role", "in-lab-netns"}, {"pid", pid}});
      } else {
        Stop(report, "in-lab-netns", pid, start, 0, SIGKILL);  // the last round: a survivor is an error
      }
    }
  }
  // 3. A PostgreSQL of this lab not recorded (its pid file, verified by its working directory).
  std::string pg_dir = dir.empty() ? DefaultStateDir(name) + "/pg" : dir + "/pg";
  if (pid_t pm = lab::LabPostmaster(pg_dir + "/data"); pm > 0) Stop(report, "postgres", pm, ProcessStartTime(pm), 3000, SIGQUIT);
  for (pid_t pid : lab::PidsWithArg(pg_dir + "/")) {  // e.g. an initdb of an `up` that was killed
    Stop(report, "postgres-leftover", pid, ProcessStartTime(pid), 1000, SIGQUIT);
  }
  // 4. Namespaces (their veths go with them): those on the host, and those lab.json records.
  std::set<std::string> on_host(netns.begin(), netns.end());
  if (lab.is_object() && lab.contains("netns_all")) {
    for (const auto& ns : lab["netns_all"]) {
      std::string n = ns.get<std::string>();
      if (!on_host.count(n) && n.rfind(lab::NsPrefix(name), 0) == 0) report.Gone("netns " + n);
    }
  }
  for (const auto& ns : netns) {
    Status st = Ip({"netns", "del", ns});
    if (st.ok() || !fs::exists("/run/netns/" + ns)) {
      report.removed()["netns"].push_back(ns);
    } else {
      report.Error("removing netns " + ns + ": " + st.message());
    }
  }
  // Root-side veths (normally gone with their peer's namespace).
  for (const auto& l : lab::LabLinksOnHost(name)) {
    Status st = Ip({"link", "del", l});
    if (st.ok() || !fs::exists("/sys/class/net/" + l)) {
      report.removed()["links"].push_back(l);
    } else {
      report.Error("removing link " + l + ": " + st.message());
    }
  }
  // 5. The state dir: all of it when the lab created it, else only the lab's own files.
  if (lab.is_object()) {
    RemoveLabFiles(report, dir, lab.value("owns_dir", false));
  } else {
    std::string leftover_dir = dir.empty() ? DefaultStateDir(name) : dir;
    if (lab::LooksLikeLabDir(leftover_dir)) RemoveLabFiles(report, leftover_dir, /*whole_dir=*/true);
  }
  // 6. What is left keeps its record, and only it: the next `down` must not report as "already gone"
  //    what this one removed.
  if (report.failed() && lab.is_object() && fs::exists(dir + "/lab.json")) {
    nlohmann::json left = nlohmann::json::array();
    for (const auto& p : lab.value("processes", nlohmann::json::array())) {
      if (ProcessAlive(p.value("pid", -1), p.value("start_time", int64_t{-1}))) left.push_back(p);
    }
    lab["processes"] = left;
    lab["netns_all"] = lab::LabNetnsOnHost(name);
    Status st = WriteFileAtomically(dir + "/lab.json", lab.dump(2) + "\n", 0644);
    if (!st.ok()) report.Error("recording what is left in " + dir + "/lab.json: " + st.message());
  }
  return report.Result();
}

}  // namespace headshift::sandbox

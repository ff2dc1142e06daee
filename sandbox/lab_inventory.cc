#include "sandbox/lab_inventory.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "common/atomic_file.h"
#include "sandbox/lab_naming.h"

namespace fs = std::filesystem;

namespace headshift::sandbox::lab {

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
    if (n.rfind(prefix, 0) != 0) continue;
    auto alias = ReadFile("/sys/class/net/" + n + "/ifalias");
    std::string a = alias.ok() ? *alias : "";
    while (!a.empty() && (a.back() == '\n' || a.back() == ' ')) a.pop_back();
    if (!a.empty() && a != LabLinkAlias(lab)) continue;  // another lab whose name hashes alike
    out.push_back(n);
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

const std::vector<std::string>& LabDirEntries() {
  static const std::vector<std::string> entries = {"lab.json", "headshift.yaml", "haproxy.cfg", "haproxy.sock",
                                                   "tenants.map", "lb.nft", "secrets", "logs", "fleet", "pg"};
  return entries;
}

// True if every entry of `dir` is something a lab writes (so a lab dir that lost its lab.json can
// still be removed, and nothing else ever is).
bool LooksLikeLabDir(const std::string& dir) {
  const std::set<std::string> known(LabDirEntries().begin(), LabDirEntries().end());
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (!known.count(n) && n.rfind("standin-", 0) != 0 && n.rfind(".", 0) != 0) return false;
  }
  return !ec;
}

}  // namespace headshift::sandbox::lab

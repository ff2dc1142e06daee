#include "sandbox/lab_commands.h"

#include <unistd.h>

#include <random>

#include "common/atomic_file.h"
#include "common/subprocess.h"

namespace headshift::sandbox::lab {

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
Status WriteSecret(const std::string& path, const std::string& value) {
  return WriteFileAtomically(path, value + "\n", 0600);
}
}  // namespace headshift::sandbox::lab

// The lab's edge part: HAProxy in the edge namespace, routing each tenant's host to its cluster
// through a map file that headshift changes at runtime over the admin socket.
#include <chrono>
#include <filesystem>
#include <thread>

#include "common/atomic_file.h"
#include "common/subprocess.h"
#include "sandbox/event_loop.h"
#include "sandbox/haproxy_ctl.h"
#include "sandbox/lab_builder.h"
#include "sandbox/lab_naming.h"

namespace fs = std::filesystem;

namespace headshift::sandbox::lab {

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
}  // namespace headshift::sandbox::lab

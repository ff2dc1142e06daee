// The lab's headshift config: <state>/headshift.yaml, checked with headshift's own parser.
#include <filesystem>

#include <yaml-cpp/yaml.h>

#include "common/atomic_file.h"
#include "common/config.h"
#include "sandbox/lab_builder.h"
#include "sandbox/lab_naming.h"

namespace fs = std::filesystem;

namespace headshift::sandbox::lab {

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
}  // namespace headshift::sandbox::lab

#include "playbooks/playbook.h"

#include <fstream>
#include <cstdint>
#include <cstdio>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace headshift {
namespace {

struct PlaybookError {
  std::string message;
};

std::string At(const YAML::Node& n) {
  if (n.Mark().is_null()) return "";
  return " (line " + std::to_string(n.Mark().line + 1) + ", column " + std::to_string(n.Mark().column + 1) + ")";
}

class Fields {
 public:
  Fields(const YAML::Node& n, std::string path) : n_(n), path_(std::move(path)) {
    if (!n_.IsMap()) throw PlaybookError{path_ + ": expected a mapping" + At(n_)};
  }
  std::string Str(const std::string& k, bool required) {
    seen_.insert(k);
    if (!n_[k]) {
      if (required) throw PlaybookError{path_ + "." + k + ": required field is missing" + At(n_)};
      return "";
    }
    if (!n_[k].IsScalar()) throw PlaybookError{path_ + "." + k + ": expected a string" + At(n_[k])};
    return n_[k].as<std::string>();
  }
  int Int(const std::string& k, int def, int min) {
    seen_.insert(k);
    if (!n_[k]) return def;
    int v = 0;
    if (!n_[k].IsScalar() || !YAML::convert<int>::decode(n_[k], v) || v < min) {
      throw PlaybookError{path_ + "." + k + ": expected an integer >= " + std::to_string(min) + At(n_[k])};
    }
    return v;
  }
  bool Bool(const std::string& k) {
    seen_.insert(k);
    if (!n_[k]) return false;
    bool v = false;
    if (!n_[k].IsScalar() || !YAML::convert<bool>::decode(n_[k], v)) {
      throw PlaybookError{path_ + "." + k + ": expected true or false" + At(n_[k])};
    }
    return v;
  }
  std::vector<std::string> List(const std::string& k, bool required) {
    seen_.insert(k);
    std::vector<std::string> out;
    if (!n_[k]) {
      if (required) throw PlaybookError{path_ + "." + k + ": required field is missing" + At(n_)};
      return out;
    }
    if (!n_[k].IsSequence() || (required && n_[k].size() == 0)) {
      throw PlaybookError{path_ + "." + k + ": expected a non-empty list" + At(n_[k])};
    }
    for (const auto& e : n_[k]) {
      if (!e.IsScalar()) throw PlaybookError{path_ + "." + k + ": expected strings" + At(e)};
      out.push_back(e.as<std::string>());
    }
    return out;
  }
  void Mark(const std::string& k) { seen_.insert(k); }
  void Finish() {
    for (auto it = n_.begin(); it != n_.end(); ++it) {
      std::string key = it->first.as<std::string>();
      if (!seen_.count(key)) throw PlaybookError{path_ + "." + key + ": unknown key" + At(it->first)};
    }
  }
  const std::string& path() const { return path_; }
  const YAML::Node& node() const { return n_; }

 private:
  YAML::Node n_;
  std::string path_;
  std::set<std::string> seen_;
};

void RequireCluster(const Config& c, const std::string& id, const std::string& key, const YAML::Node& at) {
  if (!c.FindCluster(id)) {
    throw PlaybookError{key + ": cluster '" + id + "' is not defined in the config (defined: " + c.ClusterIds() + ")" +
                        At(at)};
  }
}

PlaybookStep ParseStep(const YAML::Node& item, size_t i, const Config& config) {
  std::string path = "steps[" + std::to_string(i) + "]";
  if (!item.IsMap() || item.size() != 1) {
    throw PlaybookError{path + ": expected exactly one of migrate, drain, uncordon, rebalance, pause, canary" + At(item)};
  }
  std::string kind = item.begin()->first.as<std::string>();
  YAML::Node body = item.begin()->second;
  if (body.IsNull()) body = YAML::Node(YAML::NodeType::Map);
  Fields f(body, path + "." + kind);
  PlaybookStep s;
  if (kind == "migrate" || kind == "canary") {
    s.kind = kind == "migrate" ? PlaybookStep::Kind::kMigrate : PlaybookStep::Kind::kCanary;
    s.tenants = f.List("tenants", true);
    s.to = f.Str("to", true);
    RequireCluster(config, s.to, f.path() + ".to", body);
    s.concurrency = f.Int("concurrency", 1, 1);
    s.allow_shared = f.Bool("allow_shared");
    if (s.kind == PlaybookStep::Kind::kCanary) {
      s.canary = f.Int("canary", 1, 1);
      s.batch = f.Int("batch", 1, 1);
    }
  } else if (kind == "drain") {
    s.kind = PlaybookStep::Kind::kDrain;
    s.cluster = f.Str("cluster", true);
    RequireCluster(config, s.cluster, f.path() + ".cluster", body);
    s.drain_to = f.List("to", false);
    for (const auto& t : s.drain_to) RequireCluster(config, t, f.path() + ".to", body);
    s.concurrency = f.Int("concurrency", 1, 1);
    s.allow_shared = f.Bool("allow_shared");
  } else if (kind == "uncordon") {
    s.kind = PlaybookStep::Kind::kUncordon;
    s.cluster = f.Str("cluster", true);
    RequireCluster(config, s.cluster, f.path() + ".cluster", body);
  } else if (kind == "rebalance") {
    s.kind = PlaybookStep::Kind::kRebalance;
    s.max_moves = f.Int("max_moves", 0, 0);
  } else if (kind == "pause") {
    s.kind = PlaybookStep::Kind::kPause;
    s.message = f.Str("message", false);
  } else {
    throw PlaybookError{path + ": unknown step '" + kind +
                        "' (known: migrate, drain, uncordon, rebalance, pause, canary)" + At(item)};
  }
  f.Finish();
  return s;
}

}  // namespace

const char* PlaybookStepKindName(PlaybookStep::Kind k) {
  switch (k) {
    case PlaybookStep::Kind::kMigrate: return "migrate";
    case PlaybookStep::Kind::kDrain: return "drain";
    case PlaybookStep::Kind::kUncordon: return "uncordon";
    case PlaybookStep::Kind::kRebalance: return "rebalance";
    case PlaybookStep::Kind::kPause: return "pause";
    case PlaybookStep::Kind::kCanary: return "canary";
  }
  return "?";
}

std::string PlaybookStep::Describe() const {
  auto join = [](const std::vector<std::string>& v) {
    std::string o;
    for (const auto& s : v) o += (o.empty() ? "" : ",") + s;
    return o;
  };
  switch (kind) {
    case Kind::kMigrate: return "migrate " + join(tenants) + " to " + to;
    case Kind::kCanary:
      return "canary " + join(tenants) + " to " + to + " (" + std::to_string(canary) + " first, then batches of " +
             std::to_string(batch) + ")";
    case Kind::kDrain: return "drain " + cluster + (drain_to.empty() ? "" : " to " + join(drain_to));
    case Kind::kUncordon: return "uncordon " + cluster;
    case Kind::kRebalance: return "rebalance" + (max_moves ? " (max " + std::to_string(max_moves) + " moves)" : "");
    case Kind::kPause: return "pause: " + message;
  }
  return "?";
}

StatusOr<Playbook> ParsePlaybook(const std::string& yaml_text, const std::string& origin, const Config& config) {
  try {
    YAML::Node root = YAML::Load(yaml_text);
    Fields top(root, "playbook");
    Playbook pb;
    pb.path = origin;
    pb.name = top.Str("name", true);
    YAML::Node steps = root["steps"];
    top.Mark("steps");  // validated below, step by step
    if (!steps || !steps.IsSequence() || steps.size() == 0) {
      throw PlaybookError{"playbook.steps: expected a non-empty list of steps" + At(steps ? steps : root)};
    }
    top.Finish();
    for (size_t i = 0; i < steps.size(); ++i) pb.steps.push_back(ParseStep(steps[i], i, config));
    // FNV-1a 64: a stable digest across builds (std::hash makes no such promise).
    uint64_t h = 1469598103934665603ull;
    for (unsigned char ch : yaml_text) h = (h ^ ch) * 1099511628211ull;
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    pb.digest = hex;
    return pb;
  } catch (const PlaybookError& e) {
    return Status::BadInput(origin + ": " + e.message, "see playbooks/examples/");
  } catch (const YAML::Exception& e) {
    return Status::BadInput(origin + ": invalid YAML at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

StatusOr<Playbook> LoadPlaybook(const std::string& path, const Config& config) {
  std::ifstream in(path);
  if (!in) return Status::BadInput("cannot read playbook " + path, "check the path");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParsePlaybook(ss.str(), path, config);
}

}  // namespace headshift

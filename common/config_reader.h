// The config parser's reader of YAML mappings (internal to common/config*.cc): a mapping node plus its
// key path, typed getters that name the key and its line/column on bad input, and the refusal of
// unknown keys. Errors are thrown as ConfigError inside the parser only; ParseConfig turns them into a
// Status at the module boundary.
//
// Thread-safety: values; one thread.
#pragma once

#include <cctype>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/config.h"
#include "common/redact.h"

namespace headshift {
namespace config_detail {

// Thrown inside the parser only; converted to a Status at the module boundary.
struct ConfigError {
  std::string message;
};

inline std::string Where(const YAML::Node& n) {
  YAML::Mark m = n.Mark();
  if (m.is_null()) return "";
  return " (line " + std::to_string(m.line + 1) + ", column " + std::to_string(m.column + 1) + ")";
}

// A mapping node plus its key path; tracks which keys were read so unknown keys can be rejected.
class MapReader {
 public:
  MapReader(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {
    if (!node_.IsMap()) {
      throw ConfigError{Key("") + ": expected a mapping" + Where(node_)};
    }
  }

  std::string Key(const std::string& k) const {
    if (k.empty()) return path_.empty() ? "<root>" : path_;
    return path_.empty() ? k : path_ + "." + k;
  }

  bool Has(const std::string& k) {
    seen_.insert(k);
    return node_[k] && !node_[k].IsNull();
  }
  YAML::Node Get(const std::string& k) {
    seen_.insert(k);
    return node_[k];
  }

  std::string Str(const std::string& k, bool required, const std::string& def = "") {
    if (!Has(k)) {
      if (required) throw ConfigError{Key(k) + ": required field is missing" + Where(node_)};
      return def;
    }
    YAML::Node v = node_[k];
    if (!v.IsScalar()) throw ConfigError{Key(k) + ": expected a string" + Where(v)};
    return v.as<std::string>();
  }

  int64_t Int(const std::string& k, int64_t def, int64_t min, int64_t max) {
    if (!Has(k)) return def;
    YAML::Node v = node_[k];
    int64_t out = 0;
    if (!v.IsScalar() || !YAML::convert<int64_t>::decode(v, out)) {
      throw ConfigError{Key(k) + ": expected an integer" + Where(v)};
    }
    if (out < min || out > max) {
      throw ConfigError{Key(k) + ": " + std::to_string(out) + " is out of range [" +
                        std::to_string(min) + ", " + std::to_string(max) + "]" + Where(v)};
    }
    return out;
  }

  double Double(const std::string& k, double def) {
    if (!Has(k)) return def;
    YAML::Node v = node_[k];
    double out = 0;
    if (!v.IsScalar() || !YAML::convert<double>::decode(v, out)) {
      throw ConfigError{Key(k) + ": expected a number" + Where(v)};
    }
    return out;
  }

  bool Bool(const std::string& k, bool def) {
    if (!Has(k)) return def;
    YAML::Node v = node_[k];
    bool out = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, out)) {
      throw ConfigError{Key(k) + ": expected true or false" + Where(v)};
    }
    return out;
  }

  std::vector<std::string> StrList(const std::string& k) {
    std::vector<std::string> out;
    if (!Has(k)) return out;
    YAML::Node v = node_[k];
    if (!v.IsSequence()) throw ConfigError{Key(k) + ": expected a list of strings" + Where(v)};
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].IsScalar()) {
        throw ConfigError{Key(k) + "[" + std::to_string(i) + "]: expected a string" + Where(v[i])};
      }
      out.push_back(v[i].as<std::string>());
    }
    return out;
  }

  // A secret reference: `<k>_env` or `<k>_file`; rejects an inline `<k>`.
  SecretRef Secret(const std::string& k, bool required) {
    if (Has(k)) {
      throw ConfigError{Key(k) + ": secrets are never inline; use " + k + "_env (environment variable) or " +
                        k + "_file (path)" + Where(node_[k])};
    }
    SecretRef ref;
    ref.env = Str(k + "_env", false);
    ref.file = Str(k + "_file", false);
    if (!ref.env.empty() && !ref.file.empty()) {
      throw ConfigError{Key(k + "_env") + ": set either " + k + "_env or " + k + "_file, not both" +
                        Where(node_[k + "_env"])};
    }
    if (required && ref.empty()) {
      throw ConfigError{Key(k) + ": required; set " + Key(k + "_env") + " or " + Key(k + "_file") + Where(node_)};
    }
    return ref;
  }

  MapReader Sub(const std::string& k) { return MapReader(Get(k), Key(k)); }

  // Rejects any key that no accessor asked for.
  void Finish() const {
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      std::string key = it->first.as<std::string>();
      if (!seen_.count(key)) {
        std::string known;
        for (const auto& s : seen_) known += (known.empty() ? "" : ", ") + s;
        throw ConfigError{Key(key) + ": unknown key" + Where(it->first) + "; known keys here: " + known};
      }
    }
  }

  const YAML::Node& node() const { return node_; }

 private:
  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
};

inline void CheckUrl(const std::string& url, const std::string& key, const YAML::Node& at) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    throw ConfigError{key + ": '" + url + "' is not an http:// or https:// URL" + Where(at)};
  }
}

inline void CheckTemplate(const std::string& t, const std::string& key, const YAML::Node& at) {
  if (t.find("{tenant}") == std::string::npos) {
    throw ConfigError{key + ": template '" + t + "' must contain {tenant}" + Where(at)};
  }
}

}  // namespace config_detail
}  // namespace headshift

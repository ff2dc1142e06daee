#include "proxycfg/traefik_provider_dir.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>

#include <toml.hpp>

#include "common/atomic_file.h"

namespace headshift {
namespace fs = std::filesystem;
namespace {

const char* const kSections[][2] = {
    {"http", "routers"}, {"http", "services"}, {"tcp", "routers"}, {"tcp", "services"}};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Traefik decodes field names case-insensitively; resource names are exact.
YAML::Node ChildCi(const YAML::Node& map, const std::string& key) {
  if (!map.IsMap()) return YAML::Node();
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first.IsScalar() && Lower(it->first.Scalar()) == key) return it->second;
  }
  return YAML::Node();
}

YAML::Node TomlToYaml(const toml::value& v) {
  YAML::Node n;
  switch (v.type()) {
    case toml::value_t::table:
      n = YAML::Node(YAML::NodeType::Map);
      for (const auto& [k, child] : v.as_table()) n[k] = TomlToYaml(child);
      return n;
    case toml::value_t::array:
      n = YAML::Node(YAML::NodeType::Sequence);
      for (const auto& child : v.as_array()) n.push_back(TomlToYaml(child));
      return n;
    case toml::value_t::string:
      return YAML::Node(v.as_string().str);
    case toml::value_t::boolean:
      return YAML::Node(v.as_boolean());
    case toml::value_t::integer:
      return YAML::Node(v.as_integer());
    case toml::value_t::floating:
      return YAML::Node(v.as_floating());
    default: {
      std::ostringstream o;
      o << v;
      return YAML::Node(o.str());
    }
  }
}

// Rough textual test used only for files that do not parse: the name appears as a YAML key
// ("name:") or inside a TOML table header ("routers.name]" / "routers.name.").
bool MentionsAsKey(const std::string& text, const std::string& name) {
  size_t pos = 0;
  while ((pos = text.find(name, pos)) != std::string::npos) {
    size_t before = pos == 0 ? std::string::npos : pos - 1;
    size_t after = pos + name.size();
    auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; };
    bool start_ok = before == std::string::npos || !word(text[before]);
    size_t a = after;
    if (a < text.size() && (text[a] == '"' || text[a] == '\'')) ++a;
    while (a < text.size() && text[a] == ' ') ++a;
    bool end_ok = a < text.size() && (text[a] == ':' || text[a] == ']' || text[a] == '.' || text[a] == '=');
    if (start_ok && end_ok) return true;
    pos = after;
  }
  return false;
}

void Walk(const fs::path& dir, std::vector<fs::path>* out) {
  std::vector<fs::directory_entry> entries;
  for (const auto& e : fs::directory_iterator(dir)) entries.push_back(e);
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path().filename().string() < b.path().filename().string(); });
  for (const auto& e : entries) {
    std::error_code ec;
    if (e.is_directory(ec)) {
      Walk(e.path(), out);
    } else if (IsTraefikConfigFile(e.path().filename().string())) {
      out->push_back(e.path());
    }
  }
}

}  // namespace

bool IsTraefikConfigFile(const std::string& name) {
  auto ends = [&](const std::string& suf) {
    return name.size() > suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
  };
  return ends(".yml") || ends(".yaml") || ends(".toml");
}

StatusOr<TraefikProviderDirectory> TraefikProviderDirectory::Scan(const std::string& dir) {
  return ScanFor(dir, {});
}

StatusOr<TraefikProviderDirectory> TraefikProviderDirectory::ScanFor(const std::string& dir,
                                                                    const std::vector<std::string>& names) {
  TraefikProviderDirectory d;
  std::vector<fs::path> paths;
  try {
    Walk(dir, &paths);
  } catch (const fs::filesystem_error& e) {
    return Status::Failed("cannot list Traefik provider directory " + dir + ": " + e.code().message(),
                          "check proxy.traefik.directory");
  }
  for (const auto& p : paths) {
    File f;
    f.path = p.string();
    auto text = ReadFile(f.path);
    if (!text.ok()) return text.status();
    f.text = *text;
    if (!names.empty() && std::none_of(names.begin(), names.end(),
                                       [&](const std::string& n) { return MentionsAsKey(f.text, n); })) {
      f.parsed = true;  // defines none of the names asked about
      d.files_.push_back(std::move(f));
      continue;
    }
    bool toml_file = p.extension() == ".toml";
    try {
      if (toml_file) {
        std::istringstream in(f.text);
        toml::value root = toml::parse(in, f.path);
        for (const auto& s : kSections) {
          if (!root.is_table()) break;
          for (const auto& [k1, v1] : root.as_table()) {
            if (Lower(k1) != s[0] || !v1.is_table()) continue;
            for (const auto& [k2, v2] : v1.as_table()) {
              if (Lower(k2) != s[1] || !v2.is_table()) continue;
              for (const auto& [name, def] : v2.as_table()) {
                f.sections[std::string(s[0]) + "." + s[1]][name] = TomlToYaml(def);
              }
            }
          }
        }
      } else {
        YAML::Node root = YAML::Load(f.text);
        for (const auto& s : kSections) {
          YAML::Node sec = ChildCi(ChildCi(root, s[0]), s[1]);
          if (!sec.IsMap()) continue;
          for (auto it = sec.begin(); it != sec.end(); ++it) {
            if (it->first.IsScalar()) f.sections[std::string(s[0]) + "." + s[1]][it->first.Scalar()] = it->second;
          }
        }
      }
      f.parsed = true;
    } catch (const std::exception& e) {
      std::string msg = e.what();
      if (msg.size() > 300) msg = msg.substr(0, 300) + "...";
      d.unparsable_.push_back({f.path, msg});
    }
    d.files_.push_back(std::move(f));
  }
  return d;
}

std::vector<TraefikProviderDirectory::Definer> TraefikProviderDirectory::Definers(const std::string& section,
                                                                                 const std::string& name) const {
  std::vector<Definer> out;
  for (const auto& f : files_) {
    if (f.parsed) {
      auto s = f.sections.find(section);
      if (s != f.sections.end() && s->second.count(name)) out.push_back({f.path, true});
    } else if (MentionsAsKey(f.text, name)) {
      out.push_back({f.path, false});
    }
  }
  return out;
}

std::optional<YAML::Node> TraefikProviderDirectory::Definition(const std::string& file, const std::string& section,
                                                               const std::string& name) const {
  for (const auto& f : files_) {
    if (f.path != file || !f.parsed) continue;
    auto s = f.sections.find(section);
    if (s == f.sections.end()) return std::nullopt;
    auto d = s->second.find(name);
    if (d == s->second.end()) return std::nullopt;
    return YAML::Clone(d->second);
  }
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> TraefikProviderDirectory::Names(const std::string& section) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : files_) {
    auto s = f.sections.find(section);
    if (s == f.sections.end()) continue;
    for (const auto& [name, def] : s->second) out.emplace_back(f.path, name);
  }
  return out;
}

}  // namespace headshift

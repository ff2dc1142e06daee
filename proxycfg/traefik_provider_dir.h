// TraefikProviderDirectory: what the files of a Traefik file-provider directory define, read the way
// Traefik reads them — every .yml/.yaml/.toml file, depth-first in name order (subdirectories
// included), top-level keys matched case-insensitively, resources keyed by exact name. Traefik
// applies the FIRST definition of a name and skips later ones, so Definers() lists files in that
// load order.
//
// Files are Go templates for Traefik; a file yaml-cpp / toml11 cannot parse is kept as text, and a
// textual match of the resource name makes it a (suspected) definer, so it is never ignored.
//
// Thread-safety: immutable after Scan(); safe to share.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/status.h"

namespace headshift {

class TraefikProviderDirectory {
 public:
  // Section names: "http.routers", "http.services", "tcp.routers", "tcp.services".
  struct Definer {
    std::string file;  // path
    bool parsed = true;  // false: the file does not parse; the name was found in its text
  };
  struct FileError {
    std::string file;
    std::string message;
  };

  // Reads the directory. Failed if it cannot be listed or a file cannot be read.
  static StatusOr<TraefikProviderDirectory> Scan(const std::string& dir);
  // Like Scan, but parses only files whose text mentions one of `names` as a key ("name:",
  // "name]", "name.", "name =" — how a YAML or TOML file must spell a definition of it), so a
  // directory with thousands of tenant files is checked for a few names without parsing them all.
  // Definers()/Definition() are then complete for `names` only; Names() is not meaningful.
  static StatusOr<TraefikProviderDirectory> ScanFor(const std::string& dir, const std::vector<std::string>& names);

  // Files that define `section`.`name`, in Traefik's load order (the first one wins).
  std::vector<Definer> Definers(const std::string& section, const std::string& name) const;
  // The definition of `section`.`name` in `file` (a parsed file), converted to YAML.
  std::optional<YAML::Node> Definition(const std::string& file, const std::string& section,
                                       const std::string& name) const;
  // (file, name) of every resource in `section`, in load order.
  std::vector<std::pair<std::string, std::string>> Names(const std::string& section) const;
  // Files Traefik would load that do not parse here (Traefik also rejects them unless they are
  // templates; while one is broken Traefik applies no file-provider change at all).
  const std::vector<FileError>& unparsable() const { return unparsable_; }

 private:
  struct File {
    std::string path;
    bool parsed = false;
    std::string text;
    std::map<std::string, std::map<std::string, YAML::Node>> sections;  // section -> name -> definition
  };
  std::vector<File> files_;
  std::vector<FileError> unparsable_;
};

// True if Traefik's file provider loads a file with this name (.yml, .yaml, .toml).
bool IsTraefikConfigFile(const std::string& name);

}  // namespace headshift

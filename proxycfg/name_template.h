// NameTemplate: a `{tenant}` template (host name, router name) rendered for a tenant and matched
// back from a rendered name. Also validates tenant names: a tenant becomes part of a host name, a
// YAML key, a Traefik rule and an HAProxy runtime command, so only [A-Za-z0-9._-] (starting with a
// letter or digit, at most 63 bytes) is accepted; anything else could inject syntax.
//
// Thread-safety: immutable after construction; safe to share.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"

namespace headshift {

// OK if `tenant` is a usable tenant name; BadInput naming the offending character otherwise.
Status ValidateTenantName(const std::string& tenant);

// OK if `name` is usable as a proxy backend / Traefik service name ([A-Za-z0-9._:-], no '@' so
// it stays in the file provider's namespace). `what` names the config key in the message.
Status ValidateBackendName(const std::string& name, const std::string& what);

class NameTemplate {
 public:
  // REQUIRES: `tmpl` contains "{tenant}" (the config loader checks it).
  explicit NameTemplate(std::string tmpl, bool lowercase = false);

  // The name for `tenant` (lowercased if constructed so). BadInput for an invalid tenant name.
  StatusOr<std::string> Render(const std::string& tenant) const;

  // The tenant whose rendered name is `name`, or nullopt if `name` does not come from this template.
  std::optional<std::string> Match(const std::string& name) const;

  const std::string& text() const { return tmpl_; }

 private:
  std::string tmpl_;
  bool lowercase_;
};

}  // namespace headshift

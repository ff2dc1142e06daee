// PolicyDocument: one headscale ACL policy, parsed from HuJSON (JSON with comments and trailing commas,
// what headscale v0.29 reads: hscontrol/policy/v2 uses tailscale/hujson) and serialized back as standard
// JSON, which headscale accepts unchanged. Comments are not kept: a policy written back is the same
// policy without its comments.
//
// Parsing uses RapidJSON with kParseCommentsFlag | kParseTrailingCommasFlag (exactly HuJSON's two
// extensions), then holds the value as an nlohmann::ordered_json so that member order (and so the
// operator's reading order) survives a round trip.
//
// Thread-safety: a value type; const methods may be called concurrently.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace headshift {

class PolicyDocument {
 public:
  // An empty policy ({}): what a node with no policy set enforces as "allow nothing configured".
  PolicyDocument();
  explicit PolicyDocument(nlohmann::ordered_json value);

  // Parses `hujson`. Empty or whitespace-only text is the empty policy (headscale's "no policy").
  // BadInput naming `origin`, the line, the column and the byte offset for malformed text, or a
  // top level that is not an object.
  static StatusOr<PolicyDocument> Parse(std::string_view hujson, const std::string& origin);

  const nlohmann::ordered_json& json() const { return value_; }
  nlohmann::ordered_json& mutable_json() { return value_; }

  // Standard JSON, 2-space indented (what SetPolicy and a policy file get).
  std::string ToJson() const;
  // Same policy regardless of member order (arrays stay ordered: rule order is meaningful).
  bool SameAs(const PolicyDocument& other) const;

 private:
  nlohmann::ordered_json value_;
};

// True if `a` and `b` are the same JSON value, ignoring object member order.
bool SameJsonValue(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b);

}  // namespace headshift

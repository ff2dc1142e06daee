// PolicyPrincipals: who an alias of a headscale v0.29 policy refers to, seen from one tenant.
//
// Alias syntax (hscontrol/policy/v2/types.go parseAlias, v0.29): an IP or prefix; "*"; a user token
// (contains '@'; "hsa@" is user hsa, "alice@example.com" a user by email; the trailing '@' is trimmed
// before matching names, emails and provider ids); "group:NAME"; "tag:NAME"; "autogroup:NAME"; and
// otherwise (no '@', no ':') a host name from "hosts". A destination is ALIAS:PORTS, split at the last
// ':' (splitDestinationAndPort).
//
// An alias is the tenant's when it names only the tenant's users: a user of the tenant, a group whose
// members are all its users, a tag whose owners (tagOwners, users/groups/tags) are all the tenant's.
// It is another tenant's when it names only other users. A group or tag naming both is mixed (cannot be
// split). Hosts and IP literals are neutral (they follow the rules that use them); "*" and autogroups
// are generic (they apply to every tenant alike).
//
// Thread-safety: immutable after construction; const methods may be called concurrently.
#pragma once

#include <set>
#include <string>

#include <nlohmann/json.hpp>

namespace headshift {

// The tenant as a policy names it: its headscale user names (and, optionally, their emails or provider
// ids, which user tokens may use instead), and the other users of the node (only for messages).
struct TenantPrincipals {
  std::set<std::string> users;
  std::set<std::string> other_users;
};

enum class AliasOwner { kTenant, kOther, kMixed, kNeutral, kGeneric };
const char* AliasOwnerName(AliasOwner o);

class PolicyPrincipals {
 public:
  // `policy` is the whole policy object (groups, tagOwners and hosts are read from it); it must outlive
  // this object.
  PolicyPrincipals(const nlohmann::ordered_json& policy, TenantPrincipals tenant);

  // Owner of a source alias (or tagOwners / autoApprovers / group member entry).
  AliasOwner Classify(const std::string& alias) const;
  // Owner of a destination "ALIAS:PORTS" (an entry without ':' is classified whole).
  AliasOwner ClassifyDestination(const std::string& dst) const;

  // Owner of a group / tag by its full name ("group:eng", "tag:srv"); kNeutral when not defined.
  AliasOwner GroupOwner(const std::string& group) const;
  AliasOwner TagOwner(const std::string& tag) const;

  // The alias part of a destination ("hsa@:*" -> "hsa@", "10.0.0.1:22" -> "10.0.0.1").
  static std::string DestinationAlias(const std::string& dst);
  // A user token's name ("hsa@" -> "hsa").
  static std::string UserName(const std::string& token);
  static bool IsUser(const std::string& a) { return a.find('@') != std::string::npos; }
  static bool IsHost(const std::string& a) { return !IsUser(a) && a.find(':') == std::string::npos && a != "*"; }

  const TenantPrincipals& tenant() const { return tenant_; }

 private:
  AliasOwner TagOwnerGuarded(const std::string& tag, std::set<std::string>* seen) const;
  AliasOwner ClassifyGuarded(const std::string& alias, std::set<std::string>* seen) const;

  const nlohmann::ordered_json& policy_;
  TenantPrincipals tenant_;
};

// Combines the owners of several aliases of one rule: tenant + other = mixed; tenant + neutral/generic
// = tenant; other + neutral/generic = other; neutral + generic = generic.
AliasOwner CombineOwners(AliasOwner a, AliasOwner b);

}  // namespace headshift

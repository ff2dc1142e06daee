#include "controlplane/policy_principals.h"

namespace headshift {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

int Rank(AliasOwner o) {
  switch (o) {
    case AliasOwner::kNeutral: return 0;
    case AliasOwner::kGeneric: return 1;
    default: return 2;
  }
}

}  // namespace

const char* AliasOwnerName(AliasOwner o) {
  switch (o) {
    case AliasOwner::kTenant: return "tenant";
    case AliasOwner::kOther: return "other";
    case AliasOwner::kMixed: return "mixed";
    case AliasOwner::kNeutral: return "neutral";
    case AliasOwner::kGeneric: return "generic";
  }
  return "?";
}

AliasOwner CombineOwners(AliasOwner a, AliasOwner b) {
  if (a == b) return a;
  if (a == AliasOwner::kMixed || b == AliasOwner::kMixed) return AliasOwner::kMixed;
  bool tenant = a == AliasOwner::kTenant || b == AliasOwner::kTenant;
  bool other = a == AliasOwner::kOther || b == AliasOwner::kOther;
  if (tenant && other) return AliasOwner::kMixed;
  if (tenant) return AliasOwner::kTenant;
  if (other) return AliasOwner::kOther;
  return Rank(a) >= Rank(b) ? a : b;  // neutral + generic = generic
}

PolicyPrincipals::PolicyPrincipals(const nlohmann::ordered_json& policy, TenantPrincipals tenant)
    : policy_(policy), tenant_(std::move(tenant)) {}

std::string PolicyPrincipals::UserName(const std::string& token) {
  std::string t = Trim(token);
  if (!t.empty() && t.back() == '@') t.pop_back();
  return t;
}

std::string PolicyPrincipals::DestinationAlias(const std::string& dst) {
  std::string d = Trim(dst);
  size_t colon = d.rfind(':');
  if (colon == std::string::npos) return d;
  return d.substr(0, colon);
}

AliasOwner PolicyPrincipals::Classify(const std::string& alias) const {
  std::set<std::string> seen;
  return ClassifyGuarded(alias, &seen);
}

AliasOwner PolicyPrincipals::ClassifyDestination(const std::string& dst) const {
  return Classify(DestinationAlias(dst));
}

AliasOwner PolicyPrincipals::ClassifyGuarded(const std::string& raw, std::set<std::string>* seen) const {
  std::string a = Trim(raw);
  if (a == "*") return AliasOwner::kGeneric;
  if (a.rfind("autogroup:", 0) == 0) return AliasOwner::kGeneric;
  if (a.rfind("group:", 0) == 0) return GroupOwner(a);
  if (a.rfind("tag:", 0) == 0) return TagOwnerGuarded(a, seen);
  if (IsUser(a)) return tenant_.users.count(UserName(a)) ? AliasOwner::kTenant : AliasOwner::kOther;
  return AliasOwner::kNeutral;  // an IP, a prefix or a host name
}

AliasOwner PolicyPrincipals::GroupOwner(const std::string& group) const {
  if (!policy_.contains("groups") || !policy_["groups"].is_object()) return AliasOwner::kNeutral;
  const auto& groups = policy_["groups"];
  auto it = groups.find(group);
  if (it == groups.end() || !it->is_array() || it->empty()) return AliasOwner::kNeutral;
  bool tenant = false, other = false;
  for (const auto& m : *it) {
    if (!m.is_string()) continue;
    // Group members are users only (v0.29 Usernames); anything else counts as another tenant's.
    if (IsUser(m.get<std::string>()) && tenant_.users.count(UserName(m.get<std::string>()))) {
      tenant = true;
    } else {
      other = true;
    }
  }
  if (tenant && other) return AliasOwner::kMixed;
  return tenant ? AliasOwner::kTenant : AliasOwner::kOther;
}

AliasOwner PolicyPrincipals::TagOwner(const std::string& tag) const {
  std::set<std::string> seen;
  return TagOwnerGuarded(tag, &seen);
}

AliasOwner PolicyPrincipals::TagOwnerGuarded(const std::string& tag, std::set<std::string>* seen) const {
  if (!policy_.contains("tagOwners") || !policy_["tagOwners"].is_object()) return AliasOwner::kNeutral;
  const auto& owners = policy_["tagOwners"];
  auto it = owners.find(tag);
  if (it == owners.end() || !it->is_array() || it->empty()) return AliasOwner::kNeutral;
  if (!seen->insert(tag).second) return AliasOwner::kNeutral;  // tag owned by a tag owned by it: no new owner
  AliasOwner result = AliasOwner::kNeutral;
  for (const auto& o : *it) {
    if (!o.is_string()) continue;
    AliasOwner one = ClassifyGuarded(o.get<std::string>(), seen);
    // An autogroup owner (e.g. autogroup:admin) is every tenant's: the tag is not one tenant's.
    if (one == AliasOwner::kGeneric) one = AliasOwner::kOther;
    result = CombineOwners(result, one);
  }
  return result;
}

}  // namespace headshift

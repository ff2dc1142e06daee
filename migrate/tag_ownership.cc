#include "migrate/tag_ownership.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace headshift::migrate {
namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string JoinSet(const std::set<std::string>& v) { return Join(std::vector<std::string>(v.begin(), v.end())); }

}  // namespace

void TagOwnership::Add(const std::string& tenant, const std::vector<std::string>& tags) {
  for (const auto& t : tags) owners[t].insert(tenant);
}

std::vector<std::string> TagOwnership::OwnedOnlyBy(const std::string& tenant) const {
  std::vector<std::string> out;
  for (const auto& [tag, who] : owners) {
    if (who.size() == 1 && who.count(tenant)) out.push_back(tag);
  }
  return out;  // std::map: sorted
}

std::optional<std::vector<std::string>> ParseTags(const std::string& json_text) {
  auto j = nlohmann::json::parse(json_text.empty() ? "null" : json_text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  std::vector<std::string> out;
  if (j.is_null()) return out;
  if (!j.is_array()) return std::nullopt;
  for (const auto& e : j) {
    if (!e.is_string()) return std::nullopt;
    out.push_back(e.get<std::string>());
  }
  return out;
}

TaggedVerdict ClassifyTaggedDevice(const TagOwnership& ownership, const std::string& tenant, const TaggedDevice& d) {
  TaggedVerdict v;
  const std::string who = "tagged node " + std::to_string(d.id) + (d.name.empty() ? "" : " (" + d.name + ")");
  auto tags = ParseTags(d.tags_json);
  if (!tags) {
    v.relevant = d.linked_to_tenant;
    if (v.relevant) {
      v.conflict = "tag_owner_undecided";
      v.message = who + " has tags that are not a JSON array of strings (" + d.tags_json + ")";
    }
    return v;
  }
  std::vector<std::string> mine, shared, others, unowned;
  std::set<std::string> other_tenants;
  for (const auto& t : *tags) {
    auto it = ownership.owners.find(t);
    if (it == ownership.owners.end() || it->second.empty()) {
      unowned.push_back(t);
    } else if (it->second.count(tenant)) {
      mine.push_back(t);
      if (it->second.size() > 1) {
        shared.push_back(t);
        for (const auto& o : it->second) {
          if (o != tenant) other_tenants.insert(o);
        }
      }
    } else {
      others.push_back(t);
      other_tenants.insert(it->second.begin(), it->second.end());
    }
  }
  v.relevant = !mine.empty() || d.linked_to_tenant;
  if (!v.relevant) return v;
  if (!shared.empty()) {
    v.conflict = "tag_shared";
    v.tags = shared;
    v.message = who + ": tag " + Join(shared) + " is owned by " + tenant + " and by " + JoinSet(other_tenants) +
                " (tagOwners), so the node belongs to more than one tenant";
    return v;
  }
  if (!mine.empty() && (!others.empty() || !unowned.empty())) {
    v.conflict = "tag_mixed";
    std::vector<std::string> rest = others;
    rest.insert(rest.end(), unowned.begin(), unowned.end());
    v.tags = rest;
    v.message = who + " has tag(s) " + Join(mine) + " owned by " + tenant + " and " +
                (others.empty() ? "" : Join(others) + " owned by " + JoinSet(other_tenants)) +
                (!others.empty() && !unowned.empty() ? " and " : "") +
                (unowned.empty() ? "" : Join(unowned) + " owned by no one") +
                ", so the node belongs to no single tenant";
    return v;
  }
  if (!mine.empty()) {
    // Every tag is the tenant's alone.
    if (d.linked_elsewhere) {
      v.conflict = "tag_owner_undecided";
      v.tags = mine;
      v.message = who + ": its tag(s) " + Join(mine) + " are owned by " + tenant + " but it was registered with " +
                  (d.link_description.empty() ? "a pre-auth key of another tenant" : d.link_description) +
                  ", so its owner cannot be decided";
      return v;
    }
    v.moves = true;
    return v;
  }
  // No tag of the tenant, but its pre-auth key is the tenant's.
  if (!others.empty()) {
    v.conflict = "tag_owner_undecided";
    v.tags = others;
    v.message = who + " was registered with a pre-auth key of " + tenant + " but its tag(s) " + Join(others) +
                " are owned by " + JoinSet(other_tenants) + ", so its owner cannot be decided";
    return v;
  }
  v.moves = true;  // tags owned by no one: it moves through its pre-auth key, as before
  return v;
}

}  // namespace headshift::migrate

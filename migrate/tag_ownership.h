// TagOwnership: which tenants own which ACL tags, and what that makes of a tagged device.
//
// headscale >= 0.28 stores a tagged node with no user (nodes.user_id NULL): its tags own it
// (hscontrol/db/schema.sql, v0.29). A tenant is therefore its users *and* the tagged devices whose
// tags it owns. Who owns a tag is policy (tagOwners, with groups and owning tags resolved to users);
// the caller reads the policy and passes the result here as tag -> owning tenants (headscale user
// names, i.e. tenant names). headshift's row selection uses only the tags a tenant owns alone
// (OwnedOnlyBy): a tag owned by two tenants never moves a device, preflight refuses it instead.
//
// An empty TagOwnership means "no tag is owned by anyone": no tagged device is selected by its tags,
// which is headshift's behaviour before tagged devices were known (they still move through the
// tenant's pre-auth key, nodes.auth_key_id).
//
// Thread-safety: a value type; ClassifyTaggedDevice is a pure function.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace headshift::migrate {

struct TagOwnership {
  // tag ("tag:hsa-srv") -> the tenants owning it. A tag absent here has no owner.
  std::map<std::string, std::set<std::string>> owners;

  bool empty() const { return owners.empty(); }
  // Records that `tenant` owns each of `tags`.
  void Add(const std::string& tenant, const std::vector<std::string>& tags);
  // Tags owned by `tenant` and by no one else, sorted.
  std::vector<std::string> OwnedOnlyBy(const std::string& tenant) const;
};

// What preflight knows about one tagged device (its owner-by-user column is NULL).
struct TaggedDevice {
  int64_t id = 0;
  std::string name;                  // given_name, else hostname ("" when neither)
  std::string tags_json;             // the raw tags column
  bool linked_to_tenant = false;     // another owner column (the pre-auth key) points at the tenant's row
  bool linked_elsewhere = false;     // an owner column points at a row that is not the tenant's
  std::string link_description;      // e.g. "pre_auth_keys 7 of user hsb" (for messages)
};

// The verdict for one tagged device of `tenant`.
struct TaggedVerdict {
  bool relevant = false;   // the tenant owns one of its tags or its pre-auth key
  bool moves = false;      // every tag is owned by the tenant alone (it moves with the tenant)
  // Conflict kind when the device cannot be decided ("" = none): tag_shared, tag_mixed, tag_owner_undecided.
  std::string conflict;
  std::string message;     // names the device (id, name) and the tag(s)
  std::vector<std::string> tags;  // the offending tags
};

// REQUIRES: `ownership` non-empty (with no ownership known nothing is decided by tags).
//  - tag_shared: one of its tags is owned by the tenant and by another tenant;
//  - tag_mixed: some tags are the tenant's, others another tenant's or no one's;
//  - tag_owner_undecided: its tags are the tenant's but its pre-auth key is another tenant's (or not
//    the tenant's), or its pre-auth key is the tenant's but its tags are another tenant's; also a tags
//    column that is not a JSON array of strings.
TaggedVerdict ClassifyTaggedDevice(const TagOwnership& ownership, const std::string& tenant, const TaggedDevice& d);

// Parses a tags column (JSON array of strings). nullopt when it is not one ("null" and "" give []).
std::optional<std::vector<std::string>> ParseTags(const std::string& json_text);

}  // namespace headshift::migrate

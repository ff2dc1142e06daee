// Tagged devices in preflight: the ownership conflicts that forbid moving a tenant whose devices
// include tagged ones (headscale >= 0.28: nodes.user_id NULL, the tags own the node). Conflict kinds
// (move_plan.h), each naming the device (id, name) and the tag(s):
//   tag_shared           a tag of the device is owned by the tenant and by another tenant;
//   tag_mixed            its tags are owned partly by the tenant, partly by others (or by no one);
//   tag_owner_undecided  its tags and its pre-auth key (nodes.auth_key_id) point at different tenants,
//                        or its tags column is not a JSON array of strings;
//   tagged_on_target     a tagged device the tenant owns is already on the target cluster.
// Strictly read-only (SELECTs only). Does nothing when the context has no tag ownership or the device
// table has no tags column (profile tags_column; headscale < 0.28).
//
// Thread-safety: not thread-safe (uses the connections given).
#pragma once

#include <vector>

#include "common/pg.h"
#include "migrate/move_context.h"
#include "migrate/move_plan.h"
#include "migrate/tenant_schema.h"

namespace headshift::migrate {

struct TaggedCheckSides {
  PgConn* source = nullptr;  // REQUIRES non-null
  const TenantSchema* source_schema = nullptr;
  std::string from;
  PgConn* target = nullptr;  // null: the target is not checked
  const TenantSchema* target_schema = nullptr;
  std::string to;
};

// Appends the conflicts of `tenant`'s tagged devices to *out. Failed when a query fails.
Status CheckTaggedDevices(const MoveContext& ctx, const std::string& tenant, const TaggedCheckSides& sides,
                          std::vector<Conflict>* out);

}  // namespace headshift::migrate

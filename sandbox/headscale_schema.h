// The headscale v0.29.3 PostgreSQL schema exactly as that release creates it (GORM AutoMigrate +
// InitSchema indexes, compared against `pg_dump -s` of a database the real binary made; README
// "Stock headscale"), optionally plus the `cluster_id` column of the multi-node fork on users, nodes
// and pre_auth_keys (and the fork's indexes).
// Used by the sandbox lab, the tests and the benchmarks to create headscale-shaped databases.
#pragma once

#include <string>

#include "common/pg.h"
#include "common/status.h"

namespace headshift::sandbox {

enum class ClusterIdType { kText, kBigint };

struct SchemaOptions {
  ClusterIdType cluster_id_type = ClusterIdType::kBigint;
  bool with_cluster_id = true;  // false: stock headscale v0.29.3, byte for byte (no cluster column)
  // The fork's per-tenant policy table, acl_policies(id, cluster_id, user_id -> users, data, ...): one
  // HuJSON policy per user and cluster. Only with with_cluster_id (stock headscale has one `policies`
  // table for the whole node).
  bool with_acl_policies = false;
};

// CREATE TABLE statements (users, pre_auth_keys, api_keys, nodes, policies, migrations,
// database_versions) with headscale's indexes and foreign keys. `nodes` has no unique index, as in
// headscale (uniqueness lives in its memory).
std::string HeadscaleSchemaSql(const SchemaOptions& opts);

Status CreateHeadscaleSchema(PgConn& conn, const SchemaOptions& opts);

}  // namespace headshift::sandbox

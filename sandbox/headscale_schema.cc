#include "sandbox/headscale_schema.h"

namespace headshift::sandbox {
namespace {

// Every migration id a fresh headscale v0.29.3 database records (gormigrate marks them all done
// after InitSchema, plus its SCHEMA_INIT row).
constexpr const char* kV0293Migrations =
    "('202501221827'), ('202501311657'), ('202502070949'), ('202502131714'), ('202502171819'), ('202505091439'), "
    "('202505141324'), ('202507021200'), ('202510311551'), ('202511011637-preauthkey-bcrypt'), "
    "('202511101554-drop-old-idx'), ('202511122344-remove-newline-index'), ('202511131445-node-forced-tags-to-tags'), "
    "('202601121700-migrate-hostinfo-request-tags'), ('202602201200-clear-tagged-node-user-id'), "
    "('202605221435-clear-zero-time-node-expiry'), ('202606181200-recover-null-tags-node-user-id'), "
    "('202607241200-clear-tagged-node-expiry'), ('SCHEMA_INIT')";

}  // namespace

std::string HeadscaleSchemaSql(const SchemaOptions& opts) {
  // The fork's column, placed right after each tenant table's id ("" for stock headscale).
  std::string cid;
  if (opts.with_cluster_id) {
    cid = opts.cluster_id_type == ClusterIdType::kText ? " cluster_id text NOT NULL DEFAULT 'default',"
                                                       : " cluster_id bigint NOT NULL DEFAULT 1,";
  }
  // Column order, types, defaults, keys and indexes as `pg_dump -s` shows them for a database that
  // headscale v0.29.3 created (GORM AutoMigrate of types.User, PreAuthKey, APIKey, Node, Policy, then
  // InitSchema's explicit indexes; database_versions from versioncheck.go).
  std::string sql = R"SQL(
CREATE TABLE users (
  id bigserial PRIMARY KEY,)SQL" + cid + R"SQL(
  created_at timestamptz, updated_at timestamptz, deleted_at timestamptz,
  name text, display_name text, email text, provider_identifier text, provider text, profile_pic_url text
);
CREATE INDEX idx_users_deleted_at ON users (deleted_at);
CREATE UNIQUE INDEX idx_provider_identifier ON users (provider_identifier) WHERE provider_identifier IS NOT NULL;
CREATE UNIQUE INDEX idx_name_provider_identifier ON users (name, provider_identifier);
CREATE UNIQUE INDEX idx_name_no_provider_identifier ON users (name) WHERE provider_identifier IS NULL;

CREATE TABLE pre_auth_keys (
  id bigserial PRIMARY KEY,)SQL" + cid + R"SQL(
  key text, prefix text, hash bytea,
  user_id bigint, reusable boolean, ephemeral boolean DEFAULT false, used boolean DEFAULT false,
  tags text, created_at timestamptz, expiration timestamptz,
  CONSTRAINT fk_pre_auth_keys_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX idx_pre_auth_keys_prefix ON pre_auth_keys (prefix) WHERE prefix IS NOT NULL AND prefix != '';

CREATE TABLE api_keys (
  id bigserial PRIMARY KEY, prefix text, hash bytea,
  created_at timestamptz, expiration timestamptz, last_seen timestamptz
);
CREATE UNIQUE INDEX idx_api_keys_prefix ON api_keys (prefix);

CREATE TABLE nodes (
  id bigserial PRIMARY KEY,)SQL" + cid + R"SQL(
  machine_key text, node_key text, disco_key text, endpoints text, host_info text,
  ipv4 text, ipv6 text, hostname text, given_name varchar(63),
  user_id bigint, register_method text, tags text, auth_key_id bigint,
  expiry timestamptz, last_seen timestamptz, approved_routes text,
  created_at timestamptz, updated_at timestamptz, deleted_at timestamptz,
  CONSTRAINT fk_nodes_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
  CONSTRAINT fk_nodes_auth_key FOREIGN KEY (auth_key_id) REFERENCES pre_auth_keys(id)
);

CREATE TABLE policies (
  id bigserial PRIMARY KEY,
  created_at timestamptz, updated_at timestamptz, deleted_at timestamptz, data text
);
CREATE INDEX idx_policies_deleted_at ON policies (deleted_at);
CREATE TABLE migrations (id varchar(255) PRIMARY KEY);
CREATE TABLE database_versions (id bigserial PRIMARY KEY, version text NOT NULL, updated_at timestamptz);
)SQL";
  sql += std::string("INSERT INTO migrations (id) VALUES ") + kV0293Migrations + ";\n";
  sql += "INSERT INTO database_versions (version, updated_at) VALUES ('v0.29.3', now());\n";
  if (opts.with_cluster_id && opts.with_acl_policies) {
    sql += "CREATE TABLE acl_policies (\n"
           "  id bigserial PRIMARY KEY," + cid + "\n"
           "  user_id bigint, data text, created_at timestamptz, updated_at timestamptz,\n"
           "  CONSTRAINT fk_acl_policies_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE\n"
           ");\n"
           "CREATE INDEX idx_acl_policies_cluster_user ON acl_policies (cluster_id, user_id);\n";
  }
  if (opts.with_cluster_id) {
    // The fork's lookups are scoped by cluster_id and by user.
    sql += "CREATE INDEX idx_nodes_cluster_id ON nodes (cluster_id);\n"
           "CREATE INDEX idx_users_cluster_id ON users (cluster_id);\n"
           "CREATE INDEX idx_pre_auth_keys_cluster_id ON pre_auth_keys (cluster_id);\n"
           "CREATE INDEX idx_nodes_user_id ON nodes (user_id);\n";
  }
  return sql;
}

Status CreateHeadscaleSchema(PgConn& conn, const SchemaOptions& opts) {
  return conn.ExecScript(HeadscaleSchemaSql(opts)).WithContext("creating the headscale schema");
}

}  // namespace headshift::sandbox

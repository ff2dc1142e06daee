#include "sandbox/headscale_schema.h"

namespace headshift::sandbox {

std::string HeadscaleSchemaSql(const SchemaOptions& opts) {
  std::string cid;
  if (opts.with_cluster_id) {
    cid = opts.cluster_id_type == ClusterIdType::kText ? "cluster_id text NOT NULL DEFAULT 'default',"
                                                       : "cluster_id bigint NOT NULL DEFAULT 1,";
  }
  std::string sql = R"SQL(
CREATE TABLE users (
  id bigserial PRIMARY KEY,
  created_at timestamptz, updated_at timestamptz, deleted_at timestamptz,
  name text, display_name text, email text, provider_identifier text, provider text, profile_pic_url text
  )SQL" + std::string(opts.with_cluster_id ? ", " + cid.substr(0, cid.size() - 1) : "") + R"SQL(
);
CREATE INDEX idx_users_deleted_at ON users (deleted_at);
CREATE UNIQUE INDEX idx_provider_identifier ON users (provider_identifier) WHERE provider_identifier IS NOT NULL;
CREATE UNIQUE INDEX idx_name_provider_identifier ON users (name, provider_identifier);
CREATE UNIQUE INDEX idx_name_no_provider_identifier ON users (name) WHERE provider_identifier IS NULL;

CREATE TABLE pre_auth_keys (
  id bigserial PRIMARY KEY, )SQL" + cid + R"SQL(
  key text, prefix text, hash bytea,
  user_id bigint, reusable boolean, ephemeral boolean DEFAULT false, used boolean DEFAULT false,
  tags text, expiration timestamptz, created_at timestamptz,
  CONSTRAINT fk_pre_auth_keys_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX idx_pre_auth_keys_prefix ON pre_auth_keys (prefix) WHERE prefix IS NOT NULL AND prefix != '';

CREATE TABLE api_keys (
  id bigserial PRIMARY KEY, prefix text, hash bytea,
  expiration timestamptz, last_seen timestamptz, created_at timestamptz
);
CREATE UNIQUE INDEX idx_api_keys_prefix ON api_keys (prefix);

CREATE TABLE nodes (
  id bigserial PRIMARY KEY, )SQL" + cid + R"SQL(
  machine_key text, node_key text, disco_key text, endpoints text, host_info text,
  ipv4 text, ipv6 text, hostname text, given_name varchar(63),
  user_id bigint, register_method text, tags text, auth_key_id bigint,
  last_seen timestamptz, expiry timestamptz, approved_routes text,
  created_at timestamptz, updated_at timestamptz, deleted_at timestamptz,
  CONSTRAINT fk_nodes_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
  CONSTRAINT fk_nodes_auth_key FOREIGN KEY (auth_key_id) REFERENCES pre_auth_keys(id)
);

CREATE TABLE policies (
  id bigserial PRIMARY KEY, data text,
  created_at timestamptz, updated_at timestamptz, deleted_at timestamptz
);
CREATE INDEX idx_policies_deleted_at ON policies (deleted_at);
CREATE TABLE migrations (id varchar(255) PRIMARY KEY);
CREATE TABLE database_versions (id bigint PRIMARY KEY, version text NOT NULL, updated_at timestamptz);
INSERT INTO migrations (id) VALUES ('202507021200'), ('202511011637-preauthkey-bcrypt'), ('202511131445');
INSERT INTO database_versions (id, version, updated_at) VALUES (1, 'v0.29.2', now());
)SQL";
  if (opts.with_cluster_id) {
    sql += "CREATE INDEX idx_nodes_cluster_id ON nodes (cluster_id);\n"
           "CREATE INDEX idx_users_cluster_id ON users (cluster_id);\n"
           "CREATE INDEX idx_pre_auth_keys_cluster_id ON pre_auth_keys (cluster_id);\n";
  }
  sql += "CREATE INDEX idx_nodes_user_id ON nodes (user_id);\n";
  return sql;
}

Status CreateHeadscaleSchema(PgConn& conn, const SchemaOptions& opts) {
  return conn.ExecScript(HeadscaleSchemaSql(opts)).WithContext("creating the headscale schema");
}

}  // namespace headshift::sandbox

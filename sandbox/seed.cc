#include "sandbox/seed.h"

#include <arpa/inet.h>

namespace headshift::sandbox {

std::string AddToIpv4(const std::string& base, uint32_t n) {
  in_addr a{};
  inet_pton(AF_INET, base.c_str(), &a);
  a.s_addr = htonl(ntohl(a.s_addr) + n);
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

Status SeedTenants(PgConn& conn, const SeedSpec& spec) {
  // The fork's cluster column and its value ($2), leading each INSERT's lists. A stock schema has no
  // such column: $2 is then bound by an unused CTE, so every statement keeps one parameter list.
  const std::string with = spec.with_cluster_id ? "" : "WITH seed_cluster AS (SELECT $2::text) ";
  const std::string cid_col = spec.with_cluster_id ? "cluster_id, " : "";
  const std::string cid_val =
      spec.with_cluster_id ? std::string(spec.cluster_id_is_text ? "$2::text" : "$2::bigint") + ", " : "";
  HS_RETURN_IF_ERROR(conn.ExecScript("BEGIN"));
  for (const auto& t : spec.tenants) {
    // The user (tenant root).
    auto u = conn.Exec(with + "INSERT INTO users (" + cid_col + "created_at, updated_at, name, display_name, email, "
                       "provider) VALUES (" + cid_val + "now(), now(), $1, initcap($1), $1 || '@example.com', '') "
                       "RETURNING id",
                       {t.name, t.cluster_id});
    if (!u.ok()) {
      (void)conn.ExecScript("ROLLBACK");
      return u.status().WithContext("seeding tenant " + t.name);
    }
    std::string user_id = u->Get(0, 0);
    // Pre-auth keys: hskey-auth-<12-char prefix>; only prefix + bcrypt-like hash are stored.
    auto k = conn.Exec(
        with + "INSERT INTO pre_auth_keys (" + cid_col + "key, prefix, hash, user_id, reusable, ephemeral, used, tags, "
        "expiration, created_at) SELECT " + cid_val + "'', substr(md5($1 || ':pak:' || g), 1, 12), "
        "decode(md5($1 || ':hash:' || g) || md5($1 || ':hash2:' || g), 'hex'), $3::bigint, true, false, true, '[]', "
        "now() + interval '90 days', now() - interval '30 days' FROM generate_series(1, $4::int) g RETURNING id",
        {t.name, t.cluster_id, user_id, std::to_string(std::max(1, t.pre_auth_keys))});
    if (!k.ok()) {
      (void)conn.ExecScript("ROLLBACK");
      return k.status().WithContext("seeding pre-auth keys of " + t.name);
    }
    std::string auth_key_id = k->Get(0, 0);
    // Nodes. i runs 0..devices-1; tailnet index = ip_offset + i + 1.
    std::string sql =
        with + "INSERT INTO nodes (" + cid_col +
        "machine_key, node_key, disco_key, endpoints, host_info, ipv4, ipv6, hostname, given_name, user_id, "
        "register_method, tags, auth_key_id, last_seen, expiry, approved_routes, created_at, updated_at) "
        "SELECT " + cid_val +
        "'mkey:' || md5($1 || ':m:' || i) || md5($1 || ':m2:' || i), "
        "'nodekey:' || md5($1 || ':n:' || i) || md5($1 || ':n2:' || i), "
        "'discokey:' || md5($1 || ':d:' || i) || md5($1 || ':d2:' || i), "
        "json_build_array(pub || ':41641', '192.168.' || (i % 250) || '.' || (i % 200 + 10) || ':41641')::text, "
        "json_build_object('Hostname', $1 || '-dev-' || i, 'OS', 'linux', 'IPNVersion', '1.90.0')::text, "
        "'100.' || (64 + (ti / 65536)) || '.' || ((ti / 256) % 256) || '.' || (ti % 256), "
        "'fd7a:115c:a1e0::' || to_hex(ti), "
        "$1 || '-dev-' || i, $1 || '-dev-' || i, $3::bigint, 'authkey', '[]', $4::bigint, "
        "now() - interval '1 minute', NULL, '[]', now() - interval '10 days', now() - interval '1 minute' "
        "FROM (SELECT i, ($5::int + i + 1) AS ti, "
        "  CASE WHEN i < $7::int THEN $8 ELSE host(($6::inet) + (i % $9::int)) END AS pub "
        "  FROM generate_series(0, $10::int - 1) i) s";
    auto n = conn.Exec(sql, {t.name, t.cluster_id, user_id, auth_key_id, std::to_string(t.ip_offset), t.public_base,
                             std::to_string(t.shared_devices), t.shared_address.empty() ? "0.0.0.0" : t.shared_address,
                             std::to_string(std::max(1, t.public_addresses)), std::to_string(t.devices)});
    if (!n.ok()) {
      (void)conn.ExecScript("ROLLBACK");
      return n.status().WithContext("seeding nodes of " + t.name);
    }
  }
  return conn.ExecScript("COMMIT");
}

StatusOr<std::vector<NodeCredential>> NodeCredentials(PgConn& conn, const std::string& tenant) {
  auto r = conn.Exec(
      "SELECT n.id, u.name, n.given_name, n.node_key, n.machine_key, "
      "  (SELECT split_part(e, ':', 1) FROM json_array_elements_text(n.endpoints::json) e LIMIT 1), n.endpoints "
      "FROM nodes n JOIN users u ON u.id = n.user_id WHERE u.name = $1 AND n.deleted_at IS NULL ORDER BY n.id",
      {tenant});
  if (!r.ok()) return r.status();
  std::vector<NodeCredential> out;
  for (int i = 0; i < r->rows(); ++i) {
    out.push_back({r->GetInt(i, 0), r->Get(i, 1), r->Get(i, 2), r->Get(i, 3), r->Get(i, 4), r->Get(i, 5), r->Get(i, 6)});
  }
  return out;
}

}  // namespace headshift::sandbox

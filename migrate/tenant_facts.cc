#include "migrate/tenant_facts.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace headshift::migrate {
namespace {

bool InV4(uint32_t a, const char* net, int bits) {
  in_addr n{};
  inet_pton(AF_INET, net, &n);
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (a & mask) == (ntohl(n.s_addr) & mask);
}

bool PublicV4(uint32_t a) {
  static const struct {
    const char* net;
    int bits;
  } kPrivate[] = {{"0.0.0.0", 8},     {"10.0.0.0", 8},   {"100.64.0.0", 10}, {"127.0.0.0", 8},
                  {"169.254.0.0", 16}, {"172.16.0.0", 12}, {"192.168.0.0", 16}, {"224.0.0.0", 4},
                  {"240.0.0.0", 4}};
  for (const auto& p : kPrivate) {
    if (InV4(a, p.net, p.bits)) return false;
  }
  return true;
}

}  // namespace

bool IsPublicClientAddress(const std::string& ip) {
  in_addr v4{};
  if (inet_pton(AF_INET, ip.c_str(), &v4) == 1) return PublicV4(ntohl(v4.s_addr));
  in6_addr v6{};
  if (inet_pton(AF_INET6, ip.c_str(), &v6) != 1) return false;
  const uint8_t* b = v6.s6_addr;
  static const uint8_t kZero[16] = {};
  if (std::memcmp(b, kZero, 15) == 0 && (b[15] == 0 || b[15] == 1)) return false;  // :: and ::1
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b, kMapped, 12) == 0) {
    return PublicV4((uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) | b[15]);
  }
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;  // fe80::/10 link-local
  if ((b[0] & 0xfe) == 0xfc) return false;                  // fc00::/7 ULA
  if (b[0] == 0xff) return false;                           // multicast
  return true;
}

std::vector<Endpoint> ParseEndpoints(const std::string& json_text) {
  std::vector<Endpoint> out;
  auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& e : j) {
    if (!e.is_string()) continue;
    std::string s = e.get<std::string>();
    std::string host, port;
    if (!s.empty() && s[0] == '[') {
      size_t close = s.find(']');
      if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') continue;
      host = s.substr(1, close - 1);
      port = s.substr(close + 2);
    } else {
      size_t colon = s.rfind(':');
      if (colon == std::string::npos || s.find(':') != colon) continue;  // bare IPv6 without brackets
      host = s.substr(0, colon);
      port = s.substr(colon + 1);
    }
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p < 0 || p > 65535) continue;
    unsigned char buf[sizeof(in6_addr)];
    if (inet_pton(AF_INET, host.c_str(), buf) != 1 && inet_pton(AF_INET6, host.c_str(), buf) != 1) continue;
    out.push_back({host, static_cast<uint16_t>(p)});
  }
  return out;
}

nlohmann::json TenantNode::ToJson() const {
  nlohmann::json eps = nlohmann::json::array();
  for (const auto& e : endpoints) eps.push_back({{"ip", e.ip}, {"port", e.port}});
  nlohmann::json j = {{"id", id},          {"given_name", given_name}, {"hostname", hostname},
                      {"node_key", node_key}, {"machine_key", machine_key}, {"disco_key", disco_key},
                      {"ipv4", ipv4},      {"ipv6", ipv6},             {"endpoints", eps},
                      {"last_seen", last_seen}, {"expiry", expiry},   {"expired", expired},
                      {"deleted", deleted}};
  j["user_id"] = user_id ? nlohmann::json(*user_id) : nlohmann::json(nullptr);
  return j;
}

int64_t ClusterLoad::Total(const std::string& cluster) const {
  auto it = devices.find(cluster);
  if (it == devices.end()) return 0;
  int64_t n = 0;
  for (const auto& [t, d] : it->second) n += d;
  return n;
}

nlohmann::json ClusterLoad::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [c, tenants] : devices) j[c] = {{"total", Total(c)}, {"tenants", tenants}};
  return j;
}

StatusOr<std::vector<TenantNode>> TenantFacts::Nodes(const std::string& tenant, const std::string& cluster) {
  auto schema = ctx_.Schema(cluster);
  if (!schema.ok()) return schema.status();
  auto conn = ctx_.dbs().Conn(cluster);
  if (!conn.ok()) return conn.status();
  const TenantSchema& s = **schema;
  const TenantTable* d = s.Find(s.profile().device_table);
  RowSql sql(**conn, s);
  auto col = [&](const std::string& name, const std::string& expr = "") {
    if (!d->Find(name)) return std::string("NULL::text");
    return expr.empty() ? "t." + sql.Ident(name) + "::text" : expr;
  };
  const std::string ts_fmt = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";
  std::string q =
      "SELECT t." + sql.Ident(d->pk) + ", " + col("user_id") + ", " + col("given_name") + ", " + col("hostname") + ", " +
      col("node_key") + ", " + col("machine_key") + ", " + col("disco_key") + ", " + col("ipv4") + ", " + col("ipv6") +
      ", " + col("endpoints") + ", " +
      col("last_seen", "to_char(t.last_seen AT TIME ZONE 'UTC', " + ts_fmt + ")") + ", " +
      col("expiry", "to_char(t.expiry AT TIME ZONE 'UTC', " + ts_fmt + ")") + ", " +
      col("expiry", "(t.expiry IS NOT NULL AND t.expiry < now())::text") + ", " +
      (s.profile().device_soft_delete.empty() ? std::string("'f'")
                                              : "(t." + sql.Ident(s.profile().device_soft_delete) + " IS NOT NULL)::text") +
      " FROM " + sql.Ident(d->name) + " t WHERE " + sql.MemberPredicate(*d, "t", ctx_.Selector(tenant, cluster)) +
      " ORDER BY 1";
  auto r = (*conn)->Exec(q);
  if (!r.ok()) return r.status().WithContext("reading the devices of tenant " + tenant + " on cluster " + cluster);
  std::vector<TenantNode> out;
  for (int i = 0; i < r->rows(); ++i) {
    TenantNode n;
    n.id = r->GetInt(i, 0);
    if (!r->IsNull(i, 1)) n.user_id = r->GetInt(i, 1);
    n.given_name = r->Get(i, 2);
    n.hostname = r->Get(i, 3);
    n.node_key = r->Get(i, 4);
    n.machine_key = r->Get(i, 5);
    n.disco_key = r->Get(i, 6);
    n.ipv4 = r->Get(i, 7);
    n.ipv6 = r->Get(i, 8);
    n.endpoints = ParseEndpoints(r->Get(i, 9));
    n.last_seen = r->Get(i, 10);
    n.expiry = r->Get(i, 11);
    n.expired = r->Get(i, 12) == "true";
    n.deleted = r->Get(i, 13) == "true";
    out.push_back(std::move(n));
  }
  return out;
}

StatusOr<std::vector<std::string>> TenantFacts::PublicClientAddresses(const std::string& tenant,
                                                                      const std::string& cluster) {
  auto nodes = Nodes(tenant, cluster);
  if (!nodes.ok()) return nodes.status();
  std::set<std::string> ips;
  for (const auto& n : *nodes) {
    if (n.deleted) continue;
    for (const auto& e : n.endpoints) {
      if (IsPublicClientAddress(e.ip)) ips.insert(e.ip);
    }
  }
  return std::vector<std::string>(ips.begin(), ips.end());
}

StatusOr<ClusterLoad> TenantFacts::Load() {
  ClusterLoad load;
  ClusterDatabases& dbs = ctx_.dbs();
  std::set<std::string> done;  // database keys already counted
  for (const auto& cluster : dbs.cluster_ids()) {
    load.devices[cluster];  // every configured cluster appears
    if (!done.insert(dbs.DatabaseKey(cluster)).second) continue;
    auto schema = ctx_.Schema(cluster);
    if (!schema.ok()) return schema.status();
    auto conn = dbs.Conn(cluster);
    if (!conn.ok()) return conn.status();
    const TenantSchema& s = **schema;
    RowSql sql(**conn, s);
    const TenantTable& root = s.root();
    const TenantTable* d = s.Find(s.profile().device_table);
    std::string cluster_expr = dbs.shared() ? "r." + sql.Ident(s.cluster_column()) + "::text" : sql.Literal(cluster);
    std::string live = s.profile().device_soft_delete.empty()
                           ? "TRUE"
                           : "d." + sql.Ident(s.profile().device_soft_delete) + " IS NULL";
    std::string q;
    const TableLink* direct = nullptr;
    for (const auto& o : d->owners) {
      if (o.ref_table == root.name) direct = &o;
    }
    if (d->root) {
      q = "SELECT " + cluster_expr + ", r." + sql.Ident(s.profile().root_key) + "::text, count(*) FROM " + sql.Ident(root.name) + " r GROUP BY 1, 2";
    } else if (direct) {
      q = "SELECT " + cluster_expr + ", r." + sql.Ident(s.profile().root_key) + "::text, count(d." + sql.Ident(d->pk) +
          ") FROM " + sql.Ident(root.name) + " r LEFT JOIN " + sql.Ident(d->name) + " d ON d." +
          sql.Ident(direct->column) + " = r." + sql.Ident(root.pk) + " AND " + live + " GROUP BY 1, 2";
    } else {
      return Status::BadInput("devices table " + d->name + " has no owner column pointing at " + root.name,
                              "give the devices table a direct owner in the schema profile");
    }
    auto r = (*conn)->Exec(q + " ORDER BY 1, 2");
    if (!r.ok()) return r.status().WithContext("counting devices");
    for (int i = 0; i < r->rows(); ++i) {
      if (r->IsNull(i, 1)) continue;
      std::string c = r->Get(i, 0);
      if (!dbs.Knows(c)) continue;  // rows of a cluster headshift does not manage
      load.devices[c][r->Get(i, 1)] += r->GetInt(i, 2);
    }
    // Tagged devices (no user) count for the tenant owning all their tags alone.
    if (d->root || d->tags_column.empty()) continue;
    std::set<std::string> owners;
    for (const auto& [tag, who] : ctx_.tag_ownership().owners) owners.insert(who.begin(), who.end());
    for (const auto& tenant : owners) {
      TenantSelector sel = ctx_.Selector(tenant, cluster);
      sel.cluster.reset();  // every cluster of this database, grouped below
      const std::string tagged = sql.TaggedPredicate(*d, "d", sel);
      if (tagged == "FALSE") continue;
      const std::string dc = dbs.shared() ? "d." + sql.Ident(s.cluster_column()) + "::text" : sql.Literal(cluster);
      auto t = (*conn)->Exec("SELECT " + dc + ", count(*) FROM " + sql.Ident(d->name) + " d WHERE " + tagged + " AND " +
                             live + " GROUP BY 1");
      if (!t.ok()) return t.status().WithContext("counting the tagged devices of " + tenant);
      for (int i = 0; i < t->rows(); ++i) {
        if (!dbs.Knows(t->Get(i, 0))) continue;
        load.devices[t->Get(i, 0)][tenant] += t->GetInt(i, 1);
      }
    }
  }
  return load;
}

}  // namespace headshift::migrate

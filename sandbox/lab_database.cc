// The lab's database part: PostgreSQL in the state dir, the headscale schema, the seeded tenants,
// and the fleet's client spec read back from the seeded rows.
#include <cmath>
#include <filesystem>
#include <set>

#include "common/atomic_file.h"
#include "common/pg.h"
#include "common/pg_server.h"
#include "sandbox/fleet.h"
#include "sandbox/lab_builder.h"
#include "sandbox/lab_commands.h"
#include "sandbox/lab_naming.h"
#include "sandbox/seed.h"

namespace fs = std::filesystem;

namespace headshift::sandbox::lab {

Status LabBuilder::MakeDatabase() {
  PgServer pg;
  HS_RETURN_IF_ERROR(pg.Start(dir_ + "/pg", /*persistent=*/true));
  lab_["processes"].push_back({{"role", "postgres"}, {"key", "postgres"}, {"pid", pg.pid()},
                               {"start_time", ProcessStartTime(pg.pid())}, {"netns", ""},
                               {"log", dir_ + "/pg/postgres.log"}});
  HS_RETURN_IF_ERROR(SaveState());
  SchemaOptions schema{o_.cluster_id_type, true};
  bool text = o_.cluster_id_type == ClusterIdType::kText;
  std::vector<std::string> dbs;
  if (o_.layout == DbLayout::kShared) {
    auto dsn = pg.CreateDatabase("headscale");
    if (!dsn.ok()) return dsn.status();
    for (const auto& c : o_.clusters) cluster_dsn_[c] = *dsn;
    HS_RETURN_IF_ERROR(WriteSecret(dir_ + "/secrets/dsn", *dsn));
    lab_["postgres"] = {{"dir", dir_ + "/pg"}, {"dsn", *dsn}, {"dsn_file", dir_ + "/secrets/dsn"}};
  } else {
    lab_["postgres"] = {{"dir", dir_ + "/pg"}};
    for (const auto& c : o_.clusters) {
      auto dsn = pg.CreateDatabase("headscale_c" + c);
      if (!dsn.ok()) return dsn.status();
      cluster_dsn_[c] = *dsn;
      HS_RETURN_IF_ERROR(WriteSecret(dir_ + "/secrets/dsn-" + c, *dsn));
      lab_["postgres"]["dsn_" + c] = *dsn;
    }
  }
  // Schema + seed, per database.
  std::map<std::string, std::vector<SeedTenant>> per_db;  // dsn -> tenants
  for (const auto& t : tenants_) {
    per_db[cluster_dsn_[t.cluster]].push_back(
        {t.name, t.cluster, t.devices, t.public_base, t.public_addresses, t.shared_address, t.shared_devices, t.ip_offset, 2});
  }
  std::set<std::string> done;
  for (const auto& c : o_.clusters) {
    const std::string& dsn = cluster_dsn_[c];
    if (!done.insert(dsn).second) continue;
    auto conn = PgConn::Connect(dsn);
    if (!conn.ok()) return conn.status();
    HS_RETURN_IF_ERROR(CreateHeadscaleSchema(**conn, schema));
    SeedSpec spec;
    spec.cluster_id_is_text = text;
    spec.tenants = per_db[dsn];
    HS_RETURN_IF_ERROR(SeedTenants(**conn, spec));
  }
  // Fleet spec: one client per seeded node, from the rows themselves.
  std::vector<FleetClientSpec> clients;
  const std::string vip = Addr(subnet_, 1);
  for (const auto& t : tenants_) {
    auto conn = PgConn::Connect(cluster_dsn_[t.cluster]);
    if (!conn.ok()) return conn.status();
    auto creds = NodeCredentials(**conn, t.name);
    if (!creds.ok()) return creds.status();
    for (size_t i = 0; i < creds->size(); ++i) {
      const auto& n = (*creds)[i];
      // Spread https_share of the clients evenly onto :443.
      bool https = std::floor((i + 1) * o_.https_share) > std::floor(i * o_.https_share);
      clients.push_back({t.name, n.given_name, n.node_key, n.machine_key, n.public_ip,
                         vip + (https ? ":443" : ":80"), t.name + ".demo.com", n.endpoints});
    }
  }
  fleet_clients_ = static_cast<int64_t>(clients.size());
  HS_RETURN_IF_ERROR(WriteFileAtomically(dir_ + "/fleet/clients.json", FleetSpecToJson(clients).dump() + "\n", 0644));
  nlohmann::json tj = nlohmann::json::array();
  for (const auto& t : tenants_) {
    tj.push_back({{"name", t.name},
                  {"cluster", t.cluster},
                  {"devices", t.devices},
                  {"host", t.name + ".demo.com"},
                  {"public_base", t.public_base},
                  {"public_addresses", t.public_addresses},
                  {"shared_address", t.shared_address},
                  {"shared_devices", t.shared_devices}});
  }
  lab_["tenants"] = tj;
  return Status::Ok();
}
}  // namespace headshift::sandbox::lab

#include "migrate/tagged_devices.h"

#include "migrate/tag_ownership.h"

namespace headshift::migrate {
namespace {

// given_name, else hostname, when the device table has them (headscale's names), as SQL text.
std::string NameExpr(const RowSql& sql, const TenantTable& d, const std::string& alias) {
  std::vector<std::string> parts;
  for (const char* c : {"given_name", "hostname"}) {
    if (d.Find(c)) parts.push_back("NULLIF(" + alias + "." + sql.Ident(c) + "::text, '')");
  }
  parts.push_back("''");
  return "COALESCE(" + JoinStrings(parts, ", ") + ")";
}

const char* kFix =
    "give the node tags owned by one tenant only (headscale nodes tag, and tagOwners in the policy), or register "
    "it again with a pre-auth key of the tenant that owns its tags; then retry";

}  // namespace

Status CheckTaggedDevices(const MoveContext& ctx, const std::string& tenant, const TaggedCheckSides& sides,
                          std::vector<Conflict>* out) {
  const TagOwnership& own = ctx.tag_ownership();
  if (own.empty()) return Status::Ok();
  const TenantSchema& ss = *sides.source_schema;
  const TenantTable* d = ss.Find(ss.profile().device_table);
  if (!d || d->root || d->tags_column.empty()) return Status::Ok();
  PgConn& src = *sides.source;
  RowSql sql(src, ss);
  const TenantSelector sel = ctx.Selector(tenant, sides.from);

  // Every tagged device of the source cluster, with where its other owners (the pre-auth key) point.
  std::vector<std::string> to_tenant, elsewhere, describe;
  for (const auto& o : d->owners) {
    if (o.ref_table == ss.root().name || o.ref_table == d->name) continue;
    const TenantTable* r = ss.Find(o.ref_table);
    const std::string col = "t." + sql.Ident(o.column);
    const std::string members = sql.MemberIds(*r, sel);
    to_tenant.push_back(col + " IN (" + members + ")");
    elsewhere.push_back("(" + col + " IS NOT NULL AND " + col + " NOT IN (" + members + "))");
    std::string who = "''";
    if (!r->root_owner_columns.empty()) {
      const TenantTable& root = ss.root();
      who = "COALESCE(' of user ' || (SELECT u." + sql.Ident(ss.profile().root_key) + " FROM " + sql.Ident(root.name) +
            " u WHERE u." + sql.Ident(root.pk) + " = (SELECT k." + sql.Ident(r->root_owner_columns[0]) + " FROM " +
            sql.Ident(r->name) + " k WHERE k." + sql.Ident(r->pk) + " = " + col + ")), ' of no user')";
    }
    describe.push_back("CASE WHEN " + col + " IS NOT NULL AND " + col + " NOT IN (" + members + ") THEN " +
                       sql.Literal(o.ref_table + " ") + " || " + col + "::text || " + who + " END");
  }
  const std::string f = to_tenant.empty() ? "false" : JoinStrings(to_tenant, " OR ");
  const std::string e = elsewhere.empty() ? "false" : JoinStrings(elsewhere, " OR ");
  const std::string desc = describe.empty() ? "''" : "COALESCE(" + JoinStrings(describe, ", ") + ", '')";
  auto r = src.Exec("SELECT t." + sql.Ident(d->pk) + "::bigint, " + NameExpr(sql, *d, "t") + ", COALESCE(t." +
                    sql.Ident(d->tags_column) + "::text, ''), (" + f + ")::boolean, (" + e + ")::boolean, " + desc +
                    " FROM " + sql.Ident(d->name) + " t WHERE " + sql.RootOwnersNull(*d, "t") + " AND " +
                    ctx.ClusterScope(sql, *d, "t", sides.from) + " ORDER BY 1");
  if (!r.ok()) return r.status().WithContext("reading the tagged devices of cluster " + sides.from);
  for (int i = 0; i < r->rows(); ++i) {
    TaggedDevice dev;
    dev.id = r->GetInt(i, 0);
    dev.name = r->Get(i, 1);
    dev.tags_json = r->Get(i, 2);
    dev.linked_to_tenant = r->Get(i, 3) == "t";
    dev.linked_elsewhere = r->Get(i, 4) == "t";
    dev.link_description = r->Get(i, 5);
    auto tags = ParseTags(dev.tags_json);
    if (tags && tags->empty() && !dev.linked_to_tenant) continue;  // no tag: not a tagged device
    TaggedVerdict v = ClassifyTaggedDevice(own, tenant, dev);
    if (v.conflict.empty()) continue;
    std::vector<std::string> vals;
    for (const auto& t : v.tags) vals.push_back(std::to_string(dev.id) + " " + dev.name + " " + t);
    if (vals.empty()) vals.push_back(std::to_string(dev.id) + " " + dev.name);
    out->push_back({v.conflict, d->name, d->tags_column, v.message + " (cluster " + sides.from + ")", kFix, vals});
  }

  // Tagged devices of the tenant already on the target: they would make its tailnet two-headed.
  if (!sides.target || !sides.target_schema) return Status::Ok();
  const TenantTable* td = sides.target_schema->Find(ss.profile().device_table);
  if (!td || td->tags_column.empty()) return Status::Ok();
  RowSql tsql(*sides.target, *sides.target_schema);
  const TenantSelector tsel = ctx.Selector(tenant, sides.to);
  auto t = sides.target->Exec("SELECT t." + tsql.Ident(td->pk) + "::bigint, " + NameExpr(tsql, *td, "t") + ", t." +
                              tsql.Ident(td->tags_column) + "::text FROM " + tsql.Ident(td->name) + " t WHERE " +
                              tsql.TaggedPredicate(*td, "t", tsel) + " ORDER BY 1");
  if (!t.ok()) return t.status().WithContext("looking for tagged devices of " + tenant + " on cluster " + sides.to);
  if (t->rows() > 0) {
    std::vector<std::string> vals;
    for (int i = 0; i < t->rows(); ++i) vals.push_back(t->Get(i, 0) + " " + t->Get(i, 1) + " " + t->Get(i, 2));
    out->push_back({"tagged_on_target", td->name, td->tags_column,
                    std::to_string(vals.size()) + " tagged node(s) with tags owned by " + tenant +
                        " already exist on cluster " + sides.to + ": " + SampleValues(vals),
                    "an earlier migration of " + tenant + " left them there? finish or roll it back, or delete those "
                    "nodes on cluster " + sides.to,
                    CapValues(vals)});
  }
  return Status::Ok();
}

}  // namespace headshift::migrate

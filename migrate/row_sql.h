// RowSql: builds the SQL that selects, maps and hashes a tenant's rows on one database. Every
// identifier and literal is quoted through libpq; COPY cannot take bind parameters, so values are
// inlined as quoted literals and integer arrays.
//
//  - membership: the root rows whose key is the tenant name (and, in the shared layout, whose cluster
//    column is the cluster), then every row of a tenant table with an owner column pointing at a member
//    row (recursively, in foreign-key order);
//  - mapping: the primary key and every foreign key into a tenant table go through the old->new id map
//    of the referenced table, and the cluster column becomes the target cluster;
//  - hashing: hashtextextended() of the row's text with the columns in canonical (name) order, so a
//    mapped source row and its target copy hash equal, whatever the physical column order.
//
// Thread-safety: uses the connection only for quoting; same rule as PgConn.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/pg.h"
#include "migrate/tenant_schema.h"

namespace headshift::migrate {

// old id -> new id for the ids of one table that changed (unchanged ids are absent).
using IdMap = std::vector<std::pair<int64_t, int64_t>>;
using IdMaps = std::map<std::string, IdMap>;  // by table

// "a, b, c" with `sep` between the parts.
std::string JoinStrings(const std::vector<std::string>& v, const std::string& sep);

// How a tenant's root rows are found in one database.
struct TenantSelector {
  std::string tenant;
  std::optional<std::string> cluster;  // shared layout: only root rows (and tagged rows) of this cluster
  // Tags the tenant owns alone (TagOwnership::OwnedOnlyBy), sorted. Empty = no row is the tenant's by
  // its tags: only rows reaching the root through owners are (the behaviour before tagged devices).
  std::vector<std::string> owned_tags;
};

class RowSql {
 public:
  RowSql(PgConn& conn, const TenantSchema& schema) : conn_(conn), schema_(schema) {}

  std::string Ident(const std::string& name) const { return conn_.QuoteIdent(name); }
  std::string Literal(const std::string& value) const { return conn_.QuoteLiteral(value); }
  // The cluster value as a typed literal, e.g. '4'::bigint.
  std::string ClusterValue(const std::string& cluster) const;
  // '{1,2,3}'::bigint[]
  static std::string IdArray(const std::vector<int64_t>& ids);

  // "SELECT pk FROM t WHERE <member>".
  std::string MemberIds(const TenantTable& t, const TenantSelector& sel) const;
  // A predicate on `alias` that holds for the tenant's rows of t: an owner points at a member row, or
  // (tables with a tags column, sel.owned_tags non-empty) every root owner is NULL and the tags are a
  // non-empty JSON array within sel.owned_tags (shared layout: on sel.cluster).
  std::string MemberPredicate(const TenantTable& t, const std::string& alias, const TenantSelector& sel) const;
  // Only the tagged half of MemberPredicate ("FALSE" when t has no tags column or sel no owned tags).
  std::string TaggedPredicate(const TenantTable& t, const std::string& alias, const TenantSelector& sel) const;
  // "every root owner of t is NULL" on `alias` ("FALSE" when t has none).
  std::string RootOwnersNull(const TenantTable& t, const std::string& alias) const;

  // The expressions of `columns` for a row of t aliased `alias`, mapped through `maps` (joins named
  // by MapJoins) and with the cluster column set to `to_cluster` (unless empty).
  std::vector<std::string> MappedExprs(const TenantTable& t, const std::string& alias, const IdMaps& maps,
                                       const std::string& to_cluster, const std::vector<std::string>& columns) const;
  // The LEFT JOINs MappedExprs refers to.
  std::string MapJoins(const TenantTable& t, const std::string& alias, const IdMaps& maps) const;

  // "SELECT <mapped columns> FROM t alias <joins> WHERE <member> [AND extra]".
  std::string MappedSelect(const TenantTable& t, const TenantSelector& sel, const IdMaps& maps,
                           const std::string& to_cluster, const std::vector<std::string>& columns,
                           const std::string& extra_where = "") const;
  // hashtextextended(ROW(<mapped canonical columns>)::text, 0)
  std::string MappedHash(const TenantTable& t, const std::string& alias, const IdMaps& maps,
                         const std::string& to_cluster) const;
  // The same over the row as stored.
  std::string RawHash(const TenantTable& t, const std::string& alias) const;

  // The copied columns of t, quoted and comma-joined, in catalog order.
  std::string ColumnList(const TenantTable& t) const;
  std::vector<std::string> ColumnNames(const TenantTable& t) const;

 private:
  PgConn& conn_;
  const TenantSchema& schema_;
};

}  // namespace headshift::migrate

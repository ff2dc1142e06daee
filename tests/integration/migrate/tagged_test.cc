// A tenant is its users and its tagged devices. headscale >= 0.28 stores a tagged node with no user
// (nodes.user_id NULL, its JSON `tags` own it); the caller passes who owns which tag (the policy's
// tagOwners resolved to tenants) and headshift moves the tagged nodes whose tags the tenant owns alone,
// with the user-less tagged pre-auth keys they were registered with: counted by plan, copied, verified,
// caught up, retired, rolled back, and in the tenant facts. Devices whose owner is unclear are refused in
// preflight (exit 3) naming the node and the tag. The cluster_id fork's per-user policy table
// acl_policies moves with the tenant's rows. Both the shared fork layout (cluster_id) and stock
// headscale's split layout (no cluster column), on real PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <set>

#include "migrate/tenant_mover.h"
#include "tests/integration/migrate/migrate_lab.h"

namespace headshift::migrate {
namespace {

struct Layout {
  const char* name;
  bool split;  // stock headscale, one database per cluster; otherwise the shared fork with acl_policies
};
void PrintTo(const Layout& l, std::ostream* os) { *os << l.name; }

class TaggedTest : public ::testing::TestWithParam<Layout> {
 protected:
  bool split() const { return GetParam().split; }
  std::string from() const { return split() ? "east" : "3"; }
  std::string to() const { return split() ? "west" : "4"; }

  Lab Make(const std::string& name) {
    LabOptions o;
    o.split = split();
    o.stock = split();
    o.acl_policies = !split();
    o.clusters = {from(), to()};
    if (split()) o.id_start = {{to(), 100000}};
    return MakeLab(name, o, {Tenant("hsa", from(), 4, 0), Tenant("hsb", from(), 3, 100),
                             Tenant("hsc", to(), 2, 500, "198.18.5.1")});
  }

  // "cluster_id, " / "'3', " in the shared layout; "" in the stock one.
  std::string Col() const { return split() ? "" : "cluster_id, "; }
  std::string Val(const std::string& cluster) const { return split() ? "" : "'" + cluster + "', "; }
  // Limits a query on `alias` to `cluster`'s rows (shared layout); TRUE in split.
  std::string On(const std::string& alias, const std::string& cluster) const {
    return split() ? "TRUE" : alias + ".cluster_id::text = '" + cluster + "'";
  }

  // A pre-auth key; `user` is a user name or "" (a system-created tagged key). Returns its id.
  std::string AddKey(const Lab& lab, const std::string& prefix, const std::string& user, const std::string& tags) {
    std::string uid = user.empty() ? "NULL" : "(SELECT id FROM users WHERE name = '" + user + "')";
    return lab.Scalar(from(), "INSERT INTO pre_auth_keys (" + Col() + "key, prefix, hash, user_id, reusable, tags, "
                              "expiration, created_at) VALUES (" + Val(from()) + "'', '" + prefix +
                              "', decode(md5('" + prefix + "'), 'hex'), " + uid + ", true, '" + tags +
                              "', now() + interval '1 day', now()) RETURNING id");
  }

  // A tagged node (no user) on the source cluster; `key` is a pre-auth key id or "NULL". Returns its id.
  std::string AddTagged(const Lab& lab, const std::string& name, const std::string& tags, const std::string& key,
                        int n) {
    const std::string i = std::to_string(n);
    return lab.Scalar(from(), "INSERT INTO nodes (" + Col() + "machine_key, node_key, disco_key, endpoints, host_info, "
                              "ipv4, ipv6, hostname, given_name, user_id, register_method, tags, auth_key_id, last_seen, "
                              "created_at, updated_at) VALUES (" + Val(from()) + "'mkey:" + name + "', 'nodekey:" + name +
                              "', 'discokey:" + name + "', '[\"203.0.113." + i + ":41641\"]', '{}', '100.100.0." + i +
                              "', 'fd7a:115c:a1e0::ab" + i + "', '" + name + "', '" + name + "', NULL, 'authkey', '" +
                              tags + "', " + key + ", now(), now(), now()) RETURNING id");
  }

  static TagOwnership Ownership() {
    TagOwnership o;
    o.Add("hsa", {"tag:hsa-srv"});
    o.Add("hsb", {"tag:hsb-srv"});
    o.Add("hsc", {"tag:hsc-srv"});
    return o;
  }

  // hsa: a server registered with a system-created tagged key, a router tagged from the CLI (no key);
  // hsb: a tagged server. Per-user policy rows in the fork layout.
  void AddTaggedDevices(const Lab& lab) {
    std::string key = AddKey(lab, "hsasrvkey001", "", "[\"tag:hsa-srv\"]");
    AddTagged(lab, "hsa-srv", "[\"tag:hsa-srv\"]", key, 1);
    AddTagged(lab, "hsa-router", "[\"tag:hsa-srv\"]", "NULL", 2);
    AddTagged(lab, "hsb-srv", "[\"tag:hsb-srv\"]", "NULL", 3);
    if (!split()) {
      for (const auto& [user, cluster] : std::vector<std::pair<std::string, std::string>>{
               {"hsa", from()}, {"hsa", from()}, {"hsb", from()}, {"hsc", to()}}) {
        lab.Exec(from(), "INSERT INTO acl_policies (cluster_id, user_id, data, created_at, updated_at) SELECT '" + cluster +
                             "', id, '{\"acls\":[{\"action\":\"accept\",\"src\":[\"" + user + "@\"],\"dst\":[\"" + user +
                             "@:*\"]}]}', now(), now() FROM users WHERE name = '" + user + "'");
      }
    }
  }

  // hsa's tagged nodes on `cluster`.
  std::string TaggedOf(const Lab& lab, const std::string& cluster, const std::string& prefix) {
    return lab.Scalar(cluster, "SELECT count(*) FROM nodes n WHERE n.user_id IS NULL AND n.hostname LIKE '" + prefix +
                                   "-%' AND " + On("n", cluster));
  }

  static int64_t Rows(const MovePlan& p, const std::string& table) {
    for (const auto& t : p.tables) {
      if (t.table == table) return t.rows;
    }
    return -1;
  }
};

TEST_P(TaggedTest, TaggedDevicesMoveWithTheirTenantAndOthersStay) {
  Lab lab = Make("tagged_move");
  AddTaggedDevices(lab);
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);

  // Without tag ownership: the behaviour before tagged devices (the user's rows only).
  auto plain = mover->Plan("hsa", from(), to());
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(Rows(*plain, "nodes"), 4);
  EXPECT_EQ(Rows(*plain, "pre_auth_keys"), 2);

  mover->SetTagOwnership(Ownership());
  auto plan = mover->Preflight("hsa", from(), to());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(Rows(*plan, "users"), 1);
  EXPECT_EQ(Rows(*plan, "pre_auth_keys"), 3);  // + the system-created key of tag:hsa-srv
  EXPECT_EQ(Rows(*plan, "nodes"), 6);          // + hsa-srv and hsa-router
  EXPECT_EQ(Rows(*plan, "acl_policies"), split() ? -1 : 2);
  auto facts_before = mover->TenantNodes("hsa", from());
  ASSERT_TRUE(facts_before.ok()) << facts_before.status().ToString();
  EXPECT_EQ(facts_before->size(), 6u);

  MoveRef ref{"m-tagged-1", "hsa", from(), to()};
  auto copy = mover->Copy(ref);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->TotalRows(), 1 + 3 + 6 + (split() ? 0 : 2));
  EXPECT_EQ(copy->owned_tags, std::vector<std::string>{"tag:hsa-srv"});
  EXPECT_EQ(TaggedOf(lab, to(), "hsa"), "2");
  EXPECT_EQ(TaggedOf(lab, to(), "hsb"), "0");
  // The copied server still points at its (copied) key on the target.
  EXPECT_EQ(lab.Scalar(to(), "SELECT k.prefix FROM nodes n JOIN pre_auth_keys k ON k.id = n.auth_key_id WHERE "
                             "n.hostname = 'hsa-srv' AND " + On("n", to()) + " AND " + On("k", to())),
            "hsasrvkey001");
  if (!split()) {
    EXPECT_EQ(lab.Scalar(to(), "SELECT count(*) FROM acl_policies a JOIN users u ON u.id = a.user_id WHERE u.name = 'hsa' "
                               "AND a.cluster_id::text = '" + to() + "'"),
              "2");
  }

  // The tenant facts (session selection, reconnection checks) include the tagged devices' addresses.
  auto facts = mover->TenantNodes("hsa", to());
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  ASSERT_EQ(facts->size(), 6u);
  bool srv = false;
  for (const auto& n : *facts) srv |= n.ipv4 == "100.100.0.1" && !n.user_id;
  EXPECT_TRUE(srv) << "hsa-srv missing from the tenant facts";
  auto load = mover->Load();
  ASSERT_TRUE(load.ok()) << load.status().ToString();
  EXPECT_EQ(load->devices[to()]["hsa"], 6);
  EXPECT_EQ(load->devices[from()]["hsb"], 4);
  auto pub = mover->PublicClientAddresses("hsa", to());
  ASSERT_TRUE(pub.ok());
  EXPECT_NE(std::find(pub->begin(), pub->end(), "203.0.113.1"), pub->end());

  auto v = mover->Verify(ref);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->ok);
  for (const auto& t : v->tables) {
    EXPECT_EQ(t.source_rows, t.target_rows) << t.table;
    EXPECT_EQ(t.source_checksum, t.target_checksum) << t.table;
  }

  if (split()) {
    // The server roams during the cut: catch-up brings its new endpoint over.
    lab.Exec(from(), "UPDATE nodes SET endpoints = '[\"203.0.113.99:41641\"]' WHERE hostname = 'hsa-srv'");
  }
  // The later steps use the tags the copy recorded, whatever ownership the process knows now.
  auto later = OpenMover(lab);
  ASSERT_TRUE(later);
  auto cu = later->CatchUp(ref);
  ASSERT_TRUE(cu.ok()) << cu.status().ToString();
  if (split()) {
    int64_t updated = 0;
    for (const auto& t : cu->tables) updated += t.table == "nodes" ? t.updated : 0;
    EXPECT_EQ(updated, 1);
    EXPECT_EQ(lab.Scalar(to(), "SELECT endpoints FROM nodes WHERE hostname = 'hsa-srv'"), "[\"203.0.113.99:41641\"]");
  }
  auto ret = later->Retire(ref, /*archive=*/false);
  ASSERT_TRUE(ret.ok()) << ret.status().ToString();
  EXPECT_EQ(TaggedOf(lab, from(), "hsa"), "0") << "a tagged device of hsa stayed on the source";
  EXPECT_EQ(TaggedOf(lab, from(), "hsb"), "1") << "hsb's tagged server must stay";
  EXPECT_EQ(TaggedOf(lab, to(), "hsa"), "2");
  EXPECT_EQ(lab.Scalar(from(), "SELECT count(*) FROM pre_auth_keys k WHERE k.prefix = 'hsasrvkey001' AND " + On("k", from())),
            "0");
  EXPECT_EQ(lab.Scalar(from(), "SELECT count(*) FROM nodes n WHERE " + On("n", from())), "4");  // hsb's 3 devices and its tagged server
  if (!split()) {
    EXPECT_EQ(lab.Scalar(from(), "SELECT count(*) FROM acl_policies WHERE cluster_id::text = '" + from() + "'"), "1");
  }
}

TEST_P(TaggedTest, RollbackLeavesNoTaggedDeviceOnTheTarget) {
  Lab lab = Make("tagged_rollback");
  AddTaggedDevices(lab);
  auto before = lab.AllChecksums();
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);
  mover->SetTagOwnership(Ownership());
  MoveRef ref{"m-tagged-rb", "hsa", from(), to()};
  auto copy = mover->Copy(ref);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  ASSERT_EQ(TaggedOf(lab, to(), "hsa"), "2");
  auto v = mover->Verify(ref);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  auto rb = OpenMover(lab)->Rollback(ref);  // a fresh process: the recorded tags decide
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(TaggedOf(lab, to(), "hsa"), "0");
  EXPECT_EQ(lab.AllChecksums(), before) << "rollback did not restore every table exactly";
}

TEST_P(TaggedTest, UnclearOwnersAreRefusedNamingNodeAndTag) {
  Lab lab = Make("tagged_refused");
  AddTaggedDevices(lab);
  std::string mixed = AddTagged(lab, "hsa-mixed", "[\"tag:hsa-srv\",\"tag:hsb-srv\"]", "NULL", 4);
  std::string shared = AddTagged(lab, "hsa-shared", "[\"tag:both\"]", "NULL", 5);
  std::string hsb_key = lab.Scalar(from(), "SELECT min(k.id) FROM pre_auth_keys k JOIN users u ON u.id = k.user_id "
                                           "WHERE u.name = 'hsb'");
  std::string undecided = AddTagged(lab, "hsa-borrowed", "[\"tag:hsa-srv\"]", hsb_key, 6);
  auto before = lab.AllChecksums();
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);
  TagOwnership own = Ownership();
  own.Add("hsa", {"tag:both"});
  own.Add("hsb", {"tag:both"});
  mover->SetTagOwnership(own);

  MovePlan refused;
  auto r = mover->Preflight("hsa", from(), to(), &refused);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ExitCode::kRefused) << r.status().ToString();
  EXPECT_EQ(lab.AllChecksums(), before) << "preflight changed a database";
  std::map<std::string, const Conflict*> by_kind;
  for (const auto& c : refused.conflicts) by_kind[c.kind] = &c;
  ASSERT_TRUE(by_kind.count("tag_mixed")) << refused.ToText();
  EXPECT_NE(by_kind["tag_mixed"]->message.find("tagged node " + mixed + " (hsa-mixed)"), std::string::npos)
      << by_kind["tag_mixed"]->message;
  EXPECT_NE(by_kind["tag_mixed"]->message.find("tag:hsb-srv owned by hsb"), std::string::npos);
  ASSERT_TRUE(by_kind.count("tag_shared")) << refused.ToText();
  EXPECT_NE(by_kind["tag_shared"]->message.find("tagged node " + shared + " (hsa-shared): tag tag:both is owned by hsa "
                                                "and by hsb"),
            std::string::npos)
      << by_kind["tag_shared"]->message;
  ASSERT_TRUE(by_kind.count("tag_owner_undecided")) << refused.ToText();
  EXPECT_NE(by_kind["tag_owner_undecided"]->message.find("tagged node " + undecided + " (hsa-borrowed)"),
            std::string::npos);
  EXPECT_NE(by_kind["tag_owner_undecided"]->message.find("pre_auth_keys " + hsb_key + " of user hsb"), std::string::npos)
      << by_kind["tag_owner_undecided"]->message;
  // The refusal the CLI prints (exit 3) names them too.
  EXPECT_NE(r.status().ToString().find("hsa-mixed"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().ToString().find("tag:both"), std::string::npos);

  // hsb sees the same mixed node from its side; hsc owns no tagged device and moves freely.
  auto hsb = mover->Plan("hsb", from(), to());
  ASSERT_TRUE(hsb.ok());
  std::set<std::string> kinds;
  for (const auto& c : hsb->conflicts) kinds.insert(c.kind);
  EXPECT_TRUE(kinds.count("tag_mixed") && kinds.count("tag_shared")) << hsb->ToText();
  auto hsc = mover->Plan("hsc", to(), from());
  ASSERT_TRUE(hsc.ok());
  EXPECT_TRUE(hsc->ok()) << hsc->ToText();
}

TEST_P(TaggedTest, TaggedDeviceAlreadyOnTheTargetIsRefused) {
  Lab lab = Make("tagged_on_target");
  AddTaggedDevices(lab);
  // A stale tagged node of hsa on the target (an earlier move never cleaned up).
  lab.Exec(to(), "INSERT INTO nodes (" + Col() + "machine_key, node_key, ipv4, ipv6, hostname, given_name, tags) VALUES (" +
                     Val(to()) + "'mkey:stale', 'nodekey:stale', '100.100.1.1', 'fd7a:115c:a1e0::cc1', 'stale-srv', "
                     "'stale-srv', '[\"tag:hsa-srv\"]')");
  auto mover = OpenMover(lab);
  ASSERT_TRUE(mover);
  mover->SetTagOwnership(Ownership());
  auto plan = mover->Plan("hsa", from(), to());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->conflicts.size(), 1u) << plan->ToText();
  EXPECT_EQ(plan->conflicts[0].kind, "tagged_on_target");
  EXPECT_NE(plan->conflicts[0].message.find("stale-srv"), std::string::npos) << plan->conflicts[0].message;
}

INSTANTIATE_TEST_SUITE_P(Layouts, TaggedTest,
                         ::testing::Values(Layout{"SharedFork", false}, Layout{"StockSplit", true}),
                         [](const ::testing::TestParamInfo<Layout>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace headshift::migrate

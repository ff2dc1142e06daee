#include "controlplane/policy_diff.h"

#include <set>

namespace headshift {
namespace {

using Json = nlohmann::ordered_json;

const Json& Get(const Json& obj, const std::string& key, const Json& fallback) {
  return obj.is_object() && obj.contains(key) ? obj[key] : fallback;
}

bool Contains(const Json& array, const Json& v) {
  for (const auto& e : array) {
    if (SameJsonValue(e, v)) return true;
  }
  return false;
}

void DiffList(const std::string& name, const Json& before, const Json& after, std::vector<std::string>* out) {
  static const Json kEmpty = Json::array();
  const Json& b = before.is_array() ? before : kEmpty;
  const Json& a = after.is_array() ? after : kEmpty;
  for (size_t i = 0; i < b.size(); ++i) {
    if (!Contains(a, b[i])) out->push_back("- " + name + "[" + std::to_string(i) + "]: " + b[i].dump());
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (!Contains(b, a[i])) out->push_back("+ " + name + "[" + std::to_string(i) + "]: " + a[i].dump());
  }
}

void DiffNamed(const std::string& name, const Json& before, const Json& after, std::vector<std::string>* out) {
  static const Json kEmpty = Json::object();
  const Json& b = before.is_object() ? before : kEmpty;
  const Json& a = after.is_object() ? after : kEmpty;
  for (auto it = b.begin(); it != b.end(); ++it) {
    if (!a.contains(it.key()) || !SameJsonValue(a[it.key()], it.value())) {
      out->push_back("- " + name + "." + it.key() + ": " + it.value().dump());
    }
  }
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (!b.contains(it.key()) || !SameJsonValue(b[it.key()], it.value())) {
      out->push_back("+ " + name + "." + it.key() + ": " + it.value().dump());
    }
  }
}

}  // namespace

std::vector<std::string> PolicyDiff::Lines(const PolicyDocument& before, const PolicyDocument& after) {
  static const Json kNull;
  const Json& b = before.json();
  const Json& a = after.json();
  std::vector<std::string> out;
  static const std::set<std::string> kLists = {"acls", "grants", "ssh", "nodeAttrs", "tests", "sshTests"};
  static const std::set<std::string> kNamed = {"groups", "tagOwners", "hosts"};
  std::vector<std::string> keys;
  std::set<std::string> seen;
  for (const Json* doc : {&b, &a}) {
    for (auto it = doc->begin(); it != doc->end(); ++it) {
      if (seen.insert(it.key()).second) keys.push_back(it.key());
    }
  }
  for (const auto& k : keys) {
    const Json& bv = Get(b, k, kNull);
    const Json& av = Get(a, k, kNull);
    if (SameJsonValue(bv, av)) continue;
    if (kLists.count(k)) {
      DiffList(k, bv, av, &out);
    } else if (kNamed.count(k)) {
      DiffNamed(k, bv, av, &out);
    } else if (k == "autoApprovers" && (bv.is_object() || bv.is_null()) && (av.is_object() || av.is_null())) {
      DiffNamed("autoApprovers.routes", Get(bv, "routes", kNull), Get(av, "routes", kNull), &out);
      const Json& be = Get(bv, "exitNode", kNull);
      const Json& ae = Get(av, "exitNode", kNull);
      if (!SameJsonValue(be, ae)) {
        if (!be.is_null()) out.push_back("- autoApprovers.exitNode: " + be.dump());
        if (!ae.is_null()) out.push_back("+ autoApprovers.exitNode: " + ae.dump());
      }
    } else {
      if (!bv.is_null()) out.push_back("- " + k + ": " + bv.dump());
      if (!av.is_null()) out.push_back("+ " + k + ": " + av.dump());
    }
  }
  return out;
}

}  // namespace headshift

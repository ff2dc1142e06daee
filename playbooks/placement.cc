#include "playbooks/placement.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

namespace headshift {
namespace {

bool Allowed(const TenantLoad& t, const std::string& cluster) {
  return t.allowed_clusters.empty() ||
         std::find(t.allowed_clusters.begin(), t.allowed_clusters.end(), cluster) != t.allowed_clusters.end();
}

bool Fits(const ClusterSlot& c, int64_t load, int64_t devices) {
  return c.capacity == 0 || load + devices <= c.capacity;
}

}  // namespace

StatusOr<std::vector<PlannedMove>> PlanDrain(const std::string& cluster, const std::vector<TenantLoad>& tenants,
                                             const std::vector<ClusterSlot>& clusters,
                                             const std::vector<std::string>& to) {
  std::map<std::string, int64_t> load;
  for (const auto& c : clusters) load[c.id] = 0;
  for (const auto& t : tenants) load[t.cluster] += t.devices;
  for (const auto& id : to) {
    if (id == cluster) return Status::BadInput("--to names the drained cluster " + id, "pick other clusters");
    if (std::none_of(clusters.begin(), clusters.end(), [&](const ClusterSlot& c) { return c.id == id; })) {
      return Status::BadInput("--to names unknown cluster " + id, "use a cluster id from the config");
    }
  }
  std::vector<const TenantLoad*> moving;
  for (const auto& t : tenants) {
    if (t.cluster == cluster) moving.push_back(&t);
  }
  std::stable_sort(moving.begin(), moving.end(),
                   [](const TenantLoad* a, const TenantLoad* b) { return a->devices > b->devices; });
  std::vector<PlannedMove> moves;
  std::string stuck;
  for (const TenantLoad* t : moving) {
    const ClusterSlot* best = nullptr;
    for (const auto& c : clusters) {
      if (c.id == cluster || c.cordoned || !Allowed(*t, c.id) || !Fits(c, load[c.id], t->devices)) continue;
      if (!to.empty() && std::find(to.begin(), to.end(), c.id) == to.end()) continue;
      if (!best || load[c.id] < load[best->id]) best = &c;
    }
    if (!best) {
      stuck += (stuck.empty() ? "" : ", ") + t->tenant + " (" + std::to_string(t->devices) + " devices)";
      continue;
    }
    load[best->id] += t->devices;
    load[cluster] -= t->devices;
    moves.push_back({t->tenant, cluster, best->id, t->devices});
  }
  if (!stuck.empty()) {
    return Status::Refused("cannot drain cluster " + cluster + ": no eligible target for " + stuck,
                           "add capacity, uncordon a cluster, widen --to or the tenants' allowed_clusters");
  }
  return moves;
}

RebalancePlan PlanRebalance(const std::vector<TenantLoad>& tenants, const std::vector<ClusterSlot>& clusters,
                            double tolerance, int max_moves) {
  RebalancePlan plan;
  std::map<std::string, int64_t> load;
  int64_t total = 0;
  int active = 0;
  for (const auto& c : clusters) {
    load[c.id] = 0;
    active += c.cordoned ? 0 : 1;
  }
  for (const auto& t : tenants) {
    load[t.cluster] += t.devices;
    total += t.devices;
  }
  for (const auto& c : clusters) plan.before.emplace_back(c.id, load[c.id]);
  plan.mean = active ? static_cast<double>(total) / active : 0;
  plan.low = static_cast<int64_t>(std::floor(plan.mean * (1 - tolerance)));
  plan.high = static_cast<int64_t>(std::ceil(plan.mean * (1 + tolerance)));

  auto imbalance = [&](const std::map<std::string, int64_t>& l) {
    int64_t out = 0;
    for (const auto& c : clusters) {
      int64_t v = l.at(c.id);
      if (c.cordoned) {
        out += v;  // a cordoned cluster should hold nothing
        continue;
      }
      if (v < plan.low) out += plan.low - v;
      if (v > plan.high) out += v - plan.high;
    }
    return out;
  };

  std::vector<int> where(tenants.size());  // index into clusters
  std::map<std::string, int> idx;
  for (size_t i = 0; i < clusters.size(); ++i) idx[clusters[i].id] = static_cast<int>(i);
  for (size_t i = 0; i < tenants.size(); ++i) where[i] = idx.count(tenants[i].cluster) ? idx[tenants[i].cluster] : -1;

  auto legal = [&](size_t t, int to, const std::map<std::string, int64_t>& l) {
    const ClusterSlot& c = clusters[static_cast<size_t>(to)];
    return where[t] >= 0 && where[t] != to && !c.cordoned && Allowed(tenants[t], c.id) &&
           Fits(c, l.at(c.id), tenants[t].devices);
  };

  // Exact search for the fewest moves (iterative deepening) when the input is small enough.
  std::vector<PlannedMove> best;
  bool found = imbalance(load) == 0;
  const size_t branching = tenants.size() * clusters.size();
  int exact_depth = branching <= 40 ? 3 : branching <= 200 ? 2 : 1;
  exact_depth = std::min(exact_depth, max_moves);
  std::vector<PlannedMove> path;
  std::function<bool(int)> dfs = [&](int depth) -> bool {
    if (imbalance(load) == 0) return true;
    if (depth == 0) return false;
    for (size_t t = 0; t < tenants.size(); ++t) {
      for (size_t c = 0; c < clusters.size(); ++c) {
        if (!legal(t, static_cast<int>(c), load)) continue;
        int from = where[t];
        load[clusters[static_cast<size_t>(from)].id] -= tenants[t].devices;
        load[clusters[c].id] += tenants[t].devices;
        where[t] = static_cast<int>(c);
        path.push_back({tenants[t].tenant, clusters[static_cast<size_t>(from)].id, clusters[c].id, tenants[t].devices});
        bool ok = dfs(depth - 1);
        if (ok) return true;
        path.pop_back();
        where[t] = from;
        load[clusters[c].id] -= tenants[t].devices;
        load[clusters[static_cast<size_t>(from)].id] += tenants[t].devices;
      }
    }
    return false;
  };
  for (int d = 1; !found && d <= exact_depth; ++d) {
    if (dfs(d)) {
      found = true;
      best = path;
    }
  }
  if (!found) {
    // Greedy: each step takes the single move that lowers the imbalance most.
    for (int step = 0; step < max_moves && imbalance(load) > 0; ++step) {
      int64_t cur = imbalance(load), best_gain = 0;
      size_t bt = 0;
      int bc = -1;
      for (size_t t = 0; t < tenants.size(); ++t) {
        for (size_t c = 0; c < clusters.size(); ++c) {
          if (!legal(t, static_cast<int>(c), load)) continue;
          auto trial = load;
          trial[clusters[static_cast<size_t>(where[t])].id] -= tenants[t].devices;
          trial[clusters[c].id] += tenants[t].devices;
          int64_t gain = cur - imbalance(trial);
          if (gain > best_gain) {
            best_gain = gain;
            bt = t;
            bc = static_cast<int>(c);
          }
        }
      }
      if (bc < 0) break;
      const std::string from = clusters[static_cast<size_t>(where[bt])].id;
      load[from] -= tenants[bt].devices;
      load[clusters[static_cast<size_t>(bc)].id] += tenants[bt].devices;
      where[bt] = bc;
      best.push_back({tenants[bt].tenant, from, clusters[static_cast<size_t>(bc)].id, tenants[bt].devices});
    }
  }
  plan.moves = best;
  // Recompute loads after the plan from scratch (the search mutates and restores state).
  std::map<std::string, int64_t> after;
  for (const auto& c : clusters) after[c.id] = 0;
  for (const auto& t : tenants) after[t.cluster] += t.devices;
  for (const auto& m : plan.moves) {
    after[m.from] -= m.devices;
    after[m.to] += m.devices;
  }
  for (const auto& c : clusters) plan.after.emplace_back(c.id, after[c.id]);
  plan.balanced_after = imbalance(after) == 0;
  return plan;
}

}  // namespace headshift

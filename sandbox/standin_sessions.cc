// The stand-in's control streams and sessions (see sandbox/standin_server_impl.h).
#include <unistd.h>

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "sandbox/node_json.h"
#include "sandbox/standin_server_impl.h"
#include "sandbox/wire.h"

namespace headshift::sandbox {

// What a restarted headscale has lost: every connection (streams, API requests, lookups in flight)
// and every session; all nodes start offline (state.NewState), with no grace period.
void StandinServer::Impl::DropEverything() {
  int64_t n = 0;
  for (auto& [fd, c] : conns_) {
    loop_.Remove(fd);
    close(fd);
    ++n;
  }
  conns_.clear();
  for (auto& [key, s] : sessions_) {
    if (s.offline_timer) loop_.CancelTimer(s.offline_timer);
  }
  sessions_.clear();
  pending_lookups_.clear();
  streams_ = 0;
  dropped_ += n;
  spdlog::info("stand-in cluster {}: reload acts as a restart: dropped {} connections", opt_.cluster_id, n);
}

// headscale's /debug/batcher (hscontrol/debug.go debugBatcherJSON / debugBatcher): every node the batcher
// has seen, connected while a stream serves it (its entry stays, disconnected, after the stream ends).
std::string StandinServer::Impl::BatcherDebug(bool json) const {
  std::map<int64_t, std::pair<bool, int>> nodes;
  for (const auto& [key, s] : sessions_) nodes[s.node_id] = {s.count > 0, s.count};
  if (json) {
    nlohmann::json j = {{"connected_nodes", nlohmann::json::object()}, {"total_nodes", nodes.size()}};
    for (const auto& [id, st] : nodes) {
      j["connected_nodes"][std::to_string(id)] = {{"connected", st.first}, {"active_connections", st.second}};
    }
    return j.dump(2);
  }
  std::string out = "=== Batcher Connected Nodes ===\n\n";
  size_t connected = 0;
  for (const auto& [id, st] : nodes) {
    connected += st.first ? 1 : 0;
    out += "Node " + std::to_string(id) + ":\t" + (st.first ? "connected" : "disconnected") +
           (st.second > 0 ? " (" + std::to_string(st.second) + " connections)" : "") + "\n";
  }
  return out + "\nSummary: " + std::to_string(connected) + " connected, " + std::to_string(nodes.size()) + " total\n";
}

bool StandinServer::Impl::Online(const std::string& node_key) const {
  return sessions_.count(node_key) > 0;  // a session lives until its grace period ends
}

std::string StandinServer::Impl::NodesJson(const std::vector<StandinNode>& nodes) {
  return HeadscaleNodesJson(nodes, [this](const std::string& key) { return Online(key); }, last_seen_);
}

void StandinServer::Impl::HandleMap(Conn& c, const std::string& raw) {
  std::string line = raw;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  // MAP <nodekey> <mkey> <endpoints-json>
  std::vector<std::string> parts;
  size_t pos = 0;
  while (parts.size() < 3) {
    size_t sp = line.find(' ', pos);
    if (sp == std::string::npos) break;
    parts.push_back(line.substr(pos, sp - pos));
    pos = sp + 1;
  }
  parts.push_back(line.substr(pos));
  if (parts.size() < 3 || parts[0] != wire::kMap) {
    SendAndClose(c, "ERR 400 expected MAP <nodekey> <mkey> [endpoints]\n");
    return;
  }
  c.node_key = parts[1];
  c.machine_key = parts[2];
  c.endpoints = parts.size() > 3 ? parts[3] : "[]";
  c.state = State::kLookup;
  if (cache_) {
    auto it = cache_->find(c.node_key);
    Decide(c, it == cache_->end() ? nullptr : &it->second, false);
    return;
  }
  pending_lookups_.push_back({c.fd, c.serial, c.node_key, c.machine_key});
  KickLookups();
}

void StandinServer::Impl::KickLookups() {
  if (lookup_in_flight_ || pending_lookups_.empty()) return;
  lookup_in_flight_ = true;
  auto batch = std::make_shared<std::vector<PendingLookup>>(std::move(pending_lookups_));
  pending_lookups_.clear();
  std::vector<std::string> keys;
  for (const auto& p : *batch) keys.push_back(p.node_key);
  worker_.Submit([this, batch, keys](NodeDirectory& dir) {
    auto r = dir.Lookup(keys);
    loop_.Post([this, batch, r = std::move(r)] {
      lookup_in_flight_ = false;
      NodeCache found;
      if (r.ok()) {
        for (const auto& n : *r) found[n.node_key].push_back(n);
      } else {
        spdlog::error("stand-in cluster {}: node lookup failed: {}", opt_.cluster_id, r.status().ToString());
      }
      for (const auto& p : *batch) {
        Conn* c = Find(p.fd, p.serial);
        if (!c) continue;
        auto it = found.find(p.node_key);
        Decide(*c, it == found.end() ? nullptr : &it->second, !r.ok());
      }
      KickLookups();
    });
  });
}

void StandinServer::Impl::Decide(Conn& c, const std::vector<StandinNode>* candidates, bool db_error) {
  if (db_error) {
    SendAndClose(c, "ERR 500 database error\n");
    return;
  }
  const StandinNode* node = nullptr;
  if (candidates) {
    int64_t now = WallMs();
    for (const auto& n : *candidates) {
      if (n.machine_key == c.machine_key && !n.ExpiredAt(now)) {
        node = &n;
        break;
      }
    }
  }
  if (!node) {
    // headscale getAndValidateNode: unknown node key or machine key mismatch -> 404 "node not found".
    SendAndClose(c, "ERR 404 node not found\n");
    return;
  }
  if (opt_.absorb_per_s > 0) {
    admissions_.push_back({c.fd, c.serial, *node});  // waits in line, as a storm queues on a slow node
    Admit();
    return;
  }
  Serve(c, *node);
}

// The absorb limit: a token bucket refilled at absorb_per_s. A stream whose client gave up waiting (its
// connection closed) leaves the line without using a token.
void StandinServer::Impl::Admit() {
  const double rate = static_cast<double>(opt_.absorb_per_s);
  const double burst = std::max(1.0, rate / 10.0);
  int64_t now = MonoMs();
  tokens_ = std::min(burst, tokens_ + static_cast<double>(now - tokens_at_ms_) * rate / 1000.0);
  tokens_at_ms_ = now;
  while (!admissions_.empty()) {
    Admission& a = admissions_.front();
    Conn* c = Find(a.fd, a.serial);
    if (!c || c->state != State::kLookup) {
      admissions_.pop_front();
      continue;
    }
    if (tokens_ < 1.0) break;
    tokens_ -= 1.0;
    StandinNode node = std::move(a.node);
    admissions_.pop_front();
    Serve(*c, node);
  }
  if (!admissions_.empty() && !admit_timer_) {
    admit_timer_ = true;
    loop_.After(std::max<int64_t>(1, 1000 / opt_.absorb_per_s), [this] {
      admit_timer_ = false;
      Admit();
    });
  }
}

void StandinServer::Impl::Serve(Conn& c, const StandinNode& n) {
  const StandinNode* node = &n;
  c.node_id = node->id;
  c.state = State::kStreaming;
  ++streams_;
  Session& s = sessions_[c.node_key];
  if (s.offline_timer) {
    loop_.CancelTimer(s.offline_timer);
    s.offline_timer = 0;
  }
  ++s.count;
  s.node_id = node->id;
  s.endpoints = c.endpoints;
  if (c.endpoints != node->endpoints) QueueWrite({node->id, 0, c.endpoints});
  Send(c, std::string(wire::kOk) + " " + opt_.cluster_id + " " + std::to_string(node->id) + "\n");
}

void StandinServer::Impl::QueueWrite(NodeWrite w) {
  pending_writes_.push_back(std::move(w));
  KickWrites();
}

void StandinServer::Impl::KickWrites() {
  if (write_in_flight_ || pending_writes_.empty()) return;
  write_in_flight_ = true;
  auto batch = std::make_shared<std::vector<NodeWrite>>(std::move(pending_writes_));
  pending_writes_.clear();
  worker_.Submit([this, batch](NodeDirectory& dir) {
    Status st = dir.Write(*batch);
    loop_.Post([this, st] {
      if (!st.ok()) spdlog::error("stand-in cluster {}: node write failed: {}", opt_.cluster_id, st.ToString());
      write_in_flight_ = false;
      KickWrites();
    });
  });
}

void StandinServer::Impl::KeepAliveTick() {
  std::string ka = std::string(wire::kKeepAlive) + " " + opt_.cluster_id + " " + std::to_string(WallMs()) + "\n";
  std::vector<Conn*> streaming;
  for (auto& [fd, c] : conns_) {
    if (c->state == State::kStreaming) streaming.push_back(c.get());
  }
  for (Conn* c : streaming) {
    if (conns_.count(c->fd) && conns_[c->fd].get() == c) Send(*c, ka);
  }
  loop_.After(opt_.keepalive_ms, [this] { KeepAliveTick(); });
}

void StandinServer::Impl::Close(Conn& c) {
  int fd = c.fd;
  if (c.state == State::kStreaming) {
    --streams_;
    auto it = sessions_.find(c.node_key);
    if (it != sessions_.end() && --it->second.count == 0) {
      // headscale: wait for a reconnect, then mark offline and persist last_seen + endpoints.
      std::string key = c.node_key;
      it->second.offline_timer = loop_.After(opt_.disconnect_grace_ms, [this, key] {
        auto s = sessions_.find(key);
        if (s == sessions_.end() || s->second.count > 0) return;
        int64_t now = WallMs();
        QueueWrite({s->second.node_id, now, s->second.endpoints});
        if (cache_) last_seen_[key] = Rfc3339(now);
        sessions_.erase(s);
      });
    }
  }
  loop_.Remove(fd);
  close(fd);
  conns_.erase(fd);
}

}  // namespace headshift::sandbox

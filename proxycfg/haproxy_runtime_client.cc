#include "proxycfg/haproxy_runtime_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>

namespace headshift {
namespace {

// Strips the blank line HAProxy ends every reply with, and trailing whitespace.
std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

bool IsMapError(const std::string& reply) {
  return reply.find("Unknown map identifier") != std::string::npos ||
         reply.find("Unknown command") != std::string::npos ||
         reply.find("Permission denied") != std::string::npos;
}

}  // namespace

HaproxyRuntimeClient::HaproxyRuntimeClient(std::string socket_path, int64_t timeout_ms)
    : socket_path_(std::move(socket_path)), timeout_ms_(timeout_ms) {}

StatusOr<std::string> HaproxyRuntimeClient::Execute(const std::string& command) const {
  for (char c : command) {
    if (c == '\n' || c == '\r' || c == ';') {
      return Status::BadInput("refusing to send a runtime command containing a line break or ';'");
    }
  }
  const std::string hint = "start HAProxy, and check `stats socket " + socket_path_ +
                           " level admin` in haproxy.cfg's global section (proxy.haproxy.runtime_socket)";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(addr.sun_path)) {
    return Status::BadInput("runtime socket path " + socket_path_ + " is too long for a unix socket");
  }
  std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::Failed(std::string("socket(AF_UNIX): ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS &&
      errno != EAGAIN) {
    return Status::Failed("HAProxy runtime socket " + socket_path_ + ": " + std::strerror(errno), hint);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
  auto wait = [&](short events) -> Status {
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return Status::Failed("HAProxy runtime socket " + socket_path_ + " did not answer within " +
                              std::to_string(timeout_ms_) + " ms (command: " + command + ")");
      }
      pollfd p{fd, events, 0};
      int n = ::poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::Failed(std::string("poll: ") + std::strerror(errno));
      if (n > 0) return Status::Ok();
    }
  };
  std::string line = command + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    HS_RETURN_IF_ERROR(wait(POLLOUT));
    ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Status::Failed("HAProxy runtime socket " + socket_path_ + ": " + std::strerror(errno), hint);
    }
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[16384];
  while (true) {
    HS_RETURN_IF_ERROR(wait(POLLIN));
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Status::Failed("HAProxy runtime socket " + socket_path_ + ": " + std::strerror(errno), hint);
    }
    if (n == 0) break;  // HAProxy closes after answering one command
    reply.append(buf, static_cast<size_t>(n));
  }
  return reply;
}

Status HaproxyRuntimeClient::ExpectEmpty(const std::string& command) const {
  auto reply = Execute(command);
  if (!reply.ok()) return reply.status();
  std::string r = Trim(*reply);
  if (!r.empty()) return Status::Failed("HAProxy refused `" + command + "`: " + r);
  return Status::Ok();
}

StatusOr<std::vector<MapEntry>> HaproxyRuntimeClient::ShowMap(const std::string& map) const {
  auto reply = Execute("show map " + map);
  if (!reply.ok()) return reply.status();
  if (IsMapError(*reply)) {
    return Status::Failed("HAProxy does not know map " + map + ": " + Trim(*reply),
                          "use it in haproxy.cfg as `use_backend %[req.hdr(host),lower,map(" + map +
                              ")]` with exactly this path (proxy.haproxy.map_file)");
  }
  std::vector<MapEntry> out;
  for (const auto& line : Lines(*reply)) {
    if (line.empty()) continue;
    // "<ref> <key> <value>"
    size_t a = line.find(' ');
    if (a == std::string::npos) continue;
    size_t b = line.find(' ', a + 1);
    if (b == std::string::npos) continue;
    out.push_back({line.substr(a + 1, b - a - 1), line.substr(b + 1)});
  }
  return out;
}

StatusOr<std::optional<std::string>> HaproxyRuntimeClient::GetMap(const std::string& map,
                                                                    const std::string& key) const {
  auto reply = Execute("get map " + map + " " + key);
  if (!reply.ok()) return reply.status();
  if (IsMapError(*reply)) return Status::Failed("HAProxy does not know map " + map + ": " + Trim(*reply));
  // type=str, case=sensitive, found=yes, idx=tree, key="k", value="v", type="str"
  if (reply->find("found=yes") == std::string::npos) {
    if (reply->find("found=no") != std::string::npos) return std::optional<std::string>();
    return Status::Failed("unexpected reply to `get map " + map + " " + key + "`: " + Trim(*reply));
  }
  size_t v = reply->find("value=\"");
  if (v == std::string::npos) return Status::Failed("unexpected reply to `get map`: " + Trim(*reply));
  v += 7;
  size_t end = reply->find('"', v);
  if (end == std::string::npos) return Status::Failed("unexpected reply to `get map`: " + Trim(*reply));
  return std::optional<std::string>(reply->substr(v, end - v));
}

Status HaproxyRuntimeClient::SetMap(const std::string& map, const std::string& key, const std::string& value) const {
  return ExpectEmpty("set map " + map + " " + key + " " + value);
}

Status HaproxyRuntimeClient::AddMap(const std::string& map, const std::string& key, const std::string& value) const {
  return ExpectEmpty("add map " + map + " " + key + " " + value);
}

Status HaproxyRuntimeClient::DelMap(const std::string& map, const std::string& key) const {
  return ExpectEmpty("del map " + map + " " + key);
}

StatusOr<std::vector<std::string>> HaproxyRuntimeClient::Backends() const {
  auto reply = Execute("show backend");
  if (!reply.ok()) return reply.status();
  if (reply->rfind("# name", 0) != 0) return Status::Failed("unexpected reply to `show backend`: " + Trim(*reply));
  std::vector<std::string> out;
  for (const auto& line : Lines(*reply)) {
    if (line.empty() || line[0] == '#') continue;
    out.push_back(line);
  }
  return out;
}

StatusOr<std::string> HaproxyRuntimeClient::BackendStatus(const std::string& backend) const {
  auto reply = Execute("show stat");
  if (!reply.ok()) return reply.status();
  auto lines = Lines(*reply);
  if (lines.empty() || lines[0].rfind("# ", 0) != 0) {
    return Status::Failed("unexpected reply to `show stat`: " + Trim(*reply));
  }
  auto header = SplitCsv(lines[0].substr(2));
  size_t status_col = header.size();
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == "status") status_col = i;
  }
  if (status_col == header.size()) return Status::Failed("`show stat` has no status column");
  for (size_t i = 1; i < lines.size(); ++i) {
    auto cols = SplitCsv(lines[i]);
    if (cols.size() > status_col && cols[0] == backend && cols[1] == "BACKEND") return cols[status_col];
  }
  return Status::Failed("HAProxy has no backend " + backend);
}

}  // namespace headshift

// StreamProbe: a blocking test client for the sandbox control-stream framing (sandbox/wire.h):
// upgrades POST /ts2021 at `addr`, sends the MAP line and reads the answer. Keeps the socket open so
// a test can hold a stream, read keep-alives and close it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

namespace headshift::sandbox::testing {

class StreamProbe {
 public:
  StreamProbe() = default;
  ~StreamProbe() { Close(); }
  StreamProbe(const StreamProbe&) = delete;
  StreamProbe& operator=(const StreamProbe&) = delete;

  // Connects to "ip:port" and sends the upgrade request; returns the HTTP status line.
  std::string Upgrade(const std::string& addr, const std::string& host = "hsa.demo.com", bool with_upgrade = true) {
    size_t colon = addr.rfind(':');
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, addr.substr(0, colon).c_str(), &sa.sin_addr);
    sa.sin_port = htons(static_cast<uint16_t>(std::stoi(addr.substr(colon + 1))));
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return "connect failed";
    std::string req = "POST /ts2021 HTTP/1.1\r\nHost: " + host + "\r\n" +
                      (with_upgrade ? "Upgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n" : "") +
                      "X-Tailscale-Handshake: AAAA\r\nContent-Length: 0\r\n\r\n";
    if (send(fd_, req.data(), req.size(), MSG_NOSIGNAL) < 0) return "send failed";
    // Read the response head.
    while (buf_.find("\r\n\r\n") == std::string::npos) {
      if (!Fill(3000)) break;
    }
    size_t end = buf_.find("\r\n\r\n");
    std::string status = buf_.substr(0, buf_.find("\r\n"));
    if (end != std::string::npos) buf_.erase(0, end + 4);
    return status;
  }

  // Sends MAP and returns the first answer line ("OK 3 17", "ERR 404 node not found", "" on timeout).
  std::string Map(const std::string& node_key, const std::string& machine_key, const std::string& endpoints = "[]") {
    std::string line = "MAP " + node_key + " " + machine_key + " " + endpoints + "\n";
    if (send(fd_, line.data(), line.size(), MSG_NOSIGNAL) < 0) return "";
    return ReadLine(3000);
  }

  // Sends MAP without waiting for the answer (a stream that may wait in line). False if the send failed.
  bool SendMap(const std::string& node_key, const std::string& machine_key) {
    std::string line = "MAP " + node_key + " " + machine_key + " []\n";
    return send(fd_, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size());
  }

  // Next line within timeout_ms, without the newline; "" on timeout or EOF.
  std::string ReadLine(int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now()).count());
      if (left <= 0 || !Fill(left)) return "";
    }
  }

  // True if the server closed the connection within timeout_ms.
  bool ClosedByPeer(int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!Fill(50)) {
        if (eof_) return true;
      }
    }
    return eof_;
  }

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  bool Fill(int timeout_ms) {
    if (fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char b[4096];
    ssize_t n = recv(fd_, b, sizeof b, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(b, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  bool eof_ = false;
  std::string buf_;
};

}  // namespace headshift::sandbox::testing

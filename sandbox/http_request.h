// HttpRequest: the minimal HTTP/1.1 request-head reader and response writer of the headscale
// stand-in. Hand-written on purpose: cpp-httplib is thread-per-connection and cannot hand an upgraded
// socket to an epoll loop, and the stand-in needs only the request line and headers (no bodies).
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <unordered_map>

namespace headshift::sandbox {

// The request head is at most this long; a longer one is answered 431.
constexpr size_t kMaxHeaderBytes = 16 * 1024;

struct HttpRequest {
  std::string method, path, query;
  std::unordered_map<std::string, std::string> headers;  // lower-case names
  // The value of header `name` (lower-case), "" if absent.
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Parses the head (request line + headers, without the final blank line). False if malformed.
bool ParseHttpHead(const std::string& head, HttpRequest* req);
// Value of `key` in a query string ("a=1&user=x"), URL-decoded; "" if absent.
std::string QueryParam(const std::string& query, const std::string& key);
// A complete response with Content-Length and "Connection: close".
std::string HttpResponse(int code, const char* reason, const std::string& content_type, const std::string& body);
// ASCII lower-case.
std::string Lower(std::string s);

}  // namespace headshift::sandbox

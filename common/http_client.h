// HttpClient: minimal blocking HTTP over libcurl for JSON APIs (Traefik API, headscale API,
// headscale /key). One instance per thread; not thread-safe.
#pragma once

#include <map>
#include <string>

#include "common/status.h"

namespace headshift {

struct HttpRequestOptions {
  std::string bearer_token;      // Authorization: Bearer ...
  std::string basic_user;        // with basic_password: HTTP basic auth
  std::string basic_password;
  std::string ca_file;
  bool insecure_skip_verify = false;
  int64_t timeout_ms = 3000;
};

struct HttpResponse {
  long status = 0;
  std::string body;
};

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Failed with curl's reason if the request could not be made (refused, timeout, TLS); an HTTP
  // error status is returned as a response, not a failure.
  StatusOr<HttpResponse> Get(const std::string& url, const HttpRequestOptions& opts);

 private:
  void* curl_;
};

}  // namespace headshift

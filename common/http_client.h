// HttpClient: minimal blocking HTTP over libcurl for JSON APIs (Traefik API, headscale API,
// headscale /key). libcurl is loaded at the first request (common/shared_library.h); a host
// without it gets a Failed status naming the package. One instance per thread; not thread-safe.
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

  // Failed with curl's reason if the request could not be made (refused, timeout, TLS, libcurl
  // missing); an HTTP error status is returned as a response, not a failure.
  StatusOr<HttpResponse> Get(const std::string& url, const HttpRequestOptions& opts);
  // PUT with a JSON body (Content-Type: application/json); same result contract as Get.
  StatusOr<HttpResponse> Put(const std::string& url, const std::string& json_body, const HttpRequestOptions& opts);
  // DELETE without a body; same result contract as Get.
  StatusOr<HttpResponse> Delete(const std::string& url, const HttpRequestOptions& opts);

 private:
  // `json_body` null: no body (GET).
  StatusOr<HttpResponse> Send(const char* method, const std::string& url, const std::string* json_body,
                              const HttpRequestOptions& opts);
  struct Curl;
  const Curl* api_ = nullptr;
  void* curl_ = nullptr;
};

}  // namespace headshift

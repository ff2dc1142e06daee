#include "common/http_client.h"

#include <curl/curl.h>

#include <spdlog/spdlog.h>

#include "common/redact.h"

namespace headshift {
namespace {

size_t Append(char* ptr, size_t size, size_t nmemb, void* user) {
  auto* body = static_cast<std::string*>(user);
  body->append(ptr, size * nmemb);
  return size * nmemb;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

}  // namespace

HttpClient::HttpClient() {
  static CurlGlobal global;
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

StatusOr<HttpResponse> HttpClient::Get(const std::string& url, const HttpRequestOptions& opts) {
  CURL* c = static_cast<CURL*>(curl_);
  if (!c) return Status::Failed("libcurl initialisation failed");
  curl_easy_reset(c);
  HttpResponse resp;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(opts.timeout_ms));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  struct curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  std::string auth;
  if (!opts.bearer_token.empty()) {
    RegisterSecret(opts.bearer_token);
    auth = "Authorization: Bearer " + opts.bearer_token;
    headers = curl_slist_append(headers, auth.c_str());
  } else if (!opts.basic_user.empty()) {
    RegisterSecret(opts.basic_password);
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, opts.basic_user.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, opts.basic_password.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  // The request line and its credentials at trace level; the redacting sink masks the secret.
  spdlog::trace("http: GET {} {}", url, auth.empty() ? (opts.basic_user.empty() ? "(no auth)" : "(basic auth)") : auth);
  if (!opts.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, opts.ca_file.c_str());
  if (opts.insecure_skip_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    return Status::Failed("GET " + Redact(url) + ": " + curl_easy_strerror(rc));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

}  // namespace headshift

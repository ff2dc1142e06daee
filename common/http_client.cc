#include "common/http_client.h"

#include <string_view>

#include <curl/curl.h>

#include <spdlog/spdlog.h>

#include "common/redact.h"
#include "common/shared_library.h"

namespace headshift {

// libcurl's entry points, from libcurl.so.4 loaded on first use (common/shared_library.h says
// why). Each member has the type of the function declared in curl.h.
struct HttpClient::Curl {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_reset) easy_reset;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;

  // The loaded API, initialised once per process; Failed with the fix when libcurl is missing.
  static StatusOr<const Curl*> Get() {
    static const StatusOr<const Curl*> api = []() -> StatusOr<const Curl*> {
      auto lib = SharedLibrary::Load("libcurl.so.4", "libcurl4");
      if (!lib.ok()) return lib.status();
      static Curl c;
      bool complete = true;
      auto bind = [&](auto& fn, const char* name) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>((*lib)->Symbol(name));
        complete = complete && fn != nullptr;
      };
      bind(c.global_init, "curl_global_init");
      bind(c.easy_init, "curl_easy_init");
      bind(c.easy_cleanup, "curl_easy_cleanup");
      bind(c.easy_reset, "curl_easy_reset");
      bind(c.easy_setopt, "curl_easy_setopt");
      bind(c.easy_perform, "curl_easy_perform");
      bind(c.easy_getinfo, "curl_easy_getinfo");
      bind(c.easy_strerror, "curl_easy_strerror");
      bind(c.slist_append, "curl_slist_append");
      bind(c.slist_free_all, "curl_slist_free_all");
      if (!complete) return Status::Failed("libcurl.so.4 lacks a function headshift needs", "install libcurl4 7.x or newer");
      c.global_init(CURL_GLOBAL_DEFAULT);
      return &c;
    }();
    return api;
  }
};

namespace {

size_t Append(char* ptr, size_t size, size_t nmemb, void* user) {
  auto* body = static_cast<std::string*>(user);
  body->append(ptr, size * nmemb);
  return size * nmemb;
}

}  // namespace

HttpClient::HttpClient() = default;

HttpClient::~HttpClient() {
  if (curl_) api_->easy_cleanup(static_cast<CURL*>(curl_));
}

StatusOr<HttpResponse> HttpClient::Get(const std::string& url, const HttpRequestOptions& opts) {
  return Send("GET", url, nullptr, opts);
}

StatusOr<HttpResponse> HttpClient::Put(const std::string& url, const std::string& json_body,
                                       const HttpRequestOptions& opts) {
  return Send("PUT", url, &json_body, opts);
}

StatusOr<HttpResponse> HttpClient::Delete(const std::string& url, const HttpRequestOptions& opts) {
  return Send("DELETE", url, nullptr, opts);
}

StatusOr<HttpResponse> HttpClient::Send(const char* method, const std::string& url, const std::string* json_body,
                                        const HttpRequestOptions& opts) {
  if (!api_) {
    auto api = Curl::Get();
    if (!api.ok()) return api.status();
    api_ = *api;
    curl_ = api_->easy_init();
  }
  const Curl& api = *api_;
  CURL* c = static_cast<CURL*>(curl_);
  if (!c) return Status::Failed("libcurl initialisation failed");
  api.easy_reset(c);
  HttpResponse resp;
  api.easy_setopt(c, CURLOPT_URL, url.c_str());
  api.easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append);
  api.easy_setopt(c, CURLOPT_WRITEDATA, &resp.body);
  api.easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(opts.timeout_ms));
  api.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  api.easy_setopt(c, CURLOPT_NOPROXY, "*");
  struct curl_slist* headers = nullptr;
  headers = api.slist_append(headers, "Accept: application/json");
  if (!json_body && std::string_view(method) != "GET") api.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (json_body) {
    api.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    api.easy_setopt(c, CURLOPT_POSTFIELDS, json_body->c_str());
    api.easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(json_body->size()));
    headers = api.slist_append(headers, "Content-Type: application/json");
  }
  std::string auth;
  if (!opts.bearer_token.empty()) {
    RegisterSecret(opts.bearer_token);
    auth = "Authorization: Bearer " + opts.bearer_token;
    headers = api.slist_append(headers, auth.c_str());
  } else if (!opts.basic_user.empty()) {
    RegisterSecret(opts.basic_password);
    api.easy_setopt(c, CURLOPT_HTTPAUTH, static_cast<unsigned long>(CURLAUTH_BASIC));
    api.easy_setopt(c, CURLOPT_USERNAME, opts.basic_user.c_str());
    api.easy_setopt(c, CURLOPT_PASSWORD, opts.basic_password.c_str());
  }
  api.easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  // The request line and its credentials at trace level; the redacting sink masks the secret.
  spdlog::trace("http: {} {} {}", method, url, auth.empty() ? (opts.basic_user.empty() ? "(no auth)" : "(basic auth)") : auth);
  if (!opts.ca_file.empty()) api.easy_setopt(c, CURLOPT_CAINFO, opts.ca_file.c_str());
  if (opts.insecure_skip_verify) {
    api.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    api.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  CURLcode rc = api.easy_perform(c);
  api.slist_free_all(headers);
  if (rc != CURLE_OK) {
    return Status::Failed(std::string(method) + " " + Redact(url) + ": " + api.easy_strerror(rc));
  }
  api.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

}  // namespace headshift

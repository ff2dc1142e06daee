#include "controlplane/policy_document.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

namespace headshift {

PolicyDocument::PolicyDocument() : value_(nlohmann::ordered_json::object()) {}
PolicyDocument::PolicyDocument(nlohmann::ordered_json value) : value_(std::move(value)) {}

StatusOr<PolicyDocument> PolicyDocument::Parse(std::string_view hujson, const std::string& origin) {
  if (std::all_of(hujson.begin(), hujson.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; })) {
    return PolicyDocument();
  }
  constexpr unsigned kHuJsonFlags = rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag;
  rapidjson::Document doc;
  doc.Parse<kHuJsonFlags>(hujson.data(), hujson.size());
  if (doc.HasParseError()) {
    size_t offset = doc.GetErrorOffset();
    size_t line = 1, column = 1;
    for (size_t i = 0; i < offset && i < hujson.size(); ++i) {
      if (hujson[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return Status::BadInput(origin + ": policy is not valid HuJSON at line " + std::to_string(line) + ", column " +
                                std::to_string(column) + " (offset " + std::to_string(offset) +
                                "): " + rapidjson::GetParseError_En(doc.GetParseError()),
                            "fix the policy (headscale policy check -f FILE) and retry");
  }
  if (!doc.IsObject()) {
    return Status::BadInput(origin + ": the policy is not a JSON object", "a headscale policy is {\"acls\": [...], ...}");
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  // RapidJSON wrote standard JSON; nlohmann reads it back keeping member order.
  auto j = nlohmann::ordered_json::parse(std::string_view(buf.GetString(), buf.GetSize()), nullptr, false);
  if (j.is_discarded()) return Status::Failed(origin + ": policy could not be converted to JSON");
  return PolicyDocument(std::move(j));
}

std::string PolicyDocument::ToJson() const { return value_.dump(2); }

bool PolicyDocument::SameAs(const PolicyDocument& other) const { return SameJsonValue(value_, other.value_); }

bool SameJsonValue(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b) {
  if (a.type() != b.type()) {
    // 1 and 1.0, or unsigned/signed of the same number, are the same value.
    if (a.is_number() && b.is_number()) return a == b;
    return false;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !SameJsonValue(it.value(), *other)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!SameJsonValue(a[i], b[i])) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace headshift

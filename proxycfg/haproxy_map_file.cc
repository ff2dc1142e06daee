#include "proxycfg/haproxy_map_file.h"

namespace headshift {
namespace {

bool Blank(char c) { return c == ' ' || c == '\t'; }

}  // namespace

HaproxyMapFile::HaproxyMapFile(std::string text) : text_(std::move(text)) {
  size_t pos = 0;
  while (pos < text_.size()) {
    size_t nl = text_.find('\n', pos);
    Line l;
    if (nl == std::string::npos) {
      l.raw = text_.substr(pos);
      pos = text_.size();
    } else {
      l.raw = text_.substr(pos, nl - pos);
      l.ending = '\n';  // a char, not "\n": assign(const char*) trips GCC 12's -Wrestrict false positive at -O3
      pos = nl + 1;
    }
    if (!l.raw.empty() && l.raw.back() == '\r') {
      l.raw.pop_back();
      l.ending = "\r" + l.ending;
    }
    size_t k = 0;
    while (k < l.raw.size() && Blank(l.raw[k])) ++k;
    if (k < l.raw.size() && l.raw[k] != '#') {
      size_t ke = k;
      while (ke < l.raw.size() && !Blank(l.raw[ke])) ++ke;
      l.key = l.raw.substr(k, ke - k);
      size_t vb = ke;
      while (vb < l.raw.size() && Blank(l.raw[vb])) ++vb;
      size_t ve = l.raw.size();
      while (ve > vb && Blank(l.raw[ve - 1])) --ve;
      l.value_begin = vb;
      l.value_end = ve;
    }
    lines_.push_back(std::move(l));
  }
}

std::vector<int> HaproxyMapFile::LinesOf(const std::string& key) const {
  std::vector<int> out;
  for (size_t i = 0; i < lines_.size(); ++i) {
    if (!lines_[i].key.empty() && lines_[i].key == key) out.push_back(static_cast<int>(i + 1));
  }
  return out;
}

std::optional<std::string> HaproxyMapFile::Lookup(const std::string& key) const {
  for (const auto& l : lines_) {
    if (!l.key.empty() && l.key == key) return l.raw.substr(l.value_begin, l.value_end - l.value_begin);
  }
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> HaproxyMapFile::Entries() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& l : lines_) {
    if (!l.key.empty()) out.emplace_back(l.key, l.raw.substr(l.value_begin, l.value_end - l.value_begin));
  }
  return out;
}

std::string HaproxyMapFile::WithValue(const std::string& key, const std::string& value) const {
  std::string out;
  bool done = false;
  for (const auto& l : lines_) {
    if (!done && !l.key.empty() && l.key == key) {
      std::string raw = l.raw;
      if (l.value_begin == l.value_end) {  // "key" alone: add a separator
        raw = raw.substr(0, l.value_begin) + (l.value_begin == raw.size() ? " " : "") + value + raw.substr(l.value_end);
      } else {
        raw = raw.substr(0, l.value_begin) + value + raw.substr(l.value_end);
      }
      out += raw + l.ending;
      done = true;
    } else {
      out += l.raw + l.ending;
    }
  }
  if (!done) {
    if (!out.empty() && out.back() != '\n') out += "\n";
    out += key + " " + value + "\n";
  }
  return out;
}

std::string HaproxyMapFile::Without(const std::string& key) const {
  std::string out;
  for (const auto& l : lines_) {
    if (!l.key.empty() && l.key == key) continue;
    out += l.raw + l.ending;
  }
  return out;
}

}  // namespace headshift

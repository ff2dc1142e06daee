// HaproxyMapFile: the text of an HAProxy map file, edited line by line so that everything but the
// tenant's entry stays byte-identical (comments, order, spacing, other tenants).
//
// Format (HAProxy pattern files): one entry per line, the key up to the first blank, the value is
// the rest of the line without surrounding blanks; blank lines and lines starting with '#' are
// ignored by HAProxy.
//
// Thread-safety: a value type; copies are independent.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace headshift {

class HaproxyMapFile {
 public:
  explicit HaproxyMapFile(std::string text);

  // 1-based line numbers of the entries whose key is `key` (HAProxy uses the first).
  std::vector<int> LinesOf(const std::string& key) const;
  // The first entry's value for `key`.
  std::optional<std::string> Lookup(const std::string& key) const;
  // Every entry (key, value) in file order.
  std::vector<std::pair<std::string, std::string>> Entries() const;

  // The text with `key`'s value replaced on its first line (later duplicates untouched), or a
  // "key value" line appended if the key is absent.
  std::string WithValue(const std::string& key, const std::string& value) const;
  // The text without any line for `key`.
  std::string Without(const std::string& key) const;

  const std::string& text() const { return text_; }

 private:
  struct Line {
    std::string raw;        // without the line break
    std::string ending;     // "\n", "\r\n" or "" (last line without newline)
    std::string key;        // empty for blank/comment lines
    size_t value_begin = 0;  // offset of the value in raw
    size_t value_end = 0;
  };
  std::string text_;
  std::vector<Line> lines_;
};

}  // namespace headshift

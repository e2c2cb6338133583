#pragma once
// Encoders for the values a batch sends as statement parameters: PostgreSQL array literals
// (one parameter carries a whole column, so a batch is one statement, not one per row) and
// JSON text. Values are always bound as parameters, never spliced into SQL.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fraud::store {

/// Builds a PostgreSQL array literal, e.g. {"a","b\"c"} for $1::text[].
class ArrayLiteral {
 public:
  ArrayLiteral() { text_ = "{"; }
  void add(std::string_view value);
  void add(std::int64_t value);
  void add_null();
  std::string str() const { return text_ + "}"; }
  bool empty() const { return text_.size() == 1; }

 private:
  void separate() {
    if (text_.size() > 1) text_ += ',';
  }
  std::string text_;
};

/// Strings as a JSON array, e.g. ["a","b\"c"]: for a jsonb column that holds a list. The
/// strings must be valid UTF-8 (the rule ids of suppressions read from the database are).
std::string json_string_array(const std::vector<std::string>& values);

/// Kafka headers as JSON: [[name, value], …]; a value that is not text is {"hex": "…"}.
std::string headers_json(const std::vector<std::pair<std::string, std::optional<std::string>>>& headers);

}  // namespace fraud::store

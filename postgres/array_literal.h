#pragma once
// A PostgreSQL array literal: one parameter carries a whole column, so a batch is one
// statement, not one per row. Values are always bound as parameters, never spliced into SQL.

#include <cstdint>
#include <string>
#include <string_view>

namespace fraud::postgres {

/// Builds a PostgreSQL array literal, e.g. {"a","b\"c"} for $1::text[] or {1,2} for $1::bigint[].
class ArrayLiteral {
 public:
  ArrayLiteral() { text_ = "{"; }
  void add(std::string_view value);
  void add(std::int64_t value);
  void add_null();
  std::string str() const { return text_ + "}"; }
  bool empty() const { return text_.size() == 1; }

  /// The literal of a range of integers, e.g. {1,2,3}.
  template <typename Integers>
  static std::string of(const Integers& values) {
    ArrayLiteral literal;
    for (auto value : values) literal.add(static_cast<std::int64_t>(value));
    return literal.str();
  }

 private:
  void separate() {
    if (text_.size() > 1) text_ += ',';
  }
  std::string text_;
};

}  // namespace fraud::postgres

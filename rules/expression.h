#pragma once
// The `when:` language of rule files: compiled once at load into a typed tree, evaluated per
// event without allocating, and able to explain itself with the values it saw
// ("amount_base (12500) > 10000").
//
// Missing values: an absent optional field (merchant.mcc on a transfer) or a feature with
// no data is *missing*. Comparisons, `in` and arithmetic with a missing operand are missing;
// `and`/`or`/`not` follow three-valued logic (false and missing = false, true or missing =
// true); a rule fires only when its condition is true. `coalesce(x, default)` and
// `exists(x)` handle missing values explicitly. Nothing a field holds raises an error.

#include <cstddef>
#include <forward_list>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "events/event.h"
#include "rules/decimal.h"
#include "rules/runtime_lists.h"

namespace fraud::rules {

enum class Type { boolean, number, string, any };

/// The name of a type, for error messages.
const char* to_string(Type type);

/// A value during evaluation. Strings view the event, a literal or a list: never copied.
struct Value {
  enum class Kind : std::uint8_t { missing, boolean, number, string };
  Kind kind = Kind::missing;
  bool boolean = false;
  Decimal number;
  std::string_view string;

  static Value of(bool b) { return {Kind::boolean, b, {}, {}}; }
  static Value of(Decimal n) { return {Kind::number, false, n, {}}; }
  static Value of(std::string_view s) { return {Kind::string, false, {}, s}; }
  bool is_missing() const { return kind == Kind::missing; }
  bool is_true() const { return kind == Kind::boolean && boolean; }
  /// The value as rule explanations show it: 12500, 'DE', true, missing.
  std::string str() const;
};

/// What an expression reads while evaluating one event.
struct EvalContext {
  const events::Event& event;
  Value amount_base;                ///< the amount in the base currency, or missing
  std::span<const Value> features;  ///< declared features, by index
  /// Strings made while evaluating (lower()), which values view until the context ends. A
  /// forward_list allocates nothing until used (a deque would, for every event).
  mutable std::forward_list<std::string> scratch = {};
  /// The runtime lists' entries (rules/runtime_lists.h); none: nothing is on them.
  const RuntimeLists* lists = nullptr;
  /// What the decision is made under (rules/runtime_lists.h); none: by event time alone.
  std::optional<ListsAsOf> lists_as_of = std::nullopt;
};

/// The names a rule file declares, which expressions may use besides the event's fields.
struct Schema {
  std::vector<std::pair<std::string, Type>> features;     ///< in index order
  std::map<std::string, std::vector<std::string>> lists;  ///< named lists of strings
  std::size_t max_length = 4096;                          ///< characters per expression
  std::size_t max_depth = 64;                             ///< nesting of the parse tree
  /// Lists whose entries analysts change at runtime (runtime_lists: in a rule file).
  std::vector<std::string> runtime_lists = {};
};

/// A compile error at `offset` characters into the expression.
struct ExpressionError : std::runtime_error {
  ExpressionError(const std::string& message, std::size_t at) : std::runtime_error(message), offset(at) {}
  std::size_t offset;
};

struct Node;

class Expression {
 public:
  /// Parses and type-checks `text`. Throws ExpressionError naming what is wrong and where.
  static Expression compile(std::string_view text, const Schema& schema);

  Expression(Expression&&) noexcept;
  Expression& operator=(Expression&&) noexcept;
  ~Expression();

  Value evaluate(const EvalContext& context) const;
  /// True only when the expression evaluates to true (missing and false are not).
  bool holds(const EvalContext& context) const { return evaluate(context).is_true(); }
  /// The expression with the values its parts had, e.g. "amount_base (12500) > 10000".
  std::string explain(const EvalContext& context) const;

  Type type() const;
  const std::string& text() const { return text_; }
  /// Indices into Schema::features of the features it reads.
  const std::vector<std::size_t>& features_used() const { return features_used_; }

 private:
  Expression(std::string text, std::unique_ptr<Node> root, std::vector<std::size_t> features);
  std::string text_;
  std::unique_ptr<Node> root_;
  std::vector<std::size_t> features_used_;
};

/// The event fields expressions can read, with their types (attributes.NAME are `any`).
const std::vector<std::pair<std::string, Type>>& event_fields();

}  // namespace fraud::rules

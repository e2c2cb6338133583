#pragma once
// The typed tree a `when:` expression compiles into (rules/expression.h): one node per
// literal, field, feature, operator and call. Each evaluates to a Value and explains itself.
// Internal to the rules module; the parser (expression.cpp) builds it, the functions table
// (expression_functions.h) adds calls.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rules/expression.h"

namespace fraud::rules {

struct Node {
  Node(Type t, std::string_view source, std::size_t at) : type(t), text(source), offset(at) {}
  virtual ~Node() = default;
  virtual Value eval(const EvalContext& c) const = 0;
  /// Appends this node as explanations show it: a literal as written, anything else as
  /// written followed by its value.
  virtual void explain(const EvalContext& c, std::string& out) const;

  Type type;
  std::string text;  ///< the source it was compiled from
  std::size_t offset;
};

namespace detail {

using NodePtr = std::unique_ptr<Node>;

/// A string as a value: an empty one is missing (the contract's absent optional fields).
Value text(std::string_view s);
/// A number as a value: none, or one past the decimal range, is missing.
Value number(std::optional<Decimal> d);

/// Whether a value of type `from` may stand where `to` is expected.
bool assignable(Type from, Type to);
/// Throws a type mismatch naming `role` ("the argument of abs()") unless `node` is `type`.
void require_type(const Node& node, Type type, const std::string& role);

/// One field of the event contract an expression can name.
struct FieldSpec {
  const char* name;
  Type type;
  Value (*read)(const EvalContext&);
  bool code = false;  ///< an ISO code (country, currency): compared case-insensitively
};
std::span<const FieldSpec> field_specs();
const FieldSpec* find_field(std::string_view name);

struct Literal : Node {
  Literal(Value v, Type t, std::string_view source, std::size_t at, std::string storage = {});
  Value eval(const EvalContext&) const override { return value; }
  void explain(const EvalContext&, std::string& out) const override { out += text; }
  std::string owned;  ///< a string literal's text, which `value` views
  Value value;
};

/// The literal `node` is, if it is one of `kind`; otherwise null.
const Literal* literal_of(const Node& node, Value::Kind kind);

struct Field : Node {
  Field(const FieldSpec& spec, std::string_view source, std::size_t at);
  Value eval(const EvalContext& c) const override { return spec.read(c); }
  const FieldSpec& spec;
};

/// True for a field holding an ISO code. Events carry codes in upper case (the decoder
/// refuses others), so a rule's literals and list items for such a field are upper-cased
/// when compiled: 'ir' matches IR, and so does a list written [ir, kp].
bool is_code(const Node& node);
std::string upper(std::string_view text);
/// `literal` upper-cased in place when it is a string compared with a code field.
void match_code_case(const Node& field, Node& literal);

/// attributes.NAME: the event's free-form attribute of that name, of any type.
struct Attribute : Node {
  Attribute(std::string attribute, std::string_view source, std::size_t at);
  Value eval(const EvalContext& c) const override;
  std::string name;
};

/// A feature the rule file declares, by its index in Schema::features.
struct Feature : Node {
  Feature(std::size_t i, Type t, std::string_view source, std::size_t at) : Node(t, source, at), index(i) {}
  Value eval(const EvalContext& c) const override { return index < c.features.size() ? c.features[index] : Value{}; }
  std::size_t index;
};

struct Not : Node {
  Not(NodePtr operand, std::string_view source, std::size_t at);
  Value eval(const EvalContext& c) const override;
  void explain(const EvalContext& c, std::string& out) const override;
  NodePtr inner;
};

struct Negate : Node {
  Negate(NodePtr operand, std::string_view source, std::size_t at);
  Value eval(const EvalContext& c) const override;
  NodePtr inner;
};

/// and / or, with three-valued logic.
struct Logical : Node {
  Logical(bool is_and, NodePtr l, NodePtr r, std::string_view source, std::size_t at);
  Value eval(const EvalContext& c) const override;
  void explain(const EvalContext& c, std::string& out) const override;
  bool conjunction;
  NodePtr left, right;
};

/// ==, !=, <, <=, >, >=: missing when either side is, or when they differ in kind.
struct Comparison : Node {
  Comparison(std::string_view op, NodePtr l, NodePtr r, std::string_view source, std::size_t at);
  Value eval(const EvalContext& c) const override;
  void explain(const EvalContext& c, std::string& out) const override;
  std::string oper;
  NodePtr left, right;
};

/// + - * / in exact decimals: missing on a missing operand, an overflow or x / 0.
struct Arithmetic : Node {
  Arithmetic(char op, NodePtr l, NodePtr r, std::string_view source, std::size_t at);
  Value eval(const EvalContext& c) const override;
  char oper;
  NodePtr left, right;
};

/// `x in [..]` or `x in list_name`; strings compare as text, numbers exactly.
struct In : Node {
  In(NodePtr l, std::vector<std::string> strings, std::vector<Decimal> numbers, bool negated, std::string set_text,
     std::string_view source, std::size_t at);
  Value eval(const EvalContext& c) const override;
  void explain(const EvalContext& c, std::string& out) const override;
  NodePtr left;
  std::vector<std::string> texts;  ///< sorted
  std::vector<Decimal> values;
  bool negate;
  std::string set;  ///< as written, for explanations
};

/// `x in name` for a runtime list: on the list for an event that occurred when the entry was
/// in force (rules/runtime_lists.h).
struct InRuntimeList : Node {
  InRuntimeList(NodePtr l, std::string list_name, bool negated, std::string_view source, std::size_t at);
  Value eval(const EvalContext& c) const override;
  void explain(const EvalContext& c, std::string& out) const override;
  NodePtr left;
  std::string list;
  bool negate;
};

/// A function call (expression_functions.h): its evaluation over its argument nodes.
struct Call : Node {
  using Fn = std::function<Value(const EvalContext&, const std::vector<NodePtr>&)>;
  Call(Type t, Fn f, std::vector<NodePtr> arguments, std::string_view source, std::size_t at);
  Value eval(const EvalContext& c) const override { return fn(c, args); }
  Fn fn;
  std::vector<NodePtr> args;
};

}  // namespace detail
}  // namespace fraud::rules

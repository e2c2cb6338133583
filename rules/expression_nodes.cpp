#include "rules/expression_nodes.h"

#include <algorithm>
#include <cctype>

namespace fraud::rules {

void Node::explain(const EvalContext& c, std::string& out) const {
  out += text;
  out += " (" + eval(c).str() + ")";
}

namespace detail {

Value text(std::string_view s) { return s.empty() ? Value{} : Value::of(s); }
Value number(std::optional<Decimal> d) { return d ? Value::of(*d) : Value{}; }

bool assignable(Type from, Type to) { return from == to || from == Type::any || to == Type::any; }

void require_type(const Node& node, Type type, const std::string& role) {
  if (!assignable(node.type, type))
    throw ExpressionError("type mismatch: " + role + " must be " + to_string(type) + ", but '" + node.text + "' is " +
                              to_string(node.type),
                          node.offset);
}

// ---------------------------------------------------------------- fields

namespace {

Value number(const std::optional<double>& d) { return d ? detail::number(Decimal::from_double(*d)) : Value{}; }

// Every field of the contract an expression can name. Empty optional strings are missing.
const FieldSpec kFields[] = {
    {"amount", Type::number, [](const EvalContext& c) { return Value::of(Decimal::from_money(c.event.amount)); }},
    {"amount_base", Type::number, [](const EvalContext& c) { return c.amount_base; }},
    {"currency", Type::string, [](const EvalContext& c) { return text(c.event.amount.currency); }, true},
    {"kind", Type::string,
     [](const EvalContext& c) { return Value::of(std::string_view(events::to_string(c.event.kind))); }},
    {"direction", Type::string,
     [](const EvalContext& c) { return Value::of(std::string_view(events::to_string(c.event.direction))); }},
    {"channel", Type::string, [](const EvalContext& c) { return text(c.event.channel); }},
    {"event_id", Type::string, [](const EvalContext& c) { return text(c.event.event_id); }},
    {"transaction_id", Type::string, [](const EvalContext& c) { return text(c.event.transaction_id); }},
    {"account_id", Type::string, [](const EvalContext& c) { return text(c.event.account_id); }},
    {"customer_id", Type::string, [](const EvalContext& c) { return text(c.event.customer_id); }},
    {"merchant.id", Type::string, [](const EvalContext& c) { return text(c.event.merchant.id); }},
    {"merchant.name", Type::string, [](const EvalContext& c) { return text(c.event.merchant.name); }},
    {"merchant.mcc", Type::string, [](const EvalContext& c) { return text(c.event.merchant.mcc); }},
    {"merchant.country", Type::string, [](const EvalContext& c) { return text(c.event.merchant.country); }, true},
    {"counterparty.account", Type::string, [](const EvalContext& c) { return text(c.event.counterparty.account); }},
    {"counterparty.name", Type::string, [](const EvalContext& c) { return text(c.event.counterparty.name); }},
    {"counterparty.country", Type::string, [](const EvalContext& c) { return text(c.event.counterparty.country); },
     true},
    {"card.fingerprint", Type::string, [](const EvalContext& c) { return text(c.event.card.fingerprint); }},
    {"card.bin", Type::string, [](const EvalContext& c) { return text(c.event.card.bin); }},
    {"device.id", Type::string, [](const EvalContext& c) { return text(c.event.device.id); }},
    {"device.ip", Type::string, [](const EvalContext& c) { return text(c.event.device.ip); }},
    {"location.country", Type::string, [](const EvalContext& c) { return text(c.event.location.country); }, true},
    {"location.city", Type::string, [](const EvalContext& c) { return text(c.event.location.city); }},
    {"location.lat", Type::number, [](const EvalContext& c) { return number(c.event.location.lat); }},
    {"location.lon", Type::number, [](const EvalContext& c) { return number(c.event.location.lon); }},
    // Not the producer's: true for a history event the inline door blocked and the bank declined
    // (FeatureEngine::decline); false for the event being decided.
    {"declined", Type::boolean, [](const EvalContext& c) { return Value::of(c.event.declined); }},
};

}  // namespace

std::span<const FieldSpec> field_specs() { return kFields; }

const FieldSpec* find_field(std::string_view name) {
  for (const auto& f : kFields)
    if (name == f.name) return &f;
  return nullptr;
}

Field::Field(const FieldSpec& field, std::string_view source, std::size_t at)
    : Node(field.type, source, at), spec(field) {}

bool is_code(const Node& node) {
  auto* field = dynamic_cast<const Field*>(&node);
  return field && field->spec.code;
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

void match_code_case(const Node& field, Node& literal) {
  auto* l = dynamic_cast<Literal*>(&literal);
  if (!is_code(field) || !l || l->value.kind != Value::Kind::string) return;
  l->owned = upper(l->owned);
  l->value.string = l->owned;
}

Attribute::Attribute(std::string attribute, std::string_view source, std::size_t at)
    : Node(Type::any, source, at), name(std::move(attribute)) {}

Value Attribute::eval(const EvalContext& c) const {
  for (const auto& [key, value] : c.event.attributes) {
    if (key != name) continue;
    if (auto* s = std::get_if<std::string>(&value)) return Value::of(std::string_view(*s));
    if (auto* d = std::get_if<double>(&value)) return detail::number(Decimal::from_double(*d));
    return Value::of(std::get<bool>(value));
  }
  return {};
}

// ---------------------------------------------------------------- literals and operators

Literal::Literal(Value v, Type t, std::string_view source, std::size_t at, std::string storage)
    : Node(t, source, at), owned(std::move(storage)), value(v) {
  if (value.kind == Value::Kind::string) value.string = owned;
}

const Literal* literal_of(const Node& node, Value::Kind kind) {
  auto* literal = dynamic_cast<const Literal*>(&node);
  return literal && literal->value.kind == kind ? literal : nullptr;
}

Not::Not(NodePtr operand, std::string_view source, std::size_t at)
    : Node(Type::boolean, source, at), inner(std::move(operand)) {}

Value Not::eval(const EvalContext& c) const {
  auto v = inner->eval(c);
  return v.kind == Value::Kind::boolean ? Value::of(!v.boolean) : Value{};
}

void Not::explain(const EvalContext& c, std::string& out) const {
  out += "not (";
  inner->explain(c, out);
  out += ")";
}

Negate::Negate(NodePtr operand, std::string_view source, std::size_t at)
    : Node(Type::number, source, at), inner(std::move(operand)) {}

Value Negate::eval(const EvalContext& c) const {
  auto v = inner->eval(c);
  return v.kind == Value::Kind::number ? Value::of(-v.number) : Value{};
}

Logical::Logical(bool is_and, NodePtr l, NodePtr r, std::string_view source, std::size_t at)
    : Node(Type::boolean, source, at), conjunction(is_and), left(std::move(l)), right(std::move(r)) {}

Value Logical::eval(const EvalContext& c) const {
  auto a = left->eval(c);
  if (a.kind == Value::Kind::boolean && a.boolean != conjunction) return a;  // short-circuit
  auto b = right->eval(c);
  if (b.kind == Value::Kind::boolean && b.boolean != conjunction) return b;
  if (a.is_missing() || b.is_missing()) return {};
  return Value::of(conjunction);
}

// For `and` every part mattered; for `or`, only the parts that held.
void Logical::explain(const EvalContext& c, std::string& out) const {
  if (conjunction) {
    left->explain(c, out);
    out += " and ";
    right->explain(c, out);
    return;
  }
  bool l = left->eval(c).is_true(), r = right->eval(c).is_true();
  if (l) left->explain(c, out);
  if (l && r) out += " or ";
  if (r || !l) right->explain(c, out);
}

namespace {

int compare(const Value& a, const Value& b) {
  if (a.kind == Value::Kind::number) return a.number < b.number ? -1 : (b.number < a.number ? 1 : 0);
  if (a.kind == Value::Kind::string) return a.string.compare(b.string);
  return static_cast<int>(a.boolean) - static_cast<int>(b.boolean);
}

}  // namespace

Comparison::Comparison(std::string_view op, NodePtr l, NodePtr r, std::string_view source, std::size_t at)
    : Node(Type::boolean, source, at), oper(op), left(std::move(l)), right(std::move(r)) {}

Value Comparison::eval(const EvalContext& c) const {
  auto a = left->eval(c), b = right->eval(c);
  if (a.is_missing() || b.is_missing() || a.kind != b.kind) return {};
  int r = compare(a, b);
  if (oper == "==") return Value::of(r == 0);
  if (oper == "!=") return Value::of(r != 0);
  if (oper == "<") return Value::of(r < 0);
  if (oper == "<=") return Value::of(r <= 0);
  if (oper == ">") return Value::of(r > 0);
  return Value::of(r >= 0);
}

void Comparison::explain(const EvalContext& c, std::string& out) const {
  left->explain(c, out);
  out += " " + oper + " ";
  right->explain(c, out);
}

Arithmetic::Arithmetic(char op, NodePtr l, NodePtr r, std::string_view source, std::size_t at)
    : Node(Type::number, source, at), oper(op), left(std::move(l)), right(std::move(r)) {}

Value Arithmetic::eval(const EvalContext& c) const {
  auto a = left->eval(c), b = right->eval(c);
  if (a.kind != Value::Kind::number || b.kind != Value::Kind::number) return {};
  switch (oper) {
    case '+': return number(Decimal::checked_add(a.number, b.number));
    case '-': return number(Decimal::checked_sub(a.number, b.number));
    case '*': return number(Decimal::checked_mul(a.number, b.number));
    default: return number(Decimal::checked_div(a.number, b.number));  // x / 0 is missing
  }
}

In::In(NodePtr l, std::vector<std::string> strings, std::vector<Decimal> numbers, bool negated, std::string set_text,
       std::string_view source, std::size_t at)
    : Node(Type::boolean, source, at), left(std::move(l)), texts(std::move(strings)), values(std::move(numbers)),
      negate(negated), set(std::move(set_text)) {
  std::sort(texts.begin(), texts.end());
}

Value In::eval(const EvalContext& c) const {
  auto v = left->eval(c);
  bool found;
  if (v.kind == Value::Kind::string) found = std::binary_search(texts.begin(), texts.end(), v.string, std::less<>());
  else if (v.kind == Value::Kind::number) found = std::find(values.begin(), values.end(), v.number) != values.end();
  else return {};
  return Value::of(found != negate);
}

void In::explain(const EvalContext& c, std::string& out) const {
  left->explain(c, out);
  out += negate ? " not in " : " in ";
  out += set;
}

InRuntimeList::InRuntimeList(NodePtr l, std::string list_name, bool negated, std::string_view source, std::size_t at)
    : Node(Type::boolean, source, at), left(std::move(l)), list(std::move(list_name)), negate(negated) {}

Value InRuntimeList::eval(const EvalContext& c) const {
  auto v = left->eval(c);
  if (v.kind != Value::Kind::string) return {};
  bool found = c.lists && c.lists->contains(list, v.string, c.event.occurred_at, c.lists_as_of);
  return Value::of(found != negate);
}

void InRuntimeList::explain(const EvalContext& c, std::string& out) const {
  left->explain(c, out);
  out += negate ? " not in " : " in ";
  out += list;
}

Call::Call(Type t, Fn f, std::vector<NodePtr> arguments, std::string_view source, std::size_t at)
    : Node(t, source, at), fn(std::move(f)), args(std::move(arguments)) {}

}  // namespace detail
}  // namespace fraud::rules

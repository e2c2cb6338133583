#include "rules/expression.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>

#include <date/tz.h>
#include <re2/re2.h>

#include "events/time.h"

namespace fraud::rules {

using events::Event;

// ---------------------------------------------------------------- values and fields

const char* to_string(Type type) {
  switch (type) {
    case Type::boolean: return "a boolean";
    case Type::number: return "a number";
    case Type::string: return "a string";
    case Type::any: return "any value";
  }
  return "?";
}

std::string Value::str() const {
  switch (kind) {
    case Kind::missing: return "missing";
    case Kind::boolean: return boolean ? "true" : "false";
    case Kind::number: return number.str();
    case Kind::string: return "'" + std::string(string) + "'";
  }
  return "?";
}

namespace {

Value text(std::string_view s) { return s.empty() ? Value{} : Value::of(s); }
Value number(std::optional<Decimal> d) { return d ? Value::of(*d) : Value{}; }
Value number(const std::optional<double>& d) { return d ? number(Decimal::from_double(*d)) : Value{}; }

using Accessor = Value (*)(const EvalContext&);

struct FieldSpec {
  const char* name;
  Type type;
  Accessor read;
  bool code = false;  ///< an ISO code (country, currency): compared case-insensitively
};

// Every field of the contract an expression can name. Empty optional strings are missing.
const FieldSpec kFields[] = {
    {"amount", Type::number, [](const EvalContext& c) { return Value::of(Decimal::from_money(c.event.amount)); }},
    {"amount_base", Type::number, [](const EvalContext& c) { return c.amount_base; }},
    {"currency", Type::string, [](const EvalContext& c) { return text(c.event.amount.currency); }, true},
    {"kind", Type::string, [](const EvalContext& c) { return Value::of(std::string_view(events::to_string(c.event.kind))); }},
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
    {"counterparty.country", Type::string, [](const EvalContext& c) { return text(c.event.counterparty.country); }, true},
    {"card.fingerprint", Type::string, [](const EvalContext& c) { return text(c.event.card.fingerprint); }},
    {"card.bin", Type::string, [](const EvalContext& c) { return text(c.event.card.bin); }},
    {"device.id", Type::string, [](const EvalContext& c) { return text(c.event.device.id); }},
    {"device.ip", Type::string, [](const EvalContext& c) { return text(c.event.device.ip); }},
    {"location.country", Type::string, [](const EvalContext& c) { return text(c.event.location.country); }, true},
    {"location.city", Type::string, [](const EvalContext& c) { return text(c.event.location.city); }},
    {"location.lat", Type::number, [](const EvalContext& c) { return number(c.event.location.lat); }},
    {"location.lon", Type::number, [](const EvalContext& c) { return number(c.event.location.lon); }},
};

const FieldSpec* find_field(std::string_view name) {
  for (const auto& f : kFields)
    if (name == f.name) return &f;
  return nullptr;
}

// ---------------------------------------------------------------- tokens

enum class Tok { end, number, string, name, lparen, rparen, lbracket, rbracket, comma, op };

struct Token {
  Tok kind = Tok::end;
  std::string_view text;
  std::size_t offset = 0;
};

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; }

std::vector<Token> tokenize(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    std::size_t start = i;
    if (std::isdigit(static_cast<unsigned char>(c))) {
      while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
      out.push_back({Tok::number, s.substr(start, i - start), start});
    } else if (c == '\'' || c == '"') {
      auto close = s.find(c, i + 1);
      if (close == std::string_view::npos) throw ExpressionError("unterminated string", start);
      out.push_back({Tok::string, s.substr(start + 1, close - start - 1), start});
      i = close + 1;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (i < s.size() && is_name_char(s[i])) ++i;
      out.push_back({Tok::name, s.substr(start, i - start), start});
    } else if (std::string_view("()[],").find(c) != std::string_view::npos) {
      static constexpr Tok kinds[] = {Tok::lparen, Tok::rparen, Tok::lbracket, Tok::rbracket, Tok::comma};
      out.push_back({kinds[std::string_view("()[],").find(c)], s.substr(i, 1), start});
      ++i;
    } else {
      for (std::string_view op : {"==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/"})
        if (s.substr(i).starts_with(op)) {
          out.push_back({Tok::op, s.substr(i, op.size()), start});
          i += op.size();
          break;
        }
      if (i == start) throw ExpressionError(std::string("unexpected character '") + c + "'", start);
    }
  }
  out.push_back({Tok::end, {}, s.size()});
  return out;
}

}  // namespace

// ---------------------------------------------------------------- nodes

struct Node {
  Node(Type t, std::string_view source, std::size_t at) : type(t), text(source), offset(at) {}
  virtual ~Node() = default;
  virtual Value eval(const EvalContext& c) const = 0;
  /// Appends this node as explanations show it: a literal as written, anything else as
  /// written followed by its value.
  virtual void explain(const EvalContext& c, std::string& out) const {
    out += text;
    out += " (" + eval(c).str() + ")";
  }
  virtual bool is_literal() const { return false; }

  Type type;
  std::string text;
  std::size_t offset;
};

namespace {

using NodePtr = std::unique_ptr<Node>;

struct Literal : Node {
  Literal(Value v, Type t, std::string_view source, std::size_t at, std::string storage = {})
      : Node(t, source, at), owned(std::move(storage)), value(v) {
    if (value.kind == Value::Kind::string) value.string = owned;
  }
  Value eval(const EvalContext&) const override { return value; }
  void explain(const EvalContext&, std::string& out) const override { out += text; }
  bool is_literal() const override { return true; }
  std::string owned;
  Value value;
};

struct Field : Node {
  Field(const FieldSpec& spec, std::string_view source, std::size_t at)
      : Node(spec.type, source, at), read(spec.read), code(spec.code) {}
  Value eval(const EvalContext& c) const override { return read(c); }
  Accessor read;
  bool code;
};

/// True for a field holding an ISO code. Events carry codes in upper case (the decoder
/// refuses others), so a rule's literals and list items for such a field are upper-cased
/// when compiled: 'ir' matches IR, and so does a list written [ir, kp].
bool is_code(const Node& node) {
  auto* field = dynamic_cast<const Field*>(&node);
  return field && field->code;
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

/// `literal` upper-cased in place when it is a string compared with a code field.
void match_code_case(const Node& field, Node& literal) {
  auto* l = dynamic_cast<Literal*>(&literal);
  if (!is_code(field) || !l || l->value.kind != Value::Kind::string) return;
  l->owned = upper(l->owned);
  l->value.string = l->owned;
}

struct Attribute : Node {
  Attribute(std::string attribute, std::string_view source, std::size_t at)
      : Node(Type::any, source, at), name(std::move(attribute)) {}
  Value eval(const EvalContext& c) const override {
    for (const auto& [key, value] : c.event.attributes) {
      if (key != name) continue;
      if (auto* s = std::get_if<std::string>(&value)) return Value::of(std::string_view(*s));
      if (auto* d = std::get_if<double>(&value)) return number(Decimal::from_double(*d));
      return Value::of(std::get<bool>(value));
    }
    return {};
  }
  std::string name;
};

struct Feature : Node {
  Feature(std::size_t i, Type t, std::string_view source, std::size_t at) : Node(t, source, at), index(i) {}
  Value eval(const EvalContext& c) const override { return index < c.features.size() ? c.features[index] : Value{}; }
  std::size_t index;
};

struct Not : Node {
  Not(NodePtr operand, std::string_view source, std::size_t at) : Node(Type::boolean, source, at), inner(std::move(operand)) {}
  Value eval(const EvalContext& c) const override {
    auto v = inner->eval(c);
    return v.kind == Value::Kind::boolean ? Value::of(!v.boolean) : Value{};
  }
  void explain(const EvalContext& c, std::string& out) const override {
    out += "not (";
    inner->explain(c, out);
    out += ")";
  }
  NodePtr inner;
};

struct Negate : Node {
  Negate(NodePtr operand, std::string_view source, std::size_t at) : Node(Type::number, source, at), inner(std::move(operand)) {}
  Value eval(const EvalContext& c) const override {
    auto v = inner->eval(c);
    return v.kind == Value::Kind::number ? Value::of(-v.number) : Value{};
  }
  NodePtr inner;
};

/// and / or, with three-valued logic.
struct Logical : Node {
  Logical(bool is_and, NodePtr l, NodePtr r, std::string_view source, std::size_t at)
      : Node(Type::boolean, source, at), conjunction(is_and), left(std::move(l)), right(std::move(r)) {}
  Value eval(const EvalContext& c) const override {
    auto a = left->eval(c);
    if (a.kind == Value::Kind::boolean && a.boolean != conjunction) return a;  // short-circuit
    auto b = right->eval(c);
    if (b.kind == Value::Kind::boolean && b.boolean != conjunction) return b;
    if (a.is_missing() || b.is_missing()) return {};
    return Value::of(conjunction);
  }
  // For `and` every part mattered; for `or`, only the parts that held.
  void explain(const EvalContext& c, std::string& out) const override {
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
  bool conjunction;
  NodePtr left, right;
};

int compare(const Value& a, const Value& b) {
  if (a.kind == Value::Kind::number) return a.number < b.number ? -1 : (b.number < a.number ? 1 : 0);
  if (a.kind == Value::Kind::string) return a.string.compare(b.string);
  return static_cast<int>(a.boolean) - static_cast<int>(b.boolean);
}

struct Comparison : Node {
  Comparison(std::string_view op, NodePtr l, NodePtr r, std::string_view source, std::size_t at)
      : Node(Type::boolean, source, at), oper(op), left(std::move(l)), right(std::move(r)) {}
  Value eval(const EvalContext& c) const override {
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
  void explain(const EvalContext& c, std::string& out) const override {
    left->explain(c, out);
    out += " " + oper + " ";
    right->explain(c, out);
  }
  std::string oper;
  NodePtr left, right;
};

struct Arithmetic : Node {
  Arithmetic(char op, NodePtr l, NodePtr r, std::string_view source, std::size_t at)
      : Node(Type::number, source, at), oper(op), left(std::move(l)), right(std::move(r)) {}
  Value eval(const EvalContext& c) const override {
    auto a = left->eval(c), b = right->eval(c);
    if (a.kind != Value::Kind::number || b.kind != Value::Kind::number) return {};
    switch (oper) {
      case '+': return number(Decimal::checked_add(a.number, b.number));
      case '-': return number(Decimal::checked_sub(a.number, b.number));
      case '*': return number(Decimal::checked_mul(a.number, b.number));
      default: return number(Decimal::checked_div(a.number, b.number));  // x / 0 is missing
    }
  }
  char oper;
  NodePtr left, right;
};

/// `x in [..]` or `x in list_name`; strings compare as text, numbers exactly.
struct In : Node {
  In(NodePtr l, std::vector<std::string> strings, std::vector<Decimal> numbers, bool negated, std::string set_text,
     std::string_view source, std::size_t at)
      : Node(Type::boolean, source, at), left(std::move(l)), texts(std::move(strings)), values(std::move(numbers)),
        negate(negated), set(std::move(set_text)) {
    std::sort(texts.begin(), texts.end());
  }
  Value eval(const EvalContext& c) const override {
    auto v = left->eval(c);
    bool found;
    if (v.kind == Value::Kind::string) found = std::binary_search(texts.begin(), texts.end(), v.string, std::less<>());
    else if (v.kind == Value::Kind::number) found = std::find(values.begin(), values.end(), v.number) != values.end();
    else return {};
    return Value::of(found != negate);
  }
  void explain(const EvalContext& c, std::string& out) const override {
    left->explain(c, out);
    out += negate ? " not in " : " in ";
    out += set;
  }
  NodePtr left;
  std::vector<std::string> texts;
  std::vector<Decimal> values;
  bool negate;
  std::string set;
};

struct Call : Node {
  using Fn = std::function<Value(const EvalContext&, const std::vector<NodePtr>&)>;
  Call(Type t, Fn f, std::vector<NodePtr> arguments, std::string_view source, std::size_t at)
      : Node(t, source, at), fn(std::move(f)), args(std::move(arguments)) {}
  Value eval(const EvalContext& c) const override { return fn(c, args); }
  Fn fn;
  std::vector<NodePtr> args;
};

// ---------------------------------------------------------------- parser

bool assignable(Type from, Type to) { return from == to || from == Type::any || to == Type::any; }

class Parser {
 public:
  Parser(std::string_view text, const Schema& schema) : text_(text), schema_(schema), tokens_(tokenize(text)) {}

  NodePtr parse() {
    auto node = parse_or();
    if (peek().kind != Tok::end) fail("unexpected '" + std::string(peek().text) + "'", peek().offset);
    return node;
  }

  std::vector<std::size_t> features_used;

 private:
  [[noreturn]] void fail(const std::string& message, std::size_t at) const { throw ExpressionError(message, at); }
  const Token& peek() const { return tokens_[pos_]; }
  const Token& next() { return tokens_[pos_++]; }
  bool accept_name(std::string_view word) {
    if (peek().kind == Tok::name && peek().text == word) return ++pos_, true;
    return false;
  }
  bool accept_op(std::string_view op) {
    if (peek().kind == Tok::op && peek().text == op) return ++pos_, true;
    return false;
  }
  void expect(Tok kind, const char* what) {
    if (peek().kind != kind) fail(std::string("expected ") + what, peek().offset);
    ++pos_;
  }
  std::string_view source_from(std::size_t start) const {
    auto end = pos_ > 0 ? tokens_[pos_ - 1].offset + tokens_[pos_ - 1].text.size() : start;
    if (pos_ > 0 && tokens_[pos_ - 1].kind == Tok::string) end += 2;  // the quotes
    return text_.substr(start, end - start);
  }

  /// Guards recursion: an absurdly deep expression is an error, never a stack overflow.
  struct Depth {
    Depth(Parser& p) : parser(p) {
      if (++parser.depth_ > parser.schema_.max_depth)
        parser.fail("nested deeper than " + std::to_string(parser.schema_.max_depth) + " levels", parser.peek().offset);
    }
    ~Depth() { --parser.depth_; }
    Parser& parser;
  };

  void require(const NodePtr& node, Type type, const std::string& role) const {
    if (!assignable(node->type, type))
      fail("type mismatch: " + role + " must be " + to_string(type) + ", but '" + node->text + "' is " +
               to_string(node->type),
           node->offset);
  }

  NodePtr parse_or() {
    Depth d(*this);
    auto start = peek().offset;
    auto left = parse_and();
    while (accept_name("or")) {
      auto right = parse_and();
      require(left, Type::boolean, "each side of 'or'");
      require(right, Type::boolean, "each side of 'or'");
      left = std::make_unique<Logical>(false, std::move(left), std::move(right), source_from(start), start);
    }
    return left;
  }

  NodePtr parse_and() {
    Depth d(*this);
    auto start = peek().offset;
    auto left = parse_not();
    while (accept_name("and")) {
      auto right = parse_not();
      require(left, Type::boolean, "each side of 'and'");
      require(right, Type::boolean, "each side of 'and'");
      left = std::make_unique<Logical>(true, std::move(left), std::move(right), source_from(start), start);
    }
    return left;
  }

  NodePtr parse_not() {
    Depth d(*this);
    auto start = peek().offset;
    if (accept_name("not")) {
      auto inner = parse_not();
      require(inner, Type::boolean, "the operand of 'not'");
      return std::make_unique<Not>(std::move(inner), source_from(start), start);
    }
    return parse_comparison();
  }

  NodePtr parse_comparison() {
    auto start = peek().offset;
    auto left = parse_sum();
    if (peek().kind == Tok::name && (peek().text == "in" || peek().text == "not")) return parse_in(std::move(left), start);
    for (std::string_view op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (!accept_op(op)) continue;
      auto right = parse_sum();
      if (!assignable(left->type, right->type))
        fail("type mismatch: '" + left->text + "' is " + to_string(left->type) + " but '" + right->text + "' is " +
                 to_string(right->type),
             right->offset);
      if ((op != "==" && op != "!=") && (left->type == Type::boolean || right->type == Type::boolean))
        fail("'" + std::string(op) + "' does not order booleans", left->offset);
      match_code_case(*left, *right);
      match_code_case(*right, *left);
      return std::make_unique<Comparison>(op, std::move(left), std::move(right), source_from(start), start);
    }
    return left;
  }

  NodePtr parse_in(NodePtr left, std::size_t start) {
    bool negated = accept_name("not");
    if (!accept_name("in")) fail("expected 'in' after 'not'", peek().offset);
    std::vector<std::string> texts;
    std::vector<Decimal> numbers;
    auto set_start = peek().offset;
    if (peek().kind == Tok::name) {
      auto name = std::string(next().text);
      auto list = schema_.lists.find(name);
      if (list == schema_.lists.end()) fail("unknown list '" + name + "' (declare it under lists:)", set_start);
      texts = list->second;
      require(left, Type::string, "the value tested against list '" + name + "'");
      if (is_code(*left))
        for (auto& t : texts) t = upper(t);
      return std::make_unique<In>(std::move(left), texts, numbers, negated, name, source_from(start), start);
    }
    expect(Tok::lbracket, "'[' or a list name after 'in'");
    while (peek().kind != Tok::rbracket) {
      auto item = parse_sum();
      auto* literal = dynamic_cast<Literal*>(item.get());
      if (!literal) fail("a set holds literals only", item->offset);
      require(item, left->type == Type::any ? item->type : left->type, "each member of the set");
      if (literal->value.kind == Value::Kind::string)
        texts.emplace_back(is_code(*left) ? upper(literal->value.string) : std::string(literal->value.string));
      else numbers.push_back(literal->value.number);
      if (peek().kind != Tok::comma) break;
      next();
    }
    expect(Tok::rbracket, "']'");
    return std::make_unique<In>(std::move(left), texts, numbers, negated, std::string(source_from(set_start)),
                                source_from(start), start);
  }

  NodePtr parse_sum() {
    Depth d(*this);
    auto start = peek().offset;
    auto left = parse_product();
    while (peek().kind == Tok::op && (peek().text == "+" || peek().text == "-")) {
      char op = next().text[0];
      auto right = parse_product();
      left = arithmetic(op, std::move(left), std::move(right), start);
    }
    return left;
  }

  NodePtr parse_product() {
    Depth d(*this);
    auto start = peek().offset;
    auto left = parse_unary();
    while (peek().kind == Tok::op && (peek().text == "*" || peek().text == "/")) {
      char op = next().text[0];
      auto right = parse_unary();
      if (op == '/' && right->is_literal() && static_cast<Literal&>(*right).value.number == Decimal())
        fail("division by zero", right->offset);
      left = arithmetic(op, std::move(left), std::move(right), start);
    }
    return left;
  }

  NodePtr arithmetic(char op, NodePtr left, NodePtr right, std::size_t start) {
    require(left, Type::number, std::string("each side of '") + op + "'");
    require(right, Type::number, std::string("each side of '") + op + "'");
    return std::make_unique<Arithmetic>(op, std::move(left), std::move(right), source_from(start), start);
  }

  NodePtr parse_unary() {
    Depth d(*this);
    auto start = peek().offset;
    if (accept_op("-")) {
      auto inner = parse_unary();
      require(inner, Type::number, "the operand of '-'");
      return std::make_unique<Negate>(std::move(inner), source_from(start), start);
    }
    return parse_primary();
  }

  NodePtr parse_primary() {
    Depth d(*this);
    const Token& t = next();
    switch (t.kind) {
      case Tok::number: {
        auto n = Decimal::parse(t.text);
        if (!n) fail("'" + std::string(t.text) + "' is not a number (up to six decimals)", t.offset);
        return std::make_unique<Literal>(Value::of(*n), Type::number, t.text, t.offset);
      }
      case Tok::string:
        return std::make_unique<Literal>(Value::of(t.text), Type::string, text_.substr(t.offset, t.text.size() + 2),
                                         t.offset, std::string(t.text));
      case Tok::lparen: {
        auto inner = parse_or();
        expect(Tok::rparen, "')'");
        return inner;
      }
      case Tok::name: return parse_name(t);
      default: fail(t.kind == Tok::end ? "the expression ends too early" : "unexpected '" + std::string(t.text) + "'",
                    t.offset);
    }
  }

  NodePtr parse_name(const Token& t) {
    if (t.text == "true" || t.text == "false")
      return std::make_unique<Literal>(Value::of(t.text == "true"), Type::boolean, t.text, t.offset);
    if (peek().kind == Tok::lparen) return parse_call(t);
    if (const auto* field = find_field(t.text)) return std::make_unique<Field>(*field, t.text, t.offset);
    if (t.text.starts_with("attributes.") && t.text.size() > 11)
      return std::make_unique<Attribute>(std::string(t.text.substr(11)), t.text, t.offset);
    for (std::size_t i = 0; i < schema_.features.size(); ++i) {
      if (schema_.features[i].first != t.text) continue;
      features_used.push_back(i);
      return std::make_unique<Feature>(i, schema_.features[i].second, t.text, t.offset);
    }
    fail("unknown field or feature '" + std::string(t.text) + "'", t.offset);
  }

  std::vector<NodePtr> arguments() {
    std::vector<NodePtr> args;
    expect(Tok::lparen, "'('");
    while (peek().kind != Tok::rparen) {
      args.push_back(parse_or());
      if (peek().kind != Tok::comma) break;
      next();
    }
    expect(Tok::rparen, "')' after the arguments");
    return args;
  }

  NodePtr parse_call(const Token& name) {
    auto start = name.offset;
    auto args = arguments();
    auto count = [&](std::size_t min, std::size_t max) {
      if (args.size() < min || args.size() > max)
        fail(std::string(name.text) + "() takes " + std::to_string(min) +
                 (max > min ? (max == 99 ? " or more" : " to " + std::to_string(max)) : "") + " arguments",
             start);
    };
    auto make = [&](Type type, Call::Fn fn) {
      return std::make_unique<Call>(type, std::move(fn), std::move(args), source_from(start), start);
    };
    std::string_view fn = name.text;
    if (fn == "abs") {
      count(1, 1);
      require(args[0], Type::number, "the argument of abs()");
      return make(Type::number, [](const EvalContext& c, const std::vector<NodePtr>& a) {
        auto v = a[0]->eval(c);
        return v.kind == Value::Kind::number ? Value::of(v.number < Decimal() ? -v.number : v.number) : Value{};
      });
    }
    if (fn == "min" || fn == "max") {
      count(2, 99);
      for (auto& a : args) require(a, Type::number, "each argument of " + std::string(fn) + "()");
      bool want_max = fn == "max";
      return make(Type::number, [want_max](const EvalContext& c, const std::vector<NodePtr>& a) {
        Value best;
        for (const auto& arg : a) {
          auto v = arg->eval(c);
          if (v.kind != Value::Kind::number) return Value{};
          if (best.is_missing() || (want_max ? best.number < v.number : v.number < best.number)) best = v;
        }
        return best;
      });
    }
    if (fn == "coalesce") {
      count(2, 99);
      Type type = args[0]->type;
      for (auto& a : args) require(a, type, "each argument of coalesce()");
      return make(type, [](const EvalContext& c, const std::vector<NodePtr>& a) {
        for (const auto& arg : a)
          if (auto v = arg->eval(c); !v.is_missing()) return v;
        return Value{};
      });
    }
    if (fn == "exists") {
      count(1, 1);
      return make(Type::boolean, [](const EvalContext& c, const std::vector<NodePtr>& a) {
        return Value::of(!a[0]->eval(c).is_missing());
      });
    }
    // Two strings in, a boolean out; missing when either is.
    auto string_test = [&](bool (*test)(std::string_view, std::string_view)) -> NodePtr {
      count(2, 2);
      require(args[0], Type::string, "the first argument of " + std::string(fn) + "()");
      require(args[1], Type::string, "the second argument of " + std::string(fn) + "()");
      return make(Type::boolean, [test](const EvalContext& c, const std::vector<NodePtr>& a) {
        auto s = a[0]->eval(c), other = a[1]->eval(c);
        if (s.kind != Value::Kind::string || other.kind != Value::Kind::string) return Value{};
        return Value::of(test(s.string, other.string));
      });
    };
    if (fn == "starts_with") return string_test([](std::string_view s, std::string_view p) { return s.starts_with(p); });
    if (fn == "contains")
      return string_test([](std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; });
    if (fn == "lower") {
      count(1, 1);
      require(args[0], Type::string, "the argument of lower()");
      return make(Type::string, [](const EvalContext& c, const std::vector<NodePtr>& a) {
        auto s = a[0]->eval(c);
        if (s.kind != Value::Kind::string) return Value{};
        auto& lowered = c.scratch.emplace_front(s.string);
        for (auto& ch : lowered)  // ASCII letters only: other bytes (UTF-8 included) stay as they are
          if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
        return Value::of(std::string_view(lowered));
      });
    }
    if (fn == "matches") return matches(std::move(args), start);
    if (fn == "is_round") {
      count(2, 2);
      require(args[0], Type::number, "the first argument of is_round()");
      auto* unit = dynamic_cast<Literal*>(args[1].get());
      if (!unit || unit->value.kind != Value::Kind::number || !(Decimal() < unit->value.number))
        fail("is_round()'s second argument must be a positive number literal, e.g. is_round(amount, 100)",
             args[1]->offset);
      return make(Type::boolean, [](const EvalContext& c, const std::vector<NodePtr>& a) {
        auto v = a[0]->eval(c), u = a[1]->eval(c);
        if (v.kind != Value::Kind::number) return Value{};
        return Value::of(v.number.micros() % u.number.micros() == 0);
      });
    }
    if (fn == "hour_of_day") return hour_of_day(std::move(args), start);
    fail("unknown function '" + std::string(fn) +
             "()'; known: abs, min, max, coalesce, exists, starts_with, contains, lower, matches, is_round, "
             "hour_of_day",
         start);
  }

  // matches(field, 'pattern'): whether the pattern matches anywhere in the string (anchor it
  // with ^ and $ for the whole string). RE2 syntax, compiled once when the rule file loads;
  // RE2 runs in time linear in the input whatever the pattern (no backtracking), and a
  // pattern that needs more than kRegexMemory to compile is a load error.
  static constexpr std::int64_t kRegexMemory = 1 << 20;
  NodePtr matches(std::vector<NodePtr> args, std::size_t start) {
    if (args.size() != 2) fail("matches() takes 2 arguments: a string and a pattern literal", start);
    require(args[0], Type::string, "the first argument of matches()");
    auto* literal = dynamic_cast<Literal*>(args[1].get());
    if (!literal || literal->value.kind != Value::Kind::string)
      fail("matches()'s second argument must be a pattern in a string literal, e.g. matches(merchant.name, '^ACME')",
           args[1]->offset);
    RE2::Options options;
    options.set_log_errors(false);
    options.set_max_mem(kRegexMemory);
    auto pattern = std::make_shared<const RE2>(std::string(literal->value.string), options);
    if (!pattern->ok()) fail("matches(): invalid pattern: " + pattern->error(), args[1]->offset);
    return std::make_unique<Call>(
        Type::boolean,
        [pattern](const EvalContext& c, const std::vector<NodePtr>& a) {
          auto s = a[0]->eval(c);
          if (s.kind != Value::Kind::string) return Value{};
          return Value::of(RE2::PartialMatch(re2::StringPiece(s.string.data(), s.string.size()), *pattern));
        },
        std::move(args), source_from(start), start);
  }

  // hour_of_day('Europe/Berlin'), hour_of_day('UTC') or hour_of_day('+01:00'): the hour of
  // the event's occurred_at on the wall clock of an IANA time zone (daylight saving included,
  // from the system's time-zone database through the date library) or at a fixed offset. The
  // zone is looked up once, when the rule file loads; an unknown one is a load error.
  NodePtr hour_of_day(std::vector<NodePtr> args, std::size_t start) {
    auto* literal = args.size() == 1 ? dynamic_cast<Literal*>(args[0].get()) : nullptr;
    if (!literal || literal->value.kind != Value::Kind::string)
      fail("hour_of_day() takes one time zone as a string literal: 'Europe/Berlin', 'UTC', '+01:00'", start);
    auto name = std::string(literal->value.string);
    std::function<std::int64_t(events::Timestamp)> local_hour;
    if (auto offset = fixed_offset(name)) {
      local_hour = [us = *offset](events::Timestamp t) { return hour_at(t + us); };
    } else {
      const date::time_zone* zone = nullptr;
      try {
        zone = date::locate_zone(name);
      } catch (const std::exception&) {
        fail("hour_of_day(): unknown time zone '" + name + "' (an IANA name such as 'Europe/Berlin', or 'UTC', '+01:00')",
             args[0]->offset);
      }
      local_hour = [zone](events::Timestamp t) {
        auto instant = date::sys_time<std::chrono::microseconds>(std::chrono::microseconds(t));
        return hour_at(zone->to_local(instant).time_since_epoch().count());
      };
    }
    return std::make_unique<Call>(
        Type::number,
        [local_hour](const EvalContext& c, const std::vector<NodePtr>&) {
          return Value::of(Decimal::from_int(local_hour(c.event.occurred_at)));
        },
        std::move(args), source_from(start), start);
  }

  /// 'UTC', 'Z', '+01:00', '-05:30' as microseconds east of UTC; nothing for anything else.
  static std::optional<events::Timestamp> fixed_offset(const std::string& zone) {
    if (zone == "UTC" || zone == "Z") return 0;
    if (zone.empty() || (zone[0] != '+' && zone[0] != '-')) return std::nullopt;
    if (auto t = events::parse_rfc3339("1970-01-01T00:00:00" + zone)) return -*t;
    return std::nullopt;
  }

  /// The hour (0-23) of a local time given as microseconds since the local epoch.
  static std::int64_t hour_at(std::int64_t local_us) {
    constexpr std::int64_t kHour = 3'600'000'000LL, kDay = 24 * kHour;
    return ((local_us % kDay) + kDay) % kDay / kHour;
  }

  std::string_view text_;
  const Schema& schema_;
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
};

}  // namespace

// ---------------------------------------------------------------- Expression

Expression Expression::compile(std::string_view text, const Schema& schema) {
  if (text.size() > schema.max_length)
    throw ExpressionError("longer than " + std::to_string(schema.max_length) + " characters", schema.max_length);
  Parser parser(text, schema);
  auto root = parser.parse();
  auto features = parser.features_used;
  std::sort(features.begin(), features.end());
  features.erase(std::unique(features.begin(), features.end()), features.end());
  return Expression(std::string(text), std::move(root), std::move(features));
}

Expression::Expression(std::string text, std::unique_ptr<Node> root, std::vector<std::size_t> features)
    : text_(std::move(text)), root_(std::move(root)), features_used_(std::move(features)) {}
Expression::Expression(Expression&&) noexcept = default;
Expression& Expression::operator=(Expression&&) noexcept = default;
Expression::~Expression() = default;

Value Expression::evaluate(const EvalContext& context) const { return root_->eval(context); }

std::string Expression::explain(const EvalContext& context) const {
  std::string out;
  root_->explain(context, out);
  return out;
}

Type Expression::type() const { return root_->type; }

const std::vector<std::pair<std::string, Type>>& event_fields() {
  static const auto fields = [] {
    std::vector<std::pair<std::string, Type>> out;
    for (const auto& f : kFields) out.emplace_back(f.name, f.type);
    return out;
  }();
  return fields;
}

}  // namespace fraud::rules

#include "rules/expression.h"

#include <algorithm>

#include "rules/expression_functions.h"
#include "rules/expression_lexer.h"
#include "rules/expression_nodes.h"

// The parser of the `when:` language: a recursive descent over the lexer's tokens that builds
// and type-checks the tree of rules/expression_nodes.h. Functions come from a table
// (rules/expression_functions.h).

namespace fraud::rules {

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

using namespace detail;

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
    if (peek().kind != Tok::name || peek().text != word) return false;
    ++pos_;
    return true;
  }
  bool accept_op(std::string_view op) {
    if (peek().kind != Tok::op || peek().text != op) return false;
    ++pos_;
    return true;
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

  void require(const NodePtr& node, Type type, const std::string& role) const { require_type(*node, type, role); }

  NodePtr parse_or() { return parse_logical("or", &Parser::parse_and); }
  NodePtr parse_and() { return parse_logical("and", &Parser::parse_not); }

  // A left-associative chain of 'or' (or of 'and') over the next tighter level.
  NodePtr parse_logical(const std::string& op, NodePtr (Parser::*operand)()) {
    Depth d(*this);
    auto start = peek().offset;
    auto left = (this->*operand)();
    while (accept_name(op)) {
      auto right = (this->*operand)();
      require(left, Type::boolean, "each side of '" + op + "'");
      require(right, Type::boolean, "each side of '" + op + "'");
      left = std::make_unique<Logical>(op == "and", std::move(left), std::move(right), source_from(start), start);
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
    if (peek().kind == Tok::name && (peek().text == "in" || peek().text == "not"))
      return parse_in(std::move(left), start);
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
      if (std::find(schema_.runtime_lists.begin(), schema_.runtime_lists.end(), name) != schema_.runtime_lists.end()) {
        require(left, Type::string, "the value tested against runtime list '" + name + "'");
        if (is_code(*left))
          fail("runtime lists hold ids compared exactly; test a country or currency code against a list under lists:",
               set_start);
        return std::make_unique<InRuntimeList>(std::move(left), name, negated, source_from(start), start);
      }
      auto list = schema_.lists.find(name);
      if (list == schema_.lists.end())
        fail("unknown list '" + name + "' (declare it under lists: or runtime_lists:)", set_start);
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
      if (auto* divisor = literal_of(*right, Value::Kind::number);
          op == '/' && divisor && divisor->value.number == Decimal())
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
      default:
        fail(t.kind == Tok::end ? "the expression ends too early" : "unexpected '" + std::string(t.text) + "'",
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
    const auto* function = find_function(name.text);
    if (!function) fail("unknown function '" + std::string(name.text) + "()'; known: " + function_names(), start);
    auto args = arguments();
    if (args.size() < function->min_args || args.size() > function->max_args) fail(arity(*function), start);
    auto plan = function->compile(args, start);
    return std::make_unique<Call>(plan.type, std::move(plan.fn), std::move(args), source_from(start), start);
  }

  /// "abs() takes 1 argument, e.g. abs(amount - 100)"
  static std::string arity(const Function& f) {
    auto out = std::string(f.name) + "() takes " + std::to_string(f.min_args);
    if (f.max_args == Function::kAny) out += " or more";
    else if (f.max_args > f.min_args) out += " to " + std::to_string(f.max_args);
    out += f.min_args == 1 && f.max_args == 1 ? " argument" : " arguments";
    return out + ", e.g. " + std::string(f.usage);
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
    for (const auto& f : field_specs()) out.emplace_back(f.name, f.type);
    return out;
  }();
  return fields;
}

}  // namespace fraud::rules

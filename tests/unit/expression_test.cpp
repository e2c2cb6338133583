// The `when:` language on its own (rules/expression.h): three-valued logic, ISO codes,
// exact arithmetic, explanations, the functions table, and compile errors that say where.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "events/time.h"
#include "rules/expression.h"
#include "rules/expression_functions.h"
#include "tests/support/event_builder.h"

using namespace fraud;
using rules::Expression;
using rules::ExpressionError;
using rules::Type;
using rules::Value;

namespace {

const rules::Schema& schema() {
  static const rules::Schema s{
      {{"spend_24h", Type::number}, {"tx_count_10m", Type::number}, {"tx_count_1h", Type::number}},
      {{"risky", {"kp", "IR"}}},
      4096,
      64};
  return s;
}

/// A 150.00 EUR card purchase in Germany, at 2026-07-01 12:30 UTC, without a merchant code.
events::Event purchase() {
  events::Event e = testing::EventBuilder().id("e1").amount("150.00").country("DE").at("2026-07-01T12:30:00Z");
  e.merchant.name = "ACME Online";
  return e;
}

/// What `text` evaluates to on purchase(), spend_24h = 900 and the other features missing.
Value eval(const std::string& text, const events::Event& event = purchase()) {
  std::vector<Value> features = {Value::of(rules::Decimal::from_int(900)), Value{}, Value{}};
  rules::EvalContext context{event, Value::of(rules::Decimal::from_money(event.amount)), features};
  return Expression::compile(text, schema()).evaluate(context);
}

std::string explain(const std::string& text) {
  auto event = purchase();
  std::vector<Value> features = {Value::of(rules::Decimal::from_int(900)), Value{}, Value{}};
  rules::EvalContext context{event, Value::of(rules::Decimal::from_money(event.amount)), features};
  return Expression::compile(text, schema()).explain(context);
}

/// The compile error of `text`: its message and offset.
std::pair<std::string, std::size_t> error_of(const std::string& text) {
  try {
    Expression::compile(text, schema());
  } catch (const ExpressionError& e) {
    return {e.what(), e.offset};
  }
  FAIL("compiled: " << text);
  return {};
}

}  // namespace

TEST_CASE("a missing operand makes and and or follow three-valued logic") {
  CHECK(eval("merchant.mcc == '7995'").is_missing());
  CHECK(eval("merchant.mcc == '7995' or amount > 100").is_true());
  CHECK(eval("merchant.mcc == '7995' and amount > 100").is_missing());
  CHECK(eval("merchant.mcc == '7995' and amount > 1000").kind == Value::Kind::boolean);
  CHECK(eval("not (merchant.mcc == '7995')").is_missing());
  CHECK(eval("tx_count_10m + 1 > 0").is_missing());
  CHECK(eval("coalesce(tx_count_10m, 0) + 1 > 0").is_true());
  CHECK(eval("exists(merchant.mcc)").kind == Value::Kind::boolean);
  CHECK_FALSE(eval("exists(merchant.mcc)").is_true());
}

TEST_CASE("ISO codes compare whatever the case a rule writes them in") {
  CHECK(eval("location.country == 'de'").is_true());
  CHECK(eval("location.country in ['fr', 'de']").is_true());
  CHECK(eval("location.country not in risky").is_true());
  auto iranian = purchase();
  iranian.location.country = "IR";
  CHECK(eval("location.country in risky", iranian).is_true());
  auto korean = purchase();
  korean.location.country = "KP";
  CHECK(eval("location.country in risky", korean).is_true());
  CHECK_FALSE(eval("merchant.name == 'acme online'").is_true());  // a name is not a code
}

TEST_CASE("arithmetic is exact and a division by zero at run time is missing") {
  CHECK(eval("amount * 3 == 450").is_true());
  CHECK(eval("amount - 149.99 == 0.01").is_true());
  CHECK(eval("spend_24h / (amount - amount)").is_missing());
  CHECK(eval("-amount < 0").is_true());
  CHECK(error_of("amount / 0").first == "division by zero");
}

TEST_CASE("an explanation shows each part with the value it had") {
  CHECK(explain("amount > 100 and location.country == 'DE'") ==
        "amount (150) > 100 and location.country ('DE') == 'DE'");
  CHECK(explain("amount > 1000 or spend_24h >= 900") == "spend_24h (900) >= 900");
  CHECK(explain("location.country in ['FR', 'DE']") == "location.country ('DE') in ['FR', 'DE']");
}

TEST_CASE("the functions evaluate as documented") {
  CHECK(eval("abs(100 - amount) == 50").is_true());
  CHECK(eval("max(amount, spend_24h, 10) == 900").is_true());
  CHECK(eval("min(amount, tx_count_1h)").is_missing());
  CHECK(eval("starts_with(merchant.name, 'ACME')").is_true());
  CHECK(eval("contains(lower(merchant.name), 'online')").is_true());
  CHECK(eval("matches(merchant.name, '^ACME\\s')").is_true());
  CHECK(eval("is_round(amount, 50)").is_true());
  CHECK_FALSE(eval("is_round(amount, 100)").is_true());
  CHECK(eval("hour_of_day('UTC') == 12").is_true());
  CHECK(eval("hour_of_day('Europe/Berlin') == 14").is_true());  // summer time, UTC+2
  CHECK(eval("hour_of_day('-05:30') == 7").is_true());
}

TEST_CASE("every function's example in the table compiles") {
  for (const auto& f : rules::detail::functions()) {
    CAPTURE(f.usage);
    CHECK_NOTHROW(Expression::compile(f.usage, schema()));
  }
}

TEST_CASE("a compile error names what is wrong and where it is") {
  CHECK(error_of("amount > 'x'") ==
        std::pair<std::string, std::size_t>{"type mismatch: 'amount' is a number but ''x'' is a string", 9});
  CHECK(error_of("amount > 1 and 'x'").second == 15);
  CHECK(error_of("amount > 1 and frobnicate(amount)") ==
        std::pair<std::string, std::size_t>{
            "unknown function 'frobnicate()'; known: abs, min, max, coalesce, exists, starts_with, contains, lower, "
            "matches, is_round, hour_of_day",
            15});
  CHECK(error_of("abs(amount, 1) > 0") ==
        std::pair<std::string, std::size_t>{"abs() takes 1 argument, e.g. abs(amount - 100)", 0});
  CHECK(error_of("min(amount) > 0").first == "min() takes 2 or more arguments, e.g. min(spend_24h, 5000)");
  CHECK(error_of("matches(merchant.name, merchant.id)").second == 23);
  CHECK(error_of("hour_of_day('Mars/Olympus') == 1")
            .first.starts_with("hour_of_day(): unknown time zone 'Mars/Olympus'"));
  CHECK(error_of("merchant.name == 'ACME").first == "unterminated string");
  CHECK(error_of("amount > 1 ?").first == "unexpected character '?'");
  CHECK(error_of("card.colour == 'red'").first == "unknown field or feature 'card.colour'");
  CHECK(error_of("merchant.id in unknown_list").first ==
        "unknown list 'unknown_list' (declare it under lists: or runtime_lists:)");
  CHECK(error_of(std::string(100, '(') + "1" + std::string(100, ')')).first == "nested deeper than 64 levels");
}

TEST_CASE("docs/RULES.md lists every function of the table") {
  std::ifstream file(std::string(FRAUD_SOURCE_DIR) + "/docs/RULES.md");
  std::string docs((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  REQUIRE_FALSE(docs.empty());
  for (const auto& f : rules::detail::functions()) {
    CAPTURE(f.name);
    CHECK(docs.find("`" + std::string(f.name) + "(") != std::string::npos);
  }
}

#include <doctest/doctest.h>

#include "rules/rule_set.h"

using namespace fraud;

namespace {
events::Event event_of(std::int64_t minor, std::string currency) {
  events::Event e;
  e.event_id = "e1";
  e.amount = {minor, std::move(currency), 2};
  return e;
}
rules::RuleSet rule_set() { return {"test-1", {rules::LargeAmountRule{"large_amount", {1000000, "EUR", 2}}}}; }
}  // namespace

TEST_CASE("large_amount fires above the threshold and says why") {
  auto hits = rule_set().evaluate(event_of(1250000, "EUR"));
  REQUIRE(hits.size() == 1);
  CHECK(hits[0].rule_id == "large_amount");
  CHECK(hits[0].reason == "amount 12500.00 EUR > 10000.00 EUR");
}

TEST_CASE("large_amount does not fire at or below the threshold") {
  CHECK(rule_set().evaluate(event_of(1000000, "EUR")).empty());
  CHECK(rule_set().evaluate(event_of(5, "EUR")).empty());
}

TEST_CASE("large_amount ignores other currencies until rates exist") {
  CHECK(rule_set().evaluate(event_of(99999999, "USD")).empty());
}

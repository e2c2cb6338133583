// Rule files: loading, decisions, shadow rules, and load errors that say where. Runtime
// lists and suppressions: runtime_lists_test.cpp.
#include <doctest/doctest.h>

#include <limits>

#include "events/time.h"
#include "rules/decimal.h"
#include "rules/rule_set.h"
#include "tests/support/event_builder.h"
#include "tests/unit/rule_files.h"

using namespace fraud;
using rules::Decision;
using rules::RuleSet;
using testing::event_of;
using testing::load_error;

namespace {

const char* kFile = R"(
version: "t1"
base_currency: EUR
currency_rates: {USD: "0.5"}
rules:
  - id: big
    when: amount_base > 100
    score: 30
  - id: bigger
    when: amount_base > 1000
    score: 40
  - id: forced
    when: amount_base > 5000
    score: 0
    action: block
  - id: candidate
    when: amount_base > 10
    score: 1000
    mode: shadow
decision: {review_at: 50, block_at: 100}
)";

}  // namespace

TEST_CASE("scores add up and thresholds turn them into a decision") {
  auto rules = RuleSet::parse(kFile, "r.yaml");
  CHECK(rules.evaluate(event_of(500), {}).decision == Decision::allow);      // big: 30
  CHECK(rules.evaluate(event_of(200000), {}).decision == Decision::review);  // big + bigger: 70
  auto verdict = rules.evaluate(event_of(200000), {});
  CHECK(verdict.score == 70);
}

TEST_CASE("a forced action overrides a lower score") {
  auto verdict = RuleSet::parse(kFile, "r.yaml").evaluate(event_of(600000), {});
  CHECK(verdict.score == 70);
  CHECK(verdict.decision == Decision::block);
}

TEST_CASE("shadow rules are recorded but kept out of the decision") {
  auto verdict = RuleSet::parse(kFile, "r.yaml").evaluate(event_of(2000), {});  // 20 EUR: only the shadow rule
  REQUIRE(verdict.hits.size() == 1);
  CHECK(verdict.hits[0].rule_id == "candidate");
  CHECK(verdict.hits[0].shadow);
  CHECK(verdict.score == 0);
  CHECK(verdict.decision == Decision::allow);
}

TEST_CASE("amounts convert exactly to the base currency, and without a rate they are missing") {
  auto rules = RuleSet::parse(kFile, "r.yaml");
  CHECK(rules.amount_base(event_of(30000, "USD")).number == rules::Decimal::from_int(150));
  CHECK(rules.amount_base(event_of(30000, "GBP")).is_missing());
  // No amount rule can fire on it, so the built-in missing_rate rule sends it to review.
  auto verdict = rules.evaluate(event_of(99999999, "GBP"), {});
  REQUIRE(verdict.hits.size() == 1);
  CHECK(verdict.hits[0].rule_id == "missing_rate");
  CHECK(verdict.hits[0].explanation == "no rate for GBP in currency_rates (missing_rate: review)");
  CHECK(verdict.decision == Decision::review);
}

TEST_CASE("missing_rate says what an amount without a rate gets: review, block, or allow said aloud") {
  auto with = [](const std::string& setting) {
    return RuleSet::parse(std::string(kFile) + "missing_rate: " + setting + "\n", "r.yaml");
  };
  CHECK(with("block").evaluate(event_of(100, "NOK"), {}).decision == Decision::block);
  CHECK(with("allow").evaluate(event_of(100, "NOK"), {}).hits.empty());
  CHECK(with("allow").currencies_without_rate().size() > 100);
  CHECK(load_error(std::string(kFile) + "missing_rate: maybe\n").find("missing_rate must be review, block or allow") !=
        std::string::npos);
  CHECK(load_error(
            "version: x\nrules:\n  - {id: missing_rate, when: amount > 1}\ndecision: {review_at: 1, block_at: 2}\n")
            .find("rule id 'missing_rate' is the built-in rule") != std::string::npos);
}

TEST_CASE("each hit explains itself with the values it saw") {
  auto verdict = RuleSet::parse(kFile, "r.yaml").evaluate(event_of(1250000), {});
  REQUIRE(verdict.hits.size() >= 2);
  CHECK(verdict.hits[0].explanation == "amount_base (12500) > 100");
}

TEST_CASE("the version records the file's version and a hash of its content") {
  auto a = RuleSet::parse(kFile, "r.yaml").version();
  auto b = RuleSet::parse(std::string(kFile) + "\n# a comment\n", "r.yaml").version();
  CHECK(a.starts_with("t1+"));
  CHECK(a != b);
}

TEST_CASE("load errors name file, line and column") {
  CHECK(load_error(
            "version: x\nrules:\n  - id: a\n    when: amout > 1\n    score: 1\ndecision: {review_at: 1, block_at: 2}\n")
            .find("r.yaml:4:11: rule 'a': unknown field or feature 'amout'") != std::string::npos);
  CHECK(load_error("version: x\nrules:\n  - id: a\n    when: kind > 1\ndecision: {review_at: 1, block_at: 2}\n")
            .find("type mismatch") != std::string::npos);
  CHECK(load_error("version: x\nrules:\n  - id: a\n    when: amount / 0 > 1\ndecision: {review_at: 1, block_at: 2}\n")
            .find("division by zero") != std::string::npos);
  CHECK(load_error("version: x\nrules:\n  - id: a\n    when: velocity > 1\ndecision: {review_at: 1, block_at: 2}\n")
            .find("unknown field or feature 'velocity'") != std::string::npos);
}

TEST_CASE("a score or threshold that is not a whole number is a located load error, never a truncation") {
  for (const char* score : {"12.5", "40abc", "1e3", "' 7'", "99999999999"}) {
    CAPTURE(score);
    CHECK(load_error(std::string("version: x\nrules:\n  - id: a\n    when: amount > 1\n    score: ") + score +
                     "\ndecision: {review_at: 1, block_at: 2}\n")
              .find("r.yaml:5:12: rule 'a': score must be a whole number") != std::string::npos);
  }
  CHECK(load_error(
            "version: x\nrules:\n  - {id: a, when: amount > 1, score: 1}\ndecision: {review_at: 1.5, block_at: 2}\n")
            .find("r.yaml:4:23: decision.review_at must be a whole number") != std::string::npos);
}

TEST_CASE("a duplicate rule id, an unknown key and a bad threshold are all reported at once") {
  auto errors = load_error(
      "version: x\nrules:\n  - {id: a, when: amount > 1}\n  - {id: a, when: amount > 2, colour: red}\n"
      "decision: {review_at: 5, block_at: 2}\n");
  CHECK(errors.find("duplicate rule id 'a'") != std::string::npos);
  CHECK(errors.find("unknown key 'colour'") != std::string::npos);
  CHECK(errors.find("block_at must not be below review_at") != std::string::npos);
}

TEST_CASE("features cannot read features, so they cannot form a cycle") {
  auto errors = load_error(
      "version: x\nfeatures:\n  a: {aggregate: count, key: account_id, window: 1h}\n"
      "  b: {aggregate: count, key: account_id, window: 1h, where: 'a > 1'}\n"
      "rules: [{id: r, when: b > 1}]\ndecision: {review_at: 1, block_at: 2}\n");
  CHECK(errors.find("unknown field or feature 'a'") != std::string::npos);
}

TEST_CASE("a pair key takes two different fields, on windowed aggregates and first_seen only") {
  auto with_feature = [](const std::string& feature) {
    return load_error("version: x\nfeatures:\n  f: " + feature +
                      "\nrules: [{id: r, when: amount > 1}]\n"
                      "decision: {review_at: 1, block_at: 2}\n");
  };
  CHECK(with_feature("{aggregate: time_since_last, key: [account_id, merchant.id]}")
            .find("time_since_last and speed_kmh take one key field") != std::string::npos);
  CHECK(with_feature("{aggregate: count, key: [account_id, account_id], window: 1h}").find("two different fields") !=
        std::string::npos);
  CHECK(with_feature("{aggregate: first_seen, key: account_id}").find("first_seen needs a pair key") !=
        std::string::npos);
  CHECK(with_feature("{aggregate: count, key: [account_id, merchant.id, device.id], window: 1h}")
            .find("key is one field or a pair") != std::string::npos);
}

TEST_CASE("absurdly long or deep expressions are load errors, not crashes") {
  std::string deep = "amount > " + std::string(500, '(') + "1" + std::string(500, ')');
  CHECK(load_error("version: x\nrules: [{id: r, when: '" + deep + "'}]\ndecision: {review_at: 1, block_at: 2}\n")
            .find("nested deeper than 64") != std::string::npos);
  std::string many = "amount > 1";
  for (int i = 0; i < 600; ++i) many += " or amount > 1";
  CHECK(load_error("version: x\nrules: [{id: r, when: '" + many + "'}]\ndecision: {review_at: 1, block_at: 2}\n")
            .find("longer than 4096") != std::string::npos);
}

TEST_CASE("a rule file with more rules or features than the limits allow does not load") {
  rules::RuleLimits limits;
  limits.max_rules = 2;
  limits.max_features = 1;
  std::string text = "version: x\nfeatures:\n";
  for (int i = 0; i < 2; ++i) text += "  f" + std::to_string(i) + ": {aggregate: count, key: account_id, window: 1h}\n";
  text += "rules:\n";
  for (int i = 0; i < 3; ++i) text += "  - {id: r" + std::to_string(i) + ", when: 'amount > 1'}\n";
  text += "decision: {review_at: 1, block_at: 2}\n";
  auto error = load_error(text, limits);
  CHECK(error.find("r.yaml:") != std::string::npos);
  CHECK(error.find("more than 2 rules") != std::string::npos);
  CHECK(error.find("more than 1 features") != std::string::npos);
}

TEST_CASE("a list item or key that is not a plain value is a located load error, not an exception") {
  // Found by fuzz/rule_file_fuzz.cpp: yaml-cpp's conversion threw past the reader, which
  // would have ended the service on a reload.
  const std::string tail = "rules: [{id: r, when: 'amount > 1'}]\ndecision: {review_at: 1, block_at: 2}\n";
  CHECK(load_error("version: x\nlists:\n  bad: [KP, {a: b}]\n" + tail).find("r.yaml:3:") != std::string::npos);
  CHECK(load_error("version: x\nlists:\n  bad: [KP, {a: b}]\n" + tail).find("an item of list 'bad'") !=
        std::string::npos);
  CHECK(load_error("version: x\n[a]: 1\n" + tail).find("r.yaml:2:1: a key must be a plain name") != std::string::npos);
}

TEST_CASE("the starter pack loads") {
  auto rules = RuleSet::load(std::string(FRAUD_SOURCE_DIR) + "/config/rules.yaml");
  CHECK(rules.rules().size() == 13);
  CHECK(rules.features().size() == 9);
  CHECK(rules.schema().runtime_lists.size() == 6);
}

TEST_CASE("the starter pack's deny lists block and its allow list lets what one rule would review pass") {
  auto rules = RuleSet::load(std::string(FRAUD_SOURCE_DIR) + "/config/rules.yaml");
  rules::RuntimeLists lists;
  lists.add("deny_devices", "dev-9", {});
  lists.add("allow_accounts", "acc-vip", {});
  std::vector<rules::Value> no_features(rules.features().size());
  auto event = event_of(2000);  // 20 EUR
  event.occurred_at = 100;
  event.device.id = "dev-9";
  auto denied = rules.evaluate(event, no_features, &lists);
  CHECK(denied.decision == Decision::block);
  CHECK(denied.hits.at(0).rule_id == "deny_listed");
  auto large = event_of(1'500'000);  // 15,000 EUR: large_amount alone reviews it
  large.occurred_at = 100;
  CHECK(rules.evaluate(large, no_features, &lists).decision == Decision::review);
  large.account_id = "acc-vip";
  auto allowed = rules.evaluate(large, no_features, &lists);
  CHECK(allowed.decision == Decision::allow);
  CHECK(allowed.score == 10);
  large.device.id = "dev-9";  // a deny entry's block wins over an allow entry
  CHECK(rules.evaluate(large, no_features, &lists).decision == Decision::block);
}

TEST_CASE("arithmetic past the exact range is missing, never a wrapped number") {
  using rules::Decimal;
  CHECK_FALSE(Decimal::from_double(1e40).has_value());
  CHECK_FALSE(Decimal::from_double(std::numeric_limits<double>::infinity()).has_value());
  CHECK(Decimal::from_double(9.3e12)->str() == "9300000000000");  // past int64 micro-units, still exact
  auto huge = *Decimal::parse("999999999999999999999999");
  CHECK_FALSE(Decimal::checked_mul(huge, huge).has_value());
  CHECK_FALSE(Decimal::checked_div(huge, Decimal()).has_value());
  CHECK(Decimal::checked_mul(*Decimal::parse("1.5"), *Decimal::parse("2"))->str() == "3");
}

TEST_CASE("country and currency codes compare case-insensitively, in literals and lists") {
  auto set = RuleSet::parse(R"(
version: "t1"
base_currency: EUR
lists: {risky: [ir, Kp]}
rules:
  - {id: listed, when: "location.country in risky", score: 1}
  - {id: literal_set, when: "merchant.country in ['ir']", score: 1}
  - {id: equal, when: "currency == 'eur'", score: 1}
  - {id: names_are_exact, when: "location.city == 'tehran'", score: 1}
decision: {review_at: 50, block_at: 100}
)",
                            "r.yaml");
  auto e = event_of(100);
  e.location.country = "IR", e.merchant.country = "IR", e.location.city = "Tehran";
  std::vector<std::string> ids;
  for (const auto& hit : set.evaluate(e, {}).hits) ids.push_back(hit.rule_id);
  CHECK(ids == std::vector<std::string>{"listed", "literal_set", "equal"});
}

TEST_CASE("hour_of_day reads an IANA zone with daylight saving, and an unknown zone is a located load error") {
  auto set = RuleSet::parse(R"(
version: "t1"
rules:
  - {id: berlin_night, when: "hour_of_day('Europe/Berlin') < 5", score: 1}
  - {id: fixed_offset, when: "hour_of_day('+01:00') < 5", score: 1}
decision: {review_at: 50, block_at: 100}
)",
                            "r.yaml");
  auto at = [&](const char* when) {
    auto e = event_of(100);
    e.occurred_at = *events::parse_rfc3339(when);
    std::vector<std::string> ids;
    for (const auto& hit : set.evaluate(e, {}).hits) ids.push_back(hit.rule_id);
    return ids;
  };
  CHECK(at("2026-01-15T03:30:00Z") == std::vector<std::string>{"berlin_night", "fixed_offset"});  // 04:30 CET
  CHECK(at("2026-07-15T03:30:00Z") == std::vector<std::string>{"fixed_offset"});  // 05:30 CEST: day in Berlin
  CHECK(load_error("version: x\nrules:\n  - {id: a, when: \"hour_of_day('Europe/Berlinn') < 5\", score: 1}\n"
                   "decision: {review_at: 1, block_at: 2}\n")
            .find("unknown time zone 'Europe/Berlinn'") != std::string::npos);
}

TEST_CASE("contains, lower and matches test strings, and a pattern that does not compile is a located load error") {
  auto set = RuleSet::parse(R"yaml(
version: "t1"
rules:
  - {id: contains, when: "contains(merchant.name, 'CASINO')", score: 1}
  - {id: lower, when: "lower(merchant.name) == 'royal casino ltd'", score: 1}
  - {id: matches, when: "matches(merchant.name, '^Royal\\s+CASINO')", score: 1}
  - {id: anchored, when: "matches(merchant.name, '^CASINO')", score: 1}
  - {id: nested, when: "matches(lower(merchant.name), 'casino (ltd|plc)$')", score: 1}
decision: {review_at: 50, block_at: 100}
)yaml",
                            "r.yaml");
  auto e = event_of(100);
  e.merchant.name = "Royal CASINO Ltd";
  std::vector<std::string> ids;
  for (const auto& hit : set.evaluate(e, {}).hits) ids.push_back(hit.rule_id);
  CHECK(ids == std::vector<std::string>{"contains", "lower", "matches", "nested"});
  e.merchant.name.clear();  // missing: no string function fires
  CHECK(set.evaluate(e, {}).hits.empty());

  // A pattern that backtracking engines take exponential time over runs in linear time.
  auto nested = RuleSet::parse(R"yaml(
version: "t1"
rules: [{id: evil, when: "matches(merchant.name, '^(a+)+$')", score: 1}]
decision: {review_at: 50, block_at: 100}
)yaml",
                               "r.yaml");
  e.merchant.name = std::string(100000, 'a') + "!";
  CHECK(nested.evaluate(e, {}).hits.empty());

  auto error = load_error(R"yaml(
version: "t1"
rules: [{id: broken, when: "matches(merchant.name, 'a(b')", score: 1}]
decision: {review_at: 50, block_at: 100}
)yaml");
  CHECK(error.find("r.yaml:3:") != std::string::npos);
  CHECK(error.find("invalid pattern: missing )") != std::string::npos);
  CHECK(load_error(R"yaml(
version: "t1"
rules: [{id: dynamic, when: "matches(merchant.name, merchant.id)", score: 1}]
decision: {review_at: 50, block_at: 100}
)yaml")
            .find("must be a pattern in a string literal") != std::string::npos);
}

TEST_CASE("a duration is a positive number and a unit, s, m, h or d, up to a hundred years") {
  CHECK(rules::parse_duration("90s") == 90'000'000);
  CHECK(rules::parse_duration("10m") == 600'000'000);
  CHECK(rules::parse_duration("1.5h") == 5'400'000'000);
  CHECK(rules::parse_duration("200d") == 200LL * 86'400'000'000);
  CHECK_FALSE(rules::parse_duration("0d"));
  CHECK_FALSE(rules::parse_duration("-1h"));
  CHECK_FALSE(rules::parse_duration("12"));
  CHECK_FALSE(rules::parse_duration("3w"));
  CHECK_FALSE(rules::parse_duration("99999999999999d"));  // would wrap a 64-bit count of microseconds
}

TEST_CASE("every key field is a string field of the event, under the same name") {
  for (const auto& key : rules::kKeyFieldSpecs) {
    CAPTURE(key.name);
    bool found = false;
    for (const auto& [name, type] : rules::event_fields())
      found = found || (name == key.name && type == rules::Type::string);
    CHECK(found);
    CHECK(rules::to_string(key.field) == key.name);
  }
}

// The example of docs/TESTING.md, "Writing a test".
TEST_CASE("a rule whose score reaches review_at reviews the event") {
  const char* file = R"(
version: t
rules: [{id: big, when: amount > 1000, score: 60}]
decision: {review_at: 50, block_at: 80}
)";
  auto rules = RuleSet::parse(file, "t.yaml");
  CHECK(rules.evaluate(testing::EventBuilder().amount("1500.00"), {}).decision == Decision::review);
  CHECK(rules.evaluate(testing::EventBuilder().amount("15.00"), {}).decision == Decision::allow);
}

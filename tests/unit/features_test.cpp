// FeatureEngine semantics that no starter rule pins down: two-field keys on windowed
// aggregates.
#include <doctest/doctest.h>

#include "events/money.h"
#include "events/time.h"
#include "rules/features.h"
#include "tests/support/event_builder.h"

using namespace fraud;

namespace {

const char* kPairKeyed = R"yaml(
version: "pairs"
base_currency: EUR
features:
  at_merchant_1h:       {aggregate: count, key: [account_id, merchant.id], window: 1h}
  spend_at_merchant_1h: {aggregate: sum, field: amount, key: [account_id, merchant.id], window: 1h}
  cards_at_merchant_1h: {aggregate: distinct_count, field: card.fingerprint, key: [account_id, merchant.id], window: 1h}
  all_1h:               {aggregate: count, key: account_id, window: 1h}
rules:
  - {id: r, when: "at_merchant_1h > 100", score: 1}
decision: {review_at: 50, block_at: 80}
)yaml";

events::Event purchase(const std::string& account, const std::string& merchant, int minute,
                       const std::string& card = "card-1") {
  char when[32];
  std::snprintf(when, sizeof when, "2026-11-27T09:%02d:00Z", minute);
  return testing::EventBuilder().account(account).merchant(merchant).card(card).at(when);
}

std::string str(const rules::Value& v) { return v.str(); }

/// A rule set declaring `features` (the YAML lines under `features:`) and one rule that reads none.
std::shared_ptr<const rules::RuleSet> with_features(const std::string& features) {
  return std::make_shared<const rules::RuleSet>(rules::RuleSet::parse(
      "version: features\nbase_currency: EUR\nfeatures:\n" + features +
          "rules:\n  - {id: r, when: \"amount > 1000000000\", score: 1}\ndecision: {review_at: 50, block_at: 80}\n",
      "features.yaml"));
}

}  // namespace

TEST_CASE("a windowed feature keyed by account and merchant counts the account's events at the event's merchant") {
  auto rules = std::make_shared<const rules::RuleSet>(rules::RuleSet::parse(kPairKeyed, "pairs.yaml"));
  rules::FeatureEngine engine(rules);
  engine.observe(purchase("acc-1", "m-1", 0, "card-1"));
  engine.observe(purchase("acc-1", "m-2", 1, "card-2"));
  engine.observe(purchase("acc-2", "m-1", 2, "card-3"));  // another account at the same merchant
  engine.observe(purchase("acc-1", "m-1", 3, "card-4"));
  auto values = engine.observe(purchase("acc-1", "m-1", 4, "card-4"));
  CHECK(str(values[0]) == "3");   // minutes 0, 3 and 4 at m-1
  CHECK(str(values[1]) == "30");  // three times 10.00
  CHECK(str(values[2]) == "2");   // card-1 and card-4
  CHECK(str(values[3]) == "4");   // the account's events anywhere
  auto elsewhere = engine.observe(purchase("acc-1", "m-3", 5));
  CHECK(str(elsewhere[0]) == "1");  // only itself: the account's first at m-3
}

TEST_CASE("a pair-keyed feature is missing for an event without the key's second field") {
  auto rules = std::make_shared<const rules::RuleSet>(rules::RuleSet::parse(kPairKeyed, "pairs.yaml"));
  rules::FeatureEngine engine(rules);
  engine.observe(purchase("acc-1", "m-1", 0));
  auto values = engine.observe(purchase("acc-1", "", 1));
  CHECK(values[0].is_missing());
  CHECK(str(values[3]) == "2");
  // …and the event without a merchant is not counted as being at any merchant.
  CHECK(str(engine.observe(purchase("acc-1", "m-1", 2))[0]) == "2");
}

namespace {

const char* kAmounts = R"yaml(
version: "amounts"
base_currency: EUR
currency_rates: {USD: "0.5"}
features:
  spend_1h:      {aggregate: sum, field: amount, key: account_id, window: 1h}
  spend_base_1h: {aggregate: sum, field: amount_base, key: account_id, window: 1h}
  largest_1h:    {aggregate: max, field: amount_base, key: account_id, window: 1h}
  priced_1h:     {aggregate: count, key: account_id, window: 1h, where: "amount_base > 0"}
rules:
  - {id: r, when: "spend_1h > 0", score: 1}
decision: {review_at: 50, block_at: 80}
)yaml";

events::Event paid(const std::string& amount, const std::string& currency, int minute) {
  auto e = purchase("acc-1", "m-1", minute);
  std::string error;
  auto money = events::parse_money(amount, currency, error);
  REQUIRE_MESSAGE(money, error);
  e.amount = *money;
  return e;
}

}  // namespace

// The engine holds amounts as 64-bit micros and keeps larger ones apart (features.h, Entry):
// a value of any size a record can carry must still sum exactly, and a missing base amount
// must stay missing rather than read as a number.
TEST_CASE("amounts beyond 64-bit micros and amounts without a base amount keep their exact window values") {
  auto rules = std::make_shared<const rules::RuleSet>(rules::RuleSet::parse(kAmounts, "amounts.yaml"));
  rules::FeatureEngine engine(rules);
  engine.observe(paid("999999999999999.99", "EUR", 0));  // the largest amount: 1e21 micros
  engine.observe(paid("10.00", "GBP", 1));               // no rate: no base amount
  engine.observe(paid("999999999999999.99", "USD", 2));  // 5e20 micros in base
  auto values = engine.observe(paid("0.01", "USD", 3));
  CHECK(str(values[0]) == "2000000000000009.99");
  CHECK(str(values[1]) == "1499999999999999.99");  // …995 + …99 + 0.005; the GBP event has none
  CHECK(str(values[2]) == "999999999999999.99");
  CHECK(str(values[3]) == "3");  // all but the GBP one, which is not priced
}

TEST_CASE("a declined attempt counts toward counts and a where on declined, and its money toward no sum") {
  auto rules = with_features(R"yaml(
  card_tries_1h:    {aggregate: count, key: card.fingerprint, window: 1h}
  card_declines_1h: {aggregate: count, key: card.fingerprint, window: 1h, where: "declined"}
  card_spend_1h:    {aggregate: sum, field: amount, key: card.fingerprint, window: 1h}
  card_largest_1h:  {aggregate: max, field: amount, key: card.fingerprint, window: 1h}
)yaml");
  rules::FeatureEngine live(rules), loaded(rules);
  auto attempt = testing::EventBuilder().card("card-1").amount("900.00").at("2026-11-27T09:00:00Z").build();
  auto own = live.values_of(attempt);
  CHECK(str(own[2]) == "900");  // its own decision saw it as a payment
  CHECK(str(own[1]) == "0");
  live.add(attempt, /*declined=*/true);
  auto next = testing::EventBuilder().card("card-1").amount("10.00").at("2026-11-27T09:01:00Z").build();
  auto after = live.observe(next);
  CHECK(str(after[0]) == "2");   // the attempt is an attempt: counted
  CHECK(str(after[1]) == "1");   // and a decline
  CHECK(str(after[2]) == "10");  // but its money never moved
  CHECK(str(after[3]) == "10");
  // Read back from the history, it is the same.
  auto stored = attempt;
  stored.declined = true;
  loaded.remember(stored);
  auto read = loaded.observe(next);
  for (std::size_t i = 0; i < read.size(); ++i) CHECK(str(read[i]) == str(after[i]));
}

TEST_CASE("an attempt declined after its decision does not make the history forget the payment before it") {
  auto rules = with_features(R"yaml(
  since_last_payment: {aggregate: time_since_last, key: account_id, where: "not declined"}
)yaml");
  rules::FeatureEngine live(rules), loaded(rules);
  auto paid = testing::EventBuilder().at("2026-11-27T09:00:00Z").build();
  auto tried = testing::EventBuilder().at("2026-11-27T11:00:00Z").build();
  auto next = testing::EventBuilder().at("2026-11-27T11:05:00Z").build();
  live.observe(paid);
  live.values_of(tried);
  live.add(tried, /*declined=*/true);
  auto seen = live.observe(next);
  CHECK(str(seen[0]) == "7500");  // since the payment at 09:00, not the attempt at 11:00
  // What a replica that loads the account from the history computes.
  auto stored = tried;
  stored.declined = true;
  loaded.remember(paid);
  loaded.remember(stored);
  CHECK(str(loaded.observe(next)[0]) == "7500");
}

TEST_CASE("forgetting an event forgets the histories of its keys and leaves every other key as it was") {
  auto rules = std::make_shared<const rules::RuleSet>(rules::RuleSet::parse(kPairKeyed, "pairs.yaml"));
  rules::FeatureEngine engine(rules);
  engine.observe(purchase("acc-1", "m-1", 0));
  engine.observe(purchase("acc-2", "m-1", 1));
  auto rolled_back = purchase("acc-2", "m-2", 2);  // a transaction that added it rolled back
  engine.observe(rolled_back);
  auto held = engine.keys_held();
  engine.forget(rolled_back);
  CHECK(engine.keys_held() == held - 1);  // acc-2's history: the key fields are the account alone
  CHECK(str(engine.observe(purchase("acc-1", "m-1", 3))[3]) == "2");  // acc-1's history is whole
  CHECK(str(engine.observe(purchase("acc-2", "m-1", 4))[3]) == "1");  // acc-2's holds nothing now: load it again
}

// The starter pack (config/rules.yaml): each rule fires on the pattern it is for and stays
// quiet on a near miss. Features come from FeatureEngine replaying the history in memory,
// exactly as a backtest does.
#include <doctest/doctest.h>

#include <algorithm>

#include "events/money.h"
#include "events/time.h"
#include "rules/features.h"
#include "tests/support/event_builder.h"

using namespace fraud;

namespace {

/// A purchase of `amount` EUR on acc-1 at `when`; change what the case needs.
events::Event tx(const std::string& when, const std::string& amount = "50.00") {
  return testing::EventBuilder().at(when).amount(amount).country("DE");
}

/// Replays `history`, then evaluates `last`: the ids of the rules that fired on it.
std::vector<std::string> fired(const std::vector<events::Event>& history, const events::Event& last) {
  static auto rules = std::make_shared<const rules::RuleSet>(
      rules::RuleSet::load(std::string(FRAUD_SOURCE_DIR) + "/config/rules.yaml"));
  rules::FeatureEngine engine(rules);
  for (const auto& e : history) engine.observe(e);
  auto verdict = rules->evaluate(last, engine.observe(last));
  std::vector<std::string> ids;
  for (const auto& hit : verdict.hits) ids.push_back(hit.rule_id);
  return ids;
}

bool fires(const std::string& rule, const std::vector<events::Event>& history, const events::Event& last) {
  auto ids = fired(history, last);
  return std::find(ids.begin(), ids.end(), rule) != ids.end();
}

events::Event at_minute(int minute) {
  char when[32];
  std::snprintf(when, sizeof when, "2026-11-27T09:%02d:00Z", minute);
  return tx(when);
}

}  // namespace

TEST_CASE("large_amount") {
  CHECK(fires("large_amount", {}, tx("2026-11-27T09:00:00Z", "12000.00")));
  CHECK_FALSE(fires("large_amount", {}, tx("2026-11-27T09:00:00Z", "10000.00")));
}

TEST_CASE("velocity_10m counts the account's transactions in the last 10 minutes, this one included") {
  std::vector<events::Event> five = {at_minute(0), at_minute(2), at_minute(4), at_minute(6), at_minute(8)};
  CHECK(fires("velocity_10m", five, at_minute(9)));  // the sixth
  CHECK_FALSE(fires("velocity_10m", {at_minute(0), at_minute(2), at_minute(4), at_minute(6)}, at_minute(9)));
  CHECK_FALSE(fires("velocity_10m", five, at_minute(11)));  // minutes 0 and 1 have left the window
}

TEST_CASE("spend_spike_24h compares the day's spend with the 30-day daily average") {
  std::vector<events::Event> month;
  for (int day = 1; day <= 29; ++day) {
    char when[32];
    std::snprintf(when, sizeof when, "2026-10-%02dT12:00:00Z", day);
    month.push_back(tx(when, "100.00"));
  }
  CHECK(fires("spend_spike_24h", month, tx("2026-10-30T12:00:00Z", "1500.00")));
  CHECK_FALSE(fires("spend_spike_24h", month, tx("2026-10-30T12:00:00Z", "400.00")));
  // A young account (fewer than 30 transactions) has no pattern to spike from.
  std::vector<events::Event> fortnight(month.begin() + 15, month.end());
  CHECK_FALSE(fires("spend_spike_24h", fortnight, tx("2026-10-30T12:00:00Z", "1500.00")));
}

TEST_CASE("impossible_travel between card-present transactions") {
  auto berlin = tx("2026-11-27T09:00:00Z");
  berlin.channel = "card_present", berlin.card.fingerprint = "card-1", berlin.location.lat = 52.52,
  berlin.location.lon = 13.405;
  auto new_york = tx("2026-11-27T10:00:00Z");
  new_york.channel = "card_present", new_york.card.fingerprint = "card-1";
  new_york.location.lat = 40.71, new_york.location.lon = -74.0;
  CHECK(fires("impossible_travel", {berlin}, new_york));
  auto potsdam = new_york;
  potsdam.location.lat = 52.39, potsdam.location.lon = 13.06;
  CHECK_FALSE(fires("impossible_travel", {berlin}, potsdam));
}

TEST_CASE("impossible_travel sees the last card-present payment across online ones in between") {
  auto card_present = [](const std::string& when, double lat, double lon) {
    auto e = tx(when);
    e.channel = "card_present", e.card.fingerprint = "card-2", e.location.lat = lat, e.location.lon = lon;
    return e;
  };
  auto online = [](const std::string& when) {
    auto e = tx(when);
    e.channel = "card_not_present", e.card.fingerprint = "card-2";
    return e;
  };
  auto berlin = card_present("2026-11-27T09:00:00Z", 52.52, 13.405);
  auto new_york = card_present("2026-11-27T13:00:00Z", 40.71, -74.0);
  CHECK(fires("impossible_travel", {berlin}, new_york));
  CHECK(fires("impossible_travel", {berlin, online("2026-11-27T10:30:00Z"), online("2026-11-27T11:45:00Z")}, new_york));
}

TEST_CASE("impossible_travel needs real distance: coordinate noise and a quick hop to the next town are no travel") {
  auto card_present = [](const std::string& when, double lat, double lon) {
    auto e = tx(when);
    e.channel = "card_present", e.card.fingerprint = "card-3", e.location.lat = lat, e.location.lon = lon;
    return e;
  };
  auto berlin = card_present("2026-11-27T09:00:00Z", 52.52, 13.405);
  // 7.5 km and 20 s apart: below min_km, 0 km/h (it was 1,340 km/h).
  CHECK_FALSE(fires("impossible_travel", {berlin}, card_present("2026-11-27T09:00:20Z", 52.52, 13.515)));
  // Potsdam to Magdeburg, 110 km in 2 minutes: the 10-minute floor makes it 660 km/h.
  auto potsdam = card_present("2026-11-27T09:00:00Z", 52.39, 13.06);
  CHECK_FALSE(fires("impossible_travel", {potsdam}, card_present("2026-11-27T09:02:00Z", 52.13, 11.62)));
  // Berlin to Madrid in an hour is still impossible.
  CHECK(fires("impossible_travel", {berlin}, card_present("2026-11-27T10:00:00Z", 40.42, -3.70)));
}

TEST_CASE("large_transfer_new_payee") {
  auto transfer = [](const std::string& when, const std::string& payee) {
    auto e = tx(when, "6000.00");
    e.kind = events::Kind::transfer, e.counterparty.account = payee;
    return e;
  };
  CHECK(fires("large_transfer_new_payee", {transfer("2026-11-20T09:00:00Z", "DE-OLD")},
              transfer("2026-11-27T09:00:00Z", "DE-NEW")));
  CHECK_FALSE(fires("large_transfer_new_payee", {transfer("2026-11-20T09:00:00Z", "DE-OLD")},
                    transfer("2026-11-27T09:00:00Z", "DE-OLD")));
}

TEST_CASE("structuring: three deposits just under 10,000 within 24 hours") {
  auto deposit = [](const std::string& when, const std::string& amount = "9500.00") {
    auto e = tx(when, amount);
    e.kind = events::Kind::deposit, e.direction = events::Direction::credit;
    return e;
  };
  std::vector<events::Event> two = {deposit("2026-11-27T01:00:00Z"), deposit("2026-11-27T05:00:00Z")};
  CHECK(fires("structuring", two, deposit("2026-11-27T09:00:00Z")));
  CHECK_FALSE(fires("structuring", two, deposit("2026-11-27T09:00:00Z", "5000.00")));
  CHECK_FALSE(fires("structuring", {deposit("2026-11-25T01:00:00Z"), deposit("2026-11-25T05:00:00Z")},
                    deposit("2026-11-27T09:00:00Z")));
}

TEST_CASE("round_atm_night") {
  auto atm = [](const std::string& when, const std::string& amount) {
    auto e = tx(when, amount);
    e.channel = "atm", e.kind = events::Kind::withdrawal;
    return e;
  };
  CHECK(fires("round_atm_night", {}, atm("2026-11-27T01:30:00Z", "400.00")));        // 02:30 CET
  CHECK(fires("round_atm_night", {}, atm("2026-07-15T02:30:00Z", "400.00")));        // 04:30 CEST
  CHECK_FALSE(fires("round_atm_night", {}, atm("2026-07-15T03:30:00Z", "400.00")));  // 05:30 CEST, 04:30 CET
  CHECK_FALSE(fires("round_atm_night", {}, atm("2026-11-27T11:30:00Z", "400.00")));
  CHECK_FALSE(fires("round_atm_night", {}, atm("2026-11-27T01:30:00Z", "450.00")));
}

// One test per rule, each a firing event and a near miss; the country and MCC rules read alike.
TEST_CASE("high_risk_country") {
  auto e = tx("2026-11-27T09:00:00Z");
  e.location.country = "KP";
  CHECK(fires("high_risk_country", {}, e));
  auto payee = tx("2026-11-27T09:00:00Z");
  payee.counterparty.country = "IR";
  CHECK(fires("high_risk_country", {}, payee));
  CHECK_FALSE(fires("high_risk_country", {}, tx("2026-11-27T09:00:00Z")));
}

TEST_CASE("high_risk_mcc") {
  auto casino = tx("2026-11-27T09:00:00Z");
  casino.merchant.mcc = "7995";
  CHECK(fires("high_risk_mcc", {}, casino));
  auto grocer = tx("2026-11-27T09:00:00Z");
  grocer.merchant.mcc = "5411";
  CHECK_FALSE(fires("high_risk_mcc", {}, grocer));
  CHECK_FALSE(fires("high_risk_mcc", {}, tx("2026-11-27T09:00:00Z")));  // no merchant: missing, not an error
}

TEST_CASE("dormant_account_active after 180 days without activity") {
  CHECK(fires("dormant_account_active", {tx("2026-05-01T09:00:00Z")}, tx("2026-11-27T09:00:00Z")));
  CHECK_FALSE(fires("dormant_account_active", {tx("2026-11-17T09:00:00Z")}, tx("2026-11-27T09:00:00Z")));
  CHECK_FALSE(fires("dormant_account_active", {}, tx("2026-11-27T09:00:00Z")));  // a new account is not dormant
}

TEST_CASE("many_cards_one_device within an hour") {
  auto on_device = [](const std::string& when, const std::string& card) {
    auto e = tx(when);
    e.device.id = "dev-9", e.card.fingerprint = card;
    e.account_id = "acc-" + card;  // card testing spans accounts; the device is the key
    return e;
  };
  std::vector<events::Event> three = {on_device("2026-11-27T09:00:00Z", "c1"), on_device("2026-11-27T09:10:00Z", "c2"),
                                      on_device("2026-11-27T09:20:00Z", "c3")};
  CHECK(fires("many_cards_one_device", three, on_device("2026-11-27T09:30:00Z", "c4")));
  CHECK_FALSE(fires("many_cards_one_device", three, on_device("2026-11-27T09:30:00Z", "c3")));
  CHECK_FALSE(fires("many_cards_one_device", three, on_device("2026-11-27T10:15:00Z", "c4")));  // c1 left the hour
}

TEST_CASE("a late event counts at its own time, not at its arrival") {
  auto late = at_minute(1);
  std::vector<events::Event> history = {at_minute(20), at_minute(21), at_minute(22), at_minute(23), at_minute(24)};
  // Five events at 09:20-09:24 were processed first; the one from 09:01 arrives now and
  // sees none of them in its own ten minutes.
  CHECK_FALSE(fires("velocity_10m", history, late));
}

TEST_CASE("a key's history is loaded unless the database says no batch extended it before") {
  auto rules = std::make_shared<const rules::RuleSet>(
      rules::RuleSet::load(std::string(FRAUD_SOURCE_DIR) + "/config/rules.yaml"));
  rules::FeatureEngine engine(rules);
  auto event = tx("2026-11-27T10:00:00Z");
  auto requested = [&] {
    auto requests = engine.requests_for(event);
    return std::any_of(requests.begin(), requests.end(),
                       [](const auto& r) { return r.field == rules::KeyField::account_id; });
  };
  engine.synchronise(rules::KeyField::account_id, "acc-1", 1);  // the first batch ever to extend it
  CHECK_FALSE(requested());
  engine.observe(event);
  engine.synchronise(rules::KeyField::account_id, "acc-1", 2);  // the next one: what it holds is current
  CHECK_FALSE(requested());
  engine.synchronise(rules::KeyField::account_id, "acc-1", 4);  // another replica extended it meanwhile
  CHECK(requested());
  // A field whose versions were not kept all along: a first version proves nothing.
  engine.synchronise(rules::KeyField::account_id, "acc-2", 1, /*complete=*/false);
  auto other = event;
  other.account_id = "acc-2";
  auto requests = engine.requests_for(other);
  CHECK(std::any_of(requests.begin(), requests.end(), [](const auto& r) { return r.key == "acc-2"; }));
}

TEST_CASE("a loaded key lacks a latest event only while no held event is one its features can read") {
  auto rules = std::make_shared<const rules::RuleSet>(
      rules::RuleSet::load(std::string(FRAUD_SOURCE_DIR) + "/config/rules.yaml"));
  rules::FeatureEngine engine(rules);
  auto payment = [](const char* at, const char* channel) {
    auto e = tx(at);
    e.channel = channel;
    e.card.fingerprint = "card-1";
    e.location.lat = 52.52, e.location.lon = 13.40;
    return e;
  };
  engine.remember(payment("2026-11-27T10:00:00Z", "card_not_present"));
  CHECK(engine.lacks_latest(rules::KeyField::card_fingerprint, "card-1"));  // card_present_speed_kmh has none yet
  engine.remember(payment("2026-11-27T09:00:00Z", "card_present"));
  CHECK_FALSE(engine.lacks_latest(rules::KeyField::card_fingerprint, "card-1"));
  // A recent card-present payment is enough too: the loader must not read on past it.
  engine.remember(payment("2026-11-27T10:30:00Z", "card_present"));
  CHECK_FALSE(engine.lacks_latest(rules::KeyField::card_fingerprint, "card-1"));
}

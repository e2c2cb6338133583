// Runtime lists and suppressions: a list's value for an event is the entries in force when
// the event occurred, a suppression silences one rule for one account, and a rules file
// declares who may write a list. Decisions and load errors of rule files: rule_set_test.cpp.
#include <doctest/doctest.h>

#include "events/time.h"
#include "rules/rule_set.h"
#include "tests/unit/rule_files.h"

using namespace fraud;
using rules::Decision;
using rules::RuleSet;
using testing::event_of;
using testing::load_error;

namespace {

/// An entry or suppression in force by event time, from `from` until `until` (none: for good).
rules::InForce by_time(events::Timestamp from, std::optional<events::Timestamp> until = std::nullopt) {
  rules::InForce when;
  when.from = from;
  when.until = until;
  return when;
}

}  // namespace

TEST_CASE("a runtime list holds a value for the events that occurred while its entry was in force") {
  auto rules = RuleSet::parse(R"(
version: lists
base_currency: EUR
runtime_lists: [deny_accounts]
rules:
  - {id: denied, when: account_id in deny_accounts, score: 0, action: block}
  - {id: not_denied, when: account_id not in deny_accounts, score: 0}
decision: {review_at: 50, block_at: 100}
)",
                              "r.yaml");
  rules::RuntimeLists lists;
  lists.add("deny_accounts", "acc-1", by_time(1000, 2000));  // in force from 1000 until 2000
  lists.add("deny_accounts", "acc-2", by_time(1000));
  auto decide = [&](const std::string& account, events::Timestamp at, const rules::RuntimeLists* with) {
    auto event = event_of(100);
    event.account_id = account;
    event.occurred_at = at;
    return rules.evaluate(event, {}, with).decision;
  };
  CHECK(decide("acc-1", 999, &lists) == Decision::allow);
  CHECK(decide("acc-1", 1000, &lists) == Decision::block);
  CHECK(decide("acc-1", 1999, &lists) == Decision::block);
  CHECK(decide("acc-1", 2000, &lists) == Decision::allow);
  CHECK(decide("acc-2", 1'000'000, &lists) == Decision::block);
  CHECK(decide("acc-3", 1500, &lists) == Decision::allow);
  CHECK(decide("acc-1", 1500, nullptr) == Decision::allow);  // no lists loaded: nothing is on them
  auto event = event_of(100);
  event.occurred_at = 1500;
  auto verdict = rules.evaluate(event, {}, &lists);
  REQUIRE(verdict.hits.size() == 1);
  CHECK(verdict.hits[0].explanation == "account_id ('acc-1') in deny_accounts");
  // A list name and a value are one key: no crafted pair reads as another.
  rules::RuntimeLists crafted;
  crafted.add("deny_a", "ccounts", {});
  CHECK_FALSE(crafted.contains("deny_accounts", "", 1, std::nullopt));
}

TEST_CASE("a suppression silences one rule for one account while it is in force and nothing else") {
  auto rules = RuleSet::parse(R"(
version: suppressions
base_currency: EUR
rules:
  - {id: large, when: amount_base > 100, score: 60}
  - {id: trial, when: amount_base > 100, score: 60, mode: shadow}
  - {id: huge, when: amount_base > 1000, score: 0, action: block}
decision: {review_at: 50, block_at: 100}
)",
                              "r.yaml");
  rules::RuntimeLists lists;
  lists.suppress("large", "acc-1", by_time(1000, 2000));
  lists.suppress("trial", "acc-1", by_time(1000, 2000));
  auto verdict = [&](const std::string& account, events::Timestamp at, std::int64_t cents) {
    auto event = event_of(cents);
    event.account_id = account;
    event.occurred_at = at;
    return rules.evaluate(event, {}, &lists);
  };
  CHECK(verdict("acc-1", 1500, 20'000).decision == Decision::allow);
  CHECK(verdict("acc-1", 1500, 20'000).hits.empty());  // shadow too: a suppressed rule does not fire
  CHECK(verdict("acc-1", 1500, 20'000).shadow_decision == Decision::allow);
  CHECK(verdict("acc-1", 999, 20'000).decision == Decision::review);   // before it
  CHECK(verdict("acc-1", 2000, 20'000).decision == Decision::review);  // after it ended
  CHECK(verdict("acc-2", 1500, 20'000).decision == Decision::review);  // another account
  auto other_rule = verdict("acc-1", 1500, 200'000);                   // huge is not suppressed
  CHECK(other_rule.decision == Decision::block);
  REQUIRE(other_rule.hits.size() == 1);
  CHECK(other_rule.hits[0].rule_id == "huge");
  CHECK(lists.size() == 2);
  CHECK_FALSE(lists.contains("large", "acc-1", 1500, std::nullopt));  // a suppression is not a list entry
}

// Its rule file is spelled out like the runtime-list test's above: each test reads whole.
TEST_CASE("an entry counts by what a decision was made under: its end and expiry reach late-stamped events") {
  auto rules = RuleSet::parse(R"(
version: versions
base_currency: EUR
runtime_lists: [deny_accounts]
rules:
  - {id: denied, when: account_id in deny_accounts, score: 0, action: block}
  - {id: large, when: amount_base > 100, score: 60}
decision: {review_at: 50, block_at: 100}
)",
                              "r.yaml");
  rules::RuntimeLists lists;
  // Added at version 5 (at time 1000), ended at version 8 (at time 3000).
  rules::InForce entry = by_time(1000);
  entry.ended_at = 3000;
  entry.added_version = 5;
  entry.ended_version = 8;
  lists.add("deny_accounts", "acc-1", entry);
  // A suppression added at version 6 (at time 2000), expiring by itself at time 9000.
  rules::InForce suppression = by_time(2000, 9000);
  suppression.added_version = 6;
  lists.suppress("large", "acc-1", suppression);
  // An event of acc-1 that occurred at `at`, decided under `version` at `now` (none: before
  // versions were recorded, by event time).
  auto decide = [&](events::Timestamp at, std::optional<std::int64_t> version, events::Timestamp now = 5000,
                    std::int64_t cents = 100) {
    auto event = event_of(cents);
    event.account_id = "acc-1";
    event.occurred_at = at;
    std::optional<rules::ListsAsOf> as_of;
    if (version) as_of = rules::ListsAsOf{*version, now};
    return rules.evaluate(event, {}, &lists, as_of).decision;
  };
  CHECK(decide(500, 5) == Decision::block);   // stamped before the entry, decided after it: denied
  CHECK(decide(1500, 4) == Decision::allow);  // decided before the entry was added
  CHECK(decide(2500, 8) == Decision::allow);  // stamped inside its window, decided after it ended
  CHECK(decide(2500, 7) == Decision::block);
  CHECK(decide(2500, std::nullopt) == Decision::block);  // no version recorded: by event time
  CHECK(decide(3500, std::nullopt) == Decision::allow);
  CHECK(decide(500, std::nullopt) == Decision::allow);
  CHECK(decide(100, 4, 5000, 20'000) == Decision::review);  // neither the entry nor the suppression yet
  CHECK(decide(100, 8, 5000, 20'000) == Decision::allow);   // suppressed from version 6, however stamped
  // Expired by itself at 9000: a decision made after that is not suppressed, even for an
  // event stamped while it was in force (a late backlog).
  CHECK(decide(8000, 8, 9000, 20'000) == Decision::review);
  CHECK(decide(8000, 8, 8999, 20'000) == Decision::allow);
  CHECK(decide(8000, std::nullopt, 0, 20'000) == Decision::allow);  // by event time, before its expiry
}

TEST_CASE("a runtime list declares who may add to it and an entry's longest life, or neither") {
  auto rules = RuleSet::parse(
      "version: v\nbase_currency: EUR\nruntime_lists:\n  - deny_cards\n  - {name: deny_devices, writer: lead, "
      "longest_days: 30}\n  - {name: allow_accounts, writer: analyst}\nrules: []\ndecision: {review_at: 50, "
      "block_at: 100}\n",
      "r.yaml");
  REQUIRE(rules.list_policies().size() == 3);
  CHECK(rules.schema().runtime_lists == std::vector<std::string>{"deny_cards", "deny_devices", "allow_accounts"});
  CHECK_FALSE(rules.list_policies()[0].leads_only);
  CHECK_FALSE(rules.list_policies()[0].longest_days);
  CHECK(rules.list_policies()[1].leads_only);
  CHECK(rules.list_policies()[1].longest_days == 30);
  CHECK_FALSE(rules.list_policies()[2].leads_only);
}

TEST_CASE("runtime lists are refused with what is wrong and where") {
  const std::string thresholds = "decision: {review_at: 50, block_at: 100}\n";
  CHECK(load_error("version: v\nbase_currency: EUR\nruntime_lists: deny\nrules: []\n" + thresholds) ==
        "r.yaml:3:16: runtime_lists is a sequence of list names, e.g. [deny_cards], or of {name, writer: "
        "analyst|lead, longest_days}\n");
  CHECK(load_error("version: v\nbase_currency: EUR\nruntime_lists: [{name: deny, writer: admin}]\nrules: []\n" +
                   thresholds) == "r.yaml:3:38: a runtime list's writer is analyst or lead, not 'admin'\n");
  CHECK(load_error("version: v\nbase_currency: EUR\nruntime_lists: [{name: deny, longest_days: 0}]\nrules: []\n" +
                   thresholds) == "r.yaml:3:44: longest_days is a whole number of days from 1 to 3650\n");
  CHECK(load_error("version: v\nbase_currency: EUR\nruntime_lists: [{writer: lead}]\nrules: []\n" + thresholds) ==
        "r.yaml:3:17: a runtime list needs a name\n");
  CHECK(load_error("version: v\nbase_currency: EUR\nruntime_lists: [{name: deny, writer: }]\nrules: []\n" + thresholds)
            .find("a runtime list's writer is empty") != std::string::npos);
  CHECK(load_error("version: v\nbase_currency: EUR\nruntime_lists: [deny, {name: deny, writer: lead}]\nrules: []\n" +
                   thresholds)
            .find("runtime list 'deny' is declared twice") != std::string::npos);
  CHECK(load_error("version: v\nbase_currency: EUR\nruntime_lists: [{name: deny, owner: x}]\nrules: []\n" +
                   thresholds) == "r.yaml:3:30: unknown key 'owner'\n");
  CHECK(load_error("version: v\nbase_currency: EUR\nruntime_lists: [Deny-Cards]\nrules: []\n" + thresholds) ==
        "r.yaml:3:17: runtime list name 'Deny-Cards' must be lowercase letters, digits and _ (at most 63)\n");
  CHECK(load_error("version: v\nbase_currency: EUR\nlists: {deny: [a]}\nruntime_lists: [deny]\nrules: []\n" +
                   thresholds) == "r.yaml:4:17: 'deny' is both a list and a runtime list\n");
  CHECK(load_error("version: v\nbase_currency: EUR\nruntime_lists: [deny]\nrules:\n  - {id: r, when: "
                   "\"merchant.country in deny\", score: 1}\n" +
                   thresholds)
            .find("runtime lists hold ids compared exactly") != std::string::npos);
  // Feature state must not depend on when a list changed.
  CHECK(load_error("version: v\nbase_currency: EUR\nruntime_lists: [deny]\nfeatures:\n  n: {aggregate: count, key: "
                   "account_id, window: 1h, where: account_id in deny}\nrules: []\n")
            .find("unknown list 'deny'") != std::string::npos);
}

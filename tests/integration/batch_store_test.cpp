// The batch transaction on the real database: fencing, replay, and where consumption resumes.
// What it keeps for exact features across replicas (pairs, key versions, indexes):
// feature_keys_test.cpp.
#include <doctest/doctest.h>

#include <cstdio>
#include <memory>
#include <pqxx/pqxx>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include "consumer/batch_applier.h"
#include "events/decode.h"
#include "events/encode.h"
#include "events/time.h"
#include "postgres/database_error.h"
#include "store/batch_store.h"
#include "store/key_indexes.h"
#include "store/retention.h"
#include "tests/support/integration.h"

using namespace fraud;
using namespace fraud::testing;

namespace {

/// Events from..to-1 of 12,500 EUR each, at offsets from..to-1.
store::PartitionBatch batch_of(std::int64_t epoch, int from, int to) {
  std::vector<std::pair<std::int64_t, OutgoingRecord>> records;
  for (int i = from; i < to; ++i) records.emplace_back(i, transaction_event(i, "12500.00"));
  return partition_batch(epoch, records);
}

/// Fresh feature state over the tests' rule file, as a replica starts with.
rules::FeatureEngine rules_of() {
  return rules::FeatureEngine(std::make_shared<const rules::RuleSet>(
      rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml")));
}

}  // namespace

TEST_CASE("a batch from an earlier assignment epoch is fenced and writes nothing") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier old_owner(db.service_url(), "g", "old", {}), new_owner(db.service_url(), "g", "new", {});
  auto old_claim = old_owner.claim("t", 0);
  auto new_claim = new_owner.claim("t", 0);
  CHECK(new_claim.epoch == old_claim.epoch + 1);

  auto engine = rules_of();
  auto result = old_owner.apply(batch_of(old_claim.epoch, 0, 10), engine);
  CHECK(result.fenced);
  CHECK(db.count("SELECT count(*) FROM processed_events") == 0);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts") == 0);
  CHECK(db.count("SELECT count(*) FROM consumer_offsets WHERE next_offset IS NOT NULL") == 0);

  auto fresh = rules_of();
  CHECK_FALSE(new_owner.apply(batch_of(new_claim.epoch, 0, 10), fresh).fenced);
  CHECK(db.count("SELECT count(*) FROM processed_events") == 10);
}

TEST_CASE("in one transaction of two partitions, the fenced one writes nothing and the owned one commits") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier me(db.service_url(), "g", "me", {}), other(db.service_url(), "g", "other", {});
  auto mine = me.claim("t", 0);
  auto lost = me.claim("t", 1);
  other.claim("t", 1);  // partition 1 moved on: this replica's batch of it is a zombie's
  auto owned = batch_of(mine.epoch, 0, 5);
  auto fenced = batch_of(lost.epoch, 5, 10);
  fenced.partition = 1;
  auto engine = rules_of();
  std::vector<store::PartitionBatch> both = {owned, fenced};
  auto results = me.apply(both, engine);
  REQUIRE(results.size() == 2);
  CHECK_FALSE(results[0].fenced);
  CHECK(results[0].processed == 5);
  CHECK(results[1].fenced);
  CHECK(results[1].processed == 0);
  CHECK(db.count("SELECT count(*) FROM processed_events WHERE partition = 0") == 5);
  CHECK(db.count("SELECT count(*) FROM processed_events WHERE partition = 1") == 0);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts") == 5);
  CHECK(db.count("SELECT count(*) FROM consumer_offsets WHERE partition = 0 AND next_offset = 5") == 1);
  CHECK(db.count("SELECT count(*) FROM consumer_offsets WHERE partition = 1 AND next_offset IS NOT NULL") == 0);
}

TEST_CASE("an id on two partitions of one transaction is applied once, where it came first") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier store(db.service_url(), "g", "me", {});
  auto first = batch_of(store.claim("t", 3).epoch, 0, 3);
  first.partition = 3;
  auto second = batch_of(store.claim("t", 1).epoch, 2, 5);  // event 2 again, re-keyed onto partition 1
  second.partition = 1;
  auto engine = rules_of();
  std::vector<store::PartitionBatch> both = {first, second};
  auto results = store.apply(both, engine);
  CHECK(results[0].processed == 3);
  CHECK(results[1].processed == 2);
  CHECK(results[1].duplicates == 1);
  CHECK(db.count("SELECT count(*) FROM processed_events") == 5);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts") == 5);
  // The dedup row names the copy that was applied: partition 3's, given first.
  CHECK(db.count("SELECT count(*) FROM processed_events WHERE event_id = 'evt-2' AND partition = 3") == 1);
}

// The store's stages with a decider of the test's own: what the store records is the
// caller's verdict (an inline decision will decide between the same stages), never a rule run
// of its own.
TEST_CASE("a batch's stages record the verdict the caller decided, with its rule set, and open their cases") {
  TestDatabase db(Services::from_environment());
  store::BatchStore store(db.service_url(), "g", "me", {});
  auto engine = rules_of();  // its rules would review these 12,500 EUR events and raise an alert each
  auto batch = batch_of(store.claim("t", 0).epoch, 0, 3);
  auto open = store.begin(std::span(&batch, 1), engine);
  open.load(engine);  // not observed after: this engine is not used again
  REQUIRE(open.new_events().size() == 3);
  rules::Verdict blocked;
  blocked.decision = rules::Decision::block;
  blocked.score = 95;
  for (std::size_t i = 0; i < open.new_events().size(); ++i) open.record(i, blocked, "caller-v7");
  auto stored = open.commit();
  CHECK(stored[0].processed == 3);
  CHECK(db.count("SELECT count(*) FROM transactions WHERE decision = 'block' AND score = 95 AND "
                 "rule_set_version = 'caller-v7'") == 3);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts") == 0);  // the caller's verdict had no hits
  CHECK(db.count("SELECT coalesce(sum(event_count), 0) FROM fraud_cases WHERE decision = 'block'") == 3);
}

TEST_CASE("a batch's stages out of order, a verdict recorded twice or missing, are refused and write nothing") {
  TestDatabase db(Services::from_environment());
  store::BatchStore store(db.service_url(), "g", "me", {});
  auto engine = rules_of();
  auto batch = batch_of(store.claim("t", 0).epoch, 0, 3);
  {
    auto open = store.begin(std::span(&batch, 1), engine);
    CHECK_THROWS_AS(open.record(0, {}, "v"), std::logic_error);  // before load()
    open.load(engine);
    open.record(0, {}, "v");
    CHECK_THROWS_AS(open.record(0, {}, "v"), std::logic_error);
    open.record(1, {}, "v");
    CHECK_THROWS_AS(open.commit(), std::logic_error);  // event 2 has no verdict
  }                                                    // rolled back
  CHECK(db.count("SELECT count(*) FROM processed_events") == 0);
  CHECK(db.count("SELECT count(*) FROM transactions") == 0);
  auto engine_again = rules_of();
  CHECK(consumer::BatchApplier(db.service_url(), "g", "again", {}).apply(batch, engine_again).processed == 3);
}

TEST_CASE("replaying a committed batch changes nothing but the duplicate count") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier store(db.service_url(), "g", "me", {});
  auto claim = store.claim("t", 0);
  auto engine = rules_of();
  auto first = store.apply(batch_of(claim.epoch, 0, 10), engine);
  auto replay = store.apply(batch_of(claim.epoch, 0, 10), engine);
  CHECK(first.processed == 10);
  CHECK(first.alerts == 10);
  CHECK(replay.processed == 0);
  CHECK(replay.duplicates == 10);
  CHECK(replay.alerts == 0);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts") == 10);
  CHECK(db.count("SELECT count(*) FROM outbox") == 10);
}

TEST_CASE("a claim returns the offset the last committed batch stored") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier store(db.service_url(), "g", "me", {});
  CHECK_FALSE(store.claim("t", 0).next_offset.has_value());
  auto claim = store.claim("t", 0);
  auto engine = rules_of();
  store.apply(batch_of(claim.epoch, 0, 7), engine);
  CHECK(store.claim("t", 0).next_offset == 7);
}

TEST_CASE("the same id twice in one batch is applied once") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier store(db.service_url(), "g", "me", {});
  auto batch = batch_of(store.claim("t", 0).epoch, 0, 3);
  auto again = batch.records[1];
  again.record.offset = 3;
  batch.records.push_back(again);
  auto engine = rules_of();
  auto result = store.apply(batch, engine);
  CHECK(result.processed == 3);
  CHECK(result.duplicates == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts") == 3);
}

TEST_CASE("a replica that never saw an account finds its latest event in the stored history, across day partitions") {
  TestDatabase db(Services::from_environment());
  auto from = *events::parse_rfc3339("2026-11-20T00:00:00Z"), now = *events::parse_rfc3339("2026-11-27T12:00:00Z");
  store::maintain_partitions(db.url(), {.retention_days = 0, .days_ahead = 7, .from = from}, now);
  auto rules =
      std::make_shared<const rules::RuleSet>(rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/idle_rules.yaml"));
  auto one = [](std::int64_t epoch, int offset, const std::string& account, const std::string& when) {
    return partition_batch(epoch, {{offset, transaction_event(offset, "10.00", when, account)}});
  };
  consumer::BatchApplier first(db.service_url(), "g", "first", {});
  rules::FeatureEngine first_engine(rules);
  auto claim = first.claim("t", 0);
  first.apply(one(claim.epoch, 0, "acc-idle", "2026-11-21T10:00:00Z"), first_engine);
  first.apply(one(claim.epoch, 1, "acc-busy", "2026-11-25T10:00:00Z"), first_engine);

  consumer::BatchApplier second(db.service_url(), "g", "second", {});
  rules::FeatureEngine second_engine(rules);
  auto taken = second.claim("t", 0);
  CHECK(second.apply(one(taken.epoch, 2, "acc-idle", "2026-11-25T11:00:00Z"), second_engine).alerts == 1);  // 4 days
  CHECK(second.apply(one(taken.epoch, 3, "acc-busy", "2026-11-25T11:00:00Z"), second_engine).alerts == 0);  // 1 hour
  CHECK(db.count("SELECT count(*) FROM transactions_p20261121") == 1);  // the history was in a day partition
}

TEST_CASE("a copy whose occurred_at differs is a duplicate on another replica, recorded as a conflict") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier first(db.service_url(), "g", "first", {}), second(db.service_url(), "g", "second", {});
  auto engine = rules_of(), other_engine = rules_of();
  auto original = partition_batch(first.claim("t", 0).epoch,
                                  {{0, transaction_event(7, "12500.00", "2026-11-27T09:15:02.123456Z")}});
  CHECK(first.apply(original, engine).processed == 1);
  // The copy arrives on another partition, re-serialised at millisecond precision.
  auto copy = partition_batch(second.claim("t", 1).epoch,
                              {{40, transaction_event(7, "12500.00", "2026-11-27T09:15:02.123Z")},
                               {41, transaction_event(7, "12500.00", "2026-11-27T09:15:02.123456Z")}});
  copy.partition = 1;
  auto result = second.apply(copy, other_engine);
  CHECK(result.processed == 0);
  CHECK(result.duplicates == 2);
  CHECK(result.duplicate_conflicts == 1);  // the identical copy is no conflict
  CHECK(db.count("SELECT count(*) FROM processed_events") == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts") == 1);
  CHECK(db.count("SELECT count(*) FROM duplicate_conflicts WHERE event_id = 'evt-7' AND partition = 1 AND "
                 "\"offset\" = 40 AND first_partition = 0 AND first_offset = 0 AND body LIKE '%09:15:02.123000Z%'") ==
        1);
  CHECK(second.apply(copy, other_engine).duplicate_conflicts == 0);  // a replay records nothing again
}

TEST_CASE("an id is its source and id: no crafted pair of the two collides with another") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier store(db.service_url(), "g", "me", {});
  auto engine = rules_of();
  auto batch = partition_batch(store.claim("t", 0).epoch,
                               {{0, transaction_event(1, "10.00")}, {1, transaction_event(2, "10.00")}});
  batch.records[0].event->source =
      "a\x1f"
      "b",
  batch.records[0].event->event_id = "c";
  batch.records[1].event->source = "a", batch.records[1].event->event_id =
                                            "b\x1f"
                                            "c";
  CHECK(store.apply(batch, engine).processed == 2);
}

TEST_CASE("a batch whose rejection reasons quote bytes that are not UTF-8 commits as one transaction") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier store(db.service_url(), "g", "me", {});
  auto claim = store.claim("t", 0);
  auto header_type = transaction_event(1, "10.00");
  header_type.headers = {{"id", "evt-x"}, {"type", "\xff\xfe not a type"}};
  auto split_character = transaction_event(2, "10.00");  // byte 40 of the kind falls inside an 'é'
  auto at = split_character.value.find("\"purchase\"");
  split_character.value.replace(
      at, 10, "\"a" + std::string(15, 'x') + [] {
        std::string s;
        for (int i = 0; i < 20; ++i) s += "\xc3\xa9";
        return s;
      }() + "\"");
  auto batch =
      partition_batch(claim.epoch, {{0, transaction_event(0, "10.00")}, {1, header_type}, {2, split_character}});
  auto engine = rules_of();
  auto result = store.apply(batch, engine);  // one transaction: a refused reason would throw here
  CHECK(result.processed == 1);
  CHECK(result.rejected == 2);
  CHECK(db.count("SELECT count(*) FROM rejected_events WHERE reason LIKE '%header ''type''%'") == 1);
  CHECK(db.count("SELECT count(*) FROM rejected_events WHERE reason LIKE '%kind:%'") == 1);
}

TEST_CASE("a batch with live and shadow hits keeps each alert's own shadow flag and publishes only the live ones") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier store(db.service_url(), "g", "me", {});
  rules::FeatureEngine engine(std::make_shared<const rules::RuleSet>(
      rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/exactly_once_rules.yaml")));
  auto batch = partition_batch(store.claim("t", 0).epoch, {{0, transaction_event(0, "12500.00")},
                                                           {1, transaction_event(1, "10.00")},
                                                           {2, transaction_event(2, "12500.00")}});
  CHECK(store.apply(batch, engine).alerts == 5);  // large_amount twice, count_recorder thrice
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'large_amount' AND NOT shadow") == 2);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'count_recorder' AND shadow") == 3);
  CHECK(db.count("SELECT count(*) FROM outbox WHERE event_type = 'FraudAlertRaised'") == 2);
}

TEST_CASE("every applied event keeps its decision, score and rule set, and the decision its shadow rules would make") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier store(db.service_url(), "g", "me", {});
  rules::FeatureEngine engine(std::make_shared<const rules::RuleSet>(rules::RuleSet::parse(R"(
version: decisions-1
base_currency: EUR
rules:
  - {id: big, when: amount_base > 100, score: 60}
  - {id: huge_candidate, when: amount_base > 1000, score: 100, mode: shadow}
decision: {review_at: 50, block_at: 150}
)",
                                                                                           "decisions.yaml")));
  auto batch = partition_batch(
      store.claim("t", 0).epoch,
      {{0, transaction_event(0, "50.00")}, {1, transaction_event(1, "500.00")}, {2, transaction_event(2, "5000.00")}});
  store.apply(batch, engine);
  auto decided = [&](const std::string& id) {
    auto row = db.query(
        "SELECT decision || '/' || score || '/' || shadow_decision || '/' || rule_set_version "
        "FROM transactions WHERE event_id = '" +
        id + "'");
    return row.empty() ? std::string("none") : row[0][0].as<std::string>();
  };
  auto version = engine.rules().version();
  CHECK(decided("evt-0") == "allow/0/allow/" + version);  // no rule hit, and still recorded
  CHECK(decided("evt-1") == "review/60/review/" + version);
  CHECK(decided("evt-2") == "review/60/block/" + version);  // promoting the candidate would block it
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'huge_candidate' AND shadow AND "
                 "decision = 'review' AND shadow_decision = 'block'") == 1);
}

TEST_CASE("a replica that reloads a card finds its last card-present payment behind many others") {
  TestDatabase db(Services::from_environment());
  auto starter = std::make_shared<const rules::RuleSet>(rules::RuleSet::load(FRAUD_SOURCE_DIR "/config/rules.yaml"));
  auto payment = [](int n, const std::string& at, const std::string& channel, double lat, double lon) {
    auto e = EventBuilder().id("travel-" + std::to_string(n)).account("acc-travel").at(at).amount("25.00");
    e.channel(channel).card("card-travel").location(lat, lon);
    return std::pair<std::int64_t, OutgoingRecord>{n, {"acc-travel", e.json(), {}}};
  };
  // Card-present in Berlin at 09:00, then 40 card-not-present payments until 09:59: more than the
  // latest events a reload reads at first (rules::kLatestDepth).
  std::vector<std::pair<std::int64_t, OutgoingRecord>> morning{
      payment(0, "2026-11-27T09:00:00Z", "card_present", 52.52, 13.40)};
  for (int n = 1; n <= 40; ++n) {
    char at[32];
    std::snprintf(at, sizeof at, "2026-11-27T09:%02d:30Z", n + 18);
    morning.push_back(payment(n, at, "card_not_present", 52.52, 13.40));
  }
  consumer::BatchApplier first(db.service_url(), "g", "first", {}), second(db.service_url(), "g", "second", {});
  rules::FeatureEngine first_engine(starter), second_engine(starter);
  REQUIRE(first.apply(partition_batch(first.claim("t", 0).epoch, morning), first_engine).processed == 41);
  // The partition moves; its new owner meets the card for the first time: New York at 11:00.
  auto noon =
      partition_batch(second.claim("t", 0).epoch, {payment(41, "2026-11-27T11:00:00Z", "card_present", 40.71, -74.0)});
  REQUIRE(second.apply(noon, second_engine).processed == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'impossible_travel'") == 1);
}

// The history's columns as the event had them, to the microsecond and NULL where a field is
// absent; and a batch meeting a history row of its own still commits. That happens to a copy
// of an event the dedup forgot (its generation rotated out) whose row stays (dated far
// ahead): a way of writing the history that cannot meet a row (COPY, measured and not kept:
// docs/BENCHMARKS.md) would stall the partition on it.
TEST_CASE("the history keeps every column of an event, and an event the dedup forgot is applied over its row") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier store(db.service_url(), "g", "me", {});
  auto epoch = store.claim("t", 0).epoch;
  auto engine = rules_of();
  auto late = transaction_event(1, "12500.00", "2027-06-01T10:00:00.123456Z", "acc-tab\\there");
  store.apply(partition_batch(epoch, {{0, transaction_event(0, "20.00")}, {1, late}}), engine);
  CHECK(db.count("SELECT count(*) FROM transactions WHERE event_id = 'evt-1' AND account_id = E'acc-tab\\there' "
                 "AND occurred_at = '2027-06-01T10:00:00.123456Z' AND amount_minor = 1250000 AND currency = 'EUR' "
                 "AND customer_id IS NULL AND suppressed_rules IS NULL AND decision = 'review' "
                 "AND applied_seq = (SELECT applied_seq + 1 FROM transactions WHERE event_id = 'evt-0') "
                 "AND (body::jsonb)->>'account_id' = E'acc-tab\\there'") == 1);
  auto first_seq = db.count("SELECT applied_seq FROM transactions WHERE event_id = 'evt-1'");

  db.query("DELETE FROM processed_events WHERE event_id = 'evt-1'");  // as a rotation forgets it
  auto again = rules_of();
  auto result = store.apply(partition_batch(epoch, {{2, transaction_event(2, "30.00")}, {3, late}}), again);
  CHECK(result.processed == 2);
  CHECK(db.count("SELECT count(*) FROM transactions WHERE event_id = 'evt-1'") == 1);
  CHECK(db.count("SELECT applied_seq FROM transactions WHERE event_id = 'evt-1'") == first_seq);  // the first row
  CHECK(db.count("SELECT count(*) FROM transactions WHERE event_id = 'evt-2'") == 1);             // its batch committed
  CHECK(db.count("SELECT next_offset FROM consumer_offsets") == 4);
}

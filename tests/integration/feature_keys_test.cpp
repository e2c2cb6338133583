// What the store keeps so that features are exact across replicas, on the real database:
// first-seen pairs (new only for their first event, kinds registered and backfilled), key
// versions (a replica reloads a key another extended) and the history's key indexes. The
// batch transaction itself: batch_store_test.cpp.
#include <doctest/doctest.h>

#include <memory>
#include <pqxx/pqxx>
#include <thread>
#include <vector>

#include "consumer/batch_applier.h"
#include "events/time.h"
#include "postgres/database_error.h"
#include "store/batch_store.h"
#include "store/key_indexes.h"
#include "store/retention.h"
#include "tests/support/integration.h"

using namespace fraud;
using namespace fraud::testing;

namespace {

/// Event i of `account` from `device`, at the tests' usual time.
OutgoingRecord on_device(int i, const std::string& account, const std::string& device) {
  auto out = transaction_event(i, "10.00", "2026-11-27T09:15:02Z", account);
  out.value.insert(out.value.rfind('}'), ",\"device\":{\"id\":\"" + device + "\"}");
  return out;
}

/// A rule file of tests/data.
std::shared_ptr<const rules::RuleSet> rule_file(const std::string& name) {
  return std::make_shared<const rules::RuleSet>(rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/" + name));
}

}  // namespace

TEST_CASE("a pair is new only for its first event, whichever replica and batch sees it again") {
  TestDatabase db(Services::from_environment());
  auto rules = rule_file("first_seen_rules.yaml");
  auto event = on_device;
  consumer::BatchApplier first(db.service_url(), "g", "first", {});
  rules::FeatureEngine first_engine(rules);
  auto claim = first.claim("t", 0);
  CHECK(first
            .apply(partition_batch(claim.epoch, {{0, event(0, "acc-1", "dev-1")}, {1, event(1, "acc-1", "dev-1")}}),
                   first_engine)
            .alerts == 1);  // the first of the two
  CHECK(first
            .apply(partition_batch(claim.epoch, {{2, event(2, "acc-1", "dev-1")}, {3, event(3, "acc-1", "dev-2")}}),
                   first_engine)
            .alerts == 1);  // dev-2 only: dev-1 is known to this replica

  consumer::BatchApplier second(db.service_url(), "g", "second", {});  // knows nothing yet
  rules::FeatureEngine second_engine(rules);
  auto taken = second.claim("t", 0);
  CHECK(second
            .apply(partition_batch(taken.epoch, {{4, event(4, "acc-1", "dev-2")}, {5, event(5, "acc-2", "dev-1")}}),
                   second_engine)
            .alerts == 1);  // acc-2 with dev-1 only
  CHECK(db.count("SELECT count(*) FROM fraud_alerts") == 3);
  CHECK(db.count("SELECT (string_agg(event_id, ',' ORDER BY event_id) = 'evt-0,evt-3,evt-5')::int FROM fraud_alerts") ==
        1);
}

// Pairs only of kinds some rule reads (migrations/0023); a kind read later is backfilled.
TEST_CASE("first-seen pairs are kept only of kinds a rule reads, and a kind read later knows every pair seen before") {
  TestDatabase db(Services::from_environment());
  auto event = on_device;
  const std::string kind = "'account_id|device.id'";
  // A replica whose rules read no pair applies acc-1 on dev-1 twice and on dev-2: nothing is kept.
  consumer::BatchApplier per_account(db.service_url(), "g", "per-account", {});
  rules::FeatureEngine counting(rule_file("feature_rules.yaml"));
  auto epoch = per_account.claim("t", 0).epoch;
  per_account.apply(partition_batch(epoch, {{0, event(0, "acc-1", "dev-1")}, {1, event(1, "acc-1", "dev-1")}}),
                    counting);
  per_account.apply(partition_batch(epoch, {{2, event(2, "acc-1", "dev-2")}}), counting);
  CHECK(db.count("SELECT count(*) FROM first_seen_pairs") == 0);

  // A replica whose rule reads (account, device) registers the kind: the history's pairs are
  // backfilled, each as its first event, so dev-1 and dev-2 are not new to acc-1 and dev-3 is.
  consumer::BatchApplier per_device(db.service_url(), "g", "per-device", {});
  rules::FeatureEngine first_seen(rule_file("first_seen_rules.yaml"));
  auto batch = partition_batch(
      per_device.claim("t", 1).epoch,
      {{0, event(3, "acc-1", "dev-1")}, {1, event(4, "acc-1", "dev-3")}, {2, event(5, "acc-1", "dev-2")}});
  batch.partition = 1;
  CHECK(per_device.apply(batch, first_seen).alerts == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE event_id = 'evt-4'") == 1);
  CHECK(db.count("SELECT count(*) FROM first_seen_pairs p JOIN transactions t ON t.applied_seq = p.first_seq "
                 "WHERE p.pair_kind = " +
                 kind + " AND t.event_id IN ('evt-0', 'evt-2', 'evt-4')") == 3);
  CHECK(db.count("SELECT count(*) FROM first_seen_pair_kinds WHERE pair_kind = " + kind + " AND complete") == 1);

  // The replica whose rules read no pair now records the kind too: the pair it applies first
  // is not new when the other replica meets it.
  per_account.apply(partition_batch(epoch, {{3, event(6, "acc-2", "dev-9")}}), counting);
  CHECK(db.count("SELECT count(*) FROM first_seen_pairs WHERE first_key = 'acc-2'") == 1);
  batch = partition_batch(batch.epoch, {{3, event(7, "acc-2", "dev-9")}});
  batch.partition = 1;
  CHECK(per_device.apply(batch, first_seen).alerts == 0);
}

TEST_CASE("a registration cut off in its backfill goes on where it stopped, and moves back only pairs recorded since") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier store(db.service_url(), "g", "one", {});
  rules::FeatureEngine counting(rule_file("feature_rules.yaml"));
  auto epoch = store.claim("t", 0).epoch;
  store.apply(partition_batch(epoch, {{0, on_device(0, "acc-1", "dev-1")},
                                      {1, on_device(1, "acc-1", "dev-2")},
                                      {2, on_device(2, "acc-0", "dev-7")}}),
              counting);
  // As a registration leaves it when it marked the kind and its backfill was cut off after
  // the chunk that ended at acc-0. Meanwhile a batch recorded dev-1 at its own event, though
  // evt-0 had it. And dev-2 was recorded before the mark, later than evt-1 had it, by an event
  // a rule read it for then (a kind that was not recorded from the start).
  auto marked = db.count("SELECT last_value FROM applied_batches");
  const auto seq = [&](std::int64_t batch, int place) {
    return std::to_string(batch * store::kAppliedSeqPerBatch + place);
  };
  db.count("WITH k AS (UPDATE first_seen_pair_kinds SET maintained = true, complete = false, recorded_from = " +
           std::to_string(marked) +
           ", backfilled_to = 'acc-0' WHERE pair_kind = 'account_id|device.id' RETURNING 1) SELECT count(*) FROM k");
  db.count("WITH p AS (INSERT INTO first_seen_pairs VALUES ('account_id|device.id', 'acc-1', 'dev-1', now(), " +
           seq(marked + 1, 7) + "), ('account_id|device.id', 'acc-1', 'dev-2', now(), " + seq(marked, 5) +
           ") RETURNING 1) SELECT count(*) FROM p");
  rules::FeatureEngine first_seen(rule_file("first_seen_rules.yaml"));
  store.apply(partition_batch(epoch, {{3, on_device(3, "acc-1", "dev-3")}}), first_seen);
  CHECK(db.count("SELECT count(*) FROM first_seen_pairs p JOIN transactions t ON t.applied_seq = p.first_seq "
                 "WHERE p.second_key = 'dev-1' AND t.event_id = 'evt-0'") == 1);
  CHECK(db.query("SELECT first_seq::text FROM first_seen_pairs WHERE second_key = 'dev-2'")[0][0].as<std::string>() ==
        seq(marked, 5));
  CHECK(db.count("SELECT count(*) FROM first_seen_pairs WHERE first_key = 'acc-0'") == 0);  // its chunk was done
  CHECK(db.count("SELECT count(*) FROM first_seen_pair_kinds WHERE complete AND backfilled_to = 'acc-1'") == 1);
}

TEST_CASE("six cards on one device across six accounts and three replicas count as one process counts them") {
  TestDatabase db(Services::from_environment());
  auto rules =
      std::make_shared<const rules::RuleSet>(rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/device_rules.yaml"));
  struct Replica {
    std::unique_ptr<consumer::BatchApplier> store;
    std::unique_ptr<rules::FeatureEngine> engine;
    std::int64_t epoch = 0;
  };
  std::vector<Replica> replicas;
  for (int r = 0; r < 3; ++r) {
    Replica replica{std::make_unique<consumer::BatchApplier>(db.service_url(), "g", "replica-" + std::to_string(r),
                                                             store::OutboxTopics{}),
                    std::make_unique<rules::FeatureEngine>(rules)};
    replica.epoch = replica.store->claim("t", r).epoch;
    replicas.push_back(std::move(replica));
  }
  // Card i on account i, a minute apart, on partition i % 3, which replica i % 3 owns. Each
  // replica meets the device early (its first event), so its cached history goes stale.
  std::vector<std::size_t> alerts;
  for (int i = 0; i < 6; ++i) {
    auto event = card_on_shared_device(i);
    auto& replica = replicas[static_cast<std::size_t>(i % 3)];
    auto batch = partition_batch(replica.epoch, {{i / 3, event}});
    batch.partition = i % 3;
    alerts.push_back(replica.store->apply(batch, *replica.engine).alerts);
  }
  CHECK(alerts == std::vector<std::size_t>{0, 0, 0, 1, 1, 1});  // the fourth, fifth and sixth card
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE reason LIKE 'cards_per_device_1h (4)%'") == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE reason LIKE 'cards_per_device_1h (6)%'") == 1);
}

TEST_CASE("only key fields some rule groups by keep versions, and one registered later still loads older history") {
  TestDatabase db(Services::from_environment());
  // A replica whose rules count per account meets three cards on one device…
  consumer::BatchApplier first(db.service_url(), "g", "first", {});
  rules::FeatureEngine per_account(
      std::make_shared<const rules::RuleSet>(rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/feature_rules.yaml")));
  auto epoch = first.claim("t", 0).epoch;
  for (int i = 0; i < 3; ++i) first.apply(partition_batch(epoch, {{i, card_on_shared_device(i)}}), per_account);
  CHECK(db.count("SELECT count(*) FROM feature_key_versions WHERE key_field <> 'account_id'") == 0);
  CHECK(db.count("SELECT count(*) FROM feature_key_fields WHERE maintained") == 1);
  // …then a replica with a device rule registers device.id. Its first version of dev-1 is 1,
  // but the device has history from before it was kept: loaded, the fourth card fires.
  consumer::BatchApplier second(db.service_url(), "g", "second", {});
  rules::FeatureEngine per_device(
      std::make_shared<const rules::RuleSet>(rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/device_rules.yaml")));
  auto batch = partition_batch(second.claim("t", 1).epoch, {{0, card_on_shared_device(3)}});
  batch.partition = 1;
  auto result = second.apply(batch, per_device);
  CHECK(result.alerts == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE reason LIKE 'cards_per_device_1h (4)%'") == 1);
  CHECK(db.count(
            "SELECT count(*) FROM feature_key_fields WHERE key_field = 'device.id' AND maintained AND NOT complete") ==
        1);
}

// Migration 0024: an index per key field some rule reads, built by the owner without
// blocking batches; a replica whose rules need a missing one waits for it, saying so.
TEST_CASE("the history indexes only the key fields a rule reads, and a replica waits for migrate to index a new one") {
  TestDatabase db(Services::from_environment(), kLatestAsMigrated);  // no rules given yet
  auto on = [&](rules::KeyField field) {
    pqxx::connection c(db.url());
    pqxx::nontransaction tx(c);
    return store::has_key_index(tx, field);
  };
  CHECK(on(rules::KeyField::account_id));
  for (auto field : {rules::KeyField::customer_id, rules::KeyField::card_fingerprint, rules::KeyField::device_id,
                     rules::KeyField::device_ip, rules::KeyField::merchant_id, rules::KeyField::counterparty_account})
    CHECK_FALSE(on(field));
  // Day partitions, as `dedup prune` makes them around the events' day.
  store::maintain_partitions(db.url(), {.retention_days = 0, .days_ahead = 2},
                             *events::parse_rfc3339("2026-11-27T00:00:00Z"));

  consumer::BatchApplier store(db.service_url(), "g", "one", {});
  rules::FeatureEngine per_device(rule_file("device_rules.yaml"));
  auto epoch = store.claim("t", 0).epoch;
  auto first = partition_batch(epoch, {{0, card_on_shared_device(0)}});
  try {
    store.apply(first, per_device);
    FAIL("applied without the device's index");
  } catch (const postgres::DatabaseError& e) {
    CHECK(e.reason == "missing_index");
    CHECK(std::string(e.what()).find("device.id") != std::string::npos);
  }
  CHECK(db.count("SELECT count(*) FROM transactions") == 0);

  // What `fraud-consumer migrate` does with these rules: the device's index, on every partition.
  CHECK(store::build_key_indexes(db.url(), {rules::KeyField::device_id}) ==
        std::vector<rules::KeyField>{rules::KeyField::device_id});
  CHECK(store::build_key_indexes(db.url(), {rules::KeyField::device_id}).empty());  // in place already
  CHECK(on(rules::KeyField::device_id));
  CHECK(store.apply(first, per_device).processed == 1);
  // A partition made afterwards gets the index as it attaches.
  store::maintain_partitions(db.url(), {.retention_days = 0, .days_ahead = 9},
                             *events::parse_rfc3339("2026-11-27T00:00:00Z"));
  CHECK(on(rules::KeyField::device_id));
  CHECK(db.count("SELECT count(*) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid "
                 "WHERE h.inhparent = 'transactions_by_device_id'::regclass") ==
        db.count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'transactions'::regclass"));
  CHECK_FALSE(on(rules::KeyField::card_fingerprint));  // read only as a counted field, never loaded by
}

// Two replicas that start with one new first_seen rule register its kind at once: the backfill
// (three chunks here) is taken in turns, neither waits forever nor deadlocks, and each decides
// as one process would.
TEST_CASE("two replicas registering one pair kind at once both finish, and decide as one would") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier filler(db.service_url(), "g", "filler", {});
  rules::FeatureEngine counting(rule_file("feature_rules.yaml"));
  std::vector<std::pair<std::int64_t, OutgoingRecord>> history;
  for (int i = 0; i < 1200; ++i)
    history.emplace_back(i, on_device(i, "acc-" + std::to_string(i), "dev-" + std::to_string(i)));
  REQUIRE(filler.apply(partition_batch(filler.claim("t", 0).epoch, history), counting).processed == 1200);

  auto replica = [&](const std::string& name, std::int32_t partition, OutgoingRecord event) {
    consumer::BatchApplier store(db.service_url(), "g", name, {});
    rules::FeatureEngine first_seen(rule_file("first_seen_rules.yaml"));
    auto batch = partition_batch(store.claim("t", partition).epoch, {{0, std::move(event)}});
    batch.partition = partition;
    return store.apply(batch, first_seen).alerts;
  };
  std::size_t seen_device_alerts = 99, new_device_alerts = 99;
  std::string failed_a, failed_b;  // a throw escaping a thread would end the test run
  std::thread a([&] {
    try {
      seen_device_alerts = replica("a", 1, on_device(2000, "acc-5", "dev-5"));
    } catch (const std::exception& e) {
      failed_a = e.what();
    }
  });
  std::thread b([&] {
    try {
      new_device_alerts = replica("b", 2, on_device(2001, "acc-7", "dev-new"));
    } catch (const std::exception& e) {
      failed_b = e.what();
    }
  });
  a.join(), b.join();
  CHECK(failed_a == "");
  CHECK(failed_b == "");
  CHECK(seen_device_alerts == 0);
  CHECK(new_device_alerts == 1);
  CHECK(db.count("SELECT count(*) FROM first_seen_pairs WHERE pair_kind = 'account_id|device.id'") == 1201);
  CHECK(db.count("SELECT count(*) FROM first_seen_pair_kinds WHERE pair_kind = 'account_id|device.id' AND complete") ==
        1);
}

// The first slice's promise, on the real broker and database: duplicates delivered by an
// at-least-once relay are applied once, by a group of replicas sharing the partitions.
#include <doctest/doctest.h>
#include <signal.h>

#include <memory>

#include "tests/support/integration.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

constexpr int kPartitions = 4;

std::map<std::string, std::string> replica_env(const Services& s, const TestDatabase& db, const std::string& topic,
                                               const std::string& group) {
  return replica_environment(s, db.service_url(), topic, group,
                             {{"FRAUD_BATCH_MAX_RECORDS", "100"},
                              {"FRAUD_BATCH_MAX_WAIT_MS", "20"},
                              {"FRAUD_LOG_LEVEL", "warn"},
                              {"FRAUD_RULES_FILE", FRAUD_SOURCE_DIR "/tests/data/exactly_once_rules.yaml"}});
}

/// Accounts whose events' recorded counts (count_recorder's tx_count_1h, all events within
/// the hour) are not exactly 1..n: an event applied twice, or one lost, shows here.
std::int64_t accounts_with_wrong_counts(TestDatabase& db) {
  return db.count(R"sql(
    SELECT count(*) FROM (
      SELECT account_id, count(*) AS events, count(DISTINCT n) AS distinct_counts, max(n) AS highest
      FROM (SELECT account_id, substring(reason FROM '\((\d+)\)')::int AS n
            FROM fraud_alerts WHERE rule_id = 'count_recorder') recorded
      GROUP BY account_id) per_account
    WHERE events <> distinct_counts OR events <> highest)sql");
}

}  // namespace

TEST_CASE("two replicas apply 1,000 events exactly once despite 300 duplicate deliveries") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions"), group = unique_name("fraud");
  create_topic(services.bootstrap_servers, topic, kPartitions);

  // Both replicas join and hold partitions before anything is produced, so both do work.
  auto env = replica_env(services, db, topic, group);
  std::vector<std::unique_ptr<ChildProcess>> replicas;
  for (int i = 0; i < 2; ++i)
    replicas.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{FRAUD_CONSUMER_BINARY, "run"}, env));
  REQUIRE(wait_until(60s, [&] {
    return db.count("SELECT count(DISTINCT owner) FROM consumer_offsets WHERE topic = '" + topic + "'") == 2 &&
           db.count("SELECT count(*) FROM consumer_offsets WHERE topic = '" + topic + "'") == kPartitions;
  }));

  // 1,000 distinct events, every 20th above the 10,000.00 EUR threshold; ids 0-199 are
  // delivered twice and ids 200-249 three times, as a relay that crashed would. Each copy
  // comes right after its original, before the account's later events: a copy applied again
  // would raise the counts those later events record.
  std::vector<OutgoingRecord> records;
  for (int i = 0; i < 1000; ++i) {
    auto event = transaction_event(i, i % 20 == 0 ? "12500.00" : "42.10");
    int deliveries = i < 200 ? 2 : i < 250 ? 3 : 1;
    for (int d = 0; d < deliveries; ++d) records.push_back(event);
  }
  REQUIRE(records.size() == 1300);
  produce(services.bootstrap_servers, topic, records);

  CHECK(wait_until(90s, [&] { return offsets_at_end(db, services, topic, kPartitions); }));
  for (auto& r : replicas) CHECK(r->stop(SIGTERM, 30s) == 0);

  CHECK(db.count("SELECT count(*) FROM processed_events") == 1000);
  CHECK(db.count("SELECT count(DISTINCT event_id) FROM processed_events") == 1000);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'large_amount'") == 50);
  CHECK(db.count("SELECT count(*) FROM outbox WHERE event_type = 'FraudAlertRaised'") == 50);
  CHECK(db.count("SELECT count(*) FROM rejected_events") == 0);
  CHECK(offsets_at_end(db, services, topic, kPartitions));
  // What no constraint forces: each event counted once in its account's feature state.
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'count_recorder'") == 1000);
  CHECK(accounts_with_wrong_counts(db) == 0);
  // The 50 large events are reviews: each in its account's one case, once.
  CHECK(db.count("SELECT sum(event_count) FROM fraud_cases") == 50);
  CHECK(miscased_accounts(db) == 0);
}

TEST_CASE("a poison record is rejected with its reason and its partition moves on") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions"), group = unique_name("fraud");
  create_topic(services.bootstrap_servers, topic, kPartitions);

  std::vector<OutgoingRecord> records;
  for (int i = 0; i < 10; ++i) {
    records.push_back(transaction_event(i, "10.00"));
    records.push_back({records.back().key, "{\"event_id\":\"broken-" + std::to_string(i) + "\"", {}});
  }
  produce(services.bootstrap_servers, topic, records);
  ChildProcess replica({FRAUD_CONSUMER_BINARY, "run"}, replica_env(services, db, topic, group));

  CHECK(wait_until(60s, [&] { return offsets_at_end(db, services, topic, kPartitions); }));
  CHECK(replica.stop(SIGTERM, 30s) == 0);
  CHECK(db.count("SELECT count(*) FROM processed_events") == 10);
  CHECK(db.count("SELECT count(*) FROM rejected_events WHERE reason LIKE '%not valid JSON%'") == 10);
  CHECK(db.count("SELECT count(*) FROM outbox WHERE event_type = 'DeadLetter'") == 10);
}

// Opens as the two-replica test above does (services, database, topic, group), and the
// poison-record test ends as database_faults_test.cpp's lost-grant test does (offsets at the
// end, rows counted); what differs is the middle, so each reads alone.
TEST_CASE("a replica that restarts resumes from the database offset and applies nothing twice") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions"), group = unique_name("fraud");
  create_topic(services.bootstrap_servers, topic, kPartitions);
  auto env = replica_env(services, db, topic, group);

  std::vector<OutgoingRecord> first, second;
  for (int i = 0; i < 200; ++i) first.push_back(transaction_event(i, "12500.00"));
  for (int i = 150; i < 400; ++i) second.push_back(transaction_event(i, "12500.00"));  // 50 repeats
  produce(services.bootstrap_servers, topic, first);
  {
    ChildProcess replica({FRAUD_CONSUMER_BINARY, "run"}, env);
    REQUIRE(wait_until(60s, [&] { return offsets_at_end(db, services, topic, kPartitions); }));
    CHECK(replica.stop(SIGKILL, 30s).has_value());  // no goodbye: Kafka may not have the commit
  }
  produce(services.bootstrap_servers, topic, second);
  ChildProcess replica({FRAUD_CONSUMER_BINARY, "run"}, env);
  CHECK(wait_until(60s, [&] { return offsets_at_end(db, services, topic, kPartitions); }));
  CHECK(replica.stop(SIGTERM, 30s) == 0);
  CHECK(db.count("SELECT count(*) FROM processed_events") == 400);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'large_amount'") == 400);
  CHECK(accounts_with_wrong_counts(db) == 0);
}

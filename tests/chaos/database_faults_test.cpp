// Database failures that are nobody's record's fault: a lost grant, and an earlier owner frozen
// in the middle of a batch. Neither may reject a valid event or freeze a replica; both end with
// every event applied once. Real broker, real database, fraud-consumer as a child process.
#include <doctest/doctest.h>
#include <signal.h>

#include <pqxx/pqxx>

#include "tests/support/integration.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

/// 200 events on one partition, every 20th above the tests' large-amount threshold.
std::vector<OutgoingRecord> two_hundred_events() {
  std::vector<OutgoingRecord> records;
  for (int i = 0; i < 200; ++i) {
    auto event = transaction_event(i, i % 20 == 0 ? "12500.00" : "42.10");
    event.key = "acc-1";  // one key, so all land on the topic's one partition in order
    records.push_back(event);
  }
  return records;
}

bool log_mentions(const std::string& path, const std::string& text) {
  return read_file(path).find(text) != std::string::npos;
}

}  // namespace

// Ends as exactly_once_test.cpp's poison-record test does (offsets at the end, stopped, rows
// counted); the counts are this test's own, so the shape is not folded into a helper.
TEST_CASE("a grant lost mid-run pauses the partition and rejects nothing, and every event is applied once") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions");
  create_topic(services.bootstrap_servers, topic, 1);
  db.query("REVOKE INSERT ON fraud_alerts FROM fraud_service");  // batches with alerts now fail with 42501
  produce(services.bootstrap_servers, topic, two_hundred_events());
  auto log = "/tmp/" + unique_name("replica") + ".log";
  ChildProcess replica(
      {FRAUD_CONSUMER_BINARY, "run"},
      replica_environment(services, db.service_url(), topic, unique_name("fraud"), {{"FRAUD_BATCH_MAX_RECORDS", "50"}}),
      log);
  REQUIRE(wait_until(60s, [&] { return log_mentions(log, "\"reason\":\"privilege\""); }));
  CHECK(db.count("SELECT count(*) FROM rejected_events") == 0);
  CHECK(db.count("SELECT count(*) FROM processed_events") < 200);

  db.query("GRANT INSERT ON fraud_alerts TO fraud_service");
  CHECK(wait_until(90s, [&] { return offsets_at_end(db, services, topic, 1); }));
  CHECK(replica.stop(SIGTERM, 30s) == 0);
  CHECK(db.count("SELECT count(*) FROM rejected_events") == 0);
  CHECK(db.count("SELECT count(*) FROM processed_events") == 200);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'large_amount'") == 10);
}

TEST_CASE("a claim blocked by a frozen earlier owner neither freezes the replica nor waits forever") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions"), group = unique_name("fraud");
  create_topic(services.bootstrap_servers, topic, 1);
  produce(services.bootstrap_servers, topic, two_hundred_events());

  // The frozen owner: a session of the service's role in the middle of a batch, holding the
  // partition's offset row, that never finishes (as a SIGSTOPped replica's backend would).
  db.query("INSERT INTO consumer_offsets (group_id, topic, partition, epoch, owner) VALUES ('" + group + "', '" +
           topic + "', 0, 1, 'frozen')");
  pqxx::connection frozen(db.service_url());
  pqxx::work stalled(frozen);
  stalled.exec0("UPDATE consumer_offsets SET updated_at = now() WHERE group_id = '" + group + "'");

  auto log = "/tmp/" + unique_name("replica") + ".log";
  ChildProcess replica({FRAUD_CONSUMER_BINARY, "run"}, replica_environment(services, db.service_url(), topic, group),
                       log);
  REQUIRE(wait_until(60s, [&] { return log_mentions(log, "claim failed; partition paused"); }));
  // The replica stays alive and in its loop while it waits (liveness is the loop's heartbeat).
  CHECK(replica.running());
  CHECK(wait_until(120s, [&] { return offsets_at_end(db, services, topic, 1); }));
  CHECK(log_mentions(log, "ended the database session of a stalled earlier owner"));
  CHECK_THROWS(stalled.exec("SELECT 1"));  // the frozen owner's transaction is gone, unwritten
  CHECK(replica.stop(SIGTERM, 30s) == 0);
  CHECK(db.count("SELECT count(*) FROM processed_events") == 200);
  CHECK(db.count("SELECT epoch FROM consumer_offsets WHERE group_id = '" + group + "'") == 2);
}

TEST_CASE("replicas stopped in the middle of a rebalance, many times, all exit 0") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions"), group = unique_name("fraud");
  create_topic(services.bootstrap_servers, topic, 4);
  auto env = replica_environment(services, db.service_url(), topic, group);
  ChildProcess steady({FRAUD_CONSUMER_BINARY, "run"}, env);
  REQUIRE(wait_until(
      60s, [&] { return db.count("SELECT count(*) FROM consumer_offsets WHERE group_id = '" + group + "'") == 4; }));
  // A newcomer joins, and is stopped while the group is still rebalancing for it: before its
  // first assignment, or in the middle of taking it (librdkafka's issue #4312 aborted here).
  std::vector<int> statuses;
  for (int round = 0; round < 12; ++round) {
    auto log = "/tmp/" + unique_name("newcomer") + ".log";
    ChildProcess newcomer({FRAUD_CONSUMER_BINARY, "run"}, env, log);
    auto marker = round % 2 == 0 ? "consumer started" : "partitions assigned";
    CHECK(wait_until(60s, [&] { return log_mentions(log, marker); }));
    statuses.push_back(newcomer.stop(SIGTERM, 45s).value_or(-1));
  }
  CHECK(steady.stop(SIGTERM, 45s) == 0);
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    CAPTURE(i);
    CHECK(statuses[i] == 0);
  }
}

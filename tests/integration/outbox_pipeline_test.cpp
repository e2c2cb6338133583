// The whole story on real services: bank-sim records transactions and outbox rows, the
// relay publishes them (crashing twice between publishing and marking), a replica applies
// them, and the service's own relay publishes its alerts.
#include <doctest/doctest.h>
#include <signal.h>

#include <boost/algorithm/hex.hpp>
#include <filesystem>
#include <set>

#include "tests/support/integration.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

TEST_CASE("every simulated transaction is processed once and every alert recorded once and published") {
  constexpr int kTransactions = 3000, kPartitions = 4;
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions"), alerts_topic = unique_name("alerts"), run = unique_name("run");
  create_topic(services.bootstrap_servers, topic, kPartitions);
  create_topic(services.bootstrap_servers, alerts_topic, 1);
  auto dead_letter_topic = unique_name("dlq");
  create_topic(services.bootstrap_servers, dead_letter_topic, 1);
  std::map<std::string, std::string> env = {{"FRAUD_POSTGRES_URL", db.url()},
                                            {"FRAUD_KAFKA_BOOTSTRAP_SERVERS", services.bootstrap_servers}};
  auto dir = "/tmp/" + run;
  std::filesystem::create_directories(dir);

  ChildProcess bank({FRAUD_BANK_SIM_BINARY, "--events", std::to_string(kTransactions), "--rate", "3000", "--topic",
                     topic, "--run-id", run, "--poison-per-1000", "2", "--fraud-per-1000", "20"},
                    env, dir + "/bank-sim.log");
  auto consumer_env = replica_environment(services, db.service_url(), topic, unique_name("fraud"),
                                          {{"FRAUD_RULES_FILE", FRAUD_SOURCE_DIR "/config/rules.yaml"},
                                           {"FRAUD_OUTBOX_ALERTS_TOPIC", alerts_topic},
                                           {"FRAUD_OUTBOX_DEAD_LETTER_TOPIC", dead_letter_topic}});
  ChildProcess consumer({FRAUD_CONSUMER_BINARY, "run"}, consumer_env, dir + "/consumer.log");
  auto relay_env = env;
  relay_env["FRAUD_POSTGRES_URL"] = db.relay_url();  // least privilege: the relay's own role
  ChildProcess service_relay({FRAUD_RELAY_BINARY, "run", "--preset", "service"}, relay_env, dir + "/service-relay.log");
  REQUIRE(wait_until(60s, [&] { return !bank.running(); }));

  // The bank's relay dies twice right after publishing a batch, before marking it sent.
  for (const char* crash_after : {"2", "3"}) {
    ChildProcess crashing(
        {FRAUD_RELAY_BINARY, "run", "--preset", "bank", "--batch-rows", "100", "--crash-after-batches", crash_after},
        env, dir + "/bank-relay.log");
    REQUIRE(wait_until(60s, [&] { return !crashing.running(); }));
  }
  ChildProcess bank_relay({FRAUD_RELAY_BINARY, "run", "--preset", "bank", "--duplicate-rate", "0.05"}, env,
                          dir + "/bank-relay.log");
  REQUIRE(wait_until(90s, [&] {
    return db.count("SELECT count(*) FROM bank_outbox WHERE published_at IS NULL") == 0 &&
           offsets_at_end(db, services, topic, kPartitions) &&
           db.count("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0;
  }));
  CHECK(consumer.stop(SIGTERM, 30s) == 0);
  CHECK(bank_relay.stop(SIGTERM, 30s) == 0);
  CHECK(service_relay.stop(SIGTERM, 30s) == 0);

  // Redelivered: the crashed batches were sent again and 5% of rows twice.
  auto delivered = read_topic(services.bootstrap_servers, topic, kPartitions).size();
  auto poison = db.count("SELECT count(*) FROM bank_outbox WHERE payload NOT LIKE '%}'");
  CHECK(static_cast<std::int64_t>(delivered) > kTransactions + poison);
  check_applied_exactly_once(db, services, topic, kPartitions);
  CHECK(db.count("SELECT count(*) FROM core_transactions") == kTransactions);
  CHECK(db.count("SELECT count(*) FROM processed_events p JOIN transactions t USING (event_source, event_id) "
                 "JOIN core_transactions c USING (transaction_id)") == kTransactions);
  // Each delivery of a poison record is rejected on its own (it has no id to deduplicate by);
  // check_applied_exactly_once matched them against the topic one by one.
  CHECK(db.count("SELECT count(*) FROM rejected_events") >= poison);

  auto alerts = db.count("SELECT count(*) FROM fraud_alerts WHERE NOT shadow");
  CHECK(alerts > 0);
  CHECK(db.count("SELECT count(DISTINCT (event_id, rule_id)) FROM fraud_alerts") ==
        db.count("SELECT count(*) FROM fraud_alerts"));
  std::set<std::string> published;
  for (const auto& r : read_topic(services.bootstrap_servers, alerts_topic, 1))
    published.insert(json_field(r.value, "event_id"));
  std::int64_t unpublished = 0;
  for (const auto& row : db.query("SELECT alert_id FROM fraud_alerts WHERE NOT shadow"))
    unpublished += published.count("fraud-alert-" + row[0].as<std::string>()) ? 0 : 1;
  CHECK(unpublished == 0);

  // Every rejected record reached the dead-letter topic, byte for byte.
  auto hex = [](const std::string& bytes) { return boost::algorithm::hex_lower(bytes); };
  std::multiset<std::string> dead_letters;
  for (const auto& r : read_topic(services.bootstrap_servers, dead_letter_topic, 1)) dead_letters.insert(hex(r.value));
  std::int64_t missing_dead_letters = 0;
  for (const auto& row : db.query("SELECT encode(value, 'hex') FROM rejected_events"))
    missing_dead_letters += dead_letters.count(row[0].as<std::string>()) ? 0 : 1;
  CHECK(db.count("SELECT count(*) FROM rejected_events") > 0);
  CHECK(missing_dead_letters == 0);
}

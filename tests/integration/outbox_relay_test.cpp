// The outbox relay's half of invariant 4 (shared DESIGN.md): an outbox row is marked sent
// only after the broker acknowledged that row. The real relay runs against the real broker
// and the service's outbox table; every wait is bounded, and the relay's own log and
// /metrics say when it has acted.
#include <doctest/doctest.h>
#include <signal.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "tests/support/integration.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

/// A dead letter wrapping a record near the consumer's 1 MiB limit can exceed the producer's
/// message.max.bytes (1,000,000 by default); 2 MiB exceeds it for certain.
constexpr int kOversizedBytes = 2 * 1024 * 1024;

/// Inserts an outbox row as the service does and returns its id; `payload_sql` is an SQL
/// text expression.
std::int64_t insert_row(TestDatabase& db, const std::string& topic, const std::string& key,
                        const std::string& payload_sql) {
  return db.count("INSERT INTO outbox (topic, record_key, payload, event_type) VALUES ('" + topic + "', convert_to('" +
                  key + "', 'UTF8'), convert_to(" + payload_sql + ", 'UTF8'), 'DeadLetter') RETURNING outbox_id");
}

bool marked(TestDatabase& db, std::int64_t id) {
  return db.count("SELECT count(*) FROM outbox WHERE outbox_id = " + std::to_string(id) +
                  " AND published_at IS NOT NULL") == 1;
}

/// The first sample of `name` on the relay's /metrics (each relay serves one table), or -1
/// while the page cannot be fetched or lacks it.
double metric(unsigned short port, const std::string& name) {
  auto page = http_get(port, "/metrics");
  if (!page) return -1;
  std::istringstream lines(*page);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with(name + "{") || line.starts_with(name + " "))
      return std::stod(line.substr(line.rfind(' ') + 1));
  return -1;
}

/// How often `needle` occurs in `text`.
std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

/// The service's relay, as its least-privileged role, serving /metrics on `port`.
std::vector<std::string> relay_args(unsigned short port) {
  return {FRAUD_RELAY_BINARY, "run", "--preset", "service", "--metrics-listen", "127.0.0.1:" + std::to_string(port)};
}

std::map<std::string, std::string> relay_env(const Services& services, const TestDatabase& db,
                                             const std::map<std::string, std::string>& extra = {}) {
  std::map<std::string, std::string> env = {{"FRAUD_POSTGRES_URL", db.relay_url()},
                                            {"FRAUD_KAFKA_BOOTSTRAP_SERVERS", services.bootstrap_servers}};
  env.insert(extra.begin(), extra.end());
  return env;
}

std::string log_path(const std::string& name) {
  auto dir = "/tmp/" + unique_name("relay");
  std::filesystem::create_directories(dir);
  return dir + "/" + name + ".log";
}

/// Ten rows for `topic`: nine small payloads, and the fifth past the broker's size limit.
/// Returns the small payloads and the oversized row's id.
std::pair<std::set<std::string>, std::int64_t> insert_rows_one_oversized(TestDatabase& db, const std::string& topic) {
  std::set<std::string> small_payloads;
  std::int64_t oversized = 0;
  for (int i = 0; i < 10; ++i) {
    if (i == 4) {
      oversized = insert_row(db, topic, "key-4", "repeat('x', " + std::to_string(kOversizedBytes) + ")");
      continue;
    }
    auto payload = "{\"n\":" + std::to_string(i) + "}";
    small_payloads.insert(payload);
    insert_row(db, topic, "key-" + std::to_string(i), "'" + payload + "'");
  }
  return {small_payloads, oversized};
}

}  // namespace

// Opens as every single-topic test does (services, database, topic); database_faults_test.cpp's
// first test is paired with it by `duplicates` for that.
TEST_CASE("the relay marks a row published only when the broker acknowledged that row") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("dead_letters");
  create_topic(services.bootstrap_servers, topic, 1);
  auto [small_payloads, oversized] = insert_rows_one_oversized(db, topic);
  const std::string small_marked =
      "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL AND outbox_id <> " + std::to_string(oversized);
  auto log = log_path("relay");
  auto port = free_port();
  {
    ChildProcess relay(relay_args(port), relay_env(services, db), log);
    // All ten rows are claimed in one batch, so once the nine small ones are marked the relay
    // has decided about the oversized one too.
    REQUIRE(wait_until(60s, [&] { return db.count(small_marked) == 9; }));
    CHECK_MESSAGE(!marked(db, oversized), "the oversized row was marked published although it never reached the topic");
    CHECK(metric(port, "fraud_outbox_unpublishable_rows_total") == 1);
    // It stays pending, where the operator's pending-rows gauge and alert see it.
    CHECK(wait_until(10s, [&] { return metric(port, "fraud_outbox_pending_rows") == 1; }));
    CHECK(relay.stop(SIGTERM, 30s) == 0);
  }
  std::set<std::string> on_topic;
  for (const auto& r : read_topic(services.bootstrap_servers, topic, 1)) on_topic.insert(r.value);
  CHECK(on_topic == small_payloads);
  CHECK(db.count(small_marked) == 9);
  auto text = read_file(log);
  CHECK(text.find("\"level\":\"error\"") != std::string::npos);
  CHECK(text.find("\"row\":\"" + std::to_string(oversized) + "\"") != std::string::npos);
  // Its payload is kept, not dropped.
  CHECK(db.count("SELECT length(payload) FROM outbox WHERE outbox_id = " + std::to_string(oversized)) ==
        kOversizedBytes);
}

TEST_CASE("a row too large to publish is reported again by a restarted relay and never marked published") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("dead_letters");
  create_topic(services.bootstrap_servers, topic, 1);
  auto oversized = insert_row(db, topic, "key", "repeat('x', " + std::to_string(kOversizedBytes) + ")");
  auto after = insert_row(db, topic, "key", "'{\"after\":true}'");
  auto log = log_path("relay");
  for (int run = 0; run < 2; ++run) {
    auto port = free_port();
    ChildProcess relay(relay_args(port), relay_env(services, db), log);
    // The row does not wedge the row behind it, of its own key.
    REQUIRE(wait_until(60s, [&] { return marked(db, after); }));
    CHECK(!marked(db, oversized));
    // Both rows are claimed in the first batch: the second run reports the row anew.
    CHECK(wait_until(10s, [&] { return metric(port, "fraud_outbox_unpublishable_rows_total") == 1; }));
    CHECK(relay.stop(SIGTERM, 30s) == 0);
  }
  CHECK(occurrences(read_file(log), "\"row\":\"" + std::to_string(oversized) + "\"") == 2);
  CHECK(read_topic(services.bootstrap_servers, topic, 1).size() >= 1);
}

TEST_CASE(
    "the relay never marks a row published for a topic the broker does not have, and publishes it once the topic "
    "exists") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto missing = unique_name("missing");  // the local broker would create it on a producer's request
  auto id = insert_row(db, missing, "key", "'{\"n\":1}'");
  auto log = log_path("relay");
  auto port = free_port();
  ChildProcess relay(relay_args(port),
                     relay_env(services, db,
                               {{"FRAUD_KAFKA_PROPERTIES_ALLOW_AUTO_CREATE_TOPICS", "false"},
                                // librdkafka waits this long before it calls a topic missing, and
                                // refreshes its metadata this often: seconds, not minutes, here.
                                {"FRAUD_KAFKA_PROPERTIES_TOPIC_METADATA_PROPAGATION_MAX_MS", "1000"},
                                {"FRAUD_KAFKA_PROPERTIES_TOPIC_METADATA_REFRESH_INTERVAL_MS", "1000"}}),
                     log);
  // Each failed attempt is logged with the row's id; two mean the row was retried.
  auto row = "\"row\":\"" + std::to_string(id) + "\"";
  REQUIRE(wait_until(90s, [&] { return marked(db, id) || occurrences(read_file(log), row) >= 2; }));
  CHECK_MESSAGE(!marked(db, id), "a row for a missing topic was marked published");

  create_topic(services.bootstrap_servers, missing, 1);
  CHECK(wait_until(90s, [&] { return marked(db, id); }));
  CHECK(read_topic(services.bootstrap_servers, missing, 1).size() >= 1);
  CHECK(relay.stop(SIGTERM, 30s) == 0);
}

TEST_CASE(
    "a row the broker refuses for its size is found among its batch and never marked, and the rest are published") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("dead_letters");
  create_topic(services.bootstrap_servers, topic, 1);
  auto [small_payloads, oversized] = insert_rows_one_oversized(db, topic);
  auto port = free_port();
  // The producer lets the row through, so the broker (message.max.bytes about 1 MiB) refuses
  // it, in a delivery report, after the rest of the batch went out.
  ChildProcess relay(relay_args(port),
                     relay_env(services, db, {{"FRAUD_KAFKA_PROPERTIES_MESSAGE_MAX_BYTES", "5000000"}}),
                     log_path("relay"));
  auto published = [&] { return db.count("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"); };
  REQUIRE_MESSAGE(wait_until(60s, [&] { return published() == 9; }), "the refused row holds up the rows sent with it");
  CHECK(!marked(db, oversized));
  CHECK(metric(port, "fraud_outbox_unpublishable_rows_total") == 1);
  CHECK(relay.stop(SIGTERM, 30s) == 0);
  // The rows sent with it in the batch that rolled back may be on the topic twice: at least once.
  std::set<std::string> on_topic;
  for (const auto& r : read_topic(services.bootstrap_servers, topic, 1)) on_topic.insert(r.value);
  CHECK(on_topic == small_payloads);
}

TEST_CASE("a row whose headers the relay cannot read is set aside, and the relay goes on publishing the rest") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("dead_letters");
  create_topic(services.bootstrap_servers, topic, 1);
  auto before = insert_row(db, topic, "key-1", "'{\"n\":1}'");
  // What the service writes for a dead letter whose record had a header without a value and
  // one whose name is not text: published as it is, not refused.
  db.query("UPDATE outbox SET headers = '[[\"none\", null], [{\"hex\": \"ff\"}, \"v\"]]' WHERE outbox_id = " +
           std::to_string(before));
  auto unreadable = insert_row(db, topic, "key-2", "'{\"n\":2}'");
  db.query("UPDATE outbox SET headers = '[[\"trace\", {\"hex\": \"not hex\"}]]' WHERE outbox_id = " +
           std::to_string(unreadable));
  auto after = insert_row(db, topic, "key-3", "'{\"n\":3}'");
  auto log = log_path("relay");
  auto port = free_port();
  ChildProcess relay(relay_args(port), relay_env(services, db), log);
  REQUIRE(wait_until(60s, [&] { return marked(db, before) && marked(db, after); }));
  CHECK(!marked(db, unreadable));
  CHECK(metric(port, "fraud_outbox_unpublishable_rows_total") == 1);
  CHECK(read_file(log).find("headers column: header 'trace'") != std::string::npos);
  CHECK(relay.stop(SIGTERM, 30s) == 0);
  auto records = read_topic(services.bootstrap_servers, topic, 1);
  REQUIRE(records.size() == 2);
  using Headers = std::vector<std::pair<std::string, std::optional<std::string>>>;
  CHECK(records[0].headers == Headers{{"none", std::nullopt}, {"\xff", "v"}});
}

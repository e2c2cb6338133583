// The inline door, POST /v1/decisions, beside the stream on a running replica: one identity
// across both doors, the same rules and features, an idempotent API.
#include <doctest/doctest.h>

#include <memory>
#include <regex>

#include "tests/support/integration.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

const std::string kToken = "inline-test-token-0123456789";

/// A replica with the inline door open, on a one-partition topic of its own.
struct InlineReplica {
  InlineReplica()
      : services(Services::from_environment()), db(services), topic(unique_name("transactions")),
        log("/tmp/" + unique_name("inline") + ".log"), port(free_port()) {
    create_topic(services.bootstrap_servers, topic, 1);
    process = std::make_unique<ChildProcess>(
        std::vector<std::string>{FRAUD_CONSUMER_BINARY, "run"},
        replica_environment(services, db.service_url(), topic, unique_name("fraud"),
                            {{"FRAUD_RULES_FILE", FRAUD_SOURCE_DIR "/tests/data/inline_rules.yaml"},
                             {"FRAUD_DECISIONS_LISTEN", "127.0.0.1:" + std::to_string(port)},
                             {"FRAUD_DECISIONS_TOKEN", kToken},
                             // CI's machine is shared: the deadline is not what these tests are about.
                             {"FRAUD_DECISIONS_DEADLINE_MS", "5000"}}),
        log);
    REQUIRE(wait_until(30s, [&] { return post_status("{}") == 400; }));
  }

  /// POSTs `body` to /v1/decisions with the token; the status, and the answer in `answer`.
  int post(const std::string& body, std::string* answer = nullptr, const std::string& token = kToken) {
    int status = 0;
    auto got = http_call(port, {"POST", "/v1/decisions", token.empty() ? "" : "Bearer " + token, body}, &status);
    if (answer) *answer = got.value_or("");
    return got ? status : 0;
  }
  int post_status(const std::string& body) { return post(body); }

  /// Publishes `records` and waits until the replica consumed them.
  void stream(const std::vector<OutgoingRecord>& records) {
    produce(services.bootstrap_servers, topic, records);
    REQUIRE(wait_until(30s, [&] { return offsets_at_end(db, services, topic, 1); }));
  }

  std::int64_t count(const std::string& what, const std::string& id) {
    return db.count("SELECT count(*) FROM " + what + " WHERE event_id = '" + id + "'");
  }

  Services services;
  TestDatabase db;
  std::string topic, log;
  unsigned short port;
  std::unique_ptr<ChildProcess> process;
};

/// The event the bank sends before it records the transaction: the stream's copy without the
/// recorded_at its outbox adds.
std::string before_recording(const OutgoingRecord& record) {
  return std::regex_replace(record.value, std::regex(R"("recorded_at":"[^"]*",)"), "");
}

std::string rule_ids(const std::string& answer) {
  std::string ids;
  static const std::regex id(R"re(\{"id":"([a-z_]+)")re");
  for (auto it = std::sregex_iterator(answer.begin(), answer.end(), id); it != std::sregex_iterator(); ++it)
    ids += (ids.empty() ? "" : ",") + (*it)[1].str();
  return ids;
}

}  // namespace

TEST_CASE(
    "an event decided inline is applied once, and its stream copy is a duplicate that keeps the inline decision") {
  InlineReplica replica;
  auto event = transaction_event(1, "12500.00");
  std::string answer;
  REQUIRE(replica.post(before_recording(event), &answer) == 200);
  CHECK(json_field(answer, "decision") == "review");
  CHECK(json_field(answer, "decided") == "now");
  CHECK(json_field(answer, "rule_set_version").starts_with("test-inline-1"));
  CHECK(rule_ids(answer) == "count_recorder,spend_recorder,large_amount");
  CHECK(answer.find("\"score\":60") != std::string::npos);

  replica.stream({event});
  CHECK(replica.count("processed_events", "evt-1") == 1);
  CHECK(replica.db.count("SELECT count(*) FROM processed_events WHERE event_id = 'evt-1' AND topic = '(inline)'") == 1);
  CHECK(replica.db.count("SELECT count(*) FROM transactions WHERE event_id = 'evt-1' AND decision = 'review'") == 1);
  CHECK(replica.count("fraud_alerts", "evt-1") == 3);  // the two recorders and large_amount, once each
  CHECK(replica.count("fraud_case_events", "evt-1") == 1);
  CHECK(miscased_accounts(replica.db) == 0);  // the case counts the event once: no constraint forces that
  CHECK(replica.db.count("SELECT count(*) FROM duplicate_conflicts") == 0);  // recorded_at is not content
  CHECK(replica.db.count("SELECT count(*) FROM outbox WHERE event_type = 'FraudAlertRaised'") == 3);
}

TEST_CASE("a retried inline request gets the same answer and changes nothing, and another body under its id gets 409") {
  InlineReplica replica;
  auto event = before_recording(transaction_event(2, "60000.00"));
  std::string first, again;
  REQUIRE(replica.post(event, &first) == 200);
  REQUIRE(replica.post(event, &again) == 200);
  CHECK(json_field(first, "decision") == "block");
  CHECK(json_field(again, "decision") == "block");
  CHECK(json_field(again, "decided") == "before");
  CHECK(json_field(again, "first_door") == "inline");
  CHECK(rule_ids(again) == rule_ids(first));
  CHECK(replica.count("transactions", "evt-2") == 1);
  CHECK(replica.count("fraud_alerts", "evt-2") == 4);

  auto changed = before_recording(transaction_event(2, "61000.00"));
  std::string refused;
  CHECK(replica.post(changed, &refused) == 409);
  CHECK(replica.post(changed) == 409);  // retried: recorded once
  CHECK(replica.db.count("SELECT count(*) FROM duplicate_conflicts WHERE event_id = 'evt-2' AND topic = '(inline)'") ==
        1);
  CHECK(replica.db.count("SELECT count(*) FROM transactions WHERE event_id = 'evt-2' AND amount_minor = 6000000") == 1);

  CHECK(replica.post(event, nullptr, "") == 401);
  CHECK(replica.post(event, nullptr, "not-the-token-0123456789") == 401);
  CHECK(replica.post(R"({"event_id":"evt-3"})") == 400);
}

TEST_CASE("an event the stream applied first is answered inline with the decision already made") {
  InlineReplica replica;
  auto event = transaction_event(4, "20000.00");
  replica.stream({event});
  std::string answer;
  REQUIRE(replica.post(before_recording(event), &answer) == 200);
  CHECK(json_field(answer, "decision") == "review");
  CHECK(json_field(answer, "decided") == "before");
  CHECK(json_field(answer, "first_door") == "stream");
  CHECK(rule_ids(answer) == "count_recorder,spend_recorder,large_amount");
  CHECK(replica.count("transactions", "evt-4") == 1);
  CHECK(replica.count("fraud_alerts", "evt-4") == 3);
}

TEST_CASE("an account's counts are exact across the two doors, each event counting the ones applied before it once") {
  InlineReplica replica;
  // Ten events of one account within the hour: odd ones decided inline first and then
  // published, even ones only published; every inline one is sent twice.
  std::vector<OutgoingRecord> published;
  for (int i = 1; i <= 10; ++i) {
    char at[32];
    std::snprintf(at, sizeof at, "2026-11-27T09:%02d:00Z", i);
    auto event = transaction_event(100 + i, "10.00", at, "acc-mixed");
    if (i % 2 == 1) {
      REQUIRE(replica.post(before_recording(event)) == 200);
      REQUIRE(replica.post(before_recording(event)) == 200);
    }
    published.push_back(event);
    if (i % 2 == 0) replica.stream(published), published.clear();
  }
  // Each event's count (its alert's explanation) is its rank in the order the service applied them.
  auto rows = replica.db.query(
      "SELECT t.event_id, a.reason, row_number() OVER (ORDER BY t.applied_seq) FROM transactions t "
      "JOIN fraud_alerts a USING (event_source, event_id) WHERE a.rule_id = 'count_recorder' ORDER BY t.applied_seq");
  REQUIRE(rows.size() == 10);
  for (const auto& row : rows)
    CHECK_MESSAGE(std::string(row[1].c_str()) == "tx_count_1h (" + std::string(row[2].c_str()) + ") >= 1",
                  row[0].c_str(), ": ", row[1].c_str());
  CHECK(replica.db.count("SELECT count(*) FROM processed_events WHERE topic = '(inline)'") == 5);
}

TEST_CASE("a blocked authorisation is a declined attempt that later events count but whose money they do not") {
  InlineReplica replica;
  std::string answer;
  REQUIRE(replica.post(before_recording(transaction_event(200, "60000.00", "2026-11-27T09:00:00Z", "acc-tried")),
                       &answer) == 200);
  REQUIRE(json_field(answer, "decision") == "block");  // the bank declines it: its outbox never publishes it
  replica.stream({transaction_event(201, "10.00", "2026-11-27T09:01:00Z", "acc-tried")});
  CHECK(replica.db.count("SELECT count(*) FROM transactions WHERE declined") == 1);
  CHECK(replica.db.count("SELECT count(*) FROM transactions WHERE event_id = 'evt-200' AND declined") == 1);
  auto reasons = replica.db.query(
      "SELECT rule_id, reason FROM fraud_alerts WHERE event_id = 'evt-201' AND rule_id LIKE '%recorder' ORDER BY 1");
  REQUIRE(reasons.size() == 2);
  CHECK(std::string(reasons[0][1].c_str()) == "tx_count_1h (2) >= 1");  // the attempt counts
  CHECK(std::string(reasons[1][1].c_str()) == "spend_1h (10) >= 0");    // its money does not
  auto report = backtest_report(replica.db, FRAUD_SOURCE_DIR "/tests/data/inline_rules.yaml");
  CHECK_MESSAGE(report.find("2 compared, 2 reproduced") != std::string::npos, report);
}

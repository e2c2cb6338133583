// The inline door, POST /v1/decisions, beside the stream on a running replica: one identity
// across both doors, the same rules and features, an idempotent API.
#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include <signal.h>

#include <future>
#include <map>
#include <memory>
#include <regex>

#include "tests/support/integration.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

const std::string kToken = "inline-test-token-0123456789";

/// A replica with the inline door open, on a one-partition topic of its own.
struct InlineReplica {
  /// `deadline_ms`: CI's machine is shared, so by default the deadline is not what a test is about.
  explicit InlineReplica(const std::string& deadline_ms = "5000", const std::string& event_source = "")
      : services(Services::from_environment()), db(services), topic(unique_name("transactions")),
        log("/tmp/" + unique_name("inline") + ".log"), port(free_port()) {
    create_topic(services.bootstrap_servers, topic, 1);
    process = std::make_unique<ChildProcess>(
        std::vector<std::string>{FRAUD_CONSUMER_BINARY, "run"},
        replica_environment(services, db.service_url(), topic, unique_name("fraud"),
                            {{"FRAUD_RULES_FILE", FRAUD_SOURCE_DIR "/tests/data/inline_rules.yaml"},
                             {"FRAUD_DECISIONS_LISTEN", "127.0.0.1:" + std::to_string(port)},
                             {"FRAUD_DECISIONS_TOKEN", kToken},
                             {"FRAUD_DECISIONS_DEADLINE_MS", deadline_ms},
                             {"FRAUD_DECISIONS_EVENT_SOURCE", event_source}}),
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

TEST_CASE("a door whose stream carries CloudEvents shares its source with the copies, and refuses another") {
  InlineReplica replica("5000", "/core-banking/outbox");
  auto event = transaction_event(5, "12500.00");
  REQUIRE(replica.post(before_recording(event)) == 200);
  // The outbox's copy in CloudEvents binary mode: the id and the source in headers.
  auto copy = event;
  copy.value = std::regex_replace(copy.value, std::regex(R"("event_id":"evt-5",)"), "");
  copy.headers = {{"ce_specversion", "1.0"},
                  {"ce_id", "evt-5"},
                  {"ce_source", "/core-banking/outbox"},
                  {"ce_type", "TransactionRecorded"}};
  replica.stream({copy});
  CHECK(replica.db.count("SELECT count(*) FROM processed_events WHERE event_source = '/core-banking/outbox' AND "
                         "event_id = 'evt-5' AND topic = '(inline)'") == 1);
  CHECK(replica.db.count("SELECT count(*) FROM processed_events") == 1);
  CHECK(replica.db.count("SELECT count(*) FROM duplicate_conflicts") == 0);
  // A request naming the same source is the same identity; another source, or not a string, is refused.
  std::string answer;
  CHECK(replica.post(R"({"event_source":"/core-banking/outbox",)" + before_recording(event).substr(1), &answer) == 200);
  CHECK(json_field(answer, "decided") == "before");
  CHECK(replica.post(R"({"event_source":"/elsewhere",)" + before_recording(transaction_event(6, "1.00")).substr(1)) ==
        400);
  CHECK(replica.count("processed_events", "evt-6") == 0);
}

TEST_CASE("a request whose deadline passes is answered with the fallback and never applied by the door") {
  InlineReplica replica("300");
  REQUIRE(replica.post(before_recording(transaction_event(300, "10.00", "2026-11-27T09:00:00Z", "acc-slow"))) == 200);
  // A batch elsewhere holds the account's key version: the door's next group waits for it.
  pqxx::connection other(replica.db.url());
  auto holding = std::make_unique<pqxx::work>(other);
  REQUIRE(holding
              ->exec("SELECT FROM feature_key_versions WHERE key_field = 'account_id' AND key = 'acc-slow' "
                     "FOR UPDATE")
              .size() == 1);
  auto slow = transaction_event(301, "60000.00", "2026-11-27T09:01:00Z", "acc-slow");
  std::string answer;
  REQUIRE(replica.post(before_recording(slow), &answer) == 200);
  CHECK(json_field(answer, "fallback_reason") == "deadline");
  CHECK(json_field(answer, "decision") == "review");  // the fallback, not the block the rules would say
  holding.reset();  // the batch commits; the door's group goes on, and must not apply the abandoned request
  // The desk is one thread: once a later request is answered, the group before it is done.
  REQUIRE(replica.post(before_recording(transaction_event(302, "10.00", "2026-11-27T09:02:00Z", "acc-other"))) == 200);
  CHECK(replica.count("processed_events", "evt-301") == 0);
  // The bank recorded it on the fallback; the stream applies it once, with the rules' decision.
  replica.stream({slow});
  CHECK(replica.db.count("SELECT count(*) FROM transactions WHERE event_id = 'evt-301' AND decision = 'block' AND "
                         "NOT declined") == 1);
  CHECK(replica.db.count("SELECT count(*) FROM processed_events WHERE event_id = 'evt-301' AND topic = '(inline)'") ==
        0);
}

TEST_CASE("a blocked authorisation is a declined attempt that later events count but whose money they do not") {
  InlineReplica replica;
  std::string answer;
  REQUIRE(replica.post(before_recording(transaction_event(200, "60000.00", "2026-11-27T09:00:00Z", "acc-tried")),
                       &answer) == 200);
  REQUIRE(json_field(answer, "decision") == "block");  // the bank declines it: its outbox never publishes it
  // The door's next event of the account, from the door's own feature state.
  REQUIRE(replica.post(before_recording(transaction_event(201, "5.00", "2026-11-27T09:01:00Z", "acc-tried")),
                       &answer) == 200);
  CHECK(answer.find("tx_count_1h (2) >= 1") != std::string::npos);  // the attempt counts
  CHECK(answer.find("spend_1h (5) >= 0") != std::string::npos);     // its money does not
  // The stream's replica, which reads the account from the history, says the same.
  replica.stream({transaction_event(202, "10.00", "2026-11-27T09:02:00Z", "acc-tried")});
  CHECK(replica.db.count("SELECT count(*) FROM transactions WHERE declined") == 1);
  CHECK(replica.db.count("SELECT count(*) FROM transactions WHERE event_id = 'evt-200' AND declined") == 1);
  auto reasons = replica.db.query(
      "SELECT rule_id, reason FROM fraud_alerts WHERE event_id = 'evt-202' AND rule_id LIKE '%recorder' ORDER BY 1");
  REQUIRE(reasons.size() == 2);
  CHECK(std::string(reasons[0][1].c_str()) == "tx_count_1h (3) >= 1");
  CHECK(std::string(reasons[1][1].c_str()) == "spend_1h (15) >= 0");
  auto report = backtest_report(replica.db, FRAUD_SOURCE_DIR "/tests/data/inline_rules.yaml");
  CHECK_MESSAGE(report.find("3 compared, 3 reproduced") != std::string::npos, report);
}

namespace {

/// The port a replica's log says its inline door listens on, or 0.
unsigned short door_of(const std::string& log_path) { return logged_port(log_path, "decisions_port"); }

/// Events whose count_recorder alert does not record what one process computes applying the
/// events in the order the service applied them: the account's events applied so far (this one
/// included) that occurred within the hour up to it.
std::int64_t miscounted_in_applied_order(TestDatabase& db) {
  return db.count(R"sql(
    SELECT count(*) FROM transactions e
    JOIN fraud_alerts a ON a.event_source = e.event_source AND a.event_id = e.event_id AND a.rule_id = 'count_recorder'
    WHERE a.reason <> 'tx_count_1h (' || (
      SELECT count(*) FROM transactions f
      WHERE f.account_id = e.account_id AND f.applied_seq <= e.applied_seq
        AND f.occurred_at <= e.occurred_at AND f.occurred_at > e.occurred_at - interval '1 hour') || ') >= 1')sql");
}

}  // namespace

TEST_CASE("two replicas and their inline doors apply a mixed stream once, with exact counts the backtest reproduces") {
  constexpr int kPartitions = 4, kEvents = 300, kWave = 30;
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions"), group = unique_name("fraud");
  create_topic(services.bootstrap_servers, topic, kPartitions);
  std::vector<std::string> logs;
  std::vector<std::unique_ptr<ChildProcess>> replicas;
  for (int r = 0; r < 2; ++r) {
    logs.push_back("/tmp/" + unique_name("mixed") + ".log");
    replicas.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{FRAUD_CONSUMER_BINARY, "run"},
        replica_environment(services, db.service_url(), topic, group,
                            {{"FRAUD_RULES_FILE", FRAUD_SOURCE_DIR "/tests/data/inline_rules.yaml"},
                             {"FRAUD_BATCH_MAX_RECORDS", "50"},
                             {"FRAUD_BATCH_MAX_WAIT_MS", "20"},
                             {"FRAUD_DECISIONS_LISTEN", "127.0.0.1:0"},
                             {"FRAUD_DECISIONS_TOKEN", kToken},
                             {"FRAUD_DECISIONS_DEADLINE_MS", "5000"}}),
        logs.back()));
  }
  REQUIRE(wait_until(60s, [&] {
    return db.count("SELECT count(DISTINCT owner) FROM consumer_offsets WHERE topic = '" + topic + "'") == 2 &&
           door_of(logs[0]) && door_of(logs[1]);
  }));
  std::vector<unsigned short> doors = {door_of(logs[0]), door_of(logs[1])};
  auto post = [&](int i, const std::string& body, bool hang_up = false) {
    int status = 0;
    auto answer = http_call(doors[static_cast<std::size_t>(i) % 2],
                            {"POST", "/v1/decisions", "Bearer " + kToken, body, {}, hang_up}, &status);
    return std::make_pair(answer ? status : 0, answer.value_or(""));
  };

  // Twenty accounts, an event a second. By i % 6: 0 and 3 decided inline, then published (a
  // block is declined by the bank: never published); 4 the same, its request sent twice at
  // once; 5 sent inline by a client that hangs up before the answer, then published; 1
  // published, then sent inline; 2 published only.
  std::map<std::string, std::string> inline_decisions, answered_after_stream;
  int blocked = 0, large = 0;
  for (int wave = 0; wave < kEvents / kWave; ++wave) {
    std::vector<OutgoingRecord> published, later;
    std::vector<std::future<std::pair<int, std::string>>> calls;
    std::vector<std::string> called_ids;
    for (int i = wave * kWave; i < (wave + 1) * kWave; ++i) {
      char at[32];
      std::snprintf(at, sizeof at, "2026-11-27T09:%02d:%02dZ", i / 60, i % 60);
      int kind = i % 6;
      // Blocks, but none a hung-up client sent: whether its door or the stream applies it first
      // decides whether it is declined.
      bool blocks = i % 25 == 0 && kind != 5;
      auto amount = blocks ? "60000.00" : i % 10 == 0 ? "12500.00" : "42.10";
      large += blocks || i % 10 == 0;
      auto event = transaction_event(1000 + i, amount, at, "acc-" + std::to_string(i % 20));
      auto body = before_recording(event);
      if (kind == 0 || kind == 3 || kind == 4) {
        for (int copies = kind == 4 ? 2 : 1; copies > 0; --copies) {
          calls.push_back(std::async(std::launch::async, post, i, body, false));
          called_ids.push_back("evt-" + std::to_string(1000 + i));
        }
      } else if (kind == 5) {
        calls.push_back(std::async(std::launch::async, post, i, body, true));
        called_ids.push_back("");
      }
      if (kind == 1) later.push_back(event);
      if ((kind == 0 || kind == 3 || kind == 4) && blocks) ++blocked;  // declined: never published
      else published.push_back(event);
    }
    for (std::size_t c = 0; c < calls.size(); ++c) {
      auto [status, answer] = calls[c].get();
      if (called_ids[c].empty()) continue;  // hung up
      REQUIRE(status == 200);
      REQUIRE(json_field(answer, "fallback").empty());
      auto [it, first] = inline_decisions.emplace(called_ids[c], json_field(answer, "decision"));
      CHECK(it->second == json_field(answer, "decision"));  // a concurrent retry gets the same answer
    }
    produce(services.bootstrap_servers, topic, published);
    REQUIRE(wait_until(60s, [&] { return offsets_at_end(db, services, topic, kPartitions); }));
    for (const auto& event : later) {
      auto [status, answer] = post(0, before_recording(event));
      REQUIRE(status == 200);
      CHECK(json_field(answer, "decided") == "before");
      CHECK(json_field(answer, "first_door") == "stream");
      answered_after_stream[json_field(event.value, "event_id")] = json_field(answer, "decision");
    }
  }
  // The hung-up requests were applied once too, by their door or by the stream.
  CHECK(wait_until(30s, [&] { return db.count("SELECT count(*) FROM processed_events") == kEvents; }));
  for (auto& replica : replicas) CHECK(replica->stop(SIGTERM, 30s) == 0);

  CHECK(db.count("SELECT count(DISTINCT event_id) FROM processed_events") == kEvents);
  CHECK(db.count("SELECT count(*) FROM transactions") == kEvents);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'count_recorder'") == kEvents);
  CHECK(miscounted_in_applied_order(db) == 0);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'large_amount'") == large);
  CHECK(miscased_accounts(db) == 0);
  CHECK(db.count("SELECT count(*) FROM transactions WHERE declined") == blocked);
  // The stream's copies kept the inline decisions; the inline calls after the stream got its.
  for (const auto& [id, decision] : inline_decisions)
    CHECK_MESSAGE(db.count("SELECT count(*) FROM transactions t JOIN processed_events p USING (event_source, "
                           "event_id) WHERE p.topic = '(inline)' AND t.event_id = '" +
                           id + "' AND t.decision = '" + decision + "'") == 1,
                  id);
  for (const auto& [id, decision] : answered_after_stream)
    CHECK(db.count("SELECT count(*) FROM transactions WHERE event_id = '" + id + "' AND decision = '" + decision +
                   "'") == 1);
  auto report = backtest_report(db, FRAUD_SOURCE_DIR "/tests/data/inline_rules.yaml");
  CHECK_MESSAGE(report.find(std::to_string(kEvents) + " compared, " + std::to_string(kEvents) + " reproduced") !=
                    std::string::npos,
                report);
}

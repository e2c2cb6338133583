// Runtime lists (migrations/0014) end to end: an analyst's entry in the console is in force
// on a running replica from its next batch, with no rule reload; ending it ends it; and the
// backtest decides every event with what was in force when it occurred, as the service did.
#include <doctest/doctest.h>

#include <signal.h>

#include "tests/integration/support.h"

using namespace fraud;
using namespace fraud::testing;
using namespace std::chrono_literals;

TEST_CASE("a deny-listed card's next transaction is blocked on a running replica within seconds") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions"), group = unique_name("fraud");
  create_topic(services.bootstrap_servers, topic, 1);
  auto rules = FRAUD_SOURCE_DIR "/tests/data/list_rules.yaml";
  ChildProcess replica({FRAUD_CONSUMER_BINARY, "run"},
                       replica_environment(services, db.service_url(), topic, group, {{"FRAUD_RULES_FILE", rules}}));
  ConsoleProcess console(db);
  auto decision_of = [&](int i) {
    auto rows = db.query("SELECT decision FROM transactions WHERE event_id = 'evt-" + std::to_string(i) + "'");
    return rows.empty() ? std::string() : rows[0][0].as<std::string>();
  };
  auto decided = [&](int i, const std::string& expected) {
    return wait_until(30s, [&] { return decision_of(i) == expected; });
  };

  produce(services.bootstrap_servers, topic, {paid_now(1, "acc-1", "card-9", "20.00")});
  CHECK(decided(1, "allow"));

  // alice deny-lists the card; its next payment is blocked without a reload.
  CHECK(console.status("POST", "/api/lists/deny_cards/entries", "alice",
                       R"({"value":"card-9","reason":"reported stolen","days":14})") == 201);
  produce(services.bootstrap_servers, topic, {paid_now(2, "acc-1", "card-9", "20.00")});
  CHECK(decided(2, "block"));
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'deny_listed_card' AND event_id = 'evt-2' AND "
                 "reason = 'card.fingerprint (''card-9'') in deny_cards'") == 1);

  // An analyst may not allow-list; a lead may, and the account's large payment is let through.
  CHECK(console.status("POST", "/api/lists/allow_accounts/entries", "alice", R"({"value":"acc-2","reason":"vip"})") ==
        403);
  CHECK(console.status("POST", "/api/lists/allow_accounts/entries", "lena", R"({"value":"acc-2","reason":"vip"})") ==
        201);
  produce(services.bootstrap_servers, topic, {paid_now(3, "acc-2", "card-3", "15000.00")});
  CHECK(decided(3, "allow"));
  produce(services.bootstrap_servers, topic, {paid_now(4, "acc-4", "card-4", "15000.00")});
  CHECK(decided(4, "review"));

  // Ended, the deny entry stops blocking.
  auto entry = db.count("SELECT entry_id FROM fraud_list_entries WHERE value = 'card-9'");
  CHECK(console.status("POST", "/api/lists/entries/" + std::to_string(entry) + "/end", "bob") == 200);
  produce(services.bootstrap_servers, topic, {paid_now(5, "acc-1", "card-9", "20.00")});
  CHECK(decided(5, "allow"));
  CHECK(replica.stop(SIGTERM, 30s) == 0);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE action LIKE 'list.%'") == 3);

  // The backtest replays each event with the entries in force when it occurred.
  auto report = output_of("FRAUD_POSTGRES_URL='" + db.service_url() +
                          "' FRAUD_KAFKA_BOOTSTRAP_SERVERS=unused:1 FRAUD_RULES_FILE=" + std::string(rules) + " " +
                          FRAUD_CONSUMER_BINARY " rules backtest --rules " + rules + " 2>&1");
  CAPTURE(report);
  CHECK(report.find("service decisions under the active rules: 5 compared, 5 reproduced") != std::string::npos);
}

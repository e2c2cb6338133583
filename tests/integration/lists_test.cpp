// Runtime lists and suppressions (migrations/0014, 0015) end to end: an analyst's entry in
// the console is in force on a running replica from its next batch, with no rule reload;
// ending it ends it, for late-stamped events too; and the backtest decides every event with
// what its batch saw, as the service did.
#include <doctest/doctest.h>

#include <signal.h>

#include "events/time.h"
#include "store/list_entries.h"
#include "tests/support/integration.h"

using namespace fraud;
using namespace fraud::testing;
using namespace std::chrono_literals;

TEST_CASE("a deny-listed card's next transaction is blocked on a running replica within seconds") {
  auto rules = FRAUD_SOURCE_DIR "/tests/data/list_rules.yaml";
  RunningReplica replica(rules);
  auto& db = replica.db;
  ConsoleProcess console(db, rules);

  replica.produce({paid_now(1, "acc-1", "card-9", "20.00")});
  CHECK(replica.decided(1, "allow"));

  // alice deny-lists the card; its next payment is blocked without a reload.
  CHECK(console.status("POST", "/api/lists/deny_cards/entries", "alice",
                       R"({"value":"card-9","reason":"reported stolen","days":14})") == 201);
  replica.produce({paid_now(2, "acc-1", "card-9", "20.00")});
  CHECK(replica.decided(2, "block"));
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'deny_listed_card' AND event_id = 'evt-2' AND "
                 "reason = 'card.fingerprint (''card-9'') in deny_cards'") == 1);

  // An allow entry lowers decisions: one lead proposes it, another approves it, and the
  // account's large payment is let through.
  std::string proposed;
  CHECK(console.status("POST", "/api/lists/allow_accounts/entries", "lena", R"({"value":"acc-2","reason":"vip"})",
                       &proposed) == 202);
  CHECK(console.approve(proposed, "lars") == 200);
  replica.produce({paid_now(3, "acc-2", "card-3", "15000.00")});
  CHECK(replica.decided(3, "allow"));
  replica.produce({paid_now(4, "acc-4", "card-4", "15000.00")});
  CHECK(replica.decided(4, "review"));

  // Ended (proposed and approved: it lowers decisions), the deny entry stops blocking.
  auto entry = db.count("SELECT entry_id FROM fraud_list_entries WHERE value = 'card-9'");
  CHECK(console.status("POST", "/api/lists/entries/" + std::to_string(entry) + "/end", "bob", "", &proposed) == 202);
  CHECK(console.approve(proposed, "lena") == 200);
  replica.produce({paid_now(5, "acc-1", "card-9", "20.00")});
  CHECK(replica.decided(5, "allow"));
  CHECK(replica.process.stop(SIGTERM, 30s) == 0);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE action LIKE 'list.%'") == 3);

  // The backtest replays each event with the entries its batch saw.
  auto report = backtest_report(db, rules);
  CAPTURE(report);
  CHECK(report.find("service decisions under the active rules: 5 compared, 5 reproduced") != std::string::npos);
}

// Told in the deny-list test's steps (decide, change in the console, decide, end, replay), so
// the two read alike; `duplicates` pairs them, and they stay two stories.
TEST_CASE("a lead's suppression silences one rule for one account on a running replica until it is ended") {
  // A rules file with no runtime lists: every replica reads the suppressions, whatever its rules.
  auto rules = FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml";
  RunningReplica replica(rules);
  auto& db = replica.db;
  ConsoleProcess console(db, rules);

  replica.produce({paid_now(1, "acc-pay", "card-1", "15000.00")});
  CHECK(replica.decided(1, "review"));

  // The payroll account's large payments are known; a lead suppresses large_amount for it.
  const std::string payroll = R"({"rule":"large_amount","account_id":"acc-pay","reason":"monthly payroll"})";
  CHECK(console.status("POST", "/api/suppressions", "lena",
                       R"({"rule":"large_amonut","account_id":"acc-pay","reason":"typo"})") == 400);
  std::string proposed;
  CHECK(console.status("POST", "/api/suppressions", "lena", payroll, &proposed) == 202);  // four eyes
  CHECK(console.approve(proposed, "lars") == 200);
  auto inside = events::format_rfc3339(events::wall_clock_now());  // a moment inside its window
  replica.produce({paid_now(2, "acc-pay", "card-1", "15000.00"), paid_now(3, "acc-other", "card-2", "15000.00")});
  CHECK(replica.decided(2, "allow"));
  CHECK(replica.decided(3, "review"));  // only that account
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE event_id = 'evt-2'") == 0);
  // The history says which rule the suppression silenced, and the case's page shows it.
  CHECK(db.count("SELECT count(*) FROM transactions WHERE event_id = 'evt-2' "
                 "AND suppressed_rules = '[\"large_amount\"]'") == 1);
  CHECK(db.count("SELECT count(*) FROM transactions WHERE suppressed_rules IS NOT NULL") == 1);
  std::string page;
  auto case_id = std::to_string(db.count("SELECT case_id FROM fraud_cases WHERE account_id = 'acc-pay'"));
  CHECK(console.status("GET", "/api/cases/" + case_id, "alice", "", &page) == 200);
  CAPTURE(page);
  CHECK(page.find("\"suppressed_rules\":[\"large_amount\"]") != std::string::npos);
  std::string lists;
  CHECK(console.status("GET", "/api/lists", "alice", "", &lists) == 200);
  CHECK(lists.find("\"reason\":\"monthly payroll\"") != std::string::npos);

  // Ended early (by anyone), the rule fires for the account again.
  auto id = std::to_string(db.count("SELECT suppression_id FROM fraud_suppressions"));
  CHECK(console.status("POST", "/api/suppressions/" + id + "/end", "bob") == 200);
  CHECK(console.status("POST", "/api/suppressions/" + id + "/end", "bob") == 404);
  replica.produce({paid_now(4, "acc-pay", "card-1", "15000.00")});
  CHECK(replica.decided(4, "review"));
  // Stamped while the suppression was in force but applied after it ended (a backlog, a late
  // relay): ending it reaches this event too.
  replica.produce({transaction_event(5, "15000.00", inside, "acc-pay")});
  CHECK(replica.decided(5, "review"));
  CHECK(replica.process.stop(SIGTERM, 30s) == 0);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE action IN ('suppression.add', 'suppression.end')") == 2);

  // The backtest decides each event under the lists' version its batch recorded.
  auto report = backtest_report(db, rules);
  CAPTURE(report);
  CHECK(report.find("service decisions under the active rules: 5 compared, 5 reproduced") != std::string::npos);
}

TEST_CASE("a change committed between a batch's version read and its entries read stays out of its decisions") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  // A list change as the console's functions make it: one call, committed (as the owner, who
  // may call what an approval calls).
  auto console_call = [&](const std::string& sql, const auto& argument) {
    pqxx::connection console(db.url());
    pqxx::work tx(console);
    auto row = tx.exec_params1(sql, argument);
    tx.commit();
    return row;
  };
  auto add = [&](const std::string& value) {
    return console_call("SELECT fraud_list_add('deny_cards', $1, 'stolen', NULL, 'alice')", value)[0]
        .as<std::int64_t>();
  };
  auto kept = add("card-kept");

  // The batch's transaction reads the version; a change commits; then it reads the entries,
  // in a later statement that sees the change.
  pqxx::connection batch(db.service_url());
  pqxx::work tx(batch);
  auto row = tx.exec1("SELECT version, (extract(epoch FROM now()) * 1000000)::bigint FROM fraud_list_version");
  rules::ListsAsOf as_of{row[0].as<std::int64_t>(), row[1].as<events::Timestamp>()};
  add("card-new");
  console_call("SELECT fraud_apply_list_end($1, 'lena')", kept);  // as an approval ends it
  auto lists = store::read_list_entries(tx);
  CHECK(lists.size() == 2);  // both changes are visible to this statement...
  // ...and neither counts for a decision under the version the batch read.
  // (An event stamped an hour on, so that counting by event time would say the opposite.)
  auto stamped = as_of.at + 3'600'000'000;
  CHECK_FALSE(lists.contains("deny_cards", "card-new", stamped, as_of));
  CHECK(lists.contains("deny_cards", "card-kept", stamped, as_of));
  // The next batch, under the version after both, sees them.
  rules::ListsAsOf next{as_of.version + 2, as_of.at};
  CHECK(lists.contains("deny_cards", "card-new", stamped, next));
  CHECK_FALSE(lists.contains("deny_cards", "card-kept", stamped, next));
}

// Every change bumps the lists' version; a replica reads only the entries and suppressions
// added or ended since the version it read last (store/list_entries.cpp), and a row read
// again replaces the copy read before, so an ended entry does not stay in force.
TEST_CASE("a replica rereads only what changed in the lists, and an entry it read before ends when ended") {
  TestDatabase db(Services::from_environment());
  auto admin = [&](const std::string& sql) {  // as the console's approvals call them
    pqxx::connection c(db.url());
    pqxx::work tx(c);
    auto row = tx.exec1(sql);
    tx.commit();
    return row[0].is_null() || row[0].size() == 0 ? std::int64_t{0} : row[0].as<std::int64_t>();  // void: ""
  };
  auto stolen = admin("SELECT fraud_apply_list_add('deny_cards', 'card-a', 'stolen', NULL, 'alice')");
  admin("SELECT fraud_apply_list_add('deny_cards', 'card-b', 'stolen', NULL, 'alice')");
  auto payroll = admin("SELECT fraud_apply_suppression_add('large_amount', 'acc-pay', 'payroll', 30, 'lena')");

  store::ListSnapshot snapshot;
  pqxx::connection batch(db.service_url());
  auto refresh = [&] {
    pqxx::work tx(batch);
    snapshot.refresh(tx);
    tx.commit();
    return snapshot.rows_read();
  };
  CHECK(refresh() == 3);  // the first read: everything
  CHECK(refresh() == 0);  // no change

  admin("SELECT fraud_apply_list_end(" + std::to_string(stolen) + ", 'lena')");
  admin("SELECT fraud_apply_list_add('deny_cards', 'card-c', 'stolen', NULL, 'alice')");
  admin("SELECT fraud_suppression_end(" + std::to_string(payroll) + ", 'lena')");
  CHECK(refresh() == 3);  // the three rows that changed, not the four there are

  pqxx::work tx(batch);
  const auto& lists = snapshot.refresh(tx);
  auto as_of = std::optional<rules::ListsAsOf>(snapshot.as_of());
  auto now = snapshot.as_of().at;
  CHECK_FALSE(lists.contains("deny_cards", "card-a", now, as_of));  // ended: its earlier copy is gone
  CHECK(lists.contains("deny_cards", "card-b", now, as_of));
  CHECK(lists.contains("deny_cards", "card-c", now, as_of));
  const auto* suppressions = lists.suppressions_of("acc-pay");
  REQUIRE(suppressions != nullptr);
  CHECK_FALSE(rules::RuntimeLists::suppressed(*suppressions, "large_amount", now, as_of));
  CHECK(lists.size() == 4);
  tx.commit();

  // A row deleted by hand (the owner can), with the version moved: the counts differ, so
  // everything is read again and the entry is gone.
  admin(
      "WITH gone AS (DELETE FROM fraud_list_entries WHERE value = 'card-b' RETURNING 1) "
      "UPDATE fraud_list_version SET version = version + 1 RETURNING version");
  CHECK(refresh() == 3);
  pqxx::work after(batch);
  CHECK_FALSE(snapshot.refresh(after).contains("deny_cards", "card-b", now, snapshot.as_of()));
  after.commit();
  // A version lower than the last one read (a database restored): everything again.
  admin("UPDATE fraud_list_version SET version = version - 2 RETURNING version");
  CHECK(refresh() == 3);
}

// What needs two people, on the real database and the console as a child process: nothing
// that lowers the bank's decisions (a lowered disposition, an allow-list entry, a suppression)
// takes effect on one person's word, whichever way in (the API, the functions called
// directly), and the database, not only the console, holds a lead's part to a lead's login.
#include <doctest/doctest.h>

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <future>

#include "console/tokens.h"
#include "store/list_entries.h"
#include "tests/support/integration.h"

using namespace fraud;
using namespace fraud::testing;
using namespace std::chrono_literals;

TEST_CASE("nothing that lowers a decision takes effect on one person's word") {
  AppliedHistory history;
  auto& db = history.db;
  history.apply({{0, transaction_event(0, "12500.00", "2026-11-27T09:00:00Z", "acc-a")}});
  db.query("UPDATE fraud_cases SET decision = 'block'");                     // as a block rule would have made it
  CHECK_THROWS_WITH(db.query("UPDATE fraud_cases SET decision = 'review'"),  // and nobody lowers it
                    doctest::Contains("its decision is not lowered"));
  auto id = std::to_string(db.count("SELECT case_id FROM fraud_cases"));
  ConsoleProcess console(db, FRAUD_SOURCE_DIR "/tests/data/list_rules.yaml");
  std::string answer;
  REQUIRE(console.status("POST", "/api/lists/deny_cards/entries", "alice", R"({"value":"card-9","reason":"stolen"})") ==
          201);  // raising a decision: at once
  auto deny = std::to_string(db.count("SELECT entry_id FROM fraud_list_entries WHERE value = 'card-9'"));
  std::string page;
  REQUIRE(console.status("GET", "/api/cases/" + id, "alice", "", &page) == 200);
  auto version = std::to_string(shown_version(page));

  // Each of the four is proposed, whoever asks, and nothing changes until a second lead approves.
  struct Lowering {
    std::string who, target, body, in_force;
  };
  for (const auto& change : std::vector<Lowering>{
           {"lena", "/api/lists/allow_accounts/entries", R"({"value":"acc-2","reason":"vip"})",
            "SELECT count(*) FROM fraud_list_entries WHERE list_name = 'allow_accounts' AND ended_at IS NULL"},
           {"alice", "/api/lists/entries/" + deny + "/end", "",
            "SELECT count(*) FROM fraud_list_entries WHERE value = 'card-9' AND ended_at IS NOT NULL"},
           {"lena", "/api/suppressions", R"({"rule":"large_amount","account_id":"acc-a","reason":"payroll"})",
            "SELECT count(*) FROM fraud_suppressions"},
           {"alice", "/api/cases/" + id + "/close", R"({"disposition":"legitimate","version":)" + version + "}",
            "SELECT count(*) FROM fraud_cases WHERE state = 'closed' AND disposition = 'legitimate'"}}) {
    CAPTURE(change.target);
    std::string proposed;
    CHECK(console.status("POST", change.target, change.who, change.body, &proposed) == 202);
    CHECK(proposed.find("lowers decisions: it takes effect when a second lead approves it") != std::string::npos);
    CHECK(db.count(change.in_force) == 0);
    CHECK(console.approve(proposed, "bob") == 403);       // an analyst decides nothing
    CHECK(console.approve(proposed, change.who) == 403);  // nor the proposer
    CHECK(db.count(change.in_force) == 0);
    auto approver = change.who == "lena" ? "lars" : "lena";  // a second lead
    CHECK(console.approve(proposed, approver) == 200);
    CHECK(db.count(change.in_force) == 1);
    CHECK(console.approve(proposed, "lars") == 409);  // decided already
  }
  // The change is made as the proposer asked it; the proposal and its approval are audited.
  CHECK(db.count(
            "SELECT count(*) FROM fraud_labels WHERE source = 'case' AND NOT is_fraud AND labelled_by = 'alice'") == 1);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE action = 'proposal.propose'") == 4);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE action = 'proposal.approve' AND actor <> after ->> "
                 "'proposed_by'") == 4);
  CHECK(db.count("SELECT count(*) FROM fraud_proposals WHERE state = 'approved' AND decided_by <> proposed_by") == 4);

  // A proposal not decided within 24 hours expires; a rejected one changes nothing.
  std::string proposed;
  REQUIRE(console.status("POST", "/api/lists/allow_accounts/entries", "lena", R"({"value":"acc-3","reason":"vip"})",
                         &proposed) == 202);
  db.query(
      "SET fraud.break_glass = 'test: a day passes'; UPDATE fraud_proposals SET expires_at = now() - interval "
      "'1 second' WHERE state = 'pending'");
  CHECK(console.approve(proposed, "lars") == 409);
  REQUIRE(console.status("POST", "/api/lists/allow_accounts/entries", "lena", R"({"value":"acc-4","reason":"vip"})",
                         &proposed) == 202);
  auto rejected = proposed.substr(proposed.find(':') + 1, proposed.find(',') - proposed.find(':') - 1);
  CHECK(console.status("POST", "/api/proposals/" + rejected + "/reject", "lena") == 200);  // withdrawn
  CHECK(console.approve(proposed, "lars") == 409);
  CHECK(db.count("SELECT count(*) FROM fraud_list_entries WHERE value IN ('acc-3', 'acc-4')") == 0);
  // Ending an allow entry raises decisions again: anyone may, at once.
  auto allow = std::to_string(db.count("SELECT entry_id FROM fraud_list_entries WHERE value = 'acc-2'"));
  CHECK(console.status("POST", "/api/lists/entries/" + allow + "/end", "bob") == 200);
}

TEST_CASE("the database, not only the console, keeps a lead's part to a lead's login and lowers nothing on one word") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  db.query(
      "INSERT INTO fraud_cases (account_id, decision, event_count, last_event_at) VALUES ('acc-1', 'block', 1, "
      "now())");
  auto call = [&](const std::string& url, const std::string& sql) {
    pqxx::connection c(url);
    pqxx::work tx(c);
    std::string value = tx.exec1(sql)[0].c_str();  // copied before the result it points into is freed
    tx.commit();
    return value;
  };
  auto deny = call(db.console_lead_url(), "SELECT fraud_list_add('deny_cards', 'card-9', 'stolen', NULL, 'lena')");
  // Whoever holds either of the console's database URLs, naming anyone, makes nothing that
  // lowers a decision directly, nor reaches the functions that do.
  for (const auto& url : {db.console_url(), db.console_lead_url()}) {
    for (const std::string& sql : std::vector<std::string>{
             "SELECT fraud_suppression_add('large_amount', 'acc-1', 'payroll', 14, 'lena')",
             "SELECT fraud_list_add('allow_accounts', 'acc-1', 'vip', NULL, 'lena')",
             "SELECT fraud_list_end(" + deny + ", 'lena')",
             "SELECT fraud_case_close((SELECT case_id FROM fraud_cases), 1, 'legitimate', 'lena')"}) {
      CAPTURE(sql);
      CHECK_THROWS_WITH(call(url, sql), doctest::Contains("lowers decisions"));
    }
    CHECK_THROWS_AS(call(url, "SELECT fraud_apply_list_add('allow_accounts', 'acc-1', 'vip', NULL, 'lena')"),
                    pqxx::insufficient_privilege);
  }
  // A proposal waits for a lead's login to approve it: the analysts' login cannot, naming a lead.
  auto proposal =
      call(db.console_url(), R"(SELECT fraud_propose('list.add', '{"list":"allow_accounts","value":"acc-1",)"
                             R"("reason":"vip","days":null}', 'alice'))");
  CHECK_THROWS_AS(call(db.console_url(), "SELECT fraud_proposal_decide(" + proposal + ", true, 'lena')"),
                  pqxx::insufficient_privilege);
  CHECK_THROWS_AS(call(db.console_url(), "SELECT fraud_case_assign((SELECT case_id FROM fraud_cases), 'bob', 'lena')"),
                  pqxx::insufficient_privilege);
  CHECK(db.count("SELECT count(*) FROM fraud_suppressions") == 0);
  CHECK(db.count("SELECT count(*) FROM fraud_list_entries WHERE list_name = 'allow_accounts'") == 0);
  CHECK(db.count("SELECT count(*) FROM fraud_list_entries WHERE ended_at IS NOT NULL") == 0);
  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE state = 'closed'") == 0);
  // With a lead's login, a lead other than the proposer approves it, and assigns to another.
  CHECK_NOTHROW(call(db.console_lead_url(), "SELECT fraud_proposal_decide(" + proposal + ", true, 'lena')"));
  CHECK_NOTHROW(
      call(db.console_lead_url(), "SELECT fraud_case_assign((SELECT case_id FROM fraud_cases), 'bob', 'lena')"));
  CHECK(db.count("SELECT count(*) FROM fraud_list_entries WHERE list_name = 'allow_accounts'") == 1);
  // The audit names the login that made each change, beside the analyst the console named.
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE login = 'fraud_console_lead_test'") == 4);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE login = 'fraud_console_test'") == 1);
  // An analyst still assigns a case to themself, but does not take another's.
  CHECK_NOTHROW(call(db.console_url(), "SELECT fraud_case_assign((SELECT case_id FROM fraud_cases), 'bob', 'bob')"));
  CHECK_THROWS_AS(
      call(db.console_url(), "SELECT fraud_case_assign((SELECT case_id FROM fraud_cases), 'alice', 'alice')"),
      pqxx::insufficient_privilege);
}

TEST_CASE("the console refuses to start when its analysts' login could do a lead's part") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto tokens = "/tmp/" + unique_name("tokens");
  std::ofstream(tokens) << "alice analyst " << console::sha256_hex("alice-token") << "\n";
  auto log = "/tmp/" + unique_name("console") + ".log";
  // A lead's login; the superuser; a lead's login from a secret's file (NAME_FILE, read first).
  auto secret = "/tmp/" + unique_name("url");
  std::ofstream(secret) << db.console_lead_url() << "\n";
  for (const auto& [variable, analysts] :
       std::vector<std::pair<std::string, std::string>>{{"FRAUD_CONSOLE_POSTGRES_URL", db.console_lead_url()},
                                                        {"FRAUD_CONSOLE_POSTGRES_URL", db.url()},
                                                        {"FRAUD_CONSOLE_POSTGRES_URL_FILE", secret}}) {
    ChildProcess console({FRAUD_CONSOLE_BINARY, "run"},
                         {{variable, analysts},
                          {"FRAUD_CONSOLE_POSTGRES_URL", variable.ends_with("_FILE") ? db.console_url() : analysts},
                          {"FRAUD_CONSOLE_TOKENS_FILE", tokens},
                          {"FRAUD_RULES_FILE", FRAUD_SOURCE_DIR "/config/rules.yaml"},
                          {"FRAUD_CONSOLE_LISTEN", "127.0.0.1:" + std::to_string(free_port())}},
                         log);
    REQUIRE(wait_until(30s, [&] { return !console.running(); }));
    CHECK(console.exit_status() == 1);
  }
  CHECK(read_file(log).find("every analyst would act as a lead") != std::string::npos);
  std::remove(secret.c_str());
  std::remove(tokens.c_str());
  std::remove(log.c_str());
}

TEST_CASE("a legitimate close racing the batch that makes its case a block case waits for it and is proposed") {
  AppliedHistory history;
  auto& db = history.db;
  history.apply({{0, transaction_event(0, "12500.00", "2026-11-27T09:00:00Z", "acc-a")}});  // review
  auto id = std::to_string(db.count("SELECT case_id FROM fraud_cases"));
  auto version = db.count("SELECT version FROM fraud_cases");
  ConsoleProcess console(db);
  // A batch raises the case to block and has not committed; the close names the version that
  // batch will leave (a close timed to slip in).
  pqxx::connection batch_connection(db.url());
  pqxx::work batch(batch_connection);
  batch.exec0("UPDATE fraud_cases SET decision = 'block'");
  auto closed = std::async(std::launch::async, [&] {
    std::string answer;
    auto status =
        console.status("POST", "/api/cases/" + id + "/close", "alice",
                       R"({"disposition":"legitimate","version":)" + std::to_string(version + 1) + "}", &answer);
    return std::pair{status, answer};
  });
  REQUIRE(wait_until(10s, [&] { return a_session_waits_on_a_lock(db); }));
  batch.commit();
  auto [status, answer] = closed.get();
  CAPTURE(answer);
  CHECK(status == 202);  // judged on the block it waited for: proposed, not closed
  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE state = 'closed'") == 0);
  CHECK(db.count("SELECT count(*) FROM fraud_proposals WHERE action = 'case.close'") == 1);
}

// The lead check was a name prefix (allow_); now a list declares its writer and an entry's
// longest life in the rules file, `migrate` records them, and the database holds them for
// every path in: the console, the functions called directly, an approval (migrations/0026).
TEST_CASE("a runtime list's declared writer and longest life hold in the database, whoever asks") {
  TestDatabase db(Services::from_environment());
  auto rules = rules::RuleSet::parse(
      "version: v\nbase_currency: EUR\nruntime_lists: [{name: deny_cards, writer: lead, longest_days: 30}, "
      "{name: allow_accounts, writer: lead}]\nrules: []\ndecision: {review_at: 50, block_at: 100}\n",
      "lists.yaml");
  store::record_list_policies(db.url(), rules.list_policies());
  ConsoleProcess console(db, FRAUD_SOURCE_DIR "/tests/data/list_rules.yaml");
  auto add = [&](const std::string& who, const std::string& days) {
    return console.status("POST", "/api/lists/deny_cards/entries", who,
                          R"({"value":"card-9","reason":"stolen")" + (days.empty() ? "" : ",\"days\":" + days) + "}");
  };
  CHECK(add("alice", "10") == 403);  // an analyst
  CHECK(add("lena", "") == 400);     // a lead, but no end
  CHECK(add("lena", "31") == 400);   // longer than the list keeps an entry
  CHECK(db.count("SELECT count(*) FROM fraud_list_entries") == 0);
  // Not only through the console: the analysts' login calling the function itself.
  pqxx::connection analysts(db.console_url());
  CHECK_THROWS_WITH(pqxx::nontransaction(analysts).exec("SELECT fraud_list_add('deny_cards', 'card-8', 'stolen', 10, "
                                                        "'alice', 'k-direct')"),
                    doctest::Contains("only a lead may add to deny_cards"));
  CHECK(add("lena", "30") == 201);
  CHECK(db.count("SELECT count(*) FROM fraud_list_entries WHERE value = 'card-9'") == 1);
  // An allow entry is proposed and made in the approving lead's session: an analyst may not
  // propose one to a leads-only list, or one lead's approval would let the analyst add to it.
  auto allow = R"({"value":"acc-2","reason":"vip"})";
  CHECK(console.status("POST", "/api/lists/allow_accounts/entries", "alice", allow) == 403);
  CHECK(db.count("SELECT count(*) FROM fraud_proposals") == 0);
  CHECK(console.status("POST", "/api/lists/allow_accounts/entries", "lena", allow) == 202);

  // Each change of a policy is audited with what it was; recording it unchanged is not.
  const std::string policy_rows = "SELECT count(*) FROM audit_log WHERE action = 'list.policy'";
  CHECK(db.count(policy_rows) == 2);  // the first recording of both
  store::record_list_policies(db.url(), rules.list_policies());
  CHECK(db.count(policy_rows) == 2);
  auto loosened = rules::RuleSet::parse(
      "version: v\nbase_currency: EUR\nruntime_lists: [{name: deny_cards, writer: analyst, longest_days: 30}, "
      "{name: allow_accounts, writer: lead}]\nrules: []\ndecision: {review_at: 50, block_at: 100}\n",
      "lists.yaml");
  store::record_list_policies(db.url(), loosened.list_policies());
  CHECK(db.count(policy_rows + " AND object = 'list:deny_cards' AND before ->> 'writer' = 'lead' AND after ->> "
                               "'writer' = 'analyst' AND login = session_user") == 1);
}

// Cases (migrations/0013): opened in the batch's transaction, one open case per account that
// each flagged event joins once; closed by an analyst (cases/case_desk.h) with a disposition
// that labels its transactions for the next backtest, audited, as the console's role.
#include <doctest/doctest.h>

#include "cases/case_desk.h"
#include "store/batch_store.h"
#include "tests/support/integration.h"

using namespace fraud;
using namespace fraud::testing;

namespace {

constexpr const char* kRules = FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml";

std::int64_t open_case_of(TestDatabase& db, const std::string& account) {
  return db.count("SELECT case_id FROM fraud_cases WHERE state <> 'closed' AND account_id = '" + account + "'");
}

}  // namespace

TEST_CASE("each flagged event joins its account's one open case once, and only flagged events do") {
  AppliedHistory history;
  auto& db = history.db;
  // acc-a: two large payments (reviews) and a small one; acc-b: one large. The first batch
  // holds a copy of evt-1 too, and the second delivers evt-1 and evt-2 again.
  history.apply({{0, transaction_event(1, "12500.00", "2026-11-27T09:00:00Z", "acc-a")},
                 {1, transaction_event(1, "12500.00", "2026-11-27T09:00:00Z", "acc-a")},
                 {2, transaction_event(2, "50.00", "2026-11-27T09:01:00Z", "acc-a")},
                 {3, transaction_event(3, "20000.00", "2026-11-27T09:02:00Z", "acc-b")}});
  history.apply({{4, transaction_event(1, "12500.00", "2026-11-27T09:00:00Z", "acc-a")},
                 {5, transaction_event(2, "50.00", "2026-11-27T09:01:00Z", "acc-a")},
                 {6, transaction_event(4, "11000.00", "2026-11-27T09:03:00Z", "acc-a")}});

  auto cases = db.query(
      "SELECT account_id, state, decision, event_count, last_event_at = '2026-11-27T09:03:00Z' "
      "FROM fraud_cases ORDER BY account_id");
  REQUIRE(cases.size() == 2);
  CHECK(cases[0][0].as<std::string>() == "acc-a");
  CHECK(cases[0][1].as<std::string>() == "open");
  CHECK(cases[0][2].as<std::string>() == "review");
  CHECK(cases[0][3].as<int>() == 2);  // evt-1 once and evt-4; not the small evt-2
  CHECK(cases[0][4].as<bool>());
  CHECK(cases[1][3].as<int>() == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_case_events e JOIN fraud_cases c USING (case_id) "
                 "WHERE c.account_id = 'acc-a' AND e.event_id IN ('evt-1', 'evt-4')") == 2);
  CHECK(miscased_accounts(db) == 0);
}

// Its history is spelled out like the test above's: the events are the test's data.
TEST_CASE("closing a case as fraud labels its transactions for the backtest and is audited") {
  AppliedHistory history;
  auto& db = history.db;
  history.apply({{0, transaction_event(0, "12500.00", "2026-11-27T09:00:00Z", "acc-a")},
                 {1, transaction_event(1, "15000.00", "2026-11-27T09:01:00Z", "acc-a")},
                 {2, transaction_event(2, "12500.00", "2026-11-27T09:02:00Z", "acc-b")},
                 {3, transaction_event(3, "50.00", "2026-11-27T09:03:00Z", "acc-c")}});
  // The simulator thought txn-1 legitimate; its label stays beside the analyst's.
  db.query("INSERT INTO fraud_labels (transaction_id, is_fraud, source) VALUES ('txn-1', false, 'simulator')");
  cases::CaseDesk desk({db.console_url(), db.console_lead_url()});
  auto as = [](const char* name) { return cases::Change{{name, cases::Role::analyst}, unique_name("key")}; };
  auto version = [&](std::int64_t case_id) {
    return static_cast<int>(db.count("SELECT version FROM fraud_cases WHERE case_id = " + std::to_string(case_id)));
  };

  auto a = open_case_of(db, "acc-a"), b = open_case_of(db, "acc-b");
  auto closed = desk.close(a, version(a), cases::Disposition::fraud, as("alice"));
  CHECK(closed.labelled == 2);
  CHECK(desk.close(b, version(b), cases::Disposition::unsure, as("bob")).labelled == 0);
  CHECK(db.count("SELECT count(*) FROM fraud_labels WHERE source = 'case' AND is_fraud AND labelled_by = 'alice' "
                 "AND case_id = " +
                 std::to_string(closed.case_id)) == 2);
  CHECK(db.count("SELECT count(*) FROM fraud_labels WHERE transaction_id = 'txn-1'") == 2);
  CHECK(db.count("SELECT count(*) FROM transaction_labels WHERE is_fraud AND source = 'case'") == 2);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE actor = 'alice' AND action = 'case.close' AND "
                 "before ->> 'state' = 'open' AND after ->> 'disposition' = 'fraud'") == 1);

  // A closed case stays closed, whoever asks: no second disposition over alice's.
  CHECK_THROWS_AS(desk.close(a, version(a), cases::Disposition::legitimate, as("mallory")), cases::CaseRefused);
  CHECK_THROWS_AS(desk.close(999999, 1, cases::Disposition::fraud, as("alice")), cases::CaseNotFound);
  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE disposition = 'fraud' AND closed_by = 'alice'") == 1);

  // The next backtest counts the analyst's labels: txn-0 and txn-1 fraud, the rest unlabelled.
  auto report = backtest_report(db, kRules);
  CAPTURE(report);
  CHECK(report.find("labels           2 fraud, 0 legitimate, 2 unlabelled") != std::string::npos);

  // A later flagged event of the account opens a new case; the closed one keeps its events.
  history.apply({{4, transaction_event(4, "13000.00", "2026-11-27T10:00:00Z", "acc-a")}});
  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE account_id = 'acc-a'") == 2);
  CHECK(db.count("SELECT event_count FROM fraud_cases WHERE case_id = " + std::to_string(closed.case_id)) == 2);
}

TEST_CASE("the console's role can neither rewrite the audit nor labels nor cases nor what the service decided") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  db.query("INSERT INTO audit_log (actor, action, object) VALUES ('alice', 'case.close', 'case:1')");
  db.query("INSERT INTO fraud_labels (transaction_id, is_fraud, source) VALUES ('txn-1', true, 'simulator')");
  for (const std::string sql :
       {"UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log", "TRUNCATE audit_log",
        "UPDATE fraud_labels SET is_fraud = false", "DELETE FROM fraud_labels", "DELETE FROM fraud_cases",
        "INSERT INTO fraud_labels (transaction_id, is_fraud, source) VALUES ('txn-2', true, 'manual')",
        "INSERT INTO audit_log (actor, action, object) VALUES ('x', 'case.close', 'case:1')",
        "UPDATE fraud_cases SET state = 'open', disposition = NULL", "UPDATE fraud_cases SET event_count = 0",
        "INSERT INTO fraud_list_entries (list_name, value, reason, author) VALUES ('deny_cards', 'c', 'r', 'x')",
        "UPDATE fraud_list_version SET version = 0", "SELECT body FROM transactions",
        "UPDATE fraud_case_comments SET body = 'x'", "DELETE FROM fraud_case_comments",
        "INSERT INTO fraud_case_comments (case_id, author, body) VALUES (1, 'x', 'unaudited')",
        "DELETE FROM fraud_suppressions",
        "INSERT INTO fraud_suppressions (rule_id, account_id, reason, author, expires_at) "
        "VALUES ('r', 'a', 'r', 'x', now() + interval '1 day')",
        "UPDATE fraud_suppressions SET expires_at = now() + interval '9 years'",
        "UPDATE transactions SET decision = 'allow'",
        // A temporary table would shadow the functions' tables if their search_path let it.
        "CREATE TEMP TABLE audit_log (x int)", "SELECT fraud_case_lock_open(1)", "DELETE FROM fraud_alerts",
        "INSERT INTO processed_events (event_source, event_id) VALUES ('', 'x')"}) {
    CAPTURE(sql);
    pqxx::connection console(db.console_url());
    pqxx::nontransaction tx(console);
    CHECK_THROWS_AS(tx.exec0(sql), pqxx::insufficient_privilege);
  }
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE actor = 'alice'") == 1);
}

TEST_CASE("nobody, the owner and a superuser included, rewrites the audit, a label, a comment or a case's events") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  db.query("INSERT INTO audit_log (actor, action, object) VALUES ('alice', 'case.close', 'case:1')");
  db.query("INSERT INTO fraud_labels (transaction_id, is_fraud, source) VALUES ('txn-1', true, 'simulator')");
  db.query(
      "INSERT INTO fraud_cases (account_id, decision, event_count, last_event_at) VALUES ('acc-1', 'block', 1, "
      "now())");
  db.query(
      "INSERT INTO fraud_case_comments (case_id, author, body) SELECT case_id, 'alice', 'called' FROM fraud_cases");
  db.query(
      "WITH c AS (UPDATE fraud_cases SET event_count = 1 RETURNING case_id) INSERT INTO fraud_case_events "
      "SELECT case_id, '', 'evt-1', 'txn-1', 'block', 90, now() FROM c");
  // The tests' owner is PostgreSQL's superuser; skipping ordinary triggers, as a replica's
  // apply session does, does not skip these.
  for (const std::string session : {"", "SET session_replication_role = replica; "}) {
    for (const std::string sql :
         {"UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log", "TRUNCATE audit_log",
          "UPDATE fraud_labels SET is_fraud = false", "DELETE FROM fraud_labels", "TRUNCATE fraud_labels",
          "UPDATE fraud_case_comments SET body = 'x'", "DELETE FROM fraud_case_comments",
          "TRUNCATE fraud_case_comments", "TRUNCATE fraud_cases CASCADE", "DELETE FROM fraud_cases",
          "DELETE FROM fraud_case_events", "TRUNCATE fraud_case_events"}) {
      CAPTURE(session + sql);
      pqxx::connection owner(db.url());
      pqxx::nontransaction tx(owner);
      CHECK_THROWS_WITH_AS(tx.exec0(session + sql), doctest::Contains("keeps its rows"), pqxx::insufficient_privilege);
    }
  }
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE actor = 'alice' AND action = 'case.close'") == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_labels WHERE is_fraud") == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_case_comments WHERE body = 'called'") == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_case_events") == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_cases") == 1);

  // Break glass (docs/CASES.md): a correction the bank authorised, named in the session, is
  // made, and each row it changes leaves its before and after in the audit with the reason.
  {
    pqxx::connection owner(db.url());
    pqxx::work tx(owner);
    tx.exec0("SET LOCAL fraud.break_glass = 'INC-4711: erasure order for txn-1'");
    tx.exec0("DELETE FROM fraud_labels WHERE transaction_id = 'txn-1'");
    tx.commit();
  }
  CHECK(db.count("SELECT count(*) FROM fraud_labels") == 0);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE action = 'break_glass.delete' AND object = 'fraud_labels' AND "
                 "actor = session_user AND before ->> 'transaction_id' = 'txn-1' AND after IS NULL AND "
                 "reason = 'INC-4711: erasure order for txn-1'") == 1);
}

TEST_CASE("the audit's hash chain shows a row changed or removed with its guard off, and a chain sealed anew") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  for (const char* value : {"card-1", "card-2", "card-3"}) {
    pqxx::connection lead(db.console_lead_url());
    pqxx::work tx(lead);
    tx.exec_params1("SELECT fraud_list_add('deny_cards', $1, 'stolen', NULL, 'lena')", std::string(value));
    tx.commit();
  }
  auto verify = [&](const std::string& arguments = "") {
    return output_of("FRAUD_CONSOLE_POSTGRES_URL='" + db.console_url() + "' " FRAUD_CONSOLE_BINARY " audit verify " +
                     arguments + " 2>&1; echo \"exit $?\"");
  };
  // As the owner, with the guard of migration 0018 off: what a superuser could do unseen by it.
  auto unguarded = [&](const std::string& sql) {
    db.query(
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; "
        "ALTER TABLE audit_chain DISABLE TRIGGER audit_chain_moves_on; " +
        sql +
        "; ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only; "
        "ALTER TABLE audit_chain ENABLE ALWAYS TRIGGER audit_chain_moves_on");
  };
  // Guarded, neither the log nor the chain's head is set back, break glass or not.
  CHECK_THROWS_WITH(db.query("SET fraud.break_glass = 'x'; UPDATE audit_log SET actor = 'mallory'"),
                    doctest::Contains("keeps its rows"));
  CHECK_THROWS_WITH(db.query("UPDATE audit_chain SET seq = seq - 1"), doctest::Contains("only moves on by one row"));
  CHECK_THROWS_WITH(db.query("TRUNCATE audit_chain"), doctest::Contains("only moves on by one row"));
  auto intact = verify();
  CAPTURE(intact);
  REQUIRE(intact.find("audit chain intact: 3 rows; head 3:") == 0);
  auto head = intact.substr(intact.find("head ") + 5, 2 + 64);

  unguarded("UPDATE audit_log SET actor = 'mallory' WHERE chain_seq = 2");
  auto changed = verify();
  CHECK(changed.find("audit chain broken: row 2 (audit_id 2): its content is not what was sealed") == 0);
  CHECK(changed.find("exit 1") != std::string::npos);
  unguarded("UPDATE audit_log SET actor = 'lena' WHERE chain_seq = 2");
  CHECK(verify().find("audit chain intact") == 0);

  // Changed, then every later row sealed again and the head moved: the chain holds together,
  // but not with the head printed before.
  unguarded(R"(UPDATE audit_log SET actor = 'mallory' WHERE chain_seq = 2;
    DO $$ DECLARE r audit_log%ROWTYPE; previous bytea; BEGIN
      SELECT row_hash INTO previous FROM audit_log WHERE chain_seq = 1;
      FOR r IN SELECT * FROM audit_log WHERE chain_seq >= 2 ORDER BY chain_seq LOOP
        r.prev_hash := previous;
        r.row_hash := sha256(previous || convert_to(fraud_audit_canonical(r), 'UTF8'));
        UPDATE audit_log SET prev_hash = r.prev_hash, row_hash = r.row_hash WHERE audit_id = r.audit_id;
        previous := r.row_hash;
      END LOOP;
      UPDATE audit_chain SET hash = previous;
    END $$)");
  CHECK(verify().find("audit chain intact") == 0);
  auto rewritten = verify("--head " + head);
  CHECK(rewritten.find("audit chain broken: row 3 is no longer the row whose hash was") == 0);
  CHECK(verify("--head 3:abc").find("--head is SEQ:HASH") != std::string::npos);

  unguarded("DELETE FROM audit_log WHERE chain_seq = 2");
  CHECK(verify().find("audit chain broken: row 3 (audit_id 3): it does not link to the row before") == 0);
  unguarded("DELETE FROM audit_log WHERE chain_seq = 3");
  CHECK(verify().find("audit chain broken: the chain's head (row 3) is not its last row") == 0);
}

// The example of docs/TESTING.md, "Writing a test".
TEST_CASE("a replica reviews a large purchase and opens one case for its account") {
  RunningReplica replica(FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml");
  auto event = EventBuilder().id("evt-1").account("acc-big").amount("12500.00");
  replica.produce({{"acc-big", event.json(), {}}});
  REQUIRE(replica.decided(1, "review"));
  CHECK(replica.db.count("SELECT count(*) FROM fraud_cases WHERE account_id = 'acc-big'") == 1);
}

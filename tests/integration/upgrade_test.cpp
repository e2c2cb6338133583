// Upgrades a bank runs against months of data: a database populated at an earlier migration,
// migrated to the latest, keeps everything it held.
#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include <chrono>
#include <cstdio>
#include <memory>
#include <span>
#include <stdexcept>

#include "consumer/batch_applier.h"
#include "store/batch_store.h"
#include "store/migrations.h"
#include "tests/support/integration.h"

using namespace fraud::testing;

TEST_CASE("an upgrade from migration 0016 keeps every case, label, comment, list entry, suppression and audit row") {
  auto services = Services::from_environment();
  TestDatabase db(services, "0016");
  // What the console did at 0016, with 0016's functions: a case assigned, commented on and
  // closed as fraud; one open; a deny entry ended, an allow entry and a suppression in force.
  db.query(
      "INSERT INTO fraud_cases (account_id, decision, event_count, last_event_at) VALUES "
      "('acc-1', 'block', 1, '2026-11-27T09:00:00Z'), ('acc-2', 'review', 2, '2026-11-27T09:05:00Z')");
  db.query(
      "INSERT INTO fraud_case_events (case_id, event_source, event_id, transaction_id, decision, score, "
      "occurred_at) SELECT case_id, 'core', 'evt-' || account_id, 'txn-' || account_id, decision, 80, "
      "last_event_at FROM fraud_cases");
  db.query("SELECT fraud_case_assign(case_id, 'alice', 'lena') FROM fraud_cases WHERE account_id = 'acc-1'");
  db.query(
      "SELECT fraud_case_comment(case_id, 'customer denies it', 'alice') FROM fraud_cases "
      "WHERE account_id = 'acc-1'");
  db.query("SELECT fraud_case_close(case_id, 'fraud', 'alice') FROM fraud_cases WHERE account_id = 'acc-1'");
  db.query("SELECT fraud_list_end(fraud_list_add('deny_cards', 'card-9', 'stolen', NULL, 'bob'), 'bob')");
  db.query("SELECT fraud_list_add('allow_accounts', 'acc-3', 'vip', 30, 'lena')");
  db.query("SELECT fraud_suppression_add('large_amount', 'acc-4', 'payroll', 14, 'lena')");
  const std::string cases =
      "SELECT md5(string_agg(concat_ws('|', case_id, account_id, state, assignee, decision, "
      "event_count, opened_at, disposition, closed_by, closed_at), ',' ORDER BY case_id)) "
      "FROM fraud_cases";
  const std::string audit =
      "SELECT md5(string_agg(concat_ws('|', audit_id, at, actor, action, object, before, after), "
      "',' ORDER BY audit_id)) FROM audit_log";
  const std::string rest =
      "SELECT md5(concat((SELECT string_agg(concat_ws('|', transaction_id, is_fraud, source, case_id, labelled_by), "
      "',' "
      "ORDER BY transaction_id) FROM fraud_labels), (SELECT string_agg(concat_ws('|', comment_id, author, body, at), "
      "',') FROM fraud_case_comments), (SELECT string_agg(concat_ws('|', entry_id, list_name, value, author, "
      "created_at, expires_at, ended_at, ended_by, added_version, ended_version), ',' ORDER BY entry_id) FROM "
      "fraud_list_entries), (SELECT string_agg(concat_ws('|', suppression_id, rule_id, account_id, author, "
      "expires_at, added_version), ',') FROM fraud_suppressions), (SELECT version FROM fraud_list_version)))";
  auto text = [&](const std::string& sql) { return db.query(sql)[0][0].as<std::string>(); };
  auto before = std::vector{text(cases), text(audit), text(rest)};
  REQUIRE(db.count("SELECT count(*) FROM audit_log") == 7);

  db.migrate();

  CHECK(std::vector{text(cases), text(audit), text(rest)} == before);
  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE version = 1") == 2);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE login IS NULL AND idempotency_key IS NULL") == 7);
  // The rows from before are sealed into the audit's hash chain, in the order they were written.
  auto chain =
      output_of("FRAUD_CONSOLE_POSTGRES_URL='" + db.console_url() + "' " FRAUD_CONSOLE_BINARY " audit verify 2>&1");
  CHECK(chain.find("audit chain intact: 7 rows; head 7:") == 0);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE chain_seq = audit_id") == 7);
  // The desk works on what it kept: the open case closes at its version, the closed one stays
  // closed, and the upgrade left none of 0016's functions behind to call without a key.
  db.query(
      "SELECT fraud_case_close(case_id, 1, 'legitimate', 'lena', 'k-1') FROM fraud_cases "
      "WHERE account_id = 'acc-2'");
  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE state = 'closed'") == 2);
  CHECK_THROWS_AS(db.query("UPDATE fraud_cases SET assignee = 'mallory' WHERE account_id = 'acc-1'"), pqxx::sql_error);
  CHECK(
      db.count("SELECT count(*) FROM pg_proc WHERE oid::regprocedure::text IN ('fraud_case_assign(bigint,text,text)', "
               "'fraud_case_close(bigint,text,text)', 'fraud_case_comment(bigint,text,text)', "
               "'fraud_list_add(text,text,text,integer,text)', 'fraud_list_end(bigint,text)', "
               "'fraud_suppression_add(text,text,text,integer,text)', 'fraud_suppression_end(bigint,text)')") == 0);
  // The tables and their partitions, made by a login, now belong to a role nobody logs in as.
  CHECK(db.count("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.relnamespace = "
                 "'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'S') AND r.rolname <> 'fraud_owner'") == 0);
}

// Roles are cluster-wide, so migrations of two databases on one cluster can race to create one
// and the loser briefly sees its name as missing (42704). The sequence, which no rollback
// resets, makes the first attempt lose such a race and the second find the role.
TEST_CASE("a migration that loses a race over a cluster-wide role runs again in a fresh transaction") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  pqxx::connection owner(db.url());
  pqxx::nontransaction(owner).exec0("CREATE SEQUENCE attempts; ALTER SEQUENCE attempts OWNER TO fraud_owner");
  const fraud::store::Migration racing{"9001_racing.sql",
                                       "DO $$ BEGIN IF nextval('attempts') = 1 THEN "
                                       "RAISE EXCEPTION 'role \"fraud_elsewhere\" does not exist' "
                                       "USING ERRCODE = 'undefined_object'; END IF; END $$;"};
  CHECK(fraud::store::migrate(db.url(), std::span(&racing, 1)) == 1);
  CHECK(db.count("SELECT last_value FROM attempts") == 2);

  // A migration that fails every time reports its error, naming the file.
  const fraud::store::Migration broken{"9002_broken.sql", "GRANT SELECT ON fraud_cases TO no_such_role"};
  CHECK_THROWS_WITH_AS(
      fraud::store::migrate(db.url(), std::span(&broken, 1)),
      doctest::Contains("migration 9002_broken.sql failed: ERROR:  role \"no_such_role\" does not exist"),
      std::runtime_error);
  CHECK(db.count("SELECT count(*) FROM schema_migrations WHERE name LIKE '900%'") == 1);
}

// Migrations 0023 and 0024 on a database the service of 0022 filled: every pair it recorded
// kept, the three kinds it recorded complete (no backfill), and only the key indexes no
// replica registered dropped by `fraud-consumer migrate`.
TEST_CASE("an upgrade from migration 0022 keeps every pair, and indexes and records only what rules read") {
  using namespace std::chrono_literals;
  auto services = Services::from_environment();
  TestDatabase db(services, "0022");
  // As 0022's replicas left it: account_id and device.id registered, five batches applied,
  // the three kinds' pairs of the one event recorded, as its batch claimed them.
  db.query("UPDATE feature_key_fields SET maintained = true WHERE key_field IN ('account_id', 'device.id')");
  db.query("SELECT setval('applied_batches', 5)");
  const auto seq = std::to_string(5 * fraud::store::kAppliedSeqPerBatch);
  {
    pqxx::connection owner(db.url());
    pqxx::work tx(owner);
    tx.exec_params0(
        "INSERT INTO transactions (event_source, event_id, occurred_at, account_id, device_id, merchant_id, "
        "amount_minor, currency, transaction_id, body, applied_seq) VALUES ('', 'evt-0', '2026-11-27T09:15:02Z', "
        "'acc-1', 'dev-1', 'm-1', 1000, 'EUR', 'txn-0', $1, $2)",
        transaction_event(0, "10.00", "2026-11-27T09:15:02Z", "acc-1").value, 5 * fraud::store::kAppliedSeqPerBatch);
    tx.commit();
  }
  db.query("INSERT INTO first_seen_pairs VALUES ('account_id|device.id', 'acc-1', 'dev-1', '2026-11-27T09:15:02Z', " +
           seq + "), ('account_id|merchant.id', 'acc-1', 'm-1', '2026-11-27T09:15:02Z', " + seq + ")");
  const std::string pairs =
      "SELECT md5(string_agg(concat_ws('|', pair_kind, first_key, second_key, first_at, first_seq), ',' "
      "ORDER BY pair_kind, first_key, second_key)) FROM first_seen_pairs";
  auto before = db.query(pairs)[0][0].as<std::string>();

  // What an operator runs, with the rules the replicas will run (they count per account).
  auto log = "/tmp/" + unique_name("migrate") + ".log";
  ChildProcess migrate(
      {FRAUD_CONSUMER_BINARY, "migrate"},
      {{"FRAUD_POSTGRES_URL", db.url()}, {"FRAUD_RULES_FILE", FRAUD_SOURCE_DIR "/tests/data/feature_rules.yaml"}}, log);
  REQUIRE(wait_until(60s, [&] { return !migrate.running(); }));
  REQUIRE(migrate.exit_status() == 0);
  std::remove(log.c_str());

  CHECK(db.query(pairs)[0][0].as<std::string>() == before);
  CHECK(db.count("SELECT count(*) FROM first_seen_pair_kinds WHERE recorded_through = 5 AND NOT maintained") == 3);
  // The account's index stays, the registered device's too; the others (card, merchant, …) go.
  CHECK(db.count("SELECT count(*) FROM pg_indexes WHERE tablename = 'transactions' AND indexname <> "
                 "'transactions_pkey'") == 2);
  CHECK(db.count("SELECT count(*) FROM pg_indexes WHERE indexname IN ('transactions_account', "
                 "'transactions_device')") == 2);

  // A replica whose rule reads (account, device) registers the kind, complete without a
  // backfill, and knows dev-1 from before the upgrade.
  fraud::consumer::BatchApplier store(db.service_url(), "g", "after", {});
  fraud::rules::FeatureEngine first_seen(std::make_shared<const fraud::rules::RuleSet>(
      fraud::rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/first_seen_rules.yaml")));
  auto on_device = [](int i, const std::string& device) {
    auto out = transaction_event(i, "10.00", "2026-11-27T09:20:00Z", "acc-1");
    out.value.insert(out.value.rfind('}'), ",\"device\":{\"id\":\"" + device + "\"}");
    return out;
  };
  auto result = store.apply(
      partition_batch(store.claim("t", 0).epoch, {{0, on_device(1, "dev-1")}, {1, on_device(2, "dev-2")}}), first_seen);
  CHECK(result.processed == 2);
  CHECK(result.alerts == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE event_id = 'evt-2'") == 1);
  CHECK(db.count("SELECT count(*) FROM first_seen_pair_kinds WHERE pair_kind = 'account_id|device.id' AND "
                 "maintained AND complete AND recorded_from = 5") == 1);
}

// From 0028 on the tables belong to fraud_owner, which cannot log in; a later migration runs as
// it (store/migrations.cpp), or a table it made would belong to whoever migrated that day.
TEST_CASE("a migration after 0028 runs as the tables' owner, so what it makes is that role's") {
  TestDatabase db(Services::from_environment());
  const fraud::store::Migration later[] = {{"9999_probe.sql", "CREATE TABLE probe (x int)"}};
  CHECK(fraud::store::migrate(db.url(), later) == 1);
  CHECK(db.count("SELECT count(*) FROM pg_class WHERE relname = 'probe' AND relowner = 'fraud_owner'::regrole") == 1);
}

TEST_CASE("an upgrade from migration 0028 keeps every history row, none of them declined, and a replica reads them") {
  auto services = Services::from_environment();
  TestDatabase db(services, "0028");
  // A day of 0028's history: three events of one account, one flagged, each its own batch.
  {
    pqxx::connection owner(db.url());
    pqxx::work tx(owner);
    for (int i = 0; i < 3; ++i) {
      auto at = "2026-11-27T09:0" + std::to_string(i) + ":00Z";
      tx.exec_params0(
          "INSERT INTO transactions (event_source, event_id, occurred_at, account_id, amount_minor, currency, "
          "transaction_id, body, decision, score, rule_set_version, applied_seq) VALUES ('', $1, $2, 'acc-1', "
          "100000, 'EUR', $3, $4, $5, 0, 'test-features-1', $6)",
          "evt-" + std::to_string(i), at, "txn-" + std::to_string(i),
          transaction_event(i, "1000.00", at, "acc-1").value, i == 2 ? "review" : "allow", i + 1);
    }
    tx.exec0("INSERT INTO feature_key_versions (key_field, key, version) VALUES ('account_id', 'acc-1', 3)");
    tx.commit();
  }
  const std::string history =
      "SELECT md5(string_agg(concat_ws('|', event_source, event_id, occurred_at, account_id, amount_minor, body, "
      "decision, score, rule_set_version, applied_seq), ',' ORDER BY applied_seq)) FROM transactions";
  auto before = db.query(history)[0][0].as<std::string>();

  db.migrate();

  CHECK(db.query(history)[0][0].as<std::string>() == before);
  CHECK(db.count("SELECT count(*) FROM transactions WHERE NOT declined") == 3);
  // A replica loads the account's history from before the upgrade: the next event is its fourth.
  fraud::consumer::BatchApplier store(db.service_url(), "g", "after", {});
  fraud::rules::FeatureEngine counting(std::make_shared<const fraud::rules::RuleSet>(
      fraud::rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/feature_rules.yaml")));
  auto result = store.apply(
      partition_batch(store.claim("t", 0).epoch, {{0, transaction_event(3, "10.00", "2026-11-27T09:03:00Z", "acc-1")}}),
      counting);
  CHECK(result.processed == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts WHERE event_id = 'evt-3' AND reason = 'tx_count_1h (4) >= 1'") ==
        1);
}

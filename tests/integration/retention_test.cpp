// Retention (store/retention.h): the history's day partitions made ahead and dropped past the
// window, rows waiting in the default partition moved; the dedup ids' two generations
// rotated, and the dedup exact by id across all of it.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <pqxx/pqxx>
#include <thread>

#include "consumer/batch_applier.h"
#include "events/decode.h"
#include "events/time.h"
#include "store/batch_store.h"
#include "store/dedup_gate.h"
#include "store/retention.h"
#include "tests/support/integration.h"

using namespace fraud;
using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

constexpr events::Timestamp kDay = 86'400'000'000LL;
const events::Timestamp kNow = *events::parse_rfc3339("2026-11-27T09:15:00Z");

std::int64_t partitions_of(TestDatabase& db, const std::string& table) {
  return db.count("SELECT count(*) FROM pg_inherits WHERE inhparent = '" + table + "'::regclass");
}

bool has_partition(TestDatabase& db, const std::string& name) {
  return db.count("SELECT count(*) FROM pg_class WHERE relname = '" + name + "'") == 1;
}

/// A history row of event `id`, as a batch writes it.
void insert_history(TestDatabase& db, const std::string& id, events::Timestamp occurred_at) {
  db.query(
      "INSERT INTO transactions (event_id, occurred_at, account_id, amount_minor, currency, transaction_id, body, "
      "applied_seq) VALUES ('" +
      id + "', '" + events::format_rfc3339(occurred_at) +
      "', 'acc-1', 100, 'EUR', 'tx', "
      "'{}', nextval('applied_batches') * 131072)");
}

/// Records a retention of `days` as `migrate` does: the maintenance functions forget nothing
/// sooner (migrations/0028). Tests that simulate later days keep a short one.
void keep_days(TestDatabase& db, std::int64_t days) { store::record_retention(db.url(), days); }

/// A batch of the one event `id`, as the batch loop hands it to the store.
store::PartitionBatch batch_of(std::int64_t epoch, int id, const std::string& occurred_at) {
  return partition_batch(epoch, {{id, transaction_event(id, "12.00", occurred_at)}});
}

}  // namespace

TEST_CASE("prune makes the coming days' partitions, moves waiting rows into theirs, and drops days past the window") {
  TestDatabase db(Services::from_environment());
  insert_history(db, "ten-days-old", kNow - 10 * kDay);
  insert_history(db, "beyond-the-window", kNow - 500 * kDay);
  keep_days(db, 2);

  auto report = store::maintain_partitions(db.maintenance_url(), {.retention_days = 400, .days_ahead = 7}, kNow);
  // Yesterday, today and seven days ahead, plus the day of the waiting row.
  CHECK(partitions_of(db, "transactions") == 1 + 10);
  CHECK(has_partition(db, "transactions_p20261117"));
  CHECK(has_partition(db, "transactions_p20261204"));
  CHECK(report.rows_moved == 1);
  CHECK(report.rows_expired == 1);
  CHECK(db.count("SELECT count(*) FROM transactions_default") == 0);
  CHECK(db.count("SELECT count(*) FROM transactions_p20261117 WHERE event_id = 'ten-days-old'") == 1);

  auto again = store::maintain_partitions(db.maintenance_url(), {.retention_days = 400, .days_ahead = 7}, kNow);
  CHECK(again.created.empty());  // idempotent
  CHECK(again.dropped.empty());

  // 402 days on (2028-01-03) the service accepts events from 2026-11-29; prune keeps one day
  // more, 2026-11-28, and drops every day before it.
  auto later =
      store::maintain_partitions(db.maintenance_url(), {.retention_days = 400, .days_ahead = 7}, kNow + 402 * kDay);
  CHECK_FALSE(has_partition(db, "transactions_p20261117"));
  CHECK_FALSE(has_partition(db, "transactions_p20261127"));
  CHECK(has_partition(db, "transactions_p20261128"));
  CHECK(std::find(later.dropped.begin(), later.dropped.end(), "transactions_p20261117") != later.dropped.end());

  // Keeping everything drops nothing.
  auto keep =
      store::maintain_partitions(db.maintenance_url(), {.retention_days = 0, .days_ahead = 7}, kNow + 40 * kDay);
  CHECK(keep.dropped.empty());
}

// Prune runs daily on a machine of its own: its login may keep the partitions and rotate the
// dedup generations (the two tests above run it so) and nothing else, and the tables belong to
// a role nobody logs in as (migrations/0028).
TEST_CASE("prune's login keeps partitions and nothing else, and no login owns a table") {
  TestDatabase db(Services::from_environment());
  keep_days(db, 30);
  keep_days(db, 30);  // recording the same retention again is no change
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE action = 'retention.record' AND (before ->> 'days')::int = 0 "
                 "AND (after ->> 'days')::int = 30 AND login = session_user") == 1);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE action = 'retention.record'") == 1);
  store::maintain_partitions(db.maintenance_url(), {.retention_days = 400, .days_ahead = 1}, kNow);
  REQUIRE(has_partition(db, "transactions_p20261127"));
  auto as_maintenance = [&](const std::string& sql) {
    pqxx::connection c(db.maintenance_url());
    try {
      pqxx::nontransaction(c).exec(sql);
      return std::string("ok");
    } catch (const pqxx::insufficient_privilege&) {
      return std::string("denied");
    }
  };
  for (const char* sql :
       {"DROP TABLE transactions_p20261127", "DELETE FROM transactions", "SELECT body FROM transactions LIMIT 1",
        "TRUNCATE processed_events", "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        "UPDATE fraud_labels SET is_fraud = false", "CREATE TABLE stash (x int)",
        "SELECT fraud_list_add('deny_cards', 'card-1', 'x', 1, 'm', 'k')", "SET ROLE fraud_owner"}) {
    CAPTURE(std::string(sql));
    CHECK(as_maintenance(sql) == "denied");
  }
  // Nor does it forget sooner than the recorded retention, whatever it asks: not the history
  // of the last 30 days, not the dedup ids of a generation younger than 30 days.
  pqxx::connection maintenance(db.maintenance_url());
  CHECK_THROWS_WITH(pqxx::nontransaction(maintenance)
                        .exec("SELECT * FROM fraud_history_maintain(current_date, current_date, current_date)"),
                    doctest::Contains("would forget days the recorded retention (30 days, 0: all) keeps"));
  // A prune host just past midnight before the database asks for one day more: it gets the
  // day the database's clock allows; two days more is refused.
  CHECK_NOTHROW(pqxx::nontransaction(maintenance)
                    .exec("SELECT * FROM fraud_history_maintain(current_date, current_date, current_date - 30)"));
  CHECK_THROWS(pqxx::nontransaction(maintenance)
                   .exec("SELECT * FROM fraud_history_maintain(current_date, current_date, current_date - 29)"));
  CHECK_THROWS_WITH(pqxx::nontransaction(maintenance).exec("SELECT fraud_dedup_rotate(0)"),
                    doctest::Contains("a retention of at least a day"));
  db.query("UPDATE dedup_generation SET started_at = now() - interval '2 days'");
  CHECK_FALSE(pqxx::nontransaction(maintenance).exec1("SELECT fraud_dedup_rotate(1)")[0].as<bool>());
  CHECK(db.count("SELECT current_slot FROM dedup_generation") == 0);
  CHECK(has_partition(db, "transactions_p20261127"));
  // Every table, view, sequence and function is fraud_owner's or a definer role's, none a login's.
  CHECK(db.count("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.relnamespace = "
                 "'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'S') AND r.rolname <> 'fraud_owner'") == 0);
  CHECK(db.count("SELECT count(*) FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE p.pronamespace = "
                 "'public'::regnamespace AND r.rolcanlogin") == 0);
}

TEST_CASE("prune --from makes every day's partition from a past day, for a backfill, but not past the window") {
  TestDatabase db(Services::from_environment());
  keep_days(db, 2);
  store::maintain_partitions(db.url(), {.retention_days = 400, .days_ahead = 7, .from = kNow - 30 * kDay}, kNow);
  CHECK(partitions_of(db, "transactions") == 1 + 30 + 8);  // default, 30 days back, today and 7 ahead
  CHECK(has_partition(db, "transactions_p20261028"));
  TestDatabase other(Services::from_environment());
  keep_days(other, 2);
  store::maintain_partitions(other.url(), {.retention_days = 10, .days_ahead = 7, .from = kNow - 30 * kDay}, kNow);
  CHECK(partitions_of(other, "transactions") == 1 + 11 + 8);  // the window, and its day of margin
}

TEST_CASE("a copy with another occurred_at is a duplicate across a rotation of the dedup generations") {
  TestDatabase db(Services::from_environment());
  consumer::BatchApplier store(db.service_url(), "g", "me", {});
  auto claim = store.claim("t", 0);
  auto rules = rules::FeatureEngine(std::make_shared<const rules::RuleSet>(
      rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml")));
  store::RetentionPolicy window{.retention_days = 30, .days_ahead = 7};
  auto now = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }();

  keep_days(db, 30);
  // The database's clock says when a generation is due: 31 days are simulated by its start.
  const std::string a_month_passes = "UPDATE dedup_generation SET started_at = started_at - interval '31 days'";
  CHECK(store.apply(batch_of(claim.epoch, 1, "2026-11-20T10:00:00.123456Z"), rules).processed == 1);
  CHECK_FALSE(store::maintain_partitions(db.maintenance_url(), window, now).dedup_rotated);  // the generation is new
  db.query(a_month_passes);
  CHECK(store::maintain_partitions(db.maintenance_url(), window, now).dedup_rotated);
  CHECK(db.count("SELECT current_slot FROM dedup_generation") == 1);
  auto copy = store.apply(batch_of(claim.epoch, 1, "2026-11-20T10:00:00.123Z"), rules);  // ms precision
  CHECK(copy.duplicates == 1);
  CHECK(copy.processed == 0);
  CHECK(db.count("SELECT count(*) FROM processed_events") == 1);

  // A second rotation empties the generation that held it: the window is retention.days after
  // the id was applied, and no longer.
  db.query(a_month_passes);
  CHECK(store::maintain_partitions(db.maintenance_url(), window, now).dedup_rotated);
  CHECK(db.count("SELECT count(*) FROM processed_events") == 0);
}

TEST_CASE("a rotation of the dedup generations waits for the batches in flight") {
  TestDatabase db(Services::from_environment());
  pqxx::connection in_flight(db.service_url());
  pqxx::work batch(in_flight);
  batch.exec(store::kDedupGateShared);  // what every batch's first statement takes
  keep_days(db, 1);
  db.query("UPDATE dedup_generation SET started_at = now() - interval '2 days'");
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch());
  std::atomic<bool> rotated{false};
  std::thread prune([&] {
    rotated = store::maintain_partitions(db.url(), {.retention_days = 1, .days_ahead = 1}, now.count()).dedup_rotated;
  });
  // The rotation waits on the gate while the batch is open...
  CHECK(wait_until(30s, [&] {
    // This database's lock only: other tests run beside this one.
    return db.count(
               "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND "
               "database = (SELECT oid FROM pg_database WHERE datname = current_database())") == 1;
  }));
  CHECK(db.count("SELECT current_slot FROM dedup_generation") == 0);
  batch.commit();  // ...and switches once it ends.
  prune.join();
  CHECK(rotated);
  CHECK(db.count("SELECT current_slot FROM dedup_generation") == 1);
}

TEST_CASE("an event older than the dedup window is rejected with its reason, not applied") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions");
  create_topic(services.bootstrap_servers, topic, 1);
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch());
  produce(services.bootstrap_servers, topic,
          {transaction_event(1, "10.00", events::format_rfc3339(now.count() - 40 * kDay)),
           transaction_event(2, "10.00", events::format_rfc3339(now.count() - 20 * kDay))});
  ChildProcess replica(
      {FRAUD_CONSUMER_BINARY, "run"},
      replica_environment(services, db.service_url(), topic, unique_name("fraud"), {{"FRAUD_RETENTION_DAYS", "30"}}));
  CHECK(wait_until(60s, [&] { return offsets_at_end(db, services, topic, 1); }));
  CHECK(replica.stop(SIGTERM, 30s) == 0);
  CHECK(db.count("SELECT count(*) FROM processed_events WHERE event_id = 'evt-2'") == 1);
  CHECK(db.count("SELECT count(*) FROM processed_events") == 1);
  CHECK(db.count("SELECT count(*) FROM rejected_events WHERE reason LIKE '%before the deduplication window%"
                 "(retention.days = 30)%'") == 1);
}

TEST_CASE("prune gives up within seconds behind a transaction that holds the history, rather than stall every batch") {
  TestDatabase db(Services::from_environment());
  keep_days(db, 2);
  store::maintain_partitions(db.url(), {.retention_days = 400, .days_ahead = 7}, kNow);
  // A batch that wrote history and has not committed (frozen, or slow).
  pqxx::connection holder_connection(db.url());
  pqxx::work holder(holder_connection);
  holder.exec0(
      "INSERT INTO transactions (event_id, occurred_at, account_id, amount_minor, currency, transaction_id, body) "
      "VALUES ('held', '2026-11-27T09:00:00Z', 'acc-1', 100, 'EUR', 'tx', '{}')");
  auto pruned = std::async(std::launch::async, [&] {
    try {
      store::maintain_partitions(db.url(), {.retention_days = 400, .days_ahead = 8}, kNow);
      return std::string("pruned");
    } catch (const pqxx::sql_error& e) {
      return e.sqlstate();
    }
  });
  auto finished = pruned.wait_for(30s) == std::future_status::ready;
  holder.commit();  // so that a prune still waiting ends, whatever the check says
  CHECK(finished);
  CHECK(pruned.get() == "55P03");  // lock_timeout: the operator runs it again
}

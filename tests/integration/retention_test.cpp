// Retention (dedup/partitions.h): day partitions made ahead and dropped past the window,
// rows waiting in the default partition moved, and the dedup exact across all of it.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>

#include "dedup/batch_store.h"
#include "dedup/partitions.h"
#include "events/decode.h"
#include "events/time.h"
#include "tests/integration/support.h"

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

void insert_processed(TestDatabase& db, const std::string& id, events::Timestamp occurred_at) {
  db.query("INSERT INTO processed_events (event_id, topic, partition, \"offset\", occurred_at) VALUES ('" + id +
           "', 't', 0, 0, '" + events::format_rfc3339(occurred_at) + "')");
}

/// A batch of the one event `id`, as the batch loop hands it to the store.
dedup::PartitionBatch batch_of(std::int64_t epoch, int id, const std::string& occurred_at) {
  return partition_batch(epoch, {{id, transaction_event(id, "12.00", occurred_at)}});
}

}  // namespace

TEST_CASE("prune makes the coming days' partitions, moves waiting rows into theirs, and drops days past the window") {
  TestDatabase db(Services::from_environment());
  insert_processed(db, "ten-days-old", kNow - 10 * kDay);
  insert_processed(db, "beyond-the-window", kNow - 500 * kDay);

  auto report = dedup::maintain_partitions(db.url(), {.retention_days = 400, .days_ahead = 7}, kNow);
  // Yesterday, today and seven days ahead, plus the day of the waiting row, for each table.
  CHECK(partitions_of(db, "processed_events") == 1 + 10);
  CHECK(partitions_of(db, "transactions") == 1 + 9);
  CHECK(has_partition(db, "processed_events_p20261117"));
  CHECK(has_partition(db, "processed_events_p20261204"));
  CHECK(report.rows_moved == 1);
  CHECK(report.rows_expired == 1);
  CHECK(db.count("SELECT count(*) FROM processed_events_default") == 0);
  CHECK(db.count("SELECT count(*) FROM processed_events_p20261117 WHERE event_id = 'ten-days-old'") == 1);

  auto again = dedup::maintain_partitions(db.url(), {.retention_days = 400, .days_ahead = 7}, kNow);
  CHECK(again.created.empty());  // idempotent
  CHECK(again.dropped.empty());

  // 402 days on (2028-01-03) the service accepts events from 2026-11-29; prune keeps one day
  // more, 2026-11-28, and drops every day before it.
  auto later = dedup::maintain_partitions(db.url(), {.retention_days = 400, .days_ahead = 7}, kNow + 402 * kDay);
  CHECK_FALSE(has_partition(db, "processed_events_p20261117"));
  CHECK_FALSE(has_partition(db, "transactions_p20261127"));
  CHECK(has_partition(db, "processed_events_p20261128"));
  CHECK(has_partition(db, "transactions_p20261128"));
  CHECK(std::find(later.dropped.begin(), later.dropped.end(), "processed_events_p20261117") != later.dropped.end());

  // Keeping everything drops nothing.
  auto keep = dedup::maintain_partitions(db.url(), {.retention_days = 0, .days_ahead = 7}, kNow + 5000 * kDay);
  CHECK(keep.dropped.empty());
}

TEST_CASE("prune --from makes every day's partition from a past day, for a backfill, but not past the window") {
  TestDatabase db(Services::from_environment());
  dedup::maintain_partitions(db.url(), {.retention_days = 400, .days_ahead = 7, .from = kNow - 30 * kDay}, kNow);
  CHECK(partitions_of(db, "transactions") == 1 + 30 + 8);  // default, 30 days back, today and 7 ahead
  CHECK(has_partition(db, "transactions_p20261028"));
  TestDatabase other(Services::from_environment());
  dedup::maintain_partitions(other.url(), {.retention_days = 10, .days_ahead = 7, .from = kNow - 30 * kDay}, kNow);
  CHECK(partitions_of(other, "transactions") == 1 + 11 + 8);  // the window, and its day of margin
}

TEST_CASE("a duplicate is caught whether its first delivery waits in the default partition or was moved") {
  TestDatabase db(Services::from_environment());
  dedup::BatchStore store(db.service_url(), "g", "me", {});
  auto claim = store.claim("t", 0);
  auto rules = rules::FeatureEngine(std::make_shared<const rules::RuleSet>(
      rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml")));
  const std::string when = "2026-11-20T10:00:00Z";

  CHECK(store.apply(batch_of(claim.epoch, 1, when), rules).processed == 1);  // into the default partition
  CHECK(store.apply(batch_of(claim.epoch, 1, when), rules).duplicates == 1);
  dedup::maintain_partitions(db.url(), {.retention_days = 400, .days_ahead = 7}, kNow);  // moved to its day
  CHECK(db.count("SELECT count(*) FROM processed_events_p20261120") == 1);
  CHECK(db.count("SELECT count(*) FROM transactions_p20261120") == 1);
  auto replay = store.apply(batch_of(claim.epoch, 1, when), rules);
  CHECK(replay.duplicates == 1);
  CHECK(replay.processed == 0);
  CHECK(db.count("SELECT count(*) FROM processed_events") == 1);
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
  ChildProcess replica({FRAUD_CONSUMER_BINARY, "run"},
                       replica_environment(services, db.service_url(), topic, unique_name("fraud"),
                                           {{"FRAUD_RETENTION_DAYS", "30"}}));
  CHECK(wait_until(60s, [&] { return offsets_at_end(db, services, topic, 1); }));
  CHECK(replica.stop(SIGTERM, 30s) == 0);
  CHECK(db.count("SELECT count(*) FROM processed_events WHERE event_id = 'evt-2'") == 1);
  CHECK(db.count("SELECT count(*) FROM processed_events") == 1);
  CHECK(db.count("SELECT count(*) FROM rejected_events WHERE reason LIKE '%before the deduplication window%"
                 "(retention.days = 30)%'") == 1);
}

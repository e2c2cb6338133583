#pragma once
// Retention of the tables that grow with every event, without row-by-row deletes:
//
// - transactions (the history features and backtests read) is partitioned by UTC day of
//   occurred_at (migrations/0005_time_partitions.sql); prune makes days ahead and drops days
//   that end before retention_horizon(now, retention_days + 1). The service refuses events
//   before retention_horizon(now, retention_days) (consumer/batch_loop.cpp); the extra day
//   covers clock skew between the two.
// - processed_events (the dedup keys) holds two generations of ids (migrations/
//   0007_dedup_by_id.sql); prune rotates them once the current one is retention_days old,
//   so an id is remembered for at least retention_days after it was applied.

#include <cstdint>
#include <string>
#include <vector>

#include "events/event.h"

namespace fraud::store {

struct RetentionPolicy {
  std::int64_t retention_days = 400;  ///< 0: keep every day
  std::int64_t days_ahead = 7;        ///< partitions made ahead, so new days never wait on prune
  events::Timestamp from = 0;         ///< also make every day's partition from this day (a backfill); 0: none
};

struct PartitionReport {
  std::vector<std::string> created;  ///< "transactions_p20261127", …
  std::vector<std::string> dropped;
  std::int64_t rows_moved = 0;    ///< from a default partition into its day's partition
  std::int64_t rows_expired = 0;  ///< deleted from a default partition, beyond the window
  bool dedup_rotated = false;     ///< the older generation of ids was emptied and made current
};

/// The history: makes a partition for today, yesterday, each of the next `days_ahead` days,
/// every day from `from` on, and every day within the window that has rows in the default
/// partition (moving them), and drops the days beyond the window. The dedup ids: rotates the
/// generations when the current one started `retention_days` or more ago by the database's
/// clock (`now` places the partitions only). Idempotent; run it daily with a login in
/// fraud_maintenance (or the owner's), whose two functions do the DDL and refuse to forget
/// sooner than record_retention() said (migrations/0028). Briefly blocks the service's writes
/// while it changes a table's partitions or rotates the generations.
PartitionReport maintain_partitions(const std::string& url, const RetentionPolicy& policy, events::Timestamp now);

/// Records retention.days in fraud_retention (migrations/0028), as the tables' owner: the
/// maintenance functions never forget sooner, whoever calls them. A change is audited.
void record_retention(const std::string& owner_url, std::int64_t days);

/// Midnight UTC of `now`'s day, minus `days` days: events before it are outside a retention
/// window of `days`.
events::Timestamp retention_horizon(events::Timestamp now, std::int64_t days);

}  // namespace fraud::store

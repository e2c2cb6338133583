#pragma once
// The service's heart: records from the source gather per partition; the partitions' records
// in hand are decoded and applied to the database in one transaction; only then are their
// offsets committed to Kafka. Single-threaded: rebalance callbacks run inside poll(), on this thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consumer/batch_applier.h"
#include "consumer/config.h"
#include "consumer/kafka_source.h"
#include "consumer/metrics.h"
#include "consumer/partition_claims.h"
#include "events/decode.h"
#include "ops/backoff.h"
#include "postgres/database_error.h"
#include "rules/features.h"
#include "rules/rule_set.h"

namespace fraud::consumer {

/// Totals since start, for logs and the quickstart's summary.
struct LoopCounters {
  std::uint64_t batches = 0, processed = 0, duplicates = 0, rejected = 0, alerts = 0;
  std::uint64_t fenced_batches = 0, database_retries = 0;
};

/// What runs inside the loop besides batches, on its thread. `between_batches` is how the
/// service reloads its rules; the other two are fail points where a chaos test stops the
/// process at the worst moment (set only by FRAUD_FAILPOINT_* variables, never in production).
struct LoopCallbacks {
  /// Runs on every turn of the loop, between batches: rule reloads.
  std::function<void()> between_batches;
  /// Fail point: a batch is decoded and in hand, its database transaction not begun.
  std::function<void()> before_database_apply;
  /// Fail point: a batch's database commit is done, its Kafka commit not.
  std::function<void()> after_database_commit;
};

class BatchLoop final : public PartitionOwner {
 public:
  BatchLoop(const BatchConfig& batch, const LimitsConfig& limits, const RetentionConfig& retention, BatchWriter& store,
            std::shared_ptr<const rules::RuleSet> rules, ServiceMetrics& metrics, HealthState& health,
            LoopCallbacks callbacks = {});

  /// Replaces the rules for every batch from now on; feature state starts again from the
  /// stored history. Call on the polling thread (between_batches).
  void set_rules(std::shared_ptr<const rules::RuleSet> rules);

  /// Polls and applies until `stop` is set, then applies what is in hand and returns.
  void run(RecordSource& source, const std::atomic<bool>& stop);

  std::optional<std::int64_t> on_assigned(const TopicPartition& tp) override;
  void on_revoked(const std::vector<TopicPartition>& tps) override;
  void on_lost(const std::vector<TopicPartition>& tps) override;

  const LoopCounters& counters() const { return counters_; }

 private:
  using Clock = std::chrono::steady_clock;

  /// The records of a partition this replica was assigned; whether it may write them is
  /// claims_'s to say.
  struct Partition {
    std::int64_t next_offset = -1;        ///< records before it are stale prefetches (-1: any)
    std::vector<events::Record> pending;  ///< in offset order, not yet applied
    Clock::time_point first_pending;
    Clock::time_point retry_at;  ///< after a transient database error
    ops::Backoff backoff{std::chrono::milliseconds(100), std::chrono::seconds(30)};
  };

  /// How a flush treats a database error that is not a record's fault: retry later, or give
  /// up the batch (rolled back; the next owner re-reads it from the database offset).
  enum class OnFailure { retry_later, drop };

  void claim_due(Clock::time_point now);
  void accept(events::Record record);
  bool ready(const TopicPartition& tp, const Partition& p, Clock::time_point now) const;
  void flush_due(Clock::time_point now, bool drained);
  void flush(const std::vector<TopicPartition>& which, OnFailure on_failure);
  bool apply_and_commit(std::vector<TopicPartition> group, OnFailure on_failure);
  void back_off(const std::vector<TopicPartition>& group, const postgres::DatabaseError& error, OnFailure on_failure);
  void fenced(const TopicPartition& tp, Partition& p);
  store::PartitionBatch decode(const TopicPartition& tp, const Partition& p, std::size_t count);
  std::vector<BatchResult> apply_narrowing_faults(const std::vector<store::PartitionBatch>& batches);
  BatchResult apply_partition_narrowing_faults(const store::PartitionBatch& batch);
  BatchResult narrow_fault(const store::PartitionBatch& batch, const postgres::DatabaseError& error);
  std::vector<BatchResult> attempt(const std::vector<store::PartitionBatch>& batches);
  void observe(const TopicPartition& tp, const BatchResult& result);
  std::chrono::milliseconds poll_timeout(Clock::time_point now) const;

  BatchConfig batch_config_;
  std::int64_t retention_days_;  ///< events older than this window are refused (0: none are)
  BatchWriter& store_;
  std::unique_ptr<rules::FeatureEngine> features_;  ///< the active rules and their feature state
  events::Decoder decoder_;
  std::map<TopicPartition, Partition> partitions_;
  LoopCounters counters_;
  PartitionClaims claims_;
  RecordSource* source_ = nullptr;
  const std::atomic<bool>* stop_ = nullptr;
  std::optional<std::string> fatal_;  ///< an error raised inside a librdkafka callback
  ServiceMetrics& metrics_;
  HealthState& health_;
  LoopCallbacks callbacks_;
};

}  // namespace fraud::consumer

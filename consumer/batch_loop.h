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
#include "events/decode.h"
#include "rules/features.h"
#include "rules/rule_set.h"
#include "postgres/database_error.h"

namespace fraud::consumer {

/// Totals since start, for logs and the quickstart's summary.
struct LoopCounters {
  std::uint64_t batches = 0, processed = 0, duplicates = 0, rejected = 0, alerts = 0;
  std::uint64_t fenced_batches = 0, database_retries = 0;
};

/// Points where a chaos test can stop the process at the worst moment. Empty in production.
struct LoopHooks {
  /// Runs with a batch decoded and in hand, before its database transaction begins.
  std::function<void()> before_database_apply;
  /// Runs after a batch's database commit and before its Kafka commit.
  std::function<void()> after_database_commit;
  /// Runs on every turn of the loop, between batches (rule reloads use it).
  std::function<void()> each_turn;
};

class BatchLoop final : public PartitionOwner {
 public:
  /// An earlier owner whose transaction has held a partition's offset row this long is
  /// stalled (frozen mid-batch); a new owner ends its database session (migrations/0008).
  static constexpr std::chrono::seconds kStalledOwner{30};

  /// A fenced partition that is still this replica's this long after is claimed again: by
  /// then any zombie that fenced it has been told it lost the partition.
  static constexpr std::chrono::seconds kFencedReclaim{60};

  BatchLoop(const BatchConfig& batch, const LimitsConfig& limits, const RetentionConfig& retention, BatchWriter& store,
            std::shared_ptr<const rules::RuleSet> rules, ServiceMetrics& metrics, HealthState& health,
            LoopHooks hooks = {});

  /// Replaces the rules for every batch from now on; feature state starts again from the
  /// stored history. Call on the polling thread (each_turn).
  void set_rules(std::shared_ptr<const rules::RuleSet> rules);

  /// Polls and applies until `stop` is set, then applies what is in hand and returns.
  void run(RecordSource& source, const std::atomic<bool>& stop);

  std::optional<std::int64_t> on_assigned(const TopicPartition& tp) override;
  void on_revoked(const std::vector<TopicPartition>& tps) override;
  void on_lost(const std::vector<TopicPartition>& tps) override;

  const LoopCounters& counters() const { return counters_; }

 private:
  using Clock = std::chrono::steady_clock;

  struct Partition {
    bool claimed = false;             ///< the database granted this replica an epoch
    Clock::time_point claim_at;       ///< when to try the claim again
    Clock::time_point waiting_since;  ///< when the first claim attempt failed
    std::chrono::milliseconds claim_backoff{0};
    std::int64_t next_offset = -1;  ///< records before it are stale prefetches (-1: any)
    std::int64_t epoch = 0;
    std::vector<events::Record> pending;  ///< in offset order, not yet applied
    Clock::time_point first_pending;
    Clock::time_point retry_at;  ///< after a transient database error
    std::chrono::milliseconds backoff{0};
  };

  /// How a flush treats a database error that is not a record's fault: retry later, or give
  /// up the batch (rolled back; the next owner re-reads it from the database offset).
  enum class OnFailure { retry_later, drop };

  std::optional<std::int64_t> try_claim(const TopicPartition& tp, Partition& p);
  void claim_waiting(Clock::time_point now);
  void claim_failed(const TopicPartition& tp, Partition& p, const postgres::DatabaseError& error);
  void accept(events::Record record);
  static bool ready(const Partition& p, Clock::time_point now);
  void flush_due(Clock::time_point now, bool drained);
  void flush(const std::vector<TopicPartition>& which, OnFailure on_failure);
  bool apply_group(std::vector<TopicPartition> group, OnFailure on_failure);
  void fenced(const TopicPartition& tp, Partition& p);
  store::PartitionBatch decode(const TopicPartition& tp, const Partition& p, std::size_t count);
  std::vector<BatchResult> apply_together(const std::vector<store::PartitionBatch>& batches);
  BatchResult apply_or_split(const store::PartitionBatch& batch);
  BatchResult split(const store::PartitionBatch& batch, const postgres::DatabaseError& error);
  std::vector<BatchResult> apply(const std::vector<store::PartitionBatch>& batches);
  void schedule_retry(const TopicPartition& tp, Partition& p, const postgres::DatabaseError& error,
                      Clock::time_point retry_at, std::chrono::milliseconds backoff);
  void observe(const TopicPartition& tp, const BatchResult& result);
  std::chrono::milliseconds poll_timeout(Clock::time_point now) const;

  BatchConfig batch_config_;
  std::int64_t retention_days_;  ///< events older than this window are refused (0: none are)
  BatchWriter& store_;
  std::unique_ptr<rules::FeatureEngine> features_;  ///< the active rules and their feature state
  events::Decoder decoder_;
  std::map<TopicPartition, Partition> partitions_;
  RecordSource* source_ = nullptr;
  const std::atomic<bool>* stop_ = nullptr;
  std::optional<std::string> fatal_;       ///< an error raised inside a librdkafka callback
  Clock::time_point database_down_until_;  ///< claims wait without a try until then
  LoopCounters counters_;
  ServiceMetrics& metrics_;
  HealthState& health_;
  LoopHooks hooks_;
};

}  // namespace fraud::consumer

#pragma once
// The database's claims on the partitions Kafka assigned to this replica: which are claimed,
// at which epoch, and when to try again for those that are not. A claim takes ownership of a
// partition in PostgreSQL (migrations/0008), so a zombie that still writes is fenced.
// Runs on the polling thread; knows nothing of records or batches.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "consumer/batch_applier.h"
#include "consumer/kafka_source.h"
#include "consumer/metrics.h"
#include "ops/backoff.h"
#include "postgres/database_error.h"

namespace fraud::consumer {

class PartitionClaims {
 public:
  using Clock = std::chrono::steady_clock;

  /// An earlier owner whose transaction has held a partition's offset row this long is
  /// stalled (frozen mid-batch); a new owner ends its database session (migrations/0008).
  static constexpr std::chrono::seconds kStalledOwner{30};

  /// A fenced partition that is still this replica's this long after is claimed again: by
  /// then any zombie that fenced it has been told it lost the partition.
  static constexpr std::chrono::seconds kFencedReclaim{60};

  /// `retries` counts claims that failed for the database's sake (the loop's counters).
  PartitionClaims(BatchWriter& store, ServiceMetrics& metrics, std::uint64_t& retries);

  /// One claim attempt for a partition just assigned, never a retry loop (it runs inside
  /// librdkafka's rebalance callback). The claim when granted; nothing when it waits for a
  /// later claim_due(). Throws what is not a database failure.
  std::optional<store::Claim> assign(const TopicPartition& tp);

  /// Tries the claims that are due; returns the partitions claimed now, with their claims.
  std::vector<std::pair<TopicPartition, store::Claim>> claim_due(Clock::time_point now);

  /// A partition claimed but not positioned at its offset: its claim is tried again soon.
  void claim_again(const TopicPartition& tp, Clock::time_point now);

  /// Another replica claimed the partition since: this one stops writing it, and claims it
  /// again after kFencedReclaim if it is still this replica's.
  void fenced(const TopicPartition& tp);

  /// The partition is no longer this replica's.
  void forget(const TopicPartition& tp) { claims_.erase(tp); }

  bool claimed(const TopicPartition& tp) const;
  std::int64_t epoch(const TopicPartition& tp) const { return claims_.at(tp).epoch; }

 private:
  struct State {
    bool claimed = false;  ///< the database granted this replica an epoch
    std::int64_t epoch = 0;
    Clock::time_point claim_at;       ///< when to try the claim again
    Clock::time_point waiting_since;  ///< when the first claim attempt failed
    ops::Backoff backoff{std::chrono::milliseconds(100), std::chrono::seconds(5)};
  };

  std::optional<store::Claim> try_claim(const TopicPartition& tp, State& s);
  void failed(const TopicPartition& tp, State& s, const postgres::DatabaseError& error);
  void release_if_stalled(const TopicPartition& tp, const State& s, Clock::time_point now);

  BatchWriter& store_;
  ServiceMetrics& metrics_;
  std::uint64_t& retries_;
  std::map<TopicPartition, State> claims_;
  Clock::time_point database_down_until_;  ///< claims wait without a try until then
};

}  // namespace fraud::consumer

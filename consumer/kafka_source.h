#pragma once
// The Kafka side of the service, behind a narrow seam: records come out of poll(); the
// group's assignment changes are handed to a PartitionOwner; offsets go back with commit().

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consumer/config.h"
#include "consumer/metrics.h"
#include "events/record.h"

namespace RdKafka {
class KafkaConsumer;
}

namespace fraud::consumer {

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;

  friend auto operator<=>(const TopicPartition&, const TopicPartition&) = default;
};

/// An offset meaning "the partition's first record", for a partition this group never consumed.
inline constexpr std::int64_t kFromBeginning = -2;

/// Told about assignment changes, inside poll(), on the polling thread. Nothing here may
/// block for long: the group's poll interval runs meanwhile.
class PartitionOwner {
 public:
  virtual ~PartitionOwner() = default;
  /// A partition is now ours; returns the offset to start from (kFromBeginning for one never
  /// consumed), or nothing when the owner could not claim it yet: the source then keeps it
  /// paused until the owner seeks it and resumes it.
  virtual std::optional<std::int64_t> on_assigned(const TopicPartition& tp) = 0;
  /// Partitions are being taken away in an orderly rebalance: finish or drop their work now.
  virtual void on_revoked(const std::vector<TopicPartition>& tps) = 0;
  /// Partitions were lost (session timeout): their work must not be written.
  virtual void on_lost(const std::vector<TopicPartition>& tps) = 0;
};

/// Where records come from and offsets go; the batch loop sees only this.
class RecordSource {
 public:
  virtual ~RecordSource() = default;
  /// The next record, or nothing within `timeout`.
  virtual std::optional<events::Record> poll(std::chrono::milliseconds timeout) = 0;
  /// Records `next_offset` as the group's committed offset (for lag tooling).
  virtual void commit(const TopicPartition& tp, std::int64_t next_offset) = 0;
  virtual void pause(const TopicPartition& tp) = 0;
  virtual void resume(const TopicPartition& tp) = 0;
  /// Moves an assigned (paused) partition to `offset` (or kFromBeginning); false on failure.
  virtual bool seek(const TopicPartition& tp, std::int64_t offset) = 0;
  /// Whether this replica is a member of the group now: out of it, a claim could fence the
  /// partition's rightful owner.
  virtual bool in_group() const = 0;
};

/// A member of the consumer group, through librdkafka's KafkaConsumer.
class KafkaSource final : public RecordSource {
 public:
  /// Joins `config.group_id` and subscribes to `config.topics`. Throws std::runtime_error
  /// when librdkafka rejects a property, naming it. Reports rebalances, lag and broker
  /// connectivity (from librdkafka's statistics) into `metrics` and `health`.
  KafkaSource(const KafkaConfig& config, const std::string& client_id, PartitionOwner& owner, ServiceMetrics& metrics,
              HealthState& health);
  ~KafkaSource() override;
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  std::optional<events::Record> poll(std::chrono::milliseconds timeout) override;
  void commit(const TopicPartition& tp, std::int64_t next_offset) override;
  void pause(const TopicPartition& tp) override;
  void resume(const TopicPartition& tp) override;
  bool seek(const TopicPartition& tp, std::int64_t offset) override;
  bool in_group() const override { return in_group_; }

  /// Leaves the group (revoking what is assigned, through the owner) and closes.
  void close();

 private:
  struct Callbacks;
  void check_membership();
  std::unique_ptr<Callbacks> callbacks_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  HealthState& health_;
  std::int64_t next_membership_check_ms_ = 0;
  bool in_group_ = false;  ///< as of the last membership check (at most a second old)
  bool closed_ = false;
};

}  // namespace fraud::consumer
